/* rtnetlink through libmnl: what links and addresses the host has, and a
 * socket that reports their changes. */
#ifndef XT_NETLINK_H
#define XT_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>

struct nl_link {
	int ifindex;
	unsigned flags;		/* IFF_* */
	char name[IF_NAMESIZE];
	char kind[16];		/* IFLA_INFO_KIND ("veth", "dummy"...), "" if none */
};

struct nl_addr {
	int ifindex;
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6, port 0 */
};

/* Every link / address of the network namespace; *out is malloc'ed.
 * 0 or -errno. */
int nl_dump_links(struct nl_link **out, size_t *n);
int nl_dump_addrs(struct nl_addr **out, size_t *n);

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
