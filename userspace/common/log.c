#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>

/* syslog.h's LOG_ERR, LOG_INFO and LOG_DEBUG are macros that clash with
 * our enum: its two calls are wrapped before log.h comes in. */
#include <syslog.h>
static void sys_open(void)
{
	openlog("xturnd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static void sys_line(int prio, const char *line)
{
	syslog(prio, "%s", line);
}
#undef LOG_ERR
#undef LOG_INFO
#undef LOG_DEBUG

#include "common/appendfile.h"
#include "common/log.h"

enum log_level log_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog(3) priorities, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG: for
 * syslog, and as the journal's "<N>" line prefixes. */
static const int syslog_prio[] = { 3, 4, 6, 7 };
static bool journal, use_syslog;
static int log_fd = 2;
static char log_path[4096];

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service's stderr; a child
 * whose stderr was redirected elsewhere inherits it, so both are compared
 * (systemd.exec(5)). Parsed by hand: sd-journal has no call for it. */
void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(log_fd, &st) &&
		  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Control characters (a username, a realm: whatever a client sent) are
 * written as \xNN, so no message can forge a log line or drive a terminal.
 * One line, one write: the relay threads' lines never interleave. */
int log_open(const char *target)
{
	int fd;

	if (!target || !*target || !strcmp(target, "stderr")) {
		log_fd = 2;
	} else if (!strcmp(target, "stdout")) {
		log_fd = 1;
	} else if (!strcmp(target, "syslog")) {
		sys_open();
		use_syslog = true;
		return 0;
	} else {
		if (strlen(target) >= sizeof(log_path))
			return -ENAMETOOLONG;
		if ((fd = appendfile_open(target)) < 0)
			return fd;
		snprintf(log_path, sizeof(log_path), "%s", target);
		log_fd = fd;
		journal = false;
		return 0;
	}
	log_init();
	return 0;
}

int log_reopen(void)
{
	return log_path[0] ? appendfile_reopen(log_fd, log_path) : 0;
}

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char hex[] = "0123456789abcdef";
	char msg[1024], line[sizeof(msg) * 4 + 64];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int len;

	if (lvl > log_level)
		return;
	if (use_syslog) {
		n = 0;
	} else if (journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", syslog_prio[lvl]);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ",
				      ts.tv_nsec / 1000000, level_names[lvl]);
	}
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(msg))
		len = sizeof(msg) - 1;	/* truncated */
	if (len && msg[len - 1] == '\n')
		len--;
	for (int i = 0; i < len; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c < 0x20 || c == 0x7f || c == '\\') {
			line[n++] = '\\';
			if (c == '\\') {
				line[n++] = '\\';
				continue;
			}
			line[n++] = 'x';
			line[n++] = hex[c >> 4];
			line[n++] = hex[c & 15];
		} else {
			line[n++] = (char)c;
		}
	}
	if (use_syslog) {
		line[n] = 0;
		sys_line(syslog_prio[lvl], line);
		return;
	}
	line[n++] = '\n';
	/* One write(2) per line: O_APPEND keeps lines whole between threads. */
	if (write(log_fd, line, n) < 0)
		return;	/* nowhere left to say so */
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

int log_level_parse(const char *s)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcasecmp(s, level_names[i]))
			return (int)i;
	return -1;
}
