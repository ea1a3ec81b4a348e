/* This host's own addresses, and the relay ports our sockets hold: what a
 * peer may not be. A datagram relayed to the host itself leaves from the
 * host's own address and reaches whatever listens there (DNS, SNMP, an
 * ephemeral port of the resolver, our own listener), past any firewall
 * that trusts local traffic. The one exception is a relayed transport
 * address of ours: relay to relay, both peers of a call on one server.
 *
 * One set for the whole daemon: worker threads read it, the main thread
 * replaces the addresses when rtnetlink reports a change. A generation
 * number moves on every change, so each worker notices and revokes what
 * has become a host address. */
#ifndef XT_HOSTADDR_H
#define XT_HOSTADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct hostaddr;

/* relays: our relay addresses (port 0), whose ports hostaddr_relay_*
 * follow. NULL and errno on failure. */
struct hostaddr *hostaddr_new(const struct sockaddr_storage *relays, unsigned nrelays);
void hostaddr_free(struct hostaddr *h);
/* pub stands for relay (external-ip behind 1:1 NAT: what clients are told
 * their relayed address is): a relay port of ours is ours on both. Before
 * any other thread uses h. 0, -ENOENT (relay is not ours), -ENOMEM. */
int hostaddr_alias(struct hostaddr *h, const struct sockaddr_storage *pub,
		   const struct sockaddr_storage *relay);
/* A block of addresses: ip (port ignored) and its prefix length. */
struct hostaddr_net {
	struct sockaddr_storage ip;
	unsigned plen;
};
/* Replaces the set (IPv4-mapped blocks are canonicalized). 0 or -ENOMEM
 * (the old set stays). */
int hostaddr_set(struct hostaddr *h, const struct hostaddr_net *nets, unsigned n);
/* Moves on every hostaddr_set that changed the set. */
uint64_t hostaddr_generation(const struct hostaddr *h);
bool hostaddr_is_local(struct hostaddr *h, const struct sockaddr_storage *ip);
/* Addresses below are canonical (addr_canon), ports ignored where an IP is
 * asked for. Is ip one of our relay addresses? */
bool hostaddr_is_relay_ip(const struct hostaddr *h, const struct sockaddr_storage *ip);

/* A relay socket of ours was bound to / closed on addr (IP and port). */
void hostaddr_relay_bound(struct hostaddr *h, const struct sockaddr_storage *addr);
void hostaddr_relay_closed(struct hostaddr *h, const struct sockaddr_storage *addr);
/* Does a relay socket of ours hold addr (IP and port)? */
bool hostaddr_is_relay(const struct hostaddr *h, const struct sockaddr_storage *addr);

#endif
