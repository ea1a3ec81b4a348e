/* The TURN server's protocol logic (RFC 8656 over UDP, RFC 8489 Binding):
 * datagrams in, responses and relayed data out through struct turn_io.
 * One path per packet: codec -> auth -> TURN state -> send or map write. */
#ifndef XT_TURN_H
#define XT_TURN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/counters.h"
#include "turn/alloc.h"

struct auth;
struct policy;
struct hostaddr;

/* What the server needs from the sockets layer. */
struct turn_io {
	void *ctx;
	/* Opens a relay socket: at NULL, on any relay address of the family
	 * and any free port in the range (even if even); else exactly at (an
	 * allocation restored, the port after a reserved one).
	 * Returns the fd (>= 0) and fills addr (local) and adv (advertised),
	 * or -errno (-EADDRINUSE, -EAFNOSUPPORT: no relay of that family,
	 * -EADDRNOTAVAIL: at is no relay address). */
	int (*relay_open)(void *ctx, int family, const struct sockaddr_storage *at, bool even,
			  bool dont_fragment, struct sockaddr_storage *addr,
			  struct sockaddr_storage *adv);
	/* Closes a relay socket that never became part of an allocation. */
	void (*relay_close)(void *ctx, int fd);
	int (*send_client)(void *ctx, int listener_fd, const struct sockaddr_storage *listener,
			   const struct sockaddr_storage *client, const struct iovec *iov,
			   int iovcnt);
	int (*send_peer)(void *ctx, int relay_fd, const struct sockaddr_storage *peer,
			 const void *buf, size_t len);
	/* Fills buf with unpredictable bytes (the seed of our transaction ids,
	 * RESERVATION-TOKENs): 0, or -1. */
	int (*random)(void *ctx, void *buf, size_t len);
	/* Seconds since the epoch: REST credentials expire by it. (Lifetimes
	 * run on the monotonic time the callers pass as now.) */
	time_t (*wall_clock)(void *ctx);
};

struct turn_cfg {
	struct alloc_limits limits;
	unsigned max_lifetime;
	unsigned default_lifetime;
	/* Unauthenticated error responses a second to one UDP source (and its
	 * burst); 0: no limit (ratelimit.h). */
	unsigned unauth_rate, unauth_burst;
	/* SOFTWARE in every response; NULL or "": "xturn" in authenticated
	 * responses only (what a spoofed source gets back stays small). */
	const char *software;
	bool no_software;	/* no SOFTWARE at all (coturn's no-software-attribute) */
	/* ALTERNATE-SERVER answers (300 Try Alternate) to an Allocate while
	 * draining or at the total quota, round robin: for UDP and TCP
	 * clients, and for TLS clients. None: 508 instead. */
	const struct sockaddr_storage *alternates, *tls_alternates;
	unsigned nalternates, ntls_alternates;
	/* This host's addresses and our relay ports (never a peer but by an
	 * exact allowed-peer-ip rule, or relay to relay); NULL: none known. */
	struct hostaddr *host;
};

struct turn_server;
struct turn_shared;

/* State several servers (one per worker thread) share: quota counts and
 * EVEN-PORT reservations. Locked inside. */
struct turn_shared *turn_shared_new(void);
void turn_shared_free(struct turn_shared *sh);

/* shared: the state shared with other servers, or NULL for its own. */
struct turn_server *turn_new(const struct turn_cfg *cfg, struct auth *auth, struct policy *pol,
			     const struct turn_io *io, const struct alloc_hooks *hooks,
			     struct turn_shared *shared);
/* Deletes every allocation (hooks called), closes the shared EVEN-PORT
 * reservations (through its io: the first server freed takes them all) and
 * frees. */
void turn_free(struct turn_server *s);
/* SIGHUP: new credentials and policy take over; the old ones are freed.
 * The next turn_tick revokes the allocations whose credentials are no
 * longer accepted, and the permissions and channels the new policy denies
 * (these also when this host's addresses change). */
void turn_replace_auth(struct turn_server *s, struct auth *auth, struct policy *pol);

/* A datagram from a client to one of our listeners. */
void turn_on_client(struct turn_server *s, int listener_fd, const struct sockaddr_storage *client,
		    const struct sockaddr_storage *listener, const uint8_t *buf, size_t len,
		    time_t now);
/* One message from a client over a TCP or TLS connection (framed by the
 * caller, ChannelData without its padding). conn_fd stands for the
 * connection: it is the fd send_client gets to answer on and the
 * allocation's listener_fd; the allocation is the connection's (stream). */
void turn_on_stream(struct turn_server *s, int conn_fd, bool tls,
		    const struct sockaddr_storage *client, const struct sockaddr_storage *listener,
		    const uint8_t *msg, size_t len, time_t now);
/* A datagram from a peer to relay r of allocation a. buf has at least
 * TURN_PEER_HEADROOM writable bytes before it (the ChannelData header is
 * written there, so relaying is one send with no copy). */
#define TURN_PEER_HEADROOM 4
void turn_on_peer(struct turn_server *s, struct allocation *a, const struct sockaddr_storage *peer,
		  uint8_t *buf, size_t len, time_t now);
/* Draining (a rolling restart): new Allocates are sent elsewhere (300 with
 * ALTERNATE-SERVER) or refused (508); allocations that exist go on. */
void turn_set_draining(struct turn_server *s, bool on);
/* A restarted daemon takes over allocation rec (from its journal, or with
 * its TCP connection in a handover): the same relayed ports bound again
 * (the caller's io), the same id, lifetimes, permissions, channels and
 * traffic counts; no key (the next request brings it). listener_fd: the
 * socket its listener address is served on, or its TCP connection. 0,
 * -ESTALE (ended, or TLS), -EADDRINUSE, -EADDRNOTAVAIL
 * (the relay address is not ours any more), -EDQUOT, -ENOSPC, -ENOMEM. */
int turn_adopt(struct turn_server *s, const struct allocation *rec, int listener_fd, time_t now);
/* Expires lifetimes; call about once a second. */
void turn_tick(struct turn_server *s, time_t now);

const struct turn_stats *turn_stats(const struct turn_server *s);
struct alloc_table *turn_allocs(struct turn_server *s);

#endif
