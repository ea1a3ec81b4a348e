#include <string.h>
#include <netinet/in.h>

#include "common/addr.h"
#include "common/frame.h"

uint32_t frame_sum16(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		acc += (uint32_t)p[n - 1] << 8;
	return acc;
}

uint16_t frame_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

size_t frame_ip_udp(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		    const uint8_t *data, size_t dlen, uint8_t *out)
{
	size_t ulen = 8 + dlen, hl;
	uint8_t *udp;
	uint32_t sum;
	uint16_t c;

	if (src->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		hl = 20;
		memset(out, 0, hl);
		out[0] = 0x45;
		put16(out + 2, (uint32_t)(hl + ulen));
		out[6] = 0x40;	/* DF */
		out[8] = 64;
		out[9] = IPPROTO_UDP;
		memcpy(out + 12, &s->sin_addr, 4);
		memcpy(out + 16, &d->sin_addr, 4);
		put16(out + 10, (uint16_t)~frame_fold(frame_sum16(out, hl, 0)));
		sum = frame_sum16(out + 12, 8, 0);
	} else {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		hl = 40;
		memset(out, 0, hl);
		out[0] = 0x60;
		put16(out + 4, (uint32_t)ulen);
		out[6] = IPPROTO_UDP;
		out[7] = 64;
		memcpy(out + 8, &s->sin6_addr, 16);
		memcpy(out + 24, &d->sin6_addr, 16);
		sum = frame_sum16(out + 8, 32, 0);
	}
	udp = out + hl;
	put16(udp, addr_port(src));
	put16(udp + 2, addr_port(dst));
	put16(udp + 4, (uint32_t)ulen);
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, data, dlen);
	sum += IPPROTO_UDP + (uint32_t)ulen;
	c = (uint16_t)~frame_fold(frame_sum16(udp, ulen, sum));
	put16(udp + 6, c ? c : 0xffff);	/* 0 means "no checksum" in UDP */
	return hl + ulen;
}
