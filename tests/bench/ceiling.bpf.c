// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * The bench's ceiling for the relay's XDP program: the least any ChannelData
 * relay must do to an IPv4 frame, and nothing else. It strips the 4-byte
 * ChannelData header (headers saved, head moved, headers written back with
 * the lengths and IP checksum fixed, UDP checksum 0) and redirects to
 * out_ifindex. No lookups, no addresses rewritten, no counters: xturn's
 * program costs what it adds to this (fpcost measures both the same way).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "csum.h"

volatile const __u32 out_ifindex;

struct hdrs {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
} __attribute__((packed));

SEC("xdp")
int ceiling_strip(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct hdrs h, *p = data;
	__u64 sum;

	if ((void *)(p + 1) + 4 > end || p->eth.h_proto != bpf_htons(ETH_P_IP) ||
	    p->ip.ihl != 5 || p->ip.protocol != IPPROTO_UDP)
		return XDP_PASS;
	h = *p;
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	p = data;
	if ((void *)(p + 1) > end)
		return XDP_ABORTED;
	/* RFC 1624: the checksum less the old length plus the new one. */
	sum = csum_neg(h.ip.check) + csum_neg(h.ip.tot_len);
	h.ip.tot_len = bpf_htons(bpf_ntohs(h.ip.tot_len) - 4);
	h.ip.check = (__u16)~csum_fold64(sum + h.ip.tot_len);
	h.udp.len = bpf_htons(bpf_ntohs(h.udp.len) - 4);
	h.udp.check = 0;
	*p = h;
	return bpf_redirect(out_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
