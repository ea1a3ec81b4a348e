#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"

enum log_level log_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Control characters (a username, a realm: whatever a client sent) are
 * written as \xNN, so no message can forge a log line or drive a terminal.
 * One line, one write: the relay threads' lines never interleave. */
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
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
			      level_names[lvl]);
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
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
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
