// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * xturn's XDP fast path: relays TURN ChannelData between clients and peers
 * without waking the daemon, using the bindings the daemon writes into the
 * maps below (contract: xturn_kern_user.h).
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
 * keeps the last answer (struct xt_nh) for up to 10 ms, less when the
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
	__uint(max_entries, XT_MAX_CHANNELS);
	__type(key, struct xt_c2p_key);
	__type(value, struct xt_c2p_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_c2p SEC(".maps");

/* Peer -> client bindings: (peer, relay) -> (client, listener, channel). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_MAX_CHANNELS);
	__type(key, struct xt_p2c_key);
	__type(value, struct xt_p2c_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_p2c SEC(".maps");

/* Live relayed transport addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_MAX_RELAYS);
	__type(key, struct xt_relay_key);
	__type(value, struct xt_relay_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xt_relays SEC(".maps");

/* Permissions: (relay, peer IP). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_MAX_PERMS);
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
	__uint(max_entries, XT_MAX_CHANNELS);
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

/*
 * Folded ones' complement sum of len bytes at off in the frame, as if the
 * region started at an even offset; -1 if it is not inside the frame.
 *
 * Verifier workaround: a global (non-static) function is verified once on
 * its own instead of once per path through the caller, which keeps these
 * loops from multiplying the caller's state count. Chunks go through
 * bpf_csum_diff (constant size, so the verifier can bound the access),
 * then 4-byte words, then up to three bytes.
 */
__noinline int xt_csum_region(struct xdp_md *ctx, __u32 offset, __u32 length)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 off = offset, len = length, sum = 0;
	union {
		__u32 w;
		__u8 b[4];
	} tail = { .w = 0 };
	__u8 *p;
	int i;

	/* Verifier workaround: each pointer is built from an offset checked
	 * right before, so the verifier sees it bounded and accepts the range
	 * check that follows (an unbounded offset voids the check). */
	for (i = 0; i < XT_FRAME_MAX / XT_CSUM_CHUNK && len >= XT_CSUM_CHUNK; i++) {
		__s64 r;

		if (off > XT_FRAME_MAX)
			return -1;
		p = data + off;
		if ((void *)(p + XT_CSUM_CHUNK) > data_end)
			return -1;
		r = bpf_csum_diff(NULL, 0, (void *)p, XT_CSUM_CHUNK, 0);
		if (r < 0)
			return -1;
		sum += (__u64)r;
		off += XT_CSUM_CHUNK;
		len -= XT_CSUM_CHUNK;
	}
	for (i = 0; i < XT_CSUM_CHUNK / 4 && len >= 4; i++) {
		if (off > XT_FRAME_MAX)
			return -1;
		p = data + off;
		if ((void *)(p + 4) > data_end)
			return -1;
		__builtin_memcpy(&tail.w, p, 4);	/* may be unaligned */
		sum += tail.w;
		off += 4;
		len -= 4;
	}
	if (len >= 4 || off > XT_FRAME_MAX)
		return -1;
	tail.w = 0;
	p = data + off;
	if (len >= 1) {
		if ((void *)(p + 1) > data_end)
			return -1;
		tail.b[0] = p[0];
	}
	if (len >= 2) {
		if ((void *)(p + 2) > data_end)
			return -1;
		tail.b[1] = p[1];
	}
	if (len >= 3) {
		if ((void *)(p + 3) > data_end)
			return -1;
		tail.b[2] = p[2];
	}
	return csum_fold64(sum + tail.w);
}

/* Parses Ethernet/VLAN, IPv4 or IPv6 and UDP into *p (zeroed by the
 * caller, so IPv4 addresses come out IPv4-mapped). Returns 0, or the
 * counter to pass the frame with. */
static __always_inline int xt_parse(struct xdp_md *ctx, struct xt_pkt *p, __u8 **payload)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xt_cursor nh = { .pos = data };
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	__u32 ip_payload;
	int proto, plen;

	proto = xt_parse_eth(&nh, data_end);
	if (proto < 0)
		return XT_CNT_PASS_UNUSUAL;	/* runt */
	/* Verifier workaround: packet pointer minus packet pointer is an
	 * unbounded scalar (allowed to root); bound it again. */
	p->l2 = (__u32)((long)nh.pos - (long)data);
	if (p->l2 > XT_L2_MAX)
		return XT_CNT_PASS_UNUSUAL;

	if (proto == bpf_htons(ETH_P_IP)) {
		if (xt_parse_ip4(&nh, data_end, &iph) < 0)
			return XT_CNT_PASS_UNUSUAL;
		if (iph->version != 4 || iph->ihl != 5 ||
		    (iph->frag_off & bpf_htons(XT_IP_MF | XT_IP_OFFSET)))
			return XT_CNT_PASS_UNUSUAL;
		/* A corrupted header is the kernel's to drop (and count): the
		 * rewrite would give it a fresh checksum. Found by fuzz_xdp. */
		if (csum_fold64((__u64)((const __u32 *)iph)[0] + ((const __u32 *)iph)[1] +
				((const __u32 *)iph)[2] + ((const __u32 *)iph)[3] +
				((const __u32 *)iph)[4]) != 0xffff)
			return XT_CNT_PASS_UNUSUAL;
		if (iph->protocol != IPPROTO_UDP)
			return XT_CNT_PASS_NOT_OURS;
		if (bpf_ntohs(iph->tot_len) < sizeof(*iph))
			return XT_CNT_PASS_UNUSUAL;
		ip_payload = bpf_ntohs(iph->tot_len) - sizeof(*iph);
		p->v4 = 1;
		p->l3 = sizeof(*iph);
		p->saddr[2] = p->daddr[2] = bpf_htonl(0xffff);
		p->saddr[3] = iph->saddr;
		p->daddr[3] = iph->daddr;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = xt_parse_ip6(&nh, data_end, &ip6h);
		if (proto < 0 || ip6h->version != 6 || xt_ip6_is_ext(proto))
			return XT_CNT_PASS_UNUSUAL;
		if (proto != IPPROTO_UDP)
			return XT_CNT_PASS_NOT_OURS;
		ip_payload = bpf_ntohs(ip6h->payload_len);
		p->l3 = sizeof(*ip6h);
		__builtin_memcpy(p->saddr, &ip6h->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6h->daddr, 16);
	} else {
		return XT_CNT_PASS_NOT_OURS;
	}

	plen = xt_parse_udp(&nh, data_end, &udph);
	if (plen < 0)
		return XT_CNT_PASS_UNUSUAL;
	/* The UDP and IP lengths must agree and fit in the frame (a frame may
	 * be longer: Ethernet padding). */
	if ((__u32)plen + sizeof(*udph) != ip_payload ||
	    p->l2 + p->l3 + ip_payload > p->len)
		return XT_CNT_PASS_UNUSUAL;
	p->plen = plen;
	p->sport = udph->source;
	p->dport = udph->dest;
	p->check = udph->check;
	*payload = nh.pos;
	return 0;
}

/* The kernel's side of TURN lifetimes: live bindings and permissions only. */
static __always_inline int xt_live(__u32 slot)
{
	__u64 *exp = bpf_map_lookup_elem(&xt_expiry, &slot);

	return exp && bpf_ktime_get_coarse_ns() < *exp;
}

static __always_inline int xt_perm_live(const struct xt_perm_key *k)
{
	struct xt_perm_val *v = bpf_map_lookup_elem(&xt_perms, k);

	return v && bpf_ktime_get_coarse_ns() < v->expires_ns;
}

/* From a peer to one of our relays. */
static __always_inline int xt_from_peer(const struct xt_pkt *p, struct xt_fwd *f,
					const struct xt_relay_val *rv)
{
	struct xt_p2c_key pk = {};
	struct xt_perm_key mk = {};
	struct xt_p2c_val *pv;

	xt_addr_copy(pk.peer, p->saddr);
	xt_addr_copy(pk.relay, p->daddr);
	pk.peer_port = p->sport;
	pk.relay_port = p->dport;
	pv = bpf_map_lookup_elem(&xt_p2c, &pk);
	/* An expired channel may leave a live permission: Data indications. */
	if (!pv || !xt_live(pv->exp_slot)) {
		xt_addr_copy(mk.relay, p->daddr);
		xt_addr_copy(mk.peer, p->saddr);
		mk.relay_port = p->dport;
		return xt_perm_live(&mk) || (rv->flags & XT_RELAY_PERMS_INCOMPLETE) ?
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
	if (!cv || !xt_live(cv->exp_slot))
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
	if (!pv || !xt_live(pv->exp_slot) || !xt_perm_live(&mk))
		return XT_CNT_PASS_NO_BINDING;
	xt_addr_copy(f->saddr, pv->listener);
	xt_addr_copy(f->daddr, pv->client);
	f->sport = pv->listener_port;
	f->dport = pv->client_port;
	f->channel = pv->channel;
	f->p2c = pv;
	return XT_CNT_HAIRPIN;
}

/* Decides what the datagram is. Returns the counter: C2P, P2C or HAIRPIN
 * with *f filled to forward, else a PASS_ or DROP_ counter.
 * Not inlined: its map keys then live in a stack frame of their own, which
 * keeps the program's stack under the 512-byte limit. */
static __noinline int xt_classify(struct xdp_md *ctx, struct xt_pkt *p, struct xt_fwd *f)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct xt_relay_key rk = {};
	struct xt_relay_val *rv;
	__u8 *pl = NULL;
	int cd;
	int rc;

	rc = xt_parse(ctx, p, &pl);
	if (rc)
		return rc;

	/* ChannelData: channel 0x4000-0x7FFF (CHANNEL_MIN..MAX in stun.h:
	 * RFC 5766's range, which RFC 8656's 0x4000-0x4FFF is part of).
	 * Its binding is looked up first: that is the common case, and no
	 * binding has a relay as its listener, so a peer's datagram that
	 * happens to look like ChannelData misses and is handled below. */
	cd = (void *)(pl + 4) <= data_end && p->plen >= 4 && (pl[0] & 0xc0) == 0x40;
	if (cd) {
		__be16 channel;

		__builtin_memcpy(&f->cd_in, pl, 4);	/* may be unaligned */
		__builtin_memcpy(&channel, pl, 2);
		rc = xt_from_client(p, f, channel, (__u16)((pl[2] << 8) | pl[3]));
		if (rc != XT_CNT_PASS_NO_BINDING)
			return rc;
		f->cd_in = 0;	/* maybe a peer's data: no header to verify */
	}

	xt_addr_copy(rk.relay, p->daddr);
	rk.relay_port = p->dport;
	rv = bpf_map_lookup_elem(&xt_relays, &rk);
	if (rv)
		return xt_from_peer(p, f, rv);
	if (cd)
		return XT_CNT_PASS_NO_BINDING;
	if ((void *)(pl + 4) > data_end || p->plen < 4)
		return XT_CNT_PASS_NOT_OURS;
	/* STUN (first two bits 0, magic cookie): the daemon's. */
	if ((void *)(pl + 8) <= data_end && p->plen >= 20 && (pl[0] & 0xc0) == 0 &&
	    pl[4] == 0x21 && pl[5] == 0x12 && pl[6] == 0xa4 && pl[7] == 0x42)
		return XT_CNT_PASS_UNUSUAL;
	return XT_CNT_PASS_NOT_OURS;
}

/*
 * The folded sum of the data to relay (f->data_off, f->dlen), as if it
 * started at an even offset; XT_CSUM_BAD if XT_CFG_VERIFY_CSUM is set and
 * the input checksum is wrong, XT_CSUM_ERR if the data is not in the frame.
 *
 * With a full input checksum the data is not read: its sum is the input's
 * (~check) minus everything else the checksum covers (RFC 1624). A
 * corrupted datagram then leaves with a checksum wrong by as much, and its
 * receiver drops it, as the kernel would have here; a relay that summed
 * the data instead would vouch for the corruption. A CHECKSUM_PARTIAL
 * field (the folded pseudo-header sum: a local socket over veth), a zero
 * one (IPv4 "none") and verification need the data summed.
 */
#define XT_CSUM_ERR (-1)
#define XT_CSUM_BAD (-2)
static __always_inline int xt_data_sum(struct xdp_md *ctx, const struct xt_pkt *p,
				       const struct xt_fwd *f, const struct xt_cfg *cfg)
{
	__u64 pseudo = csum_pseudo(p->saddr, p->daddr, p->v4, p->plen + sizeof(struct udphdr));
	__be16 ulen = bpf_htons((__u16)(p->plen + sizeof(struct udphdr)));
	int partial = csum_norm(p->check) == csum_norm(csum_fold64(pseudo));
	int verify = cfg->flags & XT_CFG_VERIFY_CSUM;
	int dsum, pad = 0;

	if (f->pad) {	/* up to 3 bytes, covered by the input checksum */
		pad = xt_csum_region(ctx, f->data_off + f->dlen, f->pad);
		if (pad < 0)
			return XT_CSUM_ERR;
		if (f->dlen & 1)
			pad = csum_swap((__u16)pad);
	}
	if (p->check && !partial && !verify)
		return csum_fold64((__u64)(__u16)~p->check + csum_neg(csum_fold64(pseudo)) +
				   csum_neg(p->sport) + csum_neg(p->dport) + csum_neg(ulen) +
				   csum_neg(csum_fold64(f->cd_in)) + csum_neg((__u16)pad));

	dsum = xt_csum_region(ctx, f->data_off, f->dlen);
	if (dsum < 0)
		return XT_CSUM_ERR;
	if (!verify || partial)
		return dsum;
	if (!p->check)	/* "no checksum": IPv4 only */
		return p->v4 ? dsum : XT_CSUM_BAD;
	if (csum_norm(csum_fold64(pseudo + p->sport + p->dport + ulen + p->check +
				  (__u16)dsum + f->cd_in + (__u16)pad)))
		return XT_CSUM_BAD;
	return dsum;
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
static __always_inline int xt_nh_get(struct xdp_md *ctx, const struct xt_fwd *f,
				     const struct xt_cfg *cfg, struct bpf_fib_lookup *fib)
{
	struct xt_nh *nh = xt_nh_of(f);
	__u64 stamp;

	if (!nh)
		return 0;
	stamp = nh->stamp;
	if (!stamp || bpf_ktime_get_coarse_ns() - stamp >= XT_NH_TTL_NS ||
	    nh->epoch != cfg->fib_epoch || nh->in_ifindex != ctx->ingress_ifindex ||
	    fib->tot_len > nh->max_len)
		return 0;
	fib->ifindex = nh->ifindex;
	__builtin_memcpy(fib->smac, nh->smac, ETH_ALEN);
	__builtin_memcpy(fib->dmac, nh->dmac, ETH_ALEN);
	return 1;
}

/* Caches a successful lookup. Readers meanwhile see stamp 0 and look up
 * themselves; the exchange publishes the rest before the new stamp. */
static __always_inline void xt_nh_put(struct xdp_md *ctx, const struct xt_fwd *f,
				      const struct xt_cfg *cfg, const struct bpf_fib_lookup *fib,
				      __u16 len)
{
	struct xt_nh *nh = xt_nh_of(f);

	if (!nh)
		return;
	nh->stamp = 0;
	nh->epoch = cfg->fib_epoch;
	nh->ifindex = fib->ifindex;
	nh->in_ifindex = ctx->ingress_ifindex;
	nh->max_len = len;	/* the lookup may put the MTU in tot_len */
	__builtin_memcpy(nh->smac, fib->smac, ETH_ALEN);
	__builtin_memcpy(nh->dmac, fib->dmac, ETH_ALEN);
	__sync_lock_test_and_set(&nh->stamp, bpf_ktime_get_coarse_ns() ?: 1);
}

/*
 * Sends the datagram described by *f, a cnt (C2P, P2C, HAIRPIN) one.
 * Returns the counter to bump (cnt on success) and sets f->verdict. Nothing
 * is modified before every check that could pass the packet to the kernel
 * has succeeded. Not inlined, like xt_classify, for the stack limit: the
 * two frames are never live at the same time.
 */
static __noinline int xt_forward(struct xdp_md *ctx, const struct xt_pkt *p,
				 struct xt_fwd *f, int cnt, const struct xt_cfg *cfg)
{
	struct bpf_fib_lookup fib = {};
	__u8 l2hdr[XT_L2_MAX];
	struct udphdr *udp;
	__u32 l2 = p->l2, l3, cd, ulen, want, have;
	void *data, *data_end;
	int v4, dsum, head, rc;
	__u64 sum;

	f->verdict = XDP_PASS;
	v4 = xt_is_v4(f->daddr);
	if (v4 != xt_is_v4(f->saddr))
		return XT_CNT_PASS_UNUSUAL;	/* daemon bug: mixed families */
	l3 = v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	cd = f->channel ? 4 : 0;
	/* Verifier workaround (and sanity): bounded lengths. */
	if (f->dlen > XT_FRAME_MAX || l2 > XT_L2_MAX)
		return XT_CNT_PASS_UNUSUAL;
	ulen = sizeof(struct udphdr) + cd + f->dlen;

	fib.tot_len = l3 + ulen;
	if (!xt_nh_get(ctx, f, cfg, &fib)) {
		fib.family = v4 ? XT_AF_INET : XT_AF_INET6;
		fib.l4_protocol = IPPROTO_UDP;
		fib.sport = f->sport;
		fib.dport = f->dport;
		/* The device whose forwarding switch the kernel checks (see
		 * the top); the egress it returns is compared with the
		 * ingress below. */
		fib.ifindex = cfg->fib_ifindex ?: ctx->ingress_ifindex;
		if (v4) {
			fib.ipv4_src = f->saddr[3];
			fib.ipv4_dst = f->daddr[3];
		} else {
			xt_addr_copy(fib.ipv6_src, f->saddr);
			xt_addr_copy(fib.ipv6_dst, f->daddr);
		}
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return XT_CNT_PASS_FIB;
		xt_nh_put(ctx, f, cfg, &fib, (__u16)(l3 + ulen));
	}
	if (fib.ifindex != ctx->ingress_ifindex) {
		if (l2 != ETH_HLEN)
			return XT_CNT_PASS_UNUSUAL;	/* VLAN: see the top */
		if (!bpf_map_lookup_elem(&xt_tx_ports, &fib.ifindex))
			return XT_CNT_PASS_FIB;
	}

	dsum = xt_data_sum(ctx, p, f, cfg);
	if (dsum == XT_CSUM_ERR)
		return XT_CNT_PASS_UNUSUAL;
	if (dsum == XT_CSUM_BAD) {
		f->verdict = XDP_DROP;
		return XT_CNT_DROP_BAD_CSUM;
	}

	/* From here on the packet changes: every failure drops it. */
	f->verdict = XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + XT_L2_MAX > data_end)	/* frames hold >= 42 bytes */
		return XT_CNT_DROP_ERROR;
	__builtin_memcpy(l2hdr, data, XT_L2_MAX);

	head = (int)f->data_off - (int)(l2 + l3 + sizeof(struct udphdr) + cd);
	if (bpf_xdp_adjust_head(ctx, head))
		return XT_CNT_DROP_ERROR;
	want = l2 + l3 + ulen;
	have = p->len - head;
	if (have > want && bpf_xdp_adjust_tail(ctx, (int)want - (int)have))
		return XT_CNT_DROP_ERROR;

	/* Headers are written straight into the frame, field by field: built
	 * on the stack and copied, the copy's wide loads of just-written
	 * narrow fields stalled on store forwarding.
	 * Verifier workaround: adjust_head/tail invalidate packet pointers;
	 * reload and re-check before every write. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + XT_L2_MAX > data_end)
		return XT_CNT_DROP_ERROR;
	__builtin_memcpy(data, l2hdr, XT_L2_MAX);	/* VLAN tags as they were */
	__builtin_memcpy(data, fib.dmac, ETH_ALEN);
	__builtin_memcpy(data + ETH_ALEN, fib.smac, ETH_ALEN);
	xt_set_ethertype(data, l2, bpf_htons(v4 ? ETH_P_IP : ETH_P_IPV6));
	data += l2;

	sum = csum_pseudo(f->saddr, f->daddr, v4, ulen) + f->sport + f->dport +
	      bpf_htons((__u16)ulen) + (__u16)dsum;
	if (cd)
		sum += f->channel + bpf_htons((__u16)f->dlen);
	if (v4) {
		struct iphdr *ip = data;
		__be16 tot_len = bpf_htons((__u16)(l3 + ulen));

		udp = data + sizeof(*ip);
		if ((void *)(udp + 1) > data_end)
			return XT_CNT_DROP_ERROR;
		*(__u8 *)ip = 0x45;	/* version 4, 5 words */
		ip->tos = 0;
		ip->tot_len = tot_len;
		ip->id = 0;
		ip->frag_off = bpf_htons(XT_IP_DF);
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->saddr = f->saddr[3];
		ip->daddr = f->daddr[3];
		/* The header's sum from the values, not from memory. */
		ip->check = (__u16)~csum_fold64((__u64)f->saddr[3] + f->daddr[3] +
						bpf_htons(0x4500) + tot_len +
						bpf_htons(XT_IP_DF) +
						bpf_htons((64 << 8) | IPPROTO_UDP));
	} else {
		struct ipv6hdr *ip6 = data;

		udp = data + sizeof(*ip6);
		if ((void *)(udp + 1) > data_end)
			return XT_CNT_DROP_ERROR;
		*(__be32 *)ip6 = bpf_htonl(0x60000000);	/* version 6, no class, no label */
		ip6->payload_len = bpf_htons((__u16)ulen);
		ip6->nexthdr = IPPROTO_UDP;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, f->saddr, 16);
		__builtin_memcpy(&ip6->daddr, f->daddr, 16);
	}
	udp->source = f->sport;
	udp->dest = f->dport;
	udp->len = bpf_htons((__u16)ulen);
	udp->check = csum_udp(sum);
	if (cd) {
		__be16 *cdh = (void *)(udp + 1);

		if ((void *)(cdh + 2) > data_end)
			return XT_CNT_DROP_ERROR;
		cdh[0] = f->channel;
		cdh[1] = bpf_htons((__u16)f->dlen);
	}

	if (fib.ifindex == ctx->ingress_ifindex) {
		f->verdict = XDP_TX;
	} else {
		/* Lower bits of flags: the verdict if the entry vanished since
		 * the lookup above; the packet is rewritten, so drop. */
		f->verdict = bpf_redirect_map(&xt_tx_ports, fib.ifindex, XDP_DROP);
		if (f->verdict != XDP_REDIRECT)
			return XT_CNT_DROP_ERROR;
	}
	if (f->c2p) {
		__sync_fetch_and_add(&f->c2p->packets, 1);
		__sync_fetch_and_add(&f->c2p->bytes, f->dlen);
	}
	if (f->p2c) {
		__sync_fetch_and_add(&f->p2c->packets, 1);
		__sync_fetch_and_add(&f->p2c->bytes, f->dlen);
	}
	return cnt;
}

SEC("xdp")
int xturn_xdp(struct xdp_md *ctx)
{
	struct xt_pkt p = {};
	struct xt_fwd f = {};
	struct xt_cfg *cfg;
	__u32 zero = 0;
	int cnt;

	cfg = bpf_map_lookup_elem(&xt_cfg, &zero);
	if (!cfg || cfg->magic != XT_MAGIC || cfg->abi_version != XT_ABI_VERSION ||
	    !(cfg->flags & XT_CFG_ENABLED))
		return XDP_PASS;

	/* Verifier workaround: pointer difference as a bounded scalar. */
	p.len = (__u32)((long)ctx->data_end - (long)ctx->data);
	if (p.len > XT_FRAME_MAX) {
		xt_count(XT_CNT_PASS_UNUSUAL, 0);
		return XDP_PASS;
	}

	/* Bytes are application data relayed (no headers, no padding), as
	 * the daemon counts them; a packet passed or dropped relays none. */
	cnt = xt_classify(ctx, &p, &f);
	if (cnt == XT_CNT_C2P || cnt == XT_CNT_P2C || cnt == XT_CNT_HAIRPIN)
		cnt = xt_forward(ctx, &p, &f, cnt, cfg);
	else
		f.verdict = cnt >= XT_CNT_DROP_NO_PERM ? XDP_DROP : XDP_PASS;
	xt_count(cnt, cnt <= XT_CNT_HAIRPIN ? f.dlen : 0);
	return f.verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
