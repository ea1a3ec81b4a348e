/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The forwarding code of bpf/xturn.bpf.c, written once and compiled once
 * per program type (XDP, TC): a BPF function that takes a context is
 * verified for one program type only. The includer defines
 *
 *   XT_CTX          the context type (struct xdp_md, struct __sk_buff)
 *   XT_SYM(name)    name with the program type's suffix
 *   XT_PASS, XT_DROP           its verdicts
 *   XT_PARTIAL_OK   1: CHECKSUM_PARTIAL inputs can be relayed
 *   XT_VLAN_TX      1: tagged frames can go back out of their ingress
 *   XT_SYM(xt_resize)(ctx, p, head, want, v4, n, &hsum): the frame from
 *       head bytes further on (negative: earlier), want bytes long, of
 *       family v4, its n header bytes after Ethernet to be rewritten;
 *       hsum: what xt_rewritten needs. 0 or -1.
 *   XT_SYM(xt_rewritten)(ctx, n, hsum): the n bytes after Ethernet were
 *       rewritten.
 *   XT_SYM(xt_send)(ctx, ifindex): the verdict that sends the frame out of
 *       ifindex, XT_DROP if it cannot.
 *
 * No include guard: it is meant to be included more than once.
 */

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
__noinline int XT_SYM(xt_csum_region)(XT_CTX *ctx, __u32 offset, __u32 length)
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
static __always_inline int XT_SYM(xt_parse)(XT_CTX *ctx, struct xt_pkt *p, __u8 **payload)
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

/* Decides what the datagram is. Returns the counter: C2P, P2C or HAIRPIN
 * with *f filled to forward, else a PASS_ or DROP_ counter.
 * Not inlined: its map keys then live in a stack frame of their own, which
 * keeps the program's stack under the 512-byte limit. */
static __noinline int XT_SYM(xt_classify)(XT_CTX *ctx, struct xt_pkt *p, struct xt_fwd *f)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *pl = NULL;
	int cd;
	int rc;

	rc = XT_SYM(xt_parse)(ctx, p, &pl);
	if (rc)
		return rc;
	p->now = bpf_ktime_get_coarse_ns();

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

	rc = xt_from_peer(p, f);
	if (rc != XT_CNT_PASS_NOT_OURS)
		return rc;
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
static __always_inline int XT_SYM(xt_data_sum)(XT_CTX *ctx, const struct xt_pkt *p,
				       const struct xt_fwd *f, const struct xt_cfg *cfg)
{
	__u64 pseudo = csum_pseudo(p->saddr, p->daddr, p->v4, p->plen + sizeof(struct udphdr));
	__be16 ulen = bpf_htons((__u16)(p->plen + sizeof(struct udphdr)));
	int partial = csum_norm(p->check) == csum_norm(csum_fold64(pseudo));
	int verify = cfg->flags & XT_CFG_VERIFY_CSUM;
	int dsum, pad = 0;

	if (partial && !XT_PARTIAL_OK)
		return XT_CSUM_ERR;

	if (f->pad) {	/* up to 3 bytes, covered by the input checksum */
		pad = XT_SYM(xt_csum_region)(ctx, f->data_off + f->dlen, f->pad);
		if (pad < 0)
			return XT_CSUM_ERR;
		if (f->dlen & 1)
			pad = csum_swap((__u16)pad);
	}
	if (p->check && !partial && !verify)
		return csum_fold64((__u64)(__u16)~p->check + csum_neg(csum_fold64(pseudo)) +
				   csum_neg(p->sport) + csum_neg(p->dport) + csum_neg(ulen) +
				   csum_neg(csum_fold64(f->cd_in)) + csum_neg((__u16)pad));

	dsum = XT_SYM(xt_csum_region)(ctx, f->data_off, f->dlen);
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

/*
 * Sends the datagram described by *f, a cnt (C2P, P2C, HAIRPIN) one.
 * Returns the counter to bump (cnt on success) and sets f->verdict. Nothing
 * is modified before every check that could pass the packet to the kernel
 * has succeeded. Not inlined, like xt_classify, for the stack limit: the
 * two frames are never live at the same time.
 */
static __noinline int XT_SYM(xt_forward)(XT_CTX *ctx, const struct xt_pkt *p,
				 struct xt_fwd *f, int cnt, const struct xt_cfg *cfg)
{
	struct bpf_fib_lookup fib = {};
	__u8 l2hdr[XT_L2_MAX];
	struct udphdr *udp;
	__u32 l2 = p->l2, l3, cd, ulen, hsum = 0, in_ifindex = ctx->ingress_ifindex;
	void *data, *data_end;
	int v4, dsum, head, rc, cached;
	__u64 sum;

	f->verdict = XT_PASS;
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
	cached = xt_nh_get(in_ifindex, p, f, cfg, &fib);
	if (!cached) {
		fib.family = v4 ? XT_AF_INET : XT_AF_INET6;
		fib.l4_protocol = IPPROTO_UDP;
		fib.sport = f->sport;
		fib.dport = f->dport;
		/* The device whose forwarding switch the kernel checks (see
		 * the top); the egress it returns is compared with the
		 * ingress below. */
		fib.ifindex = cfg->fib_ifindex ?: in_ifindex;
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
	}
	if ((fib.ifindex != in_ifindex || !XT_VLAN_TX) && l2 != ETH_HLEN)
		return XT_CNT_PASS_UNUSUAL;	/* VLAN: see the top */
	/* A cached next hop was checked when it was cached: the daemon moves
	 * the epoch when it takes an interface out of xt_tx_ports. */
	if (!cached) {
		if (fib.ifindex != in_ifindex &&
		    !bpf_map_lookup_elem(&xt_tx_ports, &fib.ifindex))
			return XT_CNT_PASS_FIB;
		xt_nh_put(in_ifindex, p, f, cfg, &fib, (__u16)(l3 + ulen));
	}

	dsum = XT_SYM(xt_data_sum)(ctx, p, f, cfg);
	if (dsum == XT_CSUM_ERR)
		return XT_CNT_PASS_UNUSUAL;
	if (dsum == XT_CSUM_BAD) {
		f->verdict = XT_DROP;
		return XT_CNT_DROP_BAD_CSUM;
	}

	/* From here on the packet changes: every failure drops it. */
	f->verdict = XT_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + XT_L2_MAX > data_end)	/* frames hold >= 42 bytes */
		return XT_CNT_DROP_ERROR;
	__builtin_memcpy(l2hdr, data, XT_L2_MAX);

	head = (int)f->data_off - (int)(l2 + l3 + sizeof(struct udphdr) + cd);
	if (XT_SYM(xt_resize)(ctx, p, head, l2 + l3 + ulen, v4,
			      l3 + sizeof(struct udphdr) + cd, &hsum))
		return XT_CNT_DROP_ERROR;

	/* Headers are written straight into the frame, field by field: built
	 * on the stack and copied, the copy's wide loads of just-written
	 * narrow fields stalled on store forwarding.
	 * Verifier workaround: resizing invalidates packet pointers;
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
	XT_SYM(xt_rewritten)(ctx, l3 + sizeof(struct udphdr) + cd, hsum);

	f->verdict = XT_SYM(xt_send)(ctx, fib.ifindex);
	if (f->verdict == XT_DROP)
		return XT_CNT_DROP_ERROR;
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


/* One datagram of len bytes, from the start of the frame: the verdict. */
static __always_inline int XT_SYM(xt_run)(XT_CTX *ctx, __u32 len)
{
	struct xt_pkt p = {};
	struct xt_fwd f = {};
	struct xt_cfg *cfg;
	__u32 zero = 0;
	int cnt;

	cfg = bpf_map_lookup_elem(&xt_cfg, &zero);
	if (!cfg || cfg->magic != XT_MAGIC || cfg->abi_version != XT_ABI_VERSION ||
	    !(cfg->flags & XT_CFG_ENABLED))
		return XT_PASS;
	if (len > XT_FRAME_MAX) {
		xt_count(XT_CNT_PASS_UNUSUAL, 0);
		return XT_PASS;
	}
	p.len = len;

	/* Bytes are application data relayed (no headers, no padding), as
	 * the daemon counts them; a packet passed or dropped relays none. */
	cnt = XT_SYM(xt_classify)(ctx, &p, &f);
	if (cnt == XT_CNT_C2P || cnt == XT_CNT_P2C || cnt == XT_CNT_HAIRPIN)
		cnt = XT_SYM(xt_forward)(ctx, &p, &f, cnt, cfg);
	else
		f.verdict = cnt >= XT_CNT_DROP_NO_PERM ? XT_DROP : XT_PASS;
	xt_count(cnt, cnt <= XT_CNT_HAIRPIN ? f.dlen : 0);
	return f.verdict;
}

