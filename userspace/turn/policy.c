#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "turn/policy.h"

typedef unsigned __int128 u128;

/* An inclusive address range of one family. IPv4 keeps its own family (the
 * value is the host-order address) rather than the IPv4-mapped form, so the
 * built-in ::ffff:0:0/96 entry cannot swallow every IPv4 address. */
struct policy_range {
	sa_family_t family;
	u128 lo, hi;
	uint16_t port_lo, port_hi;	/* 0-65535 unless the spec names ports */
};

struct policy_ranges {
	struct policy_range *v;
	size_t n, cap;
};

struct policy {
	struct policy_ranges allow, deny;
	bool default_deny;
	bool has_ports;		/* a rule names ports */
};

/* The built-in deny list. Derived from the IANA IPv4 and IPv6 Special-
 * Purpose Address Registries (IPv6 as updated 2025-10-09, IPv4 through RFC
 * 8880): every block whose "Globally Reachable" is False, less the more
 * specific blocks inside them that are True (policy_global_specs). Also:
 *  - IPv6 outside 2000::/3, all "Reserved by IETF" in the IPv6 Address Space
 *    registry but for the special blocks above, and multicast;
 *  - blocks that embed an IPv4 address whose IPv4 half would slip past the
 *    IPv4 rules: IPv4-compatible ::/96 (RFC 4291, deprecated),
 *    IPv4-translated ::ffff:0:0:0/96 (RFC 2765), NAT64 64:ff9b::/96
 *    (Globally Reachable, denied for that reason), 6to4 2002::/16 and Teredo
 *    2001::/32 ("N/A" in the registry). */
static const char *const policy_special_specs[] = {
	"0.0.0.0/8",			/* "this network" */
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",	/* private use */
	"100.64.0.0/10",		/* shared address space (CGN) */
	"127.0.0.0/8",			/* loopback */
	"169.254.0.0/16",		/* link local */
	"192.0.0.0/24",			/* IETF protocol assignments */
	"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",	/* documentation */
	"192.88.99.0/24",		/* 6to4 relay anycast, deprecated */
	"198.18.0.0/15",		/* benchmarking */
	"224.0.0.0/4",			/* multicast */
	"240.0.0.0/4",			/* reserved, with limited broadcast */
	"::/3",				/* reserved: ::, ::1, ::/96, ::ffff:0:0/96,
					 * ::ffff:0:0:0/96, 64:ff9b::/96, 64:ff9b:1::/48,
					 * 100::/64, 100:0:0:1::/64 (dummy, RFC 9780) */
	"2001::/23",			/* IETF protocol assignments, Teredo, benchmarking */
	"2001:db8::/32", "3fff::/20",	/* documentation */
	"2002::/16",			/* 6to4 */
	"4000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",	/* reserved: 5f00::/16 (SRv6
					 * SIDs), fc00::/7 unique local, fe80::/10 link local,
					 * fec0::/10 site local, ff00::/8 multicast */
};
#define POLICY_NSPECIAL (sizeof(policy_special_specs) / sizeof(policy_special_specs[0]))

/* Globally reachable blocks inside the ones above: anycast services and
 * identifiers a peer may legitimately be. */
static const char *const policy_global_specs[] = {
	"192.0.0.9/32", "192.0.0.10/32",	/* PCP and TURN anycast */
	"2001:1::1/128", "2001:1::2/128", "2001:1::3/128",	/* PCP, TURN, DNS-SD SRP anycast */
	"2001:3::/32",			/* AMT */
	"2001:4:112::/48",		/* AS112-v6 */
	"2001:20::/28", "2001:30::/28",	/* ORCHIDv2, drone remote ID */
};
#define POLICY_NGLOBAL (sizeof(policy_global_specs) / sizeof(policy_global_specs[0]))

static struct policy_range policy_global[POLICY_NGLOBAL];
static struct policy_range policy_special[POLICY_NSPECIAL];
static pthread_once_t policy_special_once = PTHREAD_ONCE_INIT;

/* Parses a bare IP (no port) into a family and value. */
static int policy_parse_ip(const char *s, sa_family_t *family, u128 *v)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		*family = AF_INET;
		*v = ntohl(a4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		*family = AF_INET6;
		*v = 0;
		for (int i = 0; i < 16; i++)
			*v = (*v << 8) | a6.s6_addr[i];
		return 0;
	}
	return -EINVAL;
}

static unsigned policy_width(sa_family_t family)
{
	return family == AF_INET ? 32 : 128;
}

/* Strict decimal prefix length: digits only, at most the family's width. */
static int policy_parse_prefix(const char *s, unsigned width, unsigned *plen)
{
	unsigned v = 0;

	if (!*s || strlen(s) > 3)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > width)
		return -EINVAL;
	*plen = v;
	return 0;
}

/* Copies one side of a spec into buf (bounded: an IPv6 text is short). */
static int policy_copy(char *buf, size_t len, const char *s, size_t n)
{
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	return 0;
}

/* Strict decimal port, 0..65535. */
static int policy_parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* "P" or "P-Q" -> port range. */
static int policy_parse_ports(const char *s, struct policy_range *r)
{
	const char *dash = strchr(s, '-');
	int err = policy_parse_port(s, dash ? (size_t)(dash - s) : strlen(s), &r->port_lo);

	r->port_hi = r->port_lo;
	if (!err && dash)
		err = policy_parse_port(dash + 1, strlen(dash + 1), &r->port_hi);
	return err ? err : r->port_hi < r->port_lo ? -EINVAL : 0;
}

static int policy_parse_ips(const char *spec, bool canon, struct policy_range *r);

/* An address spec (policy_parse_ips), optionally with ports: "IPv4:P",
 * "IPv4/len:P-Q", "[IPv6]:P", "[IPv6/len]:P-Q" ("[IPv6]" alone too). */
static int policy_parse_range(const char *spec, bool canon, struct policy_range *r)
{
	char ips[2 * INET6_ADDRSTRLEN + 8];
	const char *colon = strchr(spec, ':'), *ports = NULL;
	size_t n = strlen(spec);
	int err;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		ports = close[1] ? close + 2 : NULL;
		spec++;
		n = (size_t)(close - spec);
	} else if (colon && !strchr(colon + 1, ':')) {	/* one colon: IPv4 and a port */
		ports = colon + 1;
		n = (size_t)(colon - spec);
	}
	if (n == 0 || n >= sizeof(ips))
		return -EINVAL;
	memcpy(ips, spec, n);
	ips[n] = 0;
	if ((err = policy_parse_ips(ips, canon, r)))
		return err;
	r->port_lo = 0;
	r->port_hi = 65535;
	return ports ? policy_parse_ports(ports, r) : 0;
}

/* "IP", "IP/len" or "IP-IP" -> range. canon turns IPv4-mapped ranges into
 * IPv4 ones, as peers are canonicalized before matching. */
static int policy_parse_ips(const char *spec, bool canon, struct policy_range *r)
{
	char a[INET6_ADDRSTRLEN + 1], b[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(spec, '/'), *dash = strchr(spec, '-');
	sa_family_t fb;
	u128 hi;
	int err;

	if (slash && dash)
		return -EINVAL;
	err = policy_copy(a, sizeof(a), spec, slash ? (size_t)(slash - spec) :
			  dash ? (size_t)(dash - spec) : strlen(spec));
	if (err || (err = policy_parse_ip(a, &r->family, &r->lo)))
		return err;
	r->hi = r->lo;
	if (slash) {
		unsigned width = policy_width(r->family), plen;
		u128 host;

		if ((err = policy_parse_prefix(slash + 1, width, &plen)))
			return err;
		/* Host bits below the prefix; shifting a u128 by 128 is undefined. */
		host = plen == 0 ? ~(u128)0 : (((u128)1 << (width - plen)) - 1);
		if (width == 32)
			host &= 0xffffffffu;
		r->lo &= ~host;
		r->hi = r->lo | host;
	} else if (dash) {
		if ((err = policy_copy(b, sizeof(b), dash + 1, strlen(dash + 1))))
			return err;
		if ((err = policy_parse_ip(b, &fb, &hi)))
			return err;
		if (fb != r->family || hi < r->lo)
			return -EINVAL;
		r->hi = hi;
	}
	if (canon && r->family == AF_INET6 && (r->lo >> 32) == 0xffff && (r->hi >> 32) == 0xffff) {
		r->family = AF_INET;
		r->lo &= 0xffffffffu;
		r->hi &= 0xffffffffu;
	}
	return 0;
}

static void policy_special_init(void)
{
	/* The tables are constant and covered by the unit tests; they cannot fail. */
	for (size_t i = 0; i < POLICY_NSPECIAL; i++)
		policy_parse_range(policy_special_specs[i], false, &policy_special[i]);
	for (size_t i = 0; i < POLICY_NGLOBAL; i++)
		policy_parse_range(policy_global_specs[i], false, &policy_global[i]);
}

/* Which ports a rule must cover to match (else: the one port given). */
enum { PORTS_SOME = -1, PORTS_ALL = -2 };

/* PORTS_SOME: a rule with the IP on any of its ports (may some port be
 * reached? a permission is for an IP); PORTS_ALL: one covering every port.
 * exact: rules of that one address only. */
static bool policy_match(const struct policy_range *v, size_t n, sa_family_t family, u128 ip,
			 int port, bool exact)
{
	for (size_t i = 0; i < n; i++) {
		const struct policy_range *r = &v[i];

		if (r->family != family || ip < r->lo || ip > r->hi || (exact && r->lo != r->hi))
			continue;
		if (port == PORTS_SOME || (port == PORTS_ALL ? r->port_lo == 0 && r->port_hi == 65535 :
					  port >= r->port_lo && port <= r->port_hi))
			return true;
	}
	return false;
}

/* Canonical family and value of a peer; false if neither IPv4 nor IPv6. */
static bool policy_key(const struct sockaddr_storage *peer, sa_family_t *family, u128 *ip)
{
	struct sockaddr_storage c = *peer;

	addr_canon(&c);
	*family = c.ss_family;
	if (c.ss_family == AF_INET) {
		*ip = ntohl(((const struct sockaddr_in *)&c)->sin_addr.s_addr);
		return true;
	}
	if (c.ss_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)&c)->sin6_addr.s6_addr;

		*ip = 0;
		for (int i = 0; i < 16; i++)
			*ip = (*ip << 8) | b[i];
		return true;
	}
	return false;
}

static bool policy_special_match(sa_family_t family, u128 ip)
{
	pthread_once(&policy_special_once, policy_special_init);
	return policy_match(policy_special, POLICY_NSPECIAL, family, ip, PORTS_SOME, false) &&
	       !policy_match(policy_global, POLICY_NGLOBAL, family, ip, PORTS_SOME, false);
}

struct policy *policy_new(void)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p)
		p->default_deny = true;
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->allow.v);
	free(p->deny.v);
	free(p);
}

static int policy_add(struct policy *p, struct policy_ranges *l, const char *spec)
{
	struct policy_range r;
	int err = policy_parse_range(spec, true, &r);

	if (err)
		return err;
	p->has_ports |= r.port_lo != 0 || r.port_hi != 65535;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct policy_range *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = r;
	return 0;
}

int policy_allow(struct policy *p, const char *spec)
{
	return policy_add(p, &p->allow, spec);
}

int policy_deny(struct policy *p, const char *spec)
{
	return policy_add(p, &p->deny, spec);
}

int policy_spec_check(const char *spec)
{
	struct policy_range r;

	return policy_parse_range(spec, true, &r);
}

void policy_set_default_deny(struct policy *p, bool on)
{
	p->default_deny = on;
}

/* port PORTS_SOME: may some port of the IP be reached? */
static bool policy_allowed(const struct policy *p, const struct sockaddr_storage *peer, int port)
{
	sa_family_t family;
	u128 ip;

	if (!policy_key(peer, &family, &ip))
		return false;
	if (policy_match(p->allow.v, p->allow.n, family, ip, port, false))
		return true;
	/* Refused for some port is not refused for the IP. */
	if (policy_match(p->deny.v, p->deny.n, family, ip, port == PORTS_SOME ? PORTS_ALL : port,
			 false))
		return false;
	return !(p->default_deny && policy_special_match(family, ip));
}

bool policy_peer_allowed(const struct policy *p, const struct sockaddr_storage *peer)
{
	return policy_allowed(p, peer, PORTS_SOME);
}

bool policy_transport_allowed(const struct policy *p, const struct sockaddr_storage *peer)
{
	return policy_allowed(p, peer, addr_port(peer));
}

bool policy_exact_allowed(const struct policy *p, const struct sockaddr_storage *peer,
			  bool any_port)
{
	sa_family_t family;
	u128 ip;

	return policy_key(peer, &family, &ip) &&
	       policy_match(p->allow.v, p->allow.n, family, ip,
			    any_port ? PORTS_SOME : addr_port(peer), true);
}

bool policy_has_ports(const struct policy *p)
{
	return p->has_ports;
}

bool policy_is_special(const struct sockaddr_storage *peer)
{
	sa_family_t family;
	u128 ip;

	/* Not IPv4 or IPv6: nothing to relay to, treat as special. */
	return !policy_key(peer, &family, &ip) || policy_special_match(family, ip);
}
