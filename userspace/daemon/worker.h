/* One relay thread: its own UDP listeners (SO_REUSEPORT: the kernel hashes
 * a client's 5-tuple to one of them, so all of a client's traffic meets the
 * same worker), TCP/TLS connections, TURN state and relay sockets, in one
 * event loop. Implements the turn_io and alloc_hooks the protocol calls.
 * Shared between workers (struct worker_env): the configuration, the quota
 * counts and reservations, this host's addresses, the fast path. */
#ifndef XT_WORKER_H
#define XT_WORKER_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "common/metrics.h"
#include "daemon/config.h"

struct acct;
struct auth;
struct handover;
struct handover_out;
struct hostaddr;
struct offload;
struct policy;
struct turn_server;
struct turn_shared;
struct worker;

struct worker_env {
	const struct config *cfg;
	SSL_CTX *tls;			/* NULL: no TLS listeners */
	struct offload *offload;
	struct turn_shared *shared;
	struct hostaddr *host;
	struct acct *acct;		/* accounting of ended allocations */
	/* alternate-server and tls-alternate-server, parsed */
	const struct sockaddr_storage *alternates, *tls_alternates;
	unsigned nalternates, ntls_alternates;
	struct handover *handover;	/* sockets an earlier daemon passed; NULL */
};

/* Opens worker id's listeners (id 0 logs them). Takes auth and pol (freed
 * on failure). 0, or -errno with err saying why. */
int worker_new(const struct worker_env *env, unsigned id, struct auth *auth,
	       struct policy *pol, struct worker **out, char *err, size_t errlen);
/* Closes connections and deletes allocations (hooks called). Not running. */
void worker_free(struct worker *w);

/* Runs the worker's loop in a thread of its own; 0 or -errno. */
int worker_start(struct worker *w);
/* Asks the loop to end and waits for it. */
void worker_stop(struct worker *w);

/* New credentials and policy (SIGHUP), taken by the worker between two
 * batches; the worker owns them. */
void worker_replace_auth(struct worker *w, struct auth *auth, struct policy *pol);

/* A new TLS context for the connections accepted from now on (SIGHUP:
 * renewed certificates); the worker takes its own reference. */
void worker_replace_tls(struct worker *w, SSL_CTX *tls);

/* Runs the worker's TURN timers at once: what was marked to end
 * (alloc_end_at_next_expiry) goes now rather than within a second. */
void worker_tick_now(struct worker *w);

/* With the lock held: the worker's listeners and its allocations' relay
 * sockets, listed for a handover. */
void worker_handover_fds(struct worker *w, struct handover_out *o);

/* Held while the worker handles a batch: with it held, its state may be
 * read from another thread. */
void worker_lock(struct worker *w);
void worker_unlock(struct worker *w);
/* With the lock held: the worker's TURN state, and its socket-side counts
 * added into m (send drops, TCP/TLS connections). */
struct turn_server *worker_turn(struct worker *w);
void worker_add_counts(const struct worker *w, struct metrics_snapshot *m);

#endif
