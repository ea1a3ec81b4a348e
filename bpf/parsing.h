/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Header parsers for the BPF programs (BPF only), in the cursor style of
 * xdp-tools' parsing_helpers.h: each checks bounds before it reads, moves
 * the cursor past its header and returns the next protocol, or -1.
 *
 * Ours rather than <xdp/parsing_helpers.h> because that one includes
 * <linux/icmp.h> -> <linux/if.h> -> glibc's <sys/socket.h>, and glibc's
 * headers under -target bpf select the 32-bit stubs (libc6-dev-i386): a BPF
 * object must build from kernel UAPI and libbpf headers alone.
 */
#ifndef XT_PARSING_H
#define XT_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XT_VLAN_MAX_DEPTH 2

struct xt_cursor {
	void *pos;
};

struct xt_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Ethernet and up to XT_VLAN_MAX_DEPTH VLAN tags (802.1Q, 802.1ad): returns
 * the EtherType after the tags (network order). A truncated tag stops the
 * walk and its TPID is returned, which no caller takes for IP. */
static __always_inline int xt_parse_eth(struct xt_cursor *c, void *end)
{
	struct ethhdr *eth = c->pos;
	struct xt_vlan_hdr *vh;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > end)
		return -1;
	proto = eth->h_proto;
	vh = (void *)(eth + 1);
#pragma unroll
	for (i = 0; i < XT_VLAN_MAX_DEPTH; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			break;
		proto = vh->encap_proto;
		vh++;
	}
	c->pos = vh;
	return proto;
}

/* IPv4 with its options: returns the protocol. */
static __always_inline int xt_parse_ip4(struct xt_cursor *c, void *end, struct iphdr **iph)
{
	struct iphdr *h = c->pos;
	__u32 hlen;

	if ((void *)(h + 1) > end)
		return -1;
	hlen = h->ihl * 4;
	if (hlen < sizeof(*h) || c->pos + hlen > end)
		return -1;
	c->pos += hlen;
	*iph = h;
	return h->protocol;
}

/* The fixed IPv6 header: returns the next header, which may be an extension
 * header (xt_ip6_is_ext); those are not walked. */
static __always_inline int xt_parse_ip6(struct xt_cursor *c, void *end, struct ipv6hdr **ip6h)
{
	struct ipv6hdr *h = c->pos;

	if ((void *)(h + 1) > end)
		return -1;
	c->pos = h + 1;
	*ip6h = h;
	return h->nexthdr;
}

static __always_inline int xt_ip6_is_ext(int nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_FRAGMENT || nexthdr == IPPROTO_DSTOPTS ||
	       nexthdr == IPPROTO_AH || nexthdr == IPPROTO_MH;
}

/* UDP: returns the payload length the header claims (not checked against
 * the frame: the caller compares it with the IP length). */
static __always_inline int xt_parse_udp(struct xt_cursor *c, void *end, struct udphdr **udph)
{
	struct udphdr *h = c->pos;
	int len;

	if ((void *)(h + 1) > end)
		return -1;
	len = bpf_ntohs(h->len) - (int)sizeof(*h);
	if (len < 0)
		return -1;
	c->pos = h + 1;
	*udph = h;
	return len;
}

#endif
