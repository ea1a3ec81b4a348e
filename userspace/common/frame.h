/* IP/UDP packets built in userspace (xturngen's pcap and live frames, the
 * XDP tests' frames): the RFC 1071 checksum and a plain IPv4/IPv6 + UDP
 * wrapper. (The XDP program has its own, bpf/csum.h, in BPF's terms.) */
#ifndef XT_FRAME_H
#define XT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Adds n bytes to a ones' complement sum as big-endian 16-bit words (an
 * odd last byte padded with zero). */
uint32_t frame_sum16(const uint8_t *p, size_t n, uint32_t acc);
/* The sum folded to 16 bits (end-around carry), not complemented. */
uint16_t frame_fold(uint32_t s);

/* data from src to dst (same family) in an IPv4 (DF, TTL 64) or IPv6
 * header and UDP, both checksums set, into out (48 + dlen bytes suffice):
 * the packet's length. */
size_t frame_ip_udp(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		    const uint8_t *data, size_t dlen, uint8_t *out);

#endif
