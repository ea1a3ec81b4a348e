#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "common/addr.h"
#include "common/sock.h"
#include "daemon/handover.h"

/* The manifest (a memfd the new process inherits) is text, a line a socket:
 * "L worker type tls address fd", "R address fd", "K fd", and "C worker fd
 * hex" for a TCP connection with its allocation's record (turn/snapshot.h)
 * in hex, or "-" for none. */
#define ENV_MANIFEST "XTURN_HANDOVER"
#define ENV_READY "XTURN_HANDOVER_READY"
#define MAX_FDS 65536

struct passed {
	char kind;		/* 'L', 'R', 'K', 'C' */
	uint8_t *rec;		/* 'C': the allocation's record, or NULL */
	size_t reclen;
	unsigned worker;
	int type;
	bool tls;
	struct sockaddr_storage addr;
	int fd;			/* -1 once taken */
};

struct handover {
	struct passed *p;
	size_t n;
	int ready_fd;
};

static int unhex(const char *s, uint8_t **out, size_t *n);

struct handover *handover_take(void)
{
	const char *m = getenv(ENV_MANIFEST), *r = getenv(ENV_READY);
	struct handover *h;
	char *line = NULL, a[ADDR_STRLEN + 8];
	size_t cap = 0;
	FILE *f;
	int mfd;

	if (!m || !r)
		return NULL;
	mfd = atoi(m);
	h = calloc(1, sizeof(*h));
	if (!h || !(f = fdopen(mfd, "r"))) {
		free(h);
		return NULL;
	}
	h->ready_fd = atoi(r);
	fcntl(h->ready_fd, F_SETFD, FD_CLOEXEC);
	unsetenv(ENV_MANIFEST);
	unsetenv(ENV_READY);
	rewind(f);
	while (getline(&line, &cap, f) > 0) {
		struct passed p = { .fd = -1 };
		int tls = 0, ok, off = 0;

		p.kind = line[0];
		if (p.kind == 'L')
			ok = sscanf(line + 1, "%u %d %d %63s %d", &p.worker, &p.type, &tls, a, &p.fd) == 5;
		else if (p.kind == 'R')
			ok = sscanf(line + 1, "%63s %d", a, &p.fd) == 2;
		else if (p.kind == 'C')
			ok = sscanf(line + 1, "%u %d %n", &p.worker, &p.fd, &off) == 2 &&
			     !unhex(line + 1 + off, &p.rec, &p.reclen);
		else
			ok = p.kind == 'K' && sscanf(line + 1, "%d", &p.fd) == 1;
		if (!ok || p.fd < 0 || ((p.kind == 'L' || p.kind == 'R') && addr_parse(a, 0, &p.addr)))
			continue;
		addr_canon(&p.addr);
		p.tls = tls;
		fcntl(p.fd, F_SETFD, FD_CLOEXEC);
		if (h->n % 64 == 0) {
			struct passed *q = realloc(h->p, (h->n + 64) * sizeof(*q));
			if (!q)
				break;
			h->p = q;
		}
		h->p[h->n++] = p;
	}
	free(line);
	fclose(f);
	return h;
}

/* "-" (none) or hex digits to the line's end. */
static int unhex(const char *s, uint8_t **out, size_t *n)
{
	size_t len = strcspn(s, "\n");

	*out = NULL;
	*n = 0;
	if (len == 1 && s[0] == '-')
		return 0;
	if (len % 2 || !(*out = malloc(len / 2 + 1)))
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(*out);
			*out = NULL;
			return -1;
		}
		(*out)[i] = (uint8_t)v;
	}
	*n = len / 2;
	return 0;
}

void handover_conns(struct handover *h, unsigned worker, handover_conn_fn fn, void *ctx)
{
	for (size_t i = 0; h && i < h->n; i++) {
		struct passed *p = &h->p[i];
		int fd = p->fd;

		if (fd < 0 || p->kind != 'C' || p->worker != worker)
			continue;
		p->fd = -1;
		fn(ctx, fd, p->rec, p->reclen);
	}
}

static int take(struct handover *h, char kind, unsigned worker, int type, bool tls,
		const struct sockaddr_storage *addr)
{
	for (size_t i = 0; h && i < h->n; i++) {
		struct passed *p = &h->p[i];
		int fd = p->fd;

		if (fd < 0 || p->kind != kind)
			continue;
		if (kind == 'L' && (p->worker != worker || p->type != type || p->tls != tls ||
				    !addr_eq(&p->addr, addr)))
			continue;
		if (kind == 'R' && !addr_eq(&p->addr, addr))
			continue;
		p->fd = -1;
		return fd;
	}
	return -1;
}

int handover_listener(struct handover *h, unsigned worker, int type, bool tls,
		      const struct sockaddr_storage *addr)
{
	return take(h, 'L', worker, type, tls, addr);
}

int handover_relay(struct handover *h, const struct sockaddr_storage *addr)
{
	return take(h, 'R', 0, 0, false, addr);
}

int handover_lock(struct handover *h)
{
	return take(h, 'K', 0, 0, false, NULL);
}

void handover_ready(struct handover *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		if (h->p[i].fd >= 0) {
			close(h->p[i].fd);
			h->p[i].fd = -1;
		}
	if (h->ready_fd >= 0) {
		/* Unheard if the old daemon went already: nothing to do then. */
		ssize_t n = write(h->ready_fd, "R", 1);

		(void)n;
		close(h->ready_fd);
		h->ready_fd = -1;
	}
}

void handover_free(struct handover *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (h->p[i].fd >= 0)
			close(h->p[i].fd);
		free(h->p[i].rec);
	}
	if (h->ready_fd >= 0)
		close(h->ready_fd);
	free(h->p);
	free(h);
}

/* ---- the old process ---- */

struct handover_out {
	FILE *f;
	int mfd;
	int *fds;
	size_t n, cap;
};

struct handover_out *handover_out_new(void)
{
	struct handover_out *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->mfd = memfd_create("xturn-handover", 0);
	if (o->mfd < 0 || !(o->f = fdopen(dup(o->mfd), "w"))) {
		if (o->mfd >= 0)
			close(o->mfd);
		free(o);
		return NULL;
	}
	return o;
}

/* Listed, and inherited by the exec (no FD_CLOEXEC until it is done). */
static void pass(struct handover_out *o, int fd)
{
	if (o->n == o->cap) {
		int *q = realloc(o->fds, (o->cap = o->cap ? 2 * o->cap : 64) * sizeof(*q));
		if (!q)
			return;
		o->fds = q;
	}
	o->fds[o->n++] = fd;
	fcntl(fd, F_SETFD, 0);
}

void handover_out_listener(struct handover_out *o, unsigned worker, int type, bool tls,
			   const struct sockaddr_storage *addr, int fd)
{
	char a[ADDR_STRLEN];

	fprintf(o->f, "L %u %d %d %s %d\n", worker, type, tls, addr_str(addr, true, a, sizeof(a)),
		fd);
	pass(o, fd);
}

void handover_out_relay(struct handover_out *o, const struct sockaddr_storage *addr, int fd)
{
	char a[ADDR_STRLEN];

	fprintf(o->f, "R %s %d\n", addr_str(addr, true, a, sizeof(a)), fd);
	pass(o, fd);
}

void handover_out_conn(struct handover_out *o, unsigned worker, int fd, const uint8_t *rec,
		       size_t n)
{
	fprintf(o->f, "C %u %d ", worker, fd);
	if (!n)
		fputc('-', o->f);
	for (size_t i = 0; i < n; i++)
		fprintf(o->f, "%02x", rec[i]);
	fputc('\n', o->f);
	pass(o, fd);
}

void handover_out_lock(struct handover_out *o, int fd)
{
	fprintf(o->f, "K %d\n", fd);
	pass(o, fd);
}

static void out_free(struct handover_out *o)
{
	for (size_t i = 0; i < o->n; i++)
		fcntl(o->fds[i], F_SETFD, FD_CLOEXEC);
	if (o->f)
		fclose(o->f);
	close(o->mfd);
	free(o->fds);
	free(o);
}

int handover_exec(struct handover_out *o, const char *path, char *const argv[], int timeout_ms,
		  char *why, size_t whylen)
{
	int ready[2], status, err = 0;
	char mfd[16], rfd[16];
	struct pollfd pfd;
	pid_t pid;

	if (fflush(o->f) || pipe2(ready, O_CLOEXEC)) {
		snprintf(why, whylen, "manifest: %s", strerror(errno));
		out_free(o);
		return -EIO;
	}
	snprintf(mfd, sizeof(mfd), "%d", o->mfd);
	snprintf(rfd, sizeof(rfd), "%d", ready[1]);
	pid = fork();
	if (pid == 0) {
		sigset_t all;

		/* The old one blocked these for its signalfd: a fresh start. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		fcntl(o->mfd, F_SETFD, 0);
		fcntl(ready[1], F_SETFD, 0);
		setenv(ENV_MANIFEST, mfd, 1);
		setenv(ENV_READY, rfd, 1);
		execv(path, argv);
		_exit(127);
	}
	close(ready[1]);
	if (pid < 0) {
		err = -errno;
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(ready[0]);
		out_free(o);
		return err;
	}
	pfd = (struct pollfd){ .fd = ready[0], .events = POLLIN };
	for (int64_t end = clock_mono_ms() + timeout_ms;;) {
		char c;
		int n = poll(&pfd, 1, (int)(end - clock_mono_ms() > 0 ? end - clock_mono_ms() : 0));

		if (n > 0 && read(ready[0], &c, 1) == 1)
			break;	/* ready */
		if (n > 0 || (n == 0 && clock_mono_ms() >= end)) {
			/* closed without a word: it exited; or no word in time */
			if (n == 0)
				kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			if (n == 0)
				snprintf(why, whylen, "the new process was not ready in %d ms", timeout_ms);
			else if (WIFEXITED(status))
				snprintf(why, whylen, "the new process exited %d", WEXITSTATUS(status));
			else
				snprintf(why, whylen, "the new process died of signal %d",
					 WTERMSIG(status));
			err = -ECHILD;
			break;
		}
		if (n < 0 && errno != EINTR) {
			err = -errno;
			snprintf(why, whylen, "poll: %s", strerror(errno));
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
	}
	close(ready[0]);
	out_free(o);
	return err ? err : pid;
}
