/* The kernel fast path seen from the daemon: loads bpf/xturn.bpf.c with
 * libxdp, attaches it to the interfaces that carry our addresses (found and
 * followed through rtnetlink), and keeps its maps equal to the daemon's live
 * TURN state. Every map write is best effort for the client: a failure (full
 * map, no XDP) leaves that traffic to userspace relaying, logged and counted. */
#ifndef XT_FASTPATH_H
#define XT_FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "xturn_kern_user.h"

struct fastpath;

struct fp_opts {
	const char *pin_dir;	/* bpffs directory for the maps; mounted if needed */
	/* "auto" (native XDP, TC where XDP would not deliver or only generic
	 * XDP is available), "native", "generic", "tc" */
	const char *mode;
	bool keep_pins;		/* leave the pinned maps behind on fp_close() */
	bool verify_csum;	/* drop relayed datagrams with a wrong UDP checksum */
	/* Device for bpf_fib_lookup, created by fp_open and deleted by
	 * fp_close (NULL: "xturn0"). The kernel only answers a lookup for a
	 * device with forwarding on: this one gets it, the real interfaces
	 * need not (forwarding there would route transit traffic and, for
	 * IPv6, ignore Router Advertisements). */
	const char *lookup_dev;
	/* Addresses whose interfaces get the program (listeners and relays;
	 * the any-address means every up, non-loopback interface). */
	const struct sockaddr_storage *addrs;
	unsigned naddrs;
	/* Extra interfaces by name (config xdp-interface). */
	char *const *ifaces;
	unsigned nifaces;
	/* Capacity of the binding maps (0: XT_DEF_BINDINGS, XT_DEF_RELAYS,
	 * XT_DEF_PERMS). Pinned maps of other sizes are replaced. */
	unsigned max_bindings, max_relays, max_perms;
	/* The pin dir's lock held already (a handover passed it); 0: take it. */
	int lock_fd;
};

/* Routes libbpf's and libxdp's messages through the log (call before
 * fp_open). */
void fp_route_logs(void);
/* Loads and attaches. On failure returns -errno and writes one line for
 * the log saying why (the daemon then relays everything in userspace).
 * On success why is empty or holds a note worth logging (pinned maps of
 * another ABI were replaced, no lookup device: see lookup_dev). */
int fp_open(struct fastpath **out, const struct fp_opts *o, char *why, size_t whylen);
/* The fd that holds the pin dir's lock (for a handover to pass on). */
int fp_lock_fd(const struct fastpath *fp);
/* Detaches, unpins (unless keep_pins) and frees. NULL is fine. */
void fp_close(struct fastpath *fp);
/* For a start without XDP (no-xdp): what a daemon that did not stop cleanly
 * left, its program on the interfaces, its pins in pin_dir and its lookup
 * device, removed, unless a running daemon holds pin_dir (-EBUSY, why says
 * so). 0 otherwise (nothing left is fine). */
int fp_clear_stale(const char *pin_dir, const char *lookup_dev, char *why, size_t whylen);

/* One channel binding as the maps see it. */
struct fp_chan {
	struct sockaddr_storage client;		/* client transport address */
	struct sockaddr_storage listener;	/* our address the client talks to */
	struct sockaddr_storage relay;		/* relayed transport address */
	struct sockaddr_storage peer;		/* peer transport address */
	uint16_t channel;
	/* Until when XDP relays it by itself, CLOCK_MONOTONIC ns: the earliest
	 * end of the channel, its permission and its allocation. */
	uint64_t expires_ns;
};

/* Relayed address live / gone (deletes its permissions and channels too). */
int fp_relay_add(struct fastpath *fp, const struct sockaddr_storage *relay);
void fp_relay_del(struct fastpath *fp, const struct sockaddr_storage *relay);
/* Permission (relay, peer IP) live until expires_ns (CLOCK_MONOTONIC ns; its
 * allocation's end if earlier) / gone; adding it again moves the expiry. A
 * permission the map cannot take (-ENOSPC) is remembered and the relay
 * flagged, so XDP passes its peers to the daemon instead of dropping them;
 * adding it again (a refresh) retries. */
int fp_perm_add(struct fastpath *fp, const struct sockaddr_storage *relay,
		const struct sockaddr_storage *peer, uint64_t expires_ns);
/* Permissions waiting for room in the map. */
unsigned fp_perms_missing(const struct fastpath *fp);
void fp_perm_del(struct fastpath *fp, const struct sockaddr_storage *relay,
		 const struct sockaddr_storage *peer);
/* Binding live (both directions) / gone. 0, -ENOSPC when a map is full.
 * Adding an existing (client, listener, channel) replaces that binding
 * (its counters start again from 0). */
int fp_chan_add(struct fastpath *fp, const struct fp_chan *c);
/* Moves a live binding's expiry to c->expires_ns (its counters untouched):
 * 0 or -ENOENT. */
int fp_chan_expire(struct fastpath *fp, const struct fp_chan *c);
/* What a binding relayed in XDP: application data bytes, as the daemon
 * counts them. */
struct fp_chan_stats {
	uint64_t c2p_packets, c2p_bytes, p2c_packets, p2c_bytes;
};
/* Deletes the binding; st (may be NULL) gets its final counts. */
void fp_chan_del(struct fastpath *fp, const struct fp_chan *c, struct fp_chan_stats *st);
/* A live binding's counts so far: 0 or -ENOENT. */
int fp_chan_stats(struct fastpath *fp, const struct fp_chan *c, struct fp_chan_stats *st);

/* The TC program is on some interface. */
bool fp_has_tc(const struct fastpath *fp);
/* One line per interface the program is attached to: "  IF: native XDP". */
void fp_describe(const struct fastpath *fp, FILE *out);
/* After the daemon has re-added what it knows (an adopted journal), the map
 * entries an earlier daemon left that it did not re-add are deleted. How
 * many. fp_open keeps the pinned maps of the same ABI, and a binding added
 * again as it was keeps its counters (its XDP forwarding never paused). */
unsigned fp_sweep(struct fastpath *fp);
/* Global counters summed over CPUs. */
int fp_counters(struct fastpath *fp, struct xt_count out[XT_CNT_MAX]);
/* Entries in the binding maps (for the invariant test and stats). */
unsigned fp_chan_count(struct fastpath *fp);

/* rtnetlink socket to poll; fp_netlink_event() handles what is readable
 * (address and link changes: attach to new interfaces, forget gone ones;
 * any event, routes and neighbours too, also makes the XDP program forget
 * the next hops it cached, which otherwise live XT_NH_TTL_NS). */
int fp_netlink_fd(struct fastpath *fp);
void fp_netlink_event(struct fastpath *fp);

#endif
