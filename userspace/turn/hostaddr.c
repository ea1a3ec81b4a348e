#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "turn/hostaddr.h"

/* One bit a port: 8 KiB a relay address, set and read without a lock
 * (relay sockets open and close on every worker). */
#define PORT_WORDS (65536 / 64)

struct relay_ports {
	struct sockaddr_storage ip;
	unsigned owner;			/* index of the entry whose bits count */
	_Atomic uint64_t bits[PORT_WORDS];
};

struct hostaddr {
	pthread_rwlock_t lock;		/* for nets, n */
	struct hostaddr_net *nets;
	unsigned n;
	_Atomic uint64_t generation;
	struct relay_ports *relays;
	unsigned nrelays;
};

static struct sockaddr_storage ip_only(const struct sockaddr_storage *a)
{
	struct sockaddr_storage c = *a;

	addr_canon(&c);
	addr_set_port(&c, 0);
	return c;
}

struct hostaddr *hostaddr_new(const struct sockaddr_storage *relays, unsigned nrelays)
{
	struct hostaddr *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->relays = calloc(nrelays ? nrelays : 1, sizeof(*h->relays));
	if (!h->relays) {
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i < nrelays; i++) {
		h->relays[i].ip = ip_only(&relays[i]);
		h->relays[i].owner = i;
	}
	h->nrelays = nrelays;
	pthread_rwlock_init(&h->lock, NULL);
	return h;
}

void hostaddr_free(struct hostaddr *h)
{
	if (!h)
		return;
	pthread_rwlock_destroy(&h->lock);
	free(h->nets);
	free(h->relays);
	free(h);
}

/* The address bytes of a canonical IPv4 or IPv6 address, and their count. */
static const uint8_t *ip_bytes(const struct sockaddr_storage *a, unsigned *len)
{
	if (a->ss_family == AF_INET) {
		*len = 4;
		return (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
	}
	*len = 16;
	return ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
}

static bool in_net(const struct hostaddr_net *net, const struct sockaddr_storage *ip)
{
	unsigned len, nlen, bits = net->plen;
	const uint8_t *a = ip_bytes(ip, &len), *b = ip_bytes(&net->ip, &nlen);

	if (net->ip.ss_family != ip->ss_family)
		return false;
	for (unsigned i = 0; bits && i < len; i++, bits = bits > 8 ? bits - 8 : 0) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((a[i] ^ b[i]) & mask)
			return false;
	}
	return true;
}

static bool same_net(const struct hostaddr_net *x, const struct hostaddr_net *y)
{
	return x->plen == y->plen && in_net(x, &y->ip) && in_net(y, &x->ip);
}

static bool has_net(const struct hostaddr_net *v, unsigned n, const struct hostaddr_net *net)
{
	for (unsigned i = 0; i < n; i++)
		if (same_net(&v[i], net))
			return true;
	return false;
}

int hostaddr_set(struct hostaddr *h, const struct hostaddr_net *nets, unsigned n)
{
	struct hostaddr_net *v = calloc(n ? n : 1, sizeof(*v));
	unsigned m = 0;
	bool same;

	if (!v)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct hostaddr_net c = { ip_only(&nets[i].ip), nets[i].plen };
		unsigned max = c.ip.ss_family == AF_INET ? 32 : 128;
		/* ::ffff:a.b.c.d/104 is a.b.c.d/8 */
		if (nets[i].ip.ss_family == AF_INET6 && c.ip.ss_family == AF_INET)
			c.plen = c.plen > 96 ? c.plen - 96 : 0;
		if ((c.ip.ss_family != AF_INET && c.ip.ss_family != AF_INET6) || c.plen > max ||
		    has_net(v, m, &c))
			continue;
		v[m++] = c;
	}
	pthread_rwlock_wrlock(&h->lock);
	same = m == h->n;
	for (unsigned i = 0; same && i < m; i++)
		same = has_net(h->nets, h->n, &v[i]);
	free(h->nets);
	h->nets = v;
	h->n = m;
	pthread_rwlock_unlock(&h->lock);
	if (!same)
		atomic_fetch_add(&h->generation, 1);
	return 0;
}

uint64_t hostaddr_generation(const struct hostaddr *h)
{
	return atomic_load(&h->generation);
}

/* a is canonical (addr_canon), as peers and our sockets' addresses are:
 * this runs for every userspace ChannelData to a relay IP. */
static struct relay_ports *relay_of(const struct hostaddr *h, const struct sockaddr_storage *a)
{
	for (unsigned i = 0; i < h->nrelays; i++)
		if (addr_ip_eq(&h->relays[i].ip, a))
			return &h->relays[i];
	return NULL;
}

bool hostaddr_is_local(struct hostaddr *h, const struct sockaddr_storage *ip)
{
	struct sockaddr_storage c = ip_only(ip);
	bool r = false;

	if (relay_of(h, &c))
		return true;
	pthread_rwlock_rdlock(&h->lock);
	for (unsigned i = 0; i < h->n && !r; i++)
		r = in_net(&h->nets[i], &c);
	pthread_rwlock_unlock(&h->lock);
	return r;
}

int hostaddr_alias(struct hostaddr *h, const struct sockaddr_storage *pub,
		   const struct sockaddr_storage *relay)
{
	struct sockaddr_storage r = ip_only(relay);
	struct relay_ports *owner = relay_of(h, &r), *v;

	if (!owner)
		return -ENOENT;
	v = realloc(h->relays, (h->nrelays + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->relays = v;
	memset(&v[h->nrelays], 0, sizeof(v[0]));
	v[h->nrelays].ip = ip_only(pub);
	v[h->nrelays].owner = (unsigned)(relay_of(h, &r) - v);
	h->nrelays++;
	return 0;
}

bool hostaddr_is_relay_ip(const struct hostaddr *h, const struct sockaddr_storage *ip)
{
	return relay_of(h, ip) != NULL;
}

void hostaddr_relay_bound(struct hostaddr *h, const struct sockaddr_storage *addr)
{
	struct relay_ports *r = relay_of(h, addr);
	uint16_t p = addr_port(addr);

	if (r)
		atomic_fetch_or(&h->relays[r->owner].bits[p / 64], (uint64_t)1 << (p % 64));
}

void hostaddr_relay_closed(struct hostaddr *h, const struct sockaddr_storage *addr)
{
	struct relay_ports *r = relay_of(h, addr);
	uint16_t p = addr_port(addr);

	if (r)
		atomic_fetch_and(&h->relays[r->owner].bits[p / 64], ~((uint64_t)1 << (p % 64)));
}

bool hostaddr_is_relay(const struct hostaddr *h, const struct sockaddr_storage *addr)
{
	struct relay_ports *r = relay_of(h, addr);
	uint16_t p = addr_port(addr);

	return r && (atomic_load(&h->relays[r->owner].bits[p / 64]) >> (p % 64)) & 1;
}
