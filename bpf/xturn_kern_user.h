/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The kernel <-> userspace contract of xturn: every map key and value the
 * XDP program (bpf/xturn.bpf.c) and the daemon (userspace/daemon/fastpath.c) share.
 * Included by both sides, so only fixed-width types, explicit padding and
 * asserted sizes: a field added on one side and not the other fails to build.
 *
 * Addresses are always 16 bytes. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d)
 * so one map serves both families and a client of one family can talk to a
 * peer of the other.
 */
#ifndef XTURN_KERN_USER_H
#define XTURN_KERN_USER_H

#include <linux/types.h>

/* Bumped on any change to a struct below; the daemon refuses a program or a
 * pinned map of another version (xt_cfg.abi_version / map value sizes). */
#define XT_ABI_VERSION 6
#define XT_MAGIC 0x5854524eU /* "XTRN" */

/* Default capacity of the binding maps (xt_c2p, xt_p2c and xt_expiry;
 * xt_relays; xt_perms): the daemon sets each from its configuration before
 * loading (xdp-max-bindings, xdp-max-allocations, xdp-max-permissions). A
 * full map degrades to userspace relaying. */
#define XT_DEF_BINDINGS 65536
#define XT_DEF_RELAYS 65536
#define XT_DEF_PERMS 262144
#define XT_MAX_IFACES 64

/* Pinned map names (LIBBPF_PIN_BY_NAME pins them as <pin dir>/<name>). */
#define XT_MAP_C2P "xt_c2p"
#define XT_MAP_P2C "xt_p2c"
#define XT_MAP_RELAYS "xt_relays"
#define XT_MAP_PERMS "xt_perms"
#define XT_MAP_STATS "xt_stats"
#define XT_MAP_TX_PORTS "xt_tx_ports"
#define XT_MAP_CFG "xt_cfg"
#define XT_MAP_EXPIRY "xt_expiry"

/* Client -> peer: a ChannelData packet arriving at a listener. */
struct xt_c2p_key {
	__be32 client[4];	/* client address (IPv4-mapped for IPv4) */
	__be32 listener[4];	/* our listening address it was sent to */
	__be16 client_port;
	__be16 listener_port;
	__be16 channel;		/* channel number, network order */
	__u16 pad;
};

/* The next hop of a binding's output, as bpf_fib_lookup last gave it. The
 * XDP program reuses it while it is fresh: same xt_cfg.fib_epoch (the
 * daemon moves it on every link, address, route and neighbour change it
 * hears of), younger than XT_NH_TTL_NS, same ingress device, and the frame
 * no longer than the one the lookup checked against the MTU. Written by
 * whichever CPU refreshes it: two refreshing at once write the same. */
struct xt_nh {
	__u64 stamp;		/* bpf_ktime_get_coarse_ns() of the lookup, 0: none */
	__u32 epoch;		/* xt_cfg.fib_epoch of the lookup */
	__u32 ifindex;		/* egress */
	__u32 in_ifindex;	/* ingress the lookup was made for */
	__u16 max_len;		/* IP length the lookup accepted */
	__u8 smac[6];
	__u8 dmac[6];
	__u16 pad;
	__u32 pad2;
};

/* A safety net only: the epoch voids a next hop on every change the daemon
 * hears of. Longer than a packetization interval (20 ms audio: a 10 ms TTL
 * had every packet of an audio flow look up again), short enough that a
 * change no daemon followed (none running) reaches the bindings soon. */
#define XT_NH_TTL_NS 1000000000ULL	/* 1 s */

/* The counters of a binding live in its values: the lookup that finds a
 * binding has brought them into the cache (a separate per-channel array
 * cost a cache miss a packet at 10 000 channels). Updated atomically; a
 * channel's packets normally meet one CPU (one flow, one queue). */
struct xt_c2p_val {
	__be32 relay[4];	/* relayed transport address: new source */
	__be32 peer[4];		/* peer address: new destination */
	__be16 relay_port;
	__be16 peer_port;
	__u32 flags;		/* enum xt_c2p_flags */
	__u64 packets;		/* relayed client -> peer (XDP) */
	__u64 bytes;		/*   application data bytes */
	struct xt_nh nh;	/* towards the peer; the daemon writes zeros */
	__u32 exp_slot;		/* the binding's expiry: xt_expiry[exp_slot] */
	__u32 pad;
};

enum xt_c2p_flags {
	/* The peer's IP is the relay's: it may be one of our relays
	 * (hairpin), so XDP looks it up in xt_relays; without the flag it
	 * does not (a miss costs a hash and a cache miss a packet). */
	XT_C2P_PEER_LOCAL = 1 << 0,
};

/* Peer -> client: a UDP datagram arriving at a relayed address. */
struct xt_p2c_key {
	__be32 peer[4];
	__be32 relay[4];
	__be16 peer_port;
	__be16 relay_port;
	__u32 pad;
};

struct xt_p2c_val {
	__be32 client[4];	/* new destination */
	__be32 listener[4];	/* new source */
	__be16 client_port;
	__be16 listener_port;
	__be16 channel;		/* channel number, network order */
	__u16 pad;
	__u64 packets;		/* relayed peer -> client (XDP) */
	__u64 bytes;		/*   application data bytes */
	struct xt_nh nh;	/* towards the client; the daemon writes zeros */
	__u32 exp_slot;		/* the same slot as its c2p twin's */
	__u32 pad2;
};

/*
 * Lifetimes the kernel enforces by itself (with no daemon running, relaying
 * stops when RFC 8656 says the channel or permission ends, never later):
 * a binding is live while bpf_ktime_get_coarse_ns() (CLOCK_MONOTONIC) is
 * below xt_expiry[exp_slot], the earliest end of its channel, its
 * permission and its allocation, in ns; an expired one is no binding (its
 * packets pass to the daemon). The expiry sits in an array of its own so
 * the daemon moves it (Refresh, CreatePermission, ChannelBind) with one
 * write that cannot race the counters in the binding's values. 0: expired.
 */

/* A binding's p2c key, from its c2p value (every binding is in both maps). */
static inline void xt_p2c_key_of(const struct xt_c2p_val *v, struct xt_p2c_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->peer, v->peer, sizeof(k->peer));
	__builtin_memcpy(k->relay, v->relay, sizeof(k->relay));
	k->peer_port = v->peer_port;
	k->relay_port = v->relay_port;
}

/* A live relayed transport address. Datagrams to one of these from a peer
 * with no permission are dropped in XDP (the daemon stays out of floods),
 * unless the relay is flagged XT_RELAY_PERMS_INCOMPLETE: a permission of
 * its did not fit xt_perms, so "not in the map" does not mean "none", and
 * such datagrams pass to the daemon, which knows. */
struct xt_relay_key {
	__be32 relay[4];
	__be16 relay_port;
	__u16 pad;
};

enum xt_relay_flags {
	XT_RELAY_PERMS_INCOMPLETE = 1 << 0,
};

struct xt_relay_val {
	__u32 flags;		/* enum xt_relay_flags */
};

/* A permission: (relayed address, peer IP). Ports do not matter (RFC 8656 §9). */
struct xt_perm_key {
	__be32 relay[4];
	__be32 peer[4];
	__be16 relay_port;
	__u16 pad;
};

/* Live while bpf_ktime_get_coarse_ns() < expires_ns (the earlier end of the
 * permission and its allocation); an expired permission counts as none. */
struct xt_perm_val {
	__u32 flags;		/* reserved, 0 */
	__u32 pad;
	__u64 expires_ns;
};

/* Global counters: a per-CPU array indexed by enum xt_counter. bytes is
 * the application data relayed (no headers, no padding), as the daemon
 * counts it: 0 for the counters of packets passed or dropped. */
struct xt_count {
	__u64 packets;
	__u64 bytes;
};

enum xt_counter {
	XT_CNT_C2P = 0,		/* client -> peer forwarded in XDP */
	XT_CNT_P2C,		/* peer -> client forwarded in XDP */
	XT_CNT_HAIRPIN,		/* client -> client (peer is one of our relays) */
	XT_CNT_PASS_NOT_OURS,	/* not for a listener or relay address: passed */
	XT_CNT_PASS_NO_BINDING,	/* ours but no channel binding: daemon handles */
	XT_CNT_PASS_UNUSUAL,	/* fragments, IP options, ext headers, STUN */
	XT_CNT_PASS_FIB,	/* route or neighbour unresolved: kernel resolves */
	XT_CNT_DROP_NO_PERM,	/* to a relay from a peer with no permission */
	XT_CNT_DROP_BAD_LEN,	/* ChannelData length disagrees with UDP length */
	XT_CNT_DROP_BAD_CSUM,	/* UDP checksum wrong */
	XT_CNT_DROP_ERROR,	/* adjust_head/tail or redirect failed */
	XT_CNT_MAX,
};

/* Single-entry array written by the daemon before attach. */
struct xt_cfg {
	__u32 magic;		/* XT_MAGIC */
	__u32 abi_version;	/* XT_ABI_VERSION */
	__u32 flags;		/* enum xt_cfg_flags */
	/* Device bpf_fib_lookup asks about (0: the ingress interface). The
	 * kernel answers only for a device with forwarding on; the daemon's
	 * lookup device has it, so the real interfaces need not. */
	__u32 fib_ifindex;
	/* Next hops cached in bindings (struct xt_nh) are good for this
	 * epoch only. Never 0, which a fresh xt_nh holds. */
	__u32 fib_epoch;
	__u32 pad;
};

enum xt_cfg_flags {
	XT_CFG_ENABLED = 1 << 0,	/* clear: everything passes (maintenance) */
	XT_CFG_VERIFY_CSUM = 1 << 1,	/* drop datagrams whose UDP checksum is wrong */
};

_Static_assert(sizeof(struct xt_c2p_key) == 40, "xt_c2p_key size");
_Static_assert(sizeof(struct xt_nh) == 40, "xt_nh size");
_Static_assert(sizeof(struct xt_c2p_val) == 104, "xt_c2p_val size");
_Static_assert(sizeof(struct xt_p2c_key) == 40, "xt_p2c_key size");
_Static_assert(sizeof(struct xt_p2c_val) == 104, "xt_p2c_val size");
_Static_assert(sizeof(struct xt_relay_key) == 20, "xt_relay_key size");
_Static_assert(sizeof(struct xt_relay_val) == 4, "xt_relay_val size");
_Static_assert(sizeof(struct xt_perm_key) == 36, "xt_perm_key size");
_Static_assert(sizeof(struct xt_perm_val) == 16, "xt_perm_val size");
_Static_assert(sizeof(struct xt_count) == 16, "xt_count size");
_Static_assert(sizeof(struct xt_cfg) == 24, "xt_cfg size");

#endif /* XTURN_KERN_USER_H */
