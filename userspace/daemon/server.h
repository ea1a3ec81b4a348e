/* The daemon's sockets and event loop: UDP listeners, one relay socket per
 * allocation, epoll with recvmmsg batches, a 1 s timer for lifetimes, and
 * signals (SIGTERM/SIGINT stop, SIGHUP reloads). Implements the I/O that
 * turn.c asks for and mirrors TURN state into the fast path's maps. */
#ifndef XT_SERVER_H
#define XT_SERVER_H

#include <stdbool.h>

#include "daemon/config.h"

struct auth;
struct handover;
struct policy;
struct fastpath;
struct server;

/* Builds credentials and policy (each worker owns a set): from the running
 * configuration, or after re-reading it (reread, on SIGHUP). 0, or -errno
 * (the old ones stay; the callee logs why). */
typedef int (*server_reload_fn)(bool reread, struct auth **auth, struct policy **pol);

/* Fails with -EADDRINUSE (err says which) if another process holds one of
 * the listening ports: our listeners use SO_REUSEPORT, so without this a
 * second xturnd would silently share the port and the fast path's maps. */
int server_check_ports(const struct config *cfg, char *err, size_t errlen);
/* Opens the listeners of relay-threads workers (0: one per CPU). Takes
 * auth and pol (for the first worker; reload builds the others' and, on
 * SIGHUP, everyone's new ones). fp may be NULL (userspace relaying only). */
int server_new(struct server **out, const struct config *cfg, struct auth *auth,
	       struct policy *pol, struct fastpath *fp, struct handover *h, server_reload_fn reload,
	       char *err, size_t errlen);
/* What a planned restart (SIGUSR2, xturnctl restart) execs: this binary's
 * path as started (it may have been replaced by a new version since) and
 * its arguments. Without it there is no planned restart. */
void server_set_exec(struct server *srv, const char *path, char *const argv[]);
/* Runs the workers and, in the calling thread, signals, netlink and the
 * metrics endpoints, until SIGTERM or SIGINT. A handover's new process
 * (env.handover) tells the old one it is ready once its workers run. */
int server_run(struct server *srv);
void server_free(struct server *srv);

#endif
