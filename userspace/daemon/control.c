#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>

#include "common/log.h"
#include "common/sock.h"
#include "daemon/control.h"

#define CONTROL_GROUP "xturn"
#define ACCEPTS_PER_EVENT 8

struct control {
	int fd;
	ino_t ino;
	gid_t gid;		/* the xturn group, or (gid_t)-1 */
	control_fn fn;
	void *ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct control *control_open(const char *path, control_fn fn, void *ctx, int *err)
{
	struct control *c = calloc(1, sizeof(*c));
	struct group *g = getgrnam(CONTROL_GROUP);

	if (!c || strlen(path) >= sizeof(c->path)) {
		*err = c ? -ENAMETOOLONG : -ENOMEM;
		free(c);
		return NULL;
	}
	c->fn = fn;
	c->ctx = ctx;
	c->gid = g ? g->gr_gid : (gid_t)-1;
	c->fd = sock_unix_listen(path, 0660, &c->ino);
	if (c->fd < 0) {
		*err = c->fd;
		free(c);
		return NULL;
	}
	strcpy(c->path, path);
	if (g && chown(path, (uid_t)-1, g->gr_gid))
		log_warn("control-socket %s: group %s: %s", path, CONTROL_GROUP, strerror(errno));
	return c;
}

int control_fd(const struct control *c)
{
	return c->fd;
}

/* Root, our own user, or a member of the xturn group (SO_PEERGROUPS: the
 * peer's supplementary groups too). The file's mode says the same; this
 * holds even if it is loosened. */
static bool peer_allowed(const struct control *c, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (c->gid == (gid_t)-1)
		return false;
	if (cr.gid == c->gid)
		return true;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == c->gid)
			return true;
	return false;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;	/* the client went or stalled past the timeout */
		buf += n;
		len -= (size_t)n;
	}
}

/* One request. The connection is blocking with 2 s timeouts: only root and
 * the xturn group connect, and an admin's stalled client costs the main
 * thread (signals, metrics) no more than that; relaying goes on in the
 * relay threads. */
static void serve(struct control *c, int fd)
{
	struct timeval tv = { .tv_sec = 2 };
	char line[CTL_MAX_LINE + 1], *argv[CTL_MAX_ARGS + 1], *save, *body = NULL;
	size_t len = 0, blen = 0;
	const char *why = NULL;
	int argc = 0;
	FILE *out;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!peer_allowed(c, fd)) {
		send_all(fd, "error: permission denied\n", 25);
		return;
	}
	while (len < CTL_MAX_LINE && !memchr(line, '\n', len)) {
		ssize_t n = recv(fd, line + len, CTL_MAX_LINE - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = 0;
	if (!strchr(line, '\n')) {
		send_all(fd, "error: expected one line\n", 25);
		return;
	}
	*strchr(line, '\n') = 0;
	for (char *w = strtok_r(line, " \t", &save); w && argc <= CTL_MAX_ARGS;
	     w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	if (!argc || argc > CTL_MAX_ARGS) {
		send_all(fd, "error: expected a command and at most 3 arguments\n", 51);
		return;
	}
	argv[argc] = NULL;
	if (!(out = open_memstream(&body, &blen))) {
		send_all(fd, "error: out of memory\n", 21);
		return;
	}
	why = c->fn(c->ctx, argc, argv, out);
	if (fclose(out)) {
		why = "out of memory";
		blen = 0;
	}
	if (why) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg), "error: %s\n", why);
		send_all(fd, msg, (size_t)n);
	} else {
		send_all(fd, "ok\n", 3);
		send_all(fd, body, blen);
	}
	free(body);
}

void control_event(struct control *c)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		serve(c, fd);
		close(fd);
	}
}

void control_close(struct control *c)
{
	if (!c)
		return;
	close(c->fd);
	sock_unix_unlink(c->path, c->ino);
	free(c);
}
