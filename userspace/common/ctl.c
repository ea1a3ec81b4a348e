#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/ctl.h"

int ctl_request(const char *path, const char *line, FILE *out, char *why, size_t whylen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[65536], head[CTL_MAX_LINE];
	size_t hlen = 0;
	bool in_body = false;
	int fd, err = 0;
	ssize_t n;

	if (strlen(path) >= sizeof(sun.sun_path) || strlen(line) >= CTL_MAX_LINE) {
		snprintf(why, whylen, "%s", strlen(line) >= CTL_MAX_LINE ? "request too long" :
			 "socket path too long");
		return -EINVAL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		snprintf(why, whylen, "%s: %s%s", path, strerror(errno),
			 errno == EACCES ? " (root or the xturn group only)" :
			 errno == ENOENT || errno == ECONNREFUSED ? " (is xturnd running?)" : "");
		if (fd >= 0)
			close(fd);
		return err;
	}
	/* A daemon that refuses us answers and closes before reading: a
	 * failed send still leaves its answer to read. */
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		err = -errno;
	/* The first line says ok or why not; the rest is the body. */
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		size_t off = 0;

		while (!in_body && off < (size_t)n) {
			char c = buf[off++];
			if (c == '\n') {
				in_body = true;
				break;
			}
			if (hlen < sizeof(head) - 1)
				head[hlen++] = c;
		}
		if (in_body && out)
			fwrite(buf + off, 1, (size_t)n - off, out);
	}
	close(fd);
	head[hlen] = 0;
	if (!in_body) {
		snprintf(why, whylen, "%s: %s", path, err ? strerror(-err) : "no answer");
		return err ? err : -EPROTO;
	}
	if (!strcmp(head, "ok"))
		return 0;
	snprintf(why, whylen, "%s", strncmp(head, "error: ", 7) ? head : head + 7);
	return 1;
}
