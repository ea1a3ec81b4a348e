/* TURN state: allocations keyed by their 5-tuple, their permissions and
 * channel bindings, lifetimes and quotas (RFC 8656 §5-§12). Pure state: no
 * sockets, no packets. Whoever mirrors the state elsewhere (the relay
 * sockets, the XDP maps) subscribes through struct alloc_hooks, which are
 * called on every change, including expiry, so the mirror can never drift. */
#ifndef XT_ALLOC_H
#define XT_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "common/stun.h"
#include "turn/auth.h"

#define ALLOC_MAX_RELAYS 2	/* an IPv4 and an IPv6 relay (dual allocation) */
#define ALLOC_TX_CACHE 4	/* responses kept for retransmitted requests */
#define ALLOC_TX_MAXLEN 320

struct perm {
	struct sockaddr_storage peer;	/* IP only; port 0 */
	time_t expires;
	bool in_kernel;			/* perm_up's answer: nothing to retry (the fast
					 * path has it, or there is none) */
};

struct chan {
	struct sockaddr_storage peer;	/* peer transport address */
	time_t expires;
	uint16_t number;
	bool active;			/* bound and permitted: chan_up was called */
	bool in_kernel;			/* chan_up's answer: the fast path carries it */
};

struct chan_key {
	uint32_t peer_hash;		/* addr_hash() of the peer, truncated */
	uint16_t number;
};

struct relay {
	struct sockaddr_storage addr;	/* local relayed transport address */
	struct sockaddr_storage adv;	/* what we advertise (external-ip mapping) */
	int fd;				/* owned by the hooks' provider */
};

/* The order of the counters' per-transport arrays (XT_TRANSPORTS). */
enum alloc_transport { ALLOC_UDP, ALLOC_TCP, ALLOC_TLS };

/* Why an allocation ended, for the accounting record. */
enum alloc_end {
	ALLOC_END_NONE = 0,	/* live */
	ALLOC_END_EXPIRED,	/* its lifetime ran out */
	ALLOC_END_DELETED,	/* Refresh with LIFETIME 0 */
	ALLOC_END_KILLED,	/* xturnctl kill */
	ALLOC_END_DRAINED,	/* still up when a drain's timeout passed */
	ALLOC_END_CLOSED,	/* its TCP/TLS connection closed */
	ALLOC_END_REVOKED,	/* credentials or peer policy withdrawn (reload) */
	ALLOC_END_SHUTDOWN,	/* the server stopped */
};
const char *alloc_end_name(enum alloc_end e);
const char *alloc_transport_name(enum alloc_transport t);

/* One direction's traffic: what the daemon relayed, and what the fast path
 * did for channels that have left it (live ones are in the maps). Bytes
 * are application data (no headers), as in the metrics. */
struct alloc_traffic {
	uint64_t packets, bytes;
	uint64_t xdp_packets, xdp_bytes;
};

/* A cached response, in a buffer of its own size (most are 40-150 bytes:
 * inline ALLOC_TX_MAXLEN-byte buffers were half of an allocation's memory). */
struct tx_entry {
	uint8_t tid[STUN_TID_LEN];
	uint16_t len;
	uint8_t *buf;
};

struct allocation {
	struct allocation *next;	/* hash chain */
	struct sockaddr_storage client;	/* 5-tuple: client, */
	struct sockaddr_storage listener; /* our address, transport below */
	int listener_fd;		/* socket to answer the client from */
	/* Made over a TCP/TLS connection (listener_fd is the connection): part
	 * of the 5-tuple, so a UDP and a stream client on the same addresses
	 * never share an allocation. */
	bool stream;
	/* The credential that created the allocation: later requests must
	 * match it (441) and their responses are signed with it. */
	uint8_t key[STUN_MAX_KEY];
	size_t keylen;
	struct relay relays[ALLOC_MAX_RELAYS];
	unsigned nrelays;
	time_t expires;
	struct perm *perms;
	unsigned nperms, capperms;
	struct chan *chans;
	/* What lookups compare, in the same order as chans: a packet scans
	 * these few bytes a channel, not each whole struct chan. */
	struct chan_key *chan_keys;
	unsigned nchans;
	struct tx_entry tx[ALLOC_TX_CACHE];
	unsigned tx_next;
	uint8_t alloc_tid[STUN_TID_LEN];	/* the Allocate that made it */
	void *user;			/* for the hooks' provider */
	/* Accounting: a random id, when it began (monotonic, and Unix time
	 * for the record), how the client came, why it ended, traffic. */
	uint64_t id;
	time_t created, created_wall;
	uint8_t transport;		/* enum alloc_transport */
	uint8_t end;			/* enum alloc_end */
	/* Made with a browser check's credentials: relays only to our own
	 * relayed addresses, lives no longer than its credential. */
	bool check;
	struct alloc_traffic c2p, p2c;
	/* Last, sized by alloc_new: most names are a few dozen bytes of the
	 * STUN_MAX_USERNAME a fixed array took in every allocation. */
	char username[];
};

/* A zeroed allocation for username (shorter than STUN_MAX_USERNAME), or
 * NULL; freed with free() (its arrays by their owner). */
struct allocation *alloc_new(const char *username);

struct alloc_hooks {
	void *ctx;
	/* Called once the allocation is in the table (its relays are live). */
	void (*alloc_up)(void *ctx, struct allocation *a);
	/* Called before the allocation's state is freed. */
	void (*alloc_down)(void *ctx, struct allocation *a);
	/* perm_up returns true if the fast path now has it; a refresh of one
	 * it could not take (map full) calls it again. */
	bool (*perm_up)(void *ctx, struct allocation *a, const struct perm *p);
	void (*perm_down)(void *ctx, struct allocation *a, const struct perm *p);
	/* A channel becomes usable (bound and permitted) / stops being usable.
	 * chan_up returns true if the fast path now carries it. */
	bool (*chan_up)(void *ctx, struct allocation *a, struct chan *c);
	void (*chan_down)(void *ctx, struct allocation *a, struct chan *c);
	/* Lifetimes moved without anything coming or going (the fast path
	 * keeps its own copy of each end): permission p refreshed, with the
	 * channels to its IP (CreatePermission, ChannelBind), or the
	 * allocation refreshed (its end bounds everything in it). */
	void (*perm_refreshed)(void *ctx, struct allocation *a, const struct perm *p);
	void (*alloc_refreshed)(void *ctx, struct allocation *a);
};

struct alloc_limits {
	unsigned user_quota;		/* allocations per username, 0 = unlimited */
	unsigned total_quota;		/* allocations in all, 0 = unlimited */
	unsigned max_perms;		/* permissions per allocation */
	unsigned max_channels;		/* channels per allocation */
	unsigned permission_lifetime;	/* seconds */
	unsigned channel_lifetime;	/* seconds */
};

struct alloc_table;
struct alloc_quota;

/* Quota counts shared by several tables (one per worker thread); locked
 * inside, so tables of different threads may share one. */
struct alloc_quota *alloc_quota_new(void);
void alloc_quota_free(struct alloc_quota *q);

/* quota: shared counts, or NULL for a table of its own. */
struct alloc_table *alloc_table_new(const struct alloc_limits *lim, const struct alloc_hooks *h,
				    struct alloc_quota *quota);
/* Deletes every allocation (hooks called) and frees the table. */
void alloc_table_free(struct alloc_table *t);

/* Quota check before any resource is taken: 0, -EDQUOT (user quota: 486)
 * or -ENOSPC (total quota: 508). */
int alloc_quota_check(const struct alloc_table *t, const char *username);
/* Counts one more against username's and the total quota for something
 * that is not an allocation but costs like one (an EVEN-PORT reservation):
 * 0, -EDQUOT, -ENOSPC, -ENOMEM. alloc_quota_release gives it back. */
int alloc_quota_hold(struct alloc_table *t, const char *username);
void alloc_quota_release(struct alloc_table *t, const char *username);
/* Inserts a new allocation (caller filled client, listener, username, key,
 * relays, expires). Takes ownership. 0, -EEXIST, -EDQUOT, -ENOSPC. */
int alloc_insert(struct alloc_table *t, struct allocation *a);
struct allocation *alloc_find(const struct alloc_table *t, const struct sockaddr_storage *client,
			      const struct sockaddr_storage *listener);
/* The same, for the transport: stream (TCP/TLS) or UDP (what alloc_find finds). */
struct allocation *alloc_find_tp(const struct alloc_table *t, const struct sockaddr_storage *client,
				 const struct sockaddr_storage *listener, bool stream);
/* Removes and frees (hooks called); why: the end reason, unless one was
 * set before (alloc_end_at). */
void alloc_delete(struct alloc_table *t, struct allocation *a, enum alloc_end why);
/* Refresh: a lives until expires (the hooks hear of it). */
void alloc_refresh(struct alloc_table *t, struct allocation *a, time_t expires);
/* The permission for peer's IP, or NULL. */
const struct perm *alloc_perm_find(const struct allocation *a, const struct sockaddr_storage *peer);
/* Ends it at the next alloc_expire, with this reason (from any thread
 * holding the table's owner's lock). */
void alloc_end_at_next_expiry(struct allocation *a, enum alloc_end why);
/* Calls fn for every allocation (no change to the table inside). */
void alloc_foreach(const struct alloc_table *t, void (*fn)(void *ctx, struct allocation *a),
		   void *ctx);
/* Allocations in this table. */
unsigned alloc_count(const struct alloc_table *t);
/* Allocations of a user across every table sharing the quota. */
unsigned alloc_user_count(const struct alloc_table *t, const char *username);
/* Live state summed over every allocation, for the metrics. */
struct alloc_totals {
	unsigned perms, chans, chans_in_kernel;
	unsigned users;			/* distinct users, across tables sharing the quota */
};
void alloc_totals(const struct alloc_table *t, struct alloc_totals *out);

/* Installs or refreshes a permission for peer's IP. 0 or -ENOSPC (508). */
int alloc_perm_add(struct alloc_table *t, struct allocation *a,
		   const struct sockaddr_storage *peer, time_t now);
/* A restarted daemon's: the permission as it was, until expires. */
int alloc_perm_restore(struct alloc_table *t, struct allocation *a,
		       const struct sockaddr_storage *peer, time_t expires);
/* Several at once (one CreatePermission): all installed or refreshed, or,
 * if they do not all fit, none (-ENOSPC). */
int alloc_perm_add_all(struct alloc_table *t, struct allocation *a,
		       const struct sockaddr_storage *peers, unsigned n, time_t now);
bool alloc_perm_ok(const struct allocation *a, const struct sockaddr_storage *peer, time_t now);

/* ChannelBind rules (RFC 8656 §11.2): 0, -EINVAL (number out of range:
 * 400), -EBUSY (number bound to another peer, or peer bound to another
 * number: 400), -ENOSPC (max-channels or max-permissions: 508). Also
 * installs or refreshes the permission for the peer. */
int alloc_chan_bind(struct alloc_table *t, struct allocation *a, uint16_t number,
		    const struct sockaddr_storage *peer, time_t now);
/* A restarted daemon's: the channel as it was (after its permission). */
int alloc_chan_restore(struct alloc_table *t, struct allocation *a, uint16_t number,
		       const struct sockaddr_storage *peer, time_t expires);
struct chan *alloc_chan_by_number(struct allocation *a, uint16_t number, time_t now);
struct chan *alloc_chan_by_peer(struct allocation *a, const struct sockaddr_storage *peer,
				time_t now);

/* Expires what is due at now: allocations, permissions (taking their
 * channels out of use) and channels. Returns allocations deleted. */
unsigned alloc_expire(struct alloc_table *t, time_t now);

/* Revocation (a reload, a new host address): what the callbacks refuse
 * (NULL: keep all) is expired at once, taken down by the same path and
 * hooks as an expiry; a permission's channels go with it. Returns how many
 * allocations, permissions and channels went. */
struct alloc_keep {
	void *ctx;
	bool (*alloc)(void *ctx, const struct allocation *a);
	bool (*perm)(void *ctx, const struct allocation *a, const struct perm *p);
	bool (*chan)(void *ctx, const struct allocation *a, const struct chan *c);
};
unsigned alloc_revoke(struct alloc_table *t, const struct alloc_keep *k);

/* Transaction cache: a retransmitted request gets the same answer. */
const struct tx_entry *alloc_tx_find(const struct allocation *a, const uint8_t tid[STUN_TID_LEN]);
void alloc_tx_store(struct allocation *a, const uint8_t tid[STUN_TID_LEN], const uint8_t *buf,
		    size_t len);
/* Frees the cached responses (alloc_delete does). */
void alloc_tx_clear(struct allocation *a);

/* The relay of a family (AF_INET/AF_INET6) or NULL. */
struct relay *alloc_relay_for(const struct allocation *a, int family);

#endif
