/* Leveled logging to stderr. Libraries return errors; the daemon logs them.
 * Under systemd, when stderr is the journal's stream (JOURNAL_STREAM), each
 * line starts with its syslog priority ("<3>" ... "<7>") and carries no
 * timestamp of its own: the journal stores both. */
#ifndef XT_LOG_H
#define XT_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_level;

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap);
/* Picks the format for where stderr goes now: the journal's if
 * JOURNAL_STREAM names stderr's device and inode, else timestamped lines.
 * Call again after redirecting stderr. */
void log_init(void);
/* Where lines go: NULL or "" stderr (the default), "stdout", "syslog"
 * (syslog(3), daemon facility, ident "xturnd") or a file appended to. 0, or
 * -errno with nothing changed. */
int log_open(const char *target);
/* Reopens the file log_open named (after logrotate moved it); 0 or -errno,
 * the old file kept. */
int log_reopen(void);
/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *s);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_level >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
