/* The daemon's sockets and event loop: UDP listeners, one relay socket per
 * allocation, epoll with recvmmsg batches, a 1 s timer for lifetimes, and
 * signals (SIGTERM/SIGINT stop, SIGHUP reloads). Implements the I/O that
 * turn.c asks for and mirrors TURN state into the fast path's maps. */
#ifndef XT_SERVER_H
#define XT_SERVER_H

#include "config.h"

struct auth;
struct policy;
struct fastpath;
struct server;

/* On SIGHUP: re-reads the configuration and builds new credentials and
 * policy. 0, or -errno (the old ones stay; the callee logs why). */
typedef int (*server_reload_fn)(struct auth **auth, struct policy **pol);

/* Opens the listeners. fp may be NULL (userspace relaying only). */
int server_new(struct server **out, const struct config *cfg, struct auth *auth,
	       struct policy *pol, struct fastpath *fp, char *err, size_t errlen);
/* Runs until SIGTERM or SIGINT. */
int server_run(struct server *srv, server_reload_fn reload);
void server_free(struct server *srv);

#endif
