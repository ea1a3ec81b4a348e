/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xturngen's live-frames injector and counting sink: the contract between
 * xturngen_inject.bpf.c and xturngen.c (both sides include it).
 *
 * Every frame the injector emits is: Ethernet, IPv4 or IPv6, UDP,
 * ChannelData header (XG_HDR_V4/XG_HDR_V6 bytes, copied from the flow's
 * template), then the 16-byte stamp (flow id, sequence, CLOCK_MONOTONIC ns,
 * big endian, like the sendmmsg path's payload), then zeros.
 */
#ifndef XTURNGEN_INJECT_H
#define XTURNGEN_INJECT_H

#include <linux/types.h>

#define XG_HDR_V4 46		/* 14 + 20 + 8 + 4 */
#define XG_HDR_V6 66		/* 14 + 40 + 8 + 4 */
#define XG_HDR_MAX 72		/* XG_HDR_V6 rounded up to 8 */
#define XG_STAMP_LEN 16
#define XG_UDP_CHECK_OFF 6	/* UDP checksum field: this many bytes before the stamp */

/* One flow (allocation x channel): its headers and its running sequence. */
struct xg_flow {
	__u8 hdr[XG_HDR_MAX];	/* Ethernet .. ChannelData header, UDP checksum 0 */
	__be32 flow;		/* stamp's flow id */
	/* Ones' complement sum (16-bit words loaded in host order, folded) of
	 * the UDP pseudo-header, UDP header, ChannelData header, flow id and an
	 * all-zero rest: the program adds the sequence and time stamp. */
	__u32 csum;
	__u32 seq;		/* next sequence; written only by the CPU that owns the flow */
	__u32 pad;
};
_Static_assert(sizeof(struct xg_flow) == 88, "xg_flow layout");

/* Per-CPU cursor over the flows that CPU owns: first, first + stride, ... */
struct xg_cpu {
	__u32 next;
	__u32 first;
	__u32 stride;
	__u32 nflows;		/* 0: this CPU injects nothing */
};
_Static_assert(sizeof(struct xg_cpu) == 16, "xg_cpu layout");

/* Load-time constants (.rodata). */
struct xg_cfg {
	__u32 v6;		/* frames are IPv6 (else IPv4) */
	__u32 pad;
};

/* xturngen_sink's counters (xg_sink map, per CPU, key 0): UDP datagrams
 * dropped and their bytes (whole frames, Ethernet header included). */
struct xg_sink_cnt {
	__u64 packets;
	__u64 bytes;
};

#endif /* XTURNGEN_INJECT_H */
