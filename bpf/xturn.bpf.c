// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * xturn's fast path: relays TURN ChannelData between clients and peers
 * without waking the daemon, using the bindings the daemon writes into the
 * maps below (contract: xturn_kern_user.h). Two programs, one forwarding
 * code (forward.h): xturn_xdp, and xturn_tc, a TC ingress program for
 * where XDP cannot deliver (the bottom of this file).
 *
 *   client -> listener, ChannelData of a bound channel:
 *       strip the header (and padding), send relay -> peer as plain UDP;
 *       if the peer is one of our own relays, straight to that relay's
 *       client as ChannelData (hairpin).
 *   peer -> relay, bound peer: prepend ChannelData, send listener -> client.
 *   peer -> relay, unbound: permitted peer -> pass (daemon sends a Data
 *       indication), else drop here so floods never reach the daemon.
 *   anything else: pass, untouched.
 *
 * Every rewrite builds fresh IP and UDP headers (the family may change).
 * The new UDP checksum is derived from the old one without reading the
 * data where the old one allows it (xt_data_sum).
 *
 * The next hop is looked up before the packet is touched: when the kernel
 * cannot give one (no neighbour yet, no route, MTU), the original packet
 * goes up the stack, the kernel resolves the neighbour and the daemon
 * relays it. A rewritten packet is never passed to the kernel. A binding
 * keeps the last answer (struct xt_nh) for up to 1 s, less when the
 * daemon hears of a link, address, route or neighbour change.
 * bpf_fib_lookup answers FWD_DISABLED unless forwarding is on for the device
 * it is given (net.ipv4.conf.IF.forwarding, net.ipv6.conf.IF.forwarding):
 * that is xt_cfg.fib_ifindex, a device of the daemon's with forwarding on,
 * so the host's interfaces need not route transit traffic. With 0 it is the
 * ingress device; without forwarding there everything still works, through
 * the daemon.
 *
 * VLAN: tagged frames (up to two tags) are parsed and forwarded only when
 * the next hop is out of the ingress device (XDP_TX, tags kept as they
 * were): the FIB result carries no VLAN information, so a frame for another
 * device or VLAN goes to the kernel instead.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xturn_kern_user.h"
#include "parsing.h"
#include "csum.h"

/* <sys/socket.h> is not usable with -target bpf. */
#define XT_AF_INET 2
#define XT_AF_INET6 10

#define XT_L2_MAX (ETH_HLEN + XT_VLAN_MAX_DEPTH * sizeof(struct xt_vlan_hdr))
#define XT_FRAME_MAX 4096		/* single-buffer XDP frames are smaller */
#define XT_CSUM_CHUNK 256		/* bpf_csum_diff: <= 512 on older kernels */
#define XT_IP_DF 0x4000
#define XT_IP_MF 0x2000
#define XT_IP_OFFSET 0x1fff
#define XT_STUN_COOKIE 0x2112A442

/* Client -> peer bindings: (client, listener, channel) -> (relay, peer). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_DEF_BINDINGS);
	__type(key, struct xt_c2p_key);
	__type(value, struct xt_c2p_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_c2p SEC(".maps");

/* Peer -> client bindings: (peer, relay) -> (client, listener, channel). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_DEF_BINDINGS);
	__type(key, struct xt_p2c_key);
	__type(value, struct xt_p2c_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_p2c SEC(".maps");

/* Live relayed transport addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_DEF_RELAYS);
	__type(key, struct xt_relay_key);
	__type(value, struct xt_relay_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_relays SEC(".maps");

/* Permissions: (relay, peer IP). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_DEF_PERMS);
	__type(key, struct xt_perm_key);
	__type(value, struct xt_perm_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_perms SEC(".maps");

/* Global counters, indexed by enum xt_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XT_CNT_MAX);
	__type(key, __u32);
	__type(value, struct xt_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_stats SEC(".maps");

/* Interfaces we may redirect to (ifindex -> ifindex). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XT_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_tx_ports SEC(".maps");

/* Binding expiries, CLOCK_MONOTONIC ns (xturn_kern_user.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XT_DEF_BINDINGS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_expiry SEC(".maps");

/* The daemon's switches (struct xt_cfg). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xt_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_cfg SEC(".maps");

/* The parsed input datagram. Addresses IPv4-mapped like the maps'. */
struct xt_pkt {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__be16 check;		/* UDP checksum as received */
	__u16 v4;
	__u32 l2;		/* Ethernet + VLAN bytes */
	__u32 l3;		/* IP header bytes */
	__u32 plen;		/* UDP payload bytes */
	__u32 len;		/* frame bytes */
	/* bpf_ktime_get_coarse_ns() once a packet, for every lifetime and
	 * next-hop age it meets (up to five reads for a hairpin before). */
	__u64 now;
};

/* What to send instead. */
struct xt_fwd {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__be16 channel;		/* ChannelData header to prepend, 0: none */
	__u16 pad;		/* input padding after the data */
	__u32 cd_in;		/* input ChannelData header as read, 0: none */
	__u32 data_off;		/* application data: offset in the input frame */
	__u32 dlen;		/*   and length */
	/* The bindings whose counters to bump (map values), NULL: none. */
	struct xt_c2p_val *c2p;
	struct xt_p2c_val *p2c;
	int verdict;		/* set by xt_forward */
};

static __always_inline int xt_is_v4(const __be32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

static __always_inline void xt_addr_copy(__be32 dst[4], const __be32 src[4])
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

static __always_inline void xt_count(__u32 idx, __u64 bytes)
{
	struct xt_count *c = bpf_map_lookup_elem(&xt_stats, &idx);

	if (c) {	/* per-CPU value: no atomics needed */
		c->packets++;
		c->bytes += bytes;
	}
}

/* The kernel's side of TURN lifetimes: live bindings and permissions only. */
static __always_inline int xt_live(__u32 slot, __u64 now)
{
	__u64 *exp = bpf_map_lookup_elem(&xt_expiry, &slot);

	return exp && now < *exp;
}

static __always_inline int xt_perm_live(const struct xt_perm_key *k, __u64 now)
{
	struct xt_perm_val *v = bpf_map_lookup_elem(&xt_perms, k);

	return v && now < v->expires_ns;
}

/* From a peer to one of our relays: its binding first (the common case:
 * a live p2c binding means a live relay, which goes with its bindings),
 * then the relay and the permission. Not a relay of ours: PASS_NOT_OURS. */
static __always_inline int xt_from_peer(const struct xt_pkt *p, struct xt_fwd *f)
{
	struct xt_p2c_key pk = {};
	struct xt_perm_key mk = {};
	struct xt_relay_key rk = {};
	struct xt_relay_val *rv;
	struct xt_p2c_val *pv;

	xt_addr_copy(pk.peer, p->saddr);
	xt_addr_copy(pk.relay, p->daddr);
	pk.peer_port = p->sport;
	pk.relay_port = p->dport;
	pv = bpf_map_lookup_elem(&xt_p2c, &pk);
	/* An expired channel may leave a live permission: Data indications. */
	if (!pv || !xt_live(pv->exp_slot, p->now)) {
		xt_addr_copy(rk.relay, p->daddr);
		rk.relay_port = p->dport;
		rv = bpf_map_lookup_elem(&xt_relays, &rk);
		if (!rv)
			return XT_CNT_PASS_NOT_OURS;
		xt_addr_copy(mk.relay, p->daddr);
		xt_addr_copy(mk.peer, p->saddr);
		mk.relay_port = p->dport;
		return xt_perm_live(&mk, p->now) || (rv->flags & XT_RELAY_PERMS_INCOMPLETE) ?
			XT_CNT_PASS_NO_BINDING : XT_CNT_DROP_NO_PERM;
	}
	xt_addr_copy(f->saddr, pv->listener);
	xt_addr_copy(f->daddr, pv->client);
	f->sport = pv->listener_port;
	f->dport = pv->client_port;
	f->channel = pv->channel;
	f->p2c = pv;
	f->data_off = p->l2 + p->l3 + sizeof(struct udphdr);
	f->dlen = p->plen;
	return XT_CNT_P2C;
}

/* ChannelData from a client; the peer may be one of our relays (hairpin). */
static __always_inline int xt_from_client(const struct xt_pkt *p, struct xt_fwd *f,
					  __be16 channel, __u16 cdlen)
{
	struct xt_c2p_key ck = {};
	struct xt_relay_key rk = {};
	struct xt_p2c_key pk = {};
	struct xt_perm_key mk = {};
	struct xt_c2p_val *cv;
	struct xt_p2c_val *pv;

	xt_addr_copy(ck.client, p->saddr);
	xt_addr_copy(ck.listener, p->daddr);
	ck.client_port = p->sport;
	ck.listener_port = p->dport;
	ck.channel = channel;
	cv = bpf_map_lookup_elem(&xt_c2p, &ck);
	if (!cv || !xt_live(cv->exp_slot, p->now))
		return XT_CNT_PASS_NO_BINDING;
	/* RFC 8656 §12.5: up to 3 bytes of padding may follow the data. */
	if (p->plen < 4 + (__u32)cdlen || p->plen - 4 - cdlen > 3)
		return XT_CNT_DROP_BAD_LEN;
	f->data_off = p->l2 + p->l3 + sizeof(struct udphdr) + 4;
	f->dlen = cdlen;
	f->pad = p->plen - 4 - cdlen;
	f->c2p = cv;

	xt_addr_copy(rk.relay, cv->peer);
	rk.relay_port = cv->peer_port;
	if (!(cv->flags & XT_C2P_PEER_LOCAL) || !bpf_map_lookup_elem(&xt_relays, &rk)) {
		xt_addr_copy(f->saddr, cv->relay);
		xt_addr_copy(f->daddr, cv->peer);
		f->sport = cv->relay_port;
		f->dport = cv->peer_port;
		return XT_CNT_C2P;
	}

	/* Hairpin: our relay cv->relay sends to our relay cv->peer, which
	 * must have a binding and a permission for it. */
	xt_addr_copy(pk.peer, cv->relay);
	xt_addr_copy(pk.relay, cv->peer);
	pk.peer_port = cv->relay_port;
	pk.relay_port = cv->peer_port;
	xt_addr_copy(mk.relay, cv->peer);
	xt_addr_copy(mk.peer, cv->relay);
	mk.relay_port = cv->peer_port;
	pv = bpf_map_lookup_elem(&xt_p2c, &pk);
	if (!pv || !xt_live(pv->exp_slot, p->now) || !xt_perm_live(&mk, p->now))
		return XT_CNT_PASS_NO_BINDING;
	xt_addr_copy(f->saddr, pv->listener);
	xt_addr_copy(f->daddr, pv->client);
	f->sport = pv->listener_port;
	f->dport = pv->client_port;
	f->channel = pv->channel;
	f->p2c = pv;
	return XT_CNT_HAIRPIN;
}

/* Writes the Ethernet type of the (last) tag of a saved L2 header.
 * Verifier workaround: constant offsets on the stack buffer. */
static __always_inline void xt_set_ethertype(__u8 *l2hdr, __u32 l2, __be16 proto)
{
	if (l2 == ETH_HLEN)
		__builtin_memcpy(l2hdr + ETH_HLEN - 2, &proto, 2);
	else if (l2 == ETH_HLEN + 4)
		__builtin_memcpy(l2hdr + ETH_HLEN + 2, &proto, 2);
	else
		__builtin_memcpy(l2hdr + ETH_HLEN + 6, &proto, 2);
}

/* The binding whose next hop this output uses: the p2c one towards a
 * client (p2c, hairpin), the c2p one towards a peer. */
static __always_inline struct xt_nh *xt_nh_of(const struct xt_fwd *f)
{
	if (f->p2c)
		return &f->p2c->nh;
	return f->c2p ? &f->c2p->nh : NULL;
}

/* A fresh cached next hop into fib (ifindex, MACs): 1, else 0. */
static __always_inline int xt_nh_get(__u32 in_ifindex, const struct xt_pkt *p,
				     const struct xt_fwd *f, const struct xt_cfg *cfg,
				     struct bpf_fib_lookup *fib)
{
	struct xt_nh *nh = xt_nh_of(f);
	__u64 stamp;

	if (!nh)
		return 0;
	stamp = nh->stamp;
	if (!stamp || p->now - stamp >= XT_NH_TTL_NS ||
	    nh->epoch != cfg->fib_epoch || nh->in_ifindex != in_ifindex ||
	    fib->tot_len > nh->max_len)
		return 0;
	fib->ifindex = nh->ifindex;
	__builtin_memcpy(fib->smac, nh->smac, ETH_ALEN);
	__builtin_memcpy(fib->dmac, nh->dmac, ETH_ALEN);
	return 1;
}

/* Caches a successful lookup. Readers meanwhile see stamp 0 and look up
 * themselves; the exchange publishes the rest before the new stamp. */
static __always_inline void xt_nh_put(__u32 in_ifindex, const struct xt_pkt *p,
				      const struct xt_fwd *f, const struct xt_cfg *cfg,
				      const struct bpf_fib_lookup *fib, __u16 len)
{
	struct xt_nh *nh = xt_nh_of(f);

	if (!nh)
		return;
	nh->stamp = 0;
	nh->epoch = cfg->fib_epoch;
	nh->ifindex = fib->ifindex;
	nh->in_ifindex = in_ifindex;
	nh->max_len = len;	/* the lookup may put the MTU in tot_len */
	__builtin_memcpy(nh->smac, fib->smac, ETH_ALEN);
	__builtin_memcpy(nh->dmac, fib->dmac, ETH_ALEN);
	__sync_lock_test_and_set(&nh->stamp, p->now ?: 1);
}

/* ---- XDP ------------------------------------------------------------------ */

#define XT_CTX struct xdp_md
#define XT_SYM(name) name##_xdp
#define XT_PASS XDP_PASS
#define XT_DROP XDP_DROP
#define XT_PARTIAL_OK 1	/* XDP_TX and redirects build a new skb */
#define XT_VLAN_TX 1

static __always_inline int xt_resize_xdp(struct xdp_md *ctx, const struct xt_pkt *p, int head,
					 __u32 want, int v4, __u32 n, __u32 *hsum)
{
	__u32 have = p->len - head;

	if (bpf_xdp_adjust_head(ctx, head))
		return -1;
	if (have > want && bpf_xdp_adjust_tail(ctx, (int)want - (int)have))
		return -1;
	return 0;
}

static __always_inline void xt_rewritten_xdp(struct xdp_md *ctx, __u32 n, __u32 hsum)
{
}

static __always_inline int xt_send_xdp(struct xdp_md *ctx, __u32 ifindex)
{
	int v;

	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	/* Lower bits of flags: the verdict if the entry vanished since the
	 * lookup; the packet is rewritten, so drop. */
	v = bpf_redirect_map(&xt_tx_ports, ifindex, XDP_DROP);
	return v == XDP_REDIRECT ? v : XDP_DROP;
}

#include "forward.h"

#undef XT_CTX
#undef XT_SYM
#undef XT_PASS
#undef XT_DROP
#undef XT_PARTIAL_OK
#undef XT_VLAN_TX

/* ---- TC ------------------------------------------------------------------- */

#define XT_CTX struct __sk_buff
#define XT_SYM(name) name##_tc
#define XT_PASS TC_ACT_OK
#define XT_DROP TC_ACT_SHOT
/* A CHECKSUM_PARTIAL skb (a local socket's, over veth) keeps csum_start,
 * which no helper moves: after the headers move, the device would fill in
 * the checksum at the wrong place. The daemon relays those. Datagrams from
 * other hosts carry full checksums. */
#define XT_PARTIAL_OK 0
/* A tag on a TC skb is mostly in its metadata (vlan_present), which the
 * rewrite does not keep: tagged frames go to the kernel. */
#define XT_VLAN_TX 0

/* The folded sum of the n header bytes after Ethernet, plus seed.
 * Verifier workaround: one constant size per header layout. */
static __always_inline __s64 xt_hdr_sum_tc(struct __sk_buff *skb, __u32 n, __u32 seed)
{
	void *data_end = (void *)(long)skb->data_end;
	__u8 *h = (void *)(long)skb->data + ETH_HLEN;

#define XT_HDR_SUM(len)                                                   \
	if (n == (len))                                                   \
		return (void *)(h + (len)) > data_end ? -1 :              \
		       bpf_csum_diff(NULL, 0, (void *)h, (len), seed)
	XT_HDR_SUM(sizeof(struct iphdr) + sizeof(struct udphdr));
	XT_HDR_SUM(sizeof(struct iphdr) + sizeof(struct udphdr) + 4);
	XT_HDR_SUM(sizeof(struct ipv6hdr) + sizeof(struct udphdr));
	XT_HDR_SUM(sizeof(struct ipv6hdr) + sizeof(struct udphdr) + 4);
#undef XT_HDR_SUM
	return -1;
}

/* The family changes with bpf_skb_change_proto (20 bytes after Ethernet),
 * the ChannelData header comes and goes with bpf_skb_adjust_room after
 * Ethernet, the padding with bpf_skb_change_tail: each keeps the skb's
 * CHECKSUM_COMPLETE sum right for the bytes it adds or removes (the
 * trim turns it into CHECKSUM_NONE). */
static __always_inline int xt_resize_tc(struct __sk_buff *skb, const struct xt_pkt *p, int head,
					__u32 want, int v4, __u32 n, __u32 *hsum)
{
	int room = -head;
	__s64 s;

	*hsum = 0;
	if (v4 != (int)p->v4) {
		if (bpf_skb_change_proto(skb, bpf_htons(v4 ? ETH_P_IP : ETH_P_IPV6), 0))
			return -1;
		/* It made room for the new IP header. */
		room -= (v4 ? (int)sizeof(struct iphdr) : (int)sizeof(struct ipv6hdr)) -
			(int)p->l3;
	}
	if (room && bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, 0))
		return -1;
	if (skb->len > want && bpf_skb_change_tail(skb, want, 0))
		return -1;
	/* Adding 0 to the sum answers whether there is one: only a
	 * CHECKSUM_COMPLETE skb has it, the others need no header sums. */
	if (bpf_csum_update(skb, 0) < 0)
		return 0;
	/* The sum of the header bytes about to be overwritten: never 0, the
	 * IP version is in them. */
	s = xt_hdr_sum_tc(skb, n, 0);
	if (s < 0)
		return -1;
	*hsum = (__u32)s;
	return 0;
}

/* A CHECKSUM_COMPLETE skb's sum follows the header rewrite (hsum 0: the
 * skb has none). */
static __always_inline void xt_rewritten_tc(struct __sk_buff *skb, __u32 n, __u32 hsum)
{
	__s64 d;

	if (!hsum)
		return;
	d = xt_hdr_sum_tc(skb, n, ~hsum);	/* new - old */
	if (d >= 0)
		bpf_csum_update(skb, (__u32)d);
}

static __always_inline int xt_send_tc(struct __sk_buff *skb, __u32 ifindex)
{
	/* Out of ifindex (the ingress device too: TC's XDP_TX). */
	return bpf_redirect(ifindex, 0) == TC_ACT_REDIRECT ? TC_ACT_REDIRECT : TC_ACT_SHOT;
}

#include "forward.h"

/* ---- the programs ----------------------------------------------------------- */

SEC("xdp")
int xturn_xdp(struct xdp_md *ctx)
{
	/* Verifier workaround: pointer difference as a bounded scalar. */
	__u32 len = (__u32)((long)ctx->data_end - (long)ctx->data);

	return xt_run_xdp(ctx, len);
}

/* The same forwarding as a TC ingress program (cls_bpf, direct action), for
 * where XDP cannot deliver: a veth whose other end has no XDP program (a
 * container's), a driver with generic XDP only. */
SEC("tc")
int xturn_tc(struct __sk_buff *skb)
{
	/* A GRO train is many datagrams in one skb, a tag in metadata is not
	 * kept by the rewrite: the kernel's. A datagram not all in the linear
	 * part is pulled in (if that fails, the check below passes it). */
	int unusual = skb->gso_size || skb->vlan_present;

	if (!unusual && skb->len <= XT_FRAME_MAX &&
	    (long)skb->data_end - (long)skb->data < skb->len)
		bpf_skb_pull_data(skb, skb->len);
	unusual |= (long)skb->data_end - (long)skb->data != skb->len;
	/* A length past XT_FRAME_MAX is what xt_run passes as unusual.
	 * Verifier workaround: pointer difference as a bounded scalar. */
	return xt_run_tc(skb, unusual ? XT_FRAME_MAX + 1 :
			      (__u32)((long)skb->data_end - (long)skb->data));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
