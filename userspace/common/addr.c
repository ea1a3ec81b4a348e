#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

void addr_canon(struct sockaddr_storage *a)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	if (a->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(a, 0, sizeof(*a));
	memcpy(a, &s4, sizeof(s4));
}

static bool ip_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
	return false;
}

bool addr_ip_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct sockaddr_storage ca, cb;

	/* Same family: no mapped form to undo (the packet path's case). */
	if (a->ss_family == b->ss_family &&
	    (a->ss_family == AF_INET || !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr)))
		return ip_eq(a, b);
	ca = *a;
	cb = *b;
	addr_canon(&ca);
	addr_canon(&cb);
	return ip_eq(&ca, &cb);
}

bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return addr_ip_eq(a, b) && addr_port(a) == addr_port(b);
}

uint16_t addr_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

void addr_set_port(struct sockaddr_storage *a, uint16_t port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons(port);
	else if (a->ss_family == AF_INET6)
		((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

socklen_t addr_len(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

uint64_t addr_hash(const struct sockaddr_storage *a, bool with_port)
{
	uint32_t m[4];
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	const uint8_t *p = (const uint8_t *)m;

	addr_to_mapped(a, m);
	for (unsigned i = 0; i < sizeof(m); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	if (with_port) {
		uint16_t port = addr_port(a);
		h = (h ^ (port & 0xff)) * 1099511628211ULL;
		h = (h ^ (port >> 8)) * 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

int addr_parse(const char *s, uint16_t default_port, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_str = NULL;
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	unsigned long port = default_port;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		if (end[1] == ':')
			port_str = end + 2;
		else if (end[1])
			return -EINVAL;
		s++;
	} else {
		const char *colon = strchr(s, ':');
		/* One colon: v4 with a port; several: a bare v6 address. */
		if (colon && !strchr(colon + 1, ':')) {
			hl = (size_t)(colon - s);
			port_str = colon + 1;
		} else {
			hl = strlen(s);
		}
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (port_str) {
		char *end;
		errno = 0;
		port = strtoul(port_str, &end, 10);
		if (errno || *end || end == port_str || port > 65535)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -EINVAL;
}

const char *addr_str(const struct sockaddr_storage *a, bool with_port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, ip, sizeof(ip));
	else if (a->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, ip, sizeof(ip));
	else
		snprintf(ip, sizeof(ip), "?");
	if (!with_port)
		snprintf(buf, len, "%s", ip);
	else if (a->ss_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, addr_port(a));
	else
		snprintf(buf, len, "%s:%u", ip, addr_port(a));
	return buf;
}

void addr_to_mapped(const struct sockaddr_storage *a, uint32_t out[4])
{
	memset(out, 0, 16);
	if (a->ss_family == AF_INET) {
		out[2] = htonl(0xffff);
		out[3] = ((const struct sockaddr_in *)a)->sin_addr.s_addr;
	} else if (a->ss_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
	}
}

void addr_source_key(const struct sockaddr_storage *a, uint32_t out[4])
{
	addr_to_mapped(a, out);
	if (a->ss_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr))
		out[2] = out[3] = 0;
}

bool addr_is_any(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return false;
}
