/* rtnetlink through libmnl: what links and addresses the host has, and a
 * socket that reports their changes. */
#ifndef XT_NETLINK_H
#define XT_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>

struct nl_link {
	int ifindex;
	unsigned flags;		/* IFF_* */
	char name[IF_NAMESIZE];
	char kind[16];		/* IFLA_INFO_KIND ("veth", "dummy"...), "" if none */
	int link;		/* IFLA_LINK (a veth's other end), 0 if none */
	bool link_netns;	/* that end is in another namespace (IFLA_LINK_NETNSID) */
};

struct nl_addr {
	int ifindex;
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6, port 0 */
};

struct nl_neigh {
	int ifindex;
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6, port 0 */
	uint8_t lladdr[6];		/* Ethernet address */
	uint16_t state;			/* NUD_* */
};

struct nl_prefix {
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6, port 0 */
	unsigned plen;
};

/* Every link / address of the network namespace; *out is malloc'ed.
 * 0 or -errno. */
int nl_dump_links(struct nl_link **out, size_t *n);
int nl_dump_addrs(struct nl_addr **out, size_t *n);
/* The neighbour table's entries with an Ethernet address. */
int nl_dump_neighs(struct nl_neigh **out, size_t *n);
/* What the kernel delivers to this host itself or broadcasts: the local
 * table's local, broadcast and anycast routes (every address of the host,
 * 127.0.0.0/8, AnyIP ranges, subnet broadcasts). */
int nl_dump_local(struct nl_prefix **out, size_t *n);
/* Decodes a route message (RTM_NEWROUTE/RTM_DELROUTE) of the local table
 * of those types: true if *out was filled. */
bool nl_parse_local(const struct nlmsghdr *nlh, struct nl_prefix *out);

/* One link by name: 0, -ENODEV or -errno. */
int nl_link_get(const char *name, struct nl_link *out);
/* Creates link name of kind (no options): 0, -EEXIST if the name is taken,
 * -EOPNOTSUPP if the kernel has no such kind, or -errno. */
int nl_link_add(const char *name, const char *kind);
int nl_link_set_up(int ifindex);
int nl_link_del(int ifindex);

/* A non-blocking socket in the RTMGRP_* groups; NULL and errno on failure. */
struct mnl_socket *nl_subscribe(unsigned groups);

/* Decodes one link message (RTM_NEWLINK/RTM_DELLINK): true if *out was filled. */
bool nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *out);

#endif
