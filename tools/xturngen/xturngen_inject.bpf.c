// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * xturngen's packet injector (a tool's program, never attached to an
 * interface): run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, it turns
 * each frame into the next ChannelData datagram of one of this CPU's flows
 * and returns XDP_TX, so the frame leaves through the ingress device given
 * in the run's context (the client's veth), towards the TURN server.
 *
 * The same object holds xturngen_sink, the bench's peer: attached to the
 * peer's interface (xturngen --xdp-sink), it counts and drops every UDP
 * datagram, so the peer costs one XDP run per packet instead of the kernel
 * UDP receive path.
 *
 * Live-frames pages are recycled without being reset, and the relay's XDP
 * program on the other end of the veth rewrites the headers in place, so
 * every run writes every header again from the flow's template. Bytes after
 * the stamp are never written by anyone (the relay only rewrites headers in
 * front of the data) and stay the zeros userspace put there.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "csum.h"
#include "xturngen_inject.h"

const volatile struct xg_cfg xg_cfg;

/* Flow templates, indexed by flow id; sized by userspace before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xg_flow);
} xg_flows SEC(".maps");

/* Cursor of each CPU (indexed by CPU id); sized by userspace before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xg_cpu);
} xg_cpus SEC(".maps");

/* hl is a constant (XG_HDR_V4 or XG_HDR_V6) so the copy unrolls and the
 * verifier sees fixed offsets. Unaligned packet stores are fine on the
 * architectures this runs on (x86-64, arm64). */
static __always_inline int xg_fill(struct xdp_md *ctx, const __u32 hl)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 cpu = bpf_get_smp_processor_id(), idx, i;
	struct xg_flow *f;
	struct xg_cpu *c;
	__be32 seq;
	__be64 ts;
	__u64 sum;

	c = bpf_map_lookup_elem(&xg_cpus, &cpu);
	if (!c || !c->nflows)
		return XDP_ABORTED;
	idx = c->next;
	c->next = idx + c->stride < c->nflows ? idx + c->stride : c->first;
	f = bpf_map_lookup_elem(&xg_flows, &idx);
	if (!f || data + hl + XG_STAMP_LEN > end)
		return XDP_ABORTED;
#pragma unroll
	for (i = 0; i < hl / 8; i++)
		((__u64 *)data)[i] = ((const __u64 *)f->hdr)[i];
#pragma unroll
	for (i = hl / 8 * 8; i < hl; i += 2)
		*(__u16 *)(data + i) = *(const __u16 *)(f->hdr + i);
	seq = bpf_htonl(f->seq++);
	ts = bpf_cpu_to_be64(bpf_ktime_get_ns());	/* CLOCK_MONOTONIC, like now_ns() */
	*(__be32 *)(data + hl) = f->flow;
	*(__be32 *)(data + hl + 4) = seq;
	*(__be64 *)(data + hl + 8) = ts;
	sum = (__u64)f->csum + seq + (__u32)ts + (ts >> 32);
	*(__u16 *)(data + hl - XG_UDP_CHECK_OFF) = (__u16)~csum_fold64(sum) ?: 0xffff;
	return XDP_TX;
}

SEC("xdp")
int xturngen_inject(struct xdp_md *ctx)
{
	return xg_cfg.v6 ? xg_fill(ctx, XG_HDR_V6) : xg_fill(ctx, XG_HDR_V4);
}

/* The sink's counters (one struct xg_sink_cnt at key 0, per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xg_sink_cnt);
} xg_sink SEC(".maps");

/* Whole UDP datagrams only (any port): IPv4 fragments and IPv6 extension
 * headers go to the stack like everything else (ARP, ND, ICMP). */
static __always_inline int xg_is_udp(void *data, void *end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		return (void *)(ip + 1) <= end && ip->protocol == IPPROTO_UDP &&
		       !(ip->frag_off & bpf_htons(0x3fff));	/* MF, offset */
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		return (void *)(ip6 + 1) <= end && ip6->nexthdr == IPPROTO_UDP;
	}
	return 0;
}

SEC("xdp")
int xturngen_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	struct xg_sink_cnt *c;

	if (!xg_is_udp(data, end))
		return XDP_PASS;
	c = bpf_map_lookup_elem(&xg_sink, &key);
	if (c) {	/* per CPU: no atomics needed */
		c->packets++;
		c->bytes += end - data;
	}
	return XDP_DROP;
}

/* --xdp-pass: nothing but XDP_PASS. A veth delivers frames redirected or
 * sent (XDP_TX) into it only to an end whose NAPI is on, which an attached
 * XDP program guarantees (GRO on did not, always: the e2e peer lost whole
 * runs). */
SEC("xdp")
int xturngen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
