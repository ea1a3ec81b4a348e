/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Internet checksum pieces for the XDP program (BPF only).
 *
 * Convention (the kernel's __wsum one): 16- and 32-bit words are loaded in
 * host order straight from network-order memory and summed; the folded,
 * complemented result is stored back as is. Byte order never needs fixing
 * because the ones' complement sum commutes with byte swapping (RFC 1071).
 */
#ifndef XT_CSUM_H
#define XT_CSUM_H

#include <linux/types.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Folds a 64-bit accumulator of 16/32-bit words to 16 bits (end-around carry). */
static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The UDP checksum field for an accumulated sum. A computed 0 is sent as
 * 0xffff (RFC 768; for IPv6, RFC 8200 §8.1: a 0 there is dropped). The cast
 * matters: ~ on a __u16 yields an int that is never 0. */
static __always_inline __u16 csum_udp(__u64 sum)
{
	__u16 c = (__u16)~csum_fold64(sum);

	return c ? c : 0xffff;
}

/* 0x0000 and 0xffff are the same number in ones' complement. */
static __always_inline __u16 csum_norm(__u16 s)
{
	return s == 0xffff ? 0 : s;
}

/* The ones' complement negative of a 16-bit word: adding it subtracts. */
static __always_inline __u64 csum_neg(__u16 s)
{
	return (__u16)~s;
}

/* A folded sum of bytes that started at an odd offset, moved to even. */
static __always_inline __u16 csum_swap(__u16 s)
{
	return (__u16)((s >> 8) | (s << 8));
}

/* UDP pseudo-header sum. Addresses are 16 bytes, IPv4-mapped for IPv4
 * (only the last word counts then). IPv6's 32-bit length and next-header
 * fields sum to the same as IPv4's 16-bit ones for lengths < 64 KiB. */
static __always_inline __u64 csum_pseudo(const __be32 *src, const __be32 *dst,
					 int v4, __u32 udp_len)
{
	__u64 s = (__u64)src[3] + dst[3];

	if (!v4)
		s += (__u64)src[0] + src[1] + src[2] + dst[0] + dst[1] + dst[2];
	return s + bpf_htons(IPPROTO_UDP) + bpf_htons((__u16)udp_len);
}

#endif /* XT_CSUM_H */
