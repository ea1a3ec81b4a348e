/* Runs the real xturnd on loopback for a group of cmocka tests: the daemon
 * built next to the test binary, ports the kernel found free, its output in
 * a log file, a bounded wait until it answers, and on SIGTERM an exit status
 * of 0 (under SAN=1 that also means no leak report). Static helpers shared by
 * the daemon tests (test_turn.c, test_stream.c); each brings its own flags,
 * port choice and readiness check in a struct testd_kind. */
#ifndef XTURN_TESTD_H
#define XTURN_TESTD_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "common/addr.h"

#define TESTD_EXTRA 8		/* group flags per daemon */

struct testd;

/* What one test program's daemons have in common. */
struct testd_kind {
	const char *const *flags;	/* after the port flags, NULL-ended */
	/* Sets port, tls_port, min_port and max_port for start attempt
	 * `attempt`; false if no port was free this time. */
	bool (*pick_ports)(struct testd *d, int attempt);
	bool (*ready)(const struct testd *d);	/* one check that d answers */
	int ready_tries;			/* checks, 50 ms apart */
};

struct testd {
	const struct testd_kind *kind;
	const char *name;
	const char *extra[TESTD_EXTRA];	/* the group's own flags */
	pid_t pid;
	uint16_t port, tls_port, min_port, max_port;	/* tls_port 0: no flag */
	char log[160];			/* set by the test before starting */
	unsigned nofile;		/* >0: its RLIMIT_NOFILE, soft and hard */
};

static inline int testd_path(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	snprintf(out, cap, "%s/../../xturnd", dirname(self));
	return 0;
}

/* A socket of type bound to ip:port (0: the kernel picks) with SO_REUSEADDR
 * if reuse; fills its address. The fd or -errno. */
static inline int testd_bound(int type, const char *ip, uint16_t port, bool reuse,
			      struct sockaddr_storage *out)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(*out);
	int one = 1, fd;

	if (addr_parse(ip, port, &a))
		return -EINVAL;
	fd = socket(a.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)out, &len) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* A UDP port on 127.0.0.1 (the kernel picks it) that is free for type on ip
 * as well; 0 if none was found. */
static inline uint16_t testd_free_port(int type, const char *ip, bool reuse)
{
	for (int i = 0; i < 32; i++) {
		struct sockaddr_storage a, b;
		int fu = testd_bound(SOCK_DGRAM, "127.0.0.1", 0, reuse, &a), f2;

		if (fu < 0)
			continue;
		f2 = testd_bound(type, ip, addr_port(&a), reuse, &b);
		close(fu);
		if (f2 >= 0) {
			close(f2);
			return addr_port(&a);
		}
	}
	return 0;
}

/* Starts xturnd with the port and logging flags, the kind's flags, the
 * group's and more (NULL-ended); stdout and stderr are appended to d->log. */
static inline pid_t testd_spawn(const struct testd *d, const char *const *more)
{
	char exe[PATH_MAX], port[32], tport[40], minp[32], maxp[32];
	const char *argv[64];
	int n = 0, fd;
	pid_t pid;

	if (testd_path(exe, sizeof(exe)))
		return -1;
	snprintf(port, sizeof(port), "--listening-port=%u", d->port);
	snprintf(tport, sizeof(tport), "--tls-listening-port=%u", d->tls_port);
	snprintf(minp, sizeof(minp), "--min-port=%u", d->min_port);
	snprintf(maxp, sizeof(maxp), "--max-port=%u", d->max_port);
	argv[n++] = exe;
	argv[n++] = port;
	if (d->tls_port)
		argv[n++] = tport;
	argv[n++] = minp;
	argv[n++] = maxp;
	argv[n++] = "--log-level=debug";	/* the log says why a test failed */
	argv[n++] = "--no-journal";		/* no state shared between tests */
	for (const char *const *f = d->kind->flags; *f; f++)
		argv[n++] = *f;
	for (int i = 0; i < TESTD_EXTRA && d->extra[i]; i++)
		argv[n++] = d->extra[i];
	for (; more && *more; more++)
		argv[n++] = *more;
	argv[n] = NULL;

	fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = { d->nofile, d->nofile };

		dup2(fd, STDERR_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (d->nofile && setrlimit(RLIMIT_NOFILE, &rl))
			_exit(126);
		execv(exe, (char **)argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

static inline bool testd_alive(const struct testd *d)
{
	int st;

	return waitpid(d->pid, &st, WNOHANG) == 0;
}

/* Bounded: the kind's check passes, or the daemon died. */
static inline bool testd_wait_ready(const struct testd *d)
{
	for (int i = 0; i < d->kind->ready_tries; i++) {
		if (!testd_alive(d))
			return false;
		if (d->kind->ready(d))
			return true;
		usleep(50 * 1000);
	}
	return false;
}

/* SIGTERM, SIGKILL if it lingers; *status is its wait status (-1 when
 * it had to be killed or never ran). */
static inline void testd_kill(struct testd *d, int *status)
{
	*status = -1;
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {	/* 5 s: sanitizer builds exit slowly */
		if (waitpid(d->pid, status, WNOHANG) == d->pid) {
			d->pid = 0;
			return;
		}
		usleep(50 * 1000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
}

/* Starts d (its log named already) and waits until it answers. */
static inline int testd_start(struct testd *d)
{
	unlink(d->log);
	/* The port may be taken between our probe and the daemon's bind: retry. */
	for (int attempt = 0; attempt < 3; attempt++) {
		int st;

		if (!d->kind->pick_ports(d, attempt))
			continue;
		d->pid = testd_spawn(d, NULL);
		if (d->pid < 0)
			break;
		if (testd_wait_ready(d))
			return 0;
		testd_kill(d, &st);
	}
	fprintf(stderr, "xturnd (%s) did not start; log %s\n", d->name, d->log);
	return -1;
}

/* SIGTERM must end the daemon cleanly: exit status 0. */
static inline int testd_stop(struct testd *d)
{
	int st;

	testd_kill(d, &st);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "xturnd (%s) exit status 0x%x; log %s\n", d->name, st, d->log);
		return -1;
	}
	return 0;
}

/* The logs are kept and printed only when something failed. */
static inline void testd_dump_log(const struct testd *d)
{
	char line[512];
	FILE *f = fopen(d->log, "r");

	if (!f)
		return;
	fprintf(stderr, "---- xturnd (%s) log %s ----\n", d->name, d->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

#endif
