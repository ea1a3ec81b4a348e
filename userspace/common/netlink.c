#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "common/netlink.h"

static void parse_kind(const struct nlattr *linkinfo, struct nl_link *out)
{
	const struct nlattr *attr;

	mnl_attr_for_each_nested(attr, linkinfo) {
		if (mnl_attr_get_type(attr) == IFLA_INFO_KIND &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			strncpy(out->kind, mnl_attr_get_str(attr), sizeof(out->kind) - 1);
	}
}

bool nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *out)
{
	const struct ifinfomsg *ifi;
	const struct nlattr *attr;

	if ((nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifi)))
		return false;
	ifi = mnl_nlmsg_get_payload(nlh);
	memset(out, 0, sizeof(*out));
	out->ifindex = ifi->ifi_index;
	out->flags = ifi->ifi_flags;
	mnl_attr_for_each(attr, nlh, sizeof(*ifi)) {
		if (mnl_attr_get_type(attr) == IFLA_IFNAME &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			strncpy(out->name, mnl_attr_get_str(attr), sizeof(out->name) - 1);
		else if (mnl_attr_get_type(attr) == IFLA_LINKINFO &&
			 mnl_attr_validate(attr, MNL_TYPE_NESTED) == 0)
			parse_kind(attr, out);
		else if (mnl_attr_get_type(attr) == IFLA_LINK &&
			 mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			out->link = (int)mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == IFLA_LINK_NETNSID)
			out->link_netns = true;
	}
	return true;
}

static bool nl_parse_addr(const struct nlmsghdr *nlh, struct nl_addr *out)
{
	const struct ifaddrmsg *ifa;
	const struct nlattr *attr;
	const void *local = NULL, *address = NULL;
	size_t len;

	if ((nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
		return false;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family == AF_INET)
		len = 4;
	else if (ifa->ifa_family == AF_INET6)
		len = 16;
	else
		return false;
	mnl_attr_for_each(attr, nlh, sizeof(*ifa)) {
		if (mnl_attr_get_payload_len(attr) != len)
			continue;
		/* IFA_LOCAL is our address on point-to-point links, where
		 * IFA_ADDRESS is the remote end. */
		if (mnl_attr_get_type(attr) == IFA_LOCAL)
			local = mnl_attr_get_payload(attr);
		else if (mnl_attr_get_type(attr) == IFA_ADDRESS)
			address = mnl_attr_get_payload(attr);
	}
	if (!local)
		local = address;
	if (!local)
		return false;
	memset(out, 0, sizeof(*out));
	out->ifindex = (int)ifa->ifa_index;
	out->addr.ss_family = ifa->ifa_family;
	if (len == 4)
		memcpy(&((struct sockaddr_in *)&out->addr)->sin_addr, local, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&out->addr)->sin6_addr, local, 16);
	return true;
}

static bool nl_parse_neigh(const struct nlmsghdr *nlh, struct nl_neigh *out)
{
	const struct ndmsg *nd;
	const struct nlattr *attr;
	const void *dst = NULL, *ll = NULL;
	size_t len;

	if (nlh->nlmsg_type != RTM_NEWNEIGH || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*nd)))
		return false;
	nd = mnl_nlmsg_get_payload(nlh);
	len = nd->ndm_family == AF_INET ? 4 : nd->ndm_family == AF_INET6 ? 16 : 0;
	if (!len)
		return false;
	mnl_attr_for_each(attr, nlh, sizeof(*nd)) {
		if (mnl_attr_get_type(attr) == NDA_DST && mnl_attr_get_payload_len(attr) == len)
			dst = mnl_attr_get_payload(attr);
		else if (mnl_attr_get_type(attr) == NDA_LLADDR &&
			 mnl_attr_get_payload_len(attr) == sizeof(out->lladdr))
			ll = mnl_attr_get_payload(attr);
	}
	if (!dst || !ll)
		return false;
	memset(out, 0, sizeof(*out));
	out->ifindex = nd->ndm_ifindex;
	out->state = nd->ndm_state;
	out->addr.ss_family = nd->ndm_family;
	if (len == 4)
		memcpy(&((struct sockaddr_in *)&out->addr)->sin_addr, dst, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&out->addr)->sin6_addr, dst, 16);
	memcpy(out->lladdr, ll, sizeof(out->lladdr));
	return true;
}

bool nl_parse_local(const struct nlmsghdr *nlh, struct nl_prefix *out)
{
	const struct rtmsg *rtm;
	const struct nlattr *attr;
	const void *dst = NULL;
	unsigned table, len;

	if ((nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_DELROUTE) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)))
		return false;
	rtm = mnl_nlmsg_get_payload(nlh);
	table = rtm->rtm_table;
	len = rtm->rtm_family == AF_INET ? 4 : rtm->rtm_family == AF_INET6 ? 16 : 0;
	if (!len || rtm->rtm_dst_len > len * 8 ||
	    (rtm->rtm_type != RTN_LOCAL && rtm->rtm_type != RTN_BROADCAST &&
	     rtm->rtm_type != RTN_ANYCAST))
		return false;
	mnl_attr_for_each(attr, nlh, sizeof(*rtm)) {
		if (mnl_attr_get_type(attr) == RTA_TABLE &&
		    mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			table = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == RTA_DST && mnl_attr_get_payload_len(attr) == len)
			dst = mnl_attr_get_payload(attr);
	}
	if (table != RT_TABLE_LOCAL)
		return false;
	memset(out, 0, sizeof(*out));
	out->addr.ss_family = rtm->rtm_family;
	out->plen = rtm->rtm_dst_len;
	if (dst && len == 4)
		memcpy(&((struct sockaddr_in *)&out->addr)->sin_addr, dst, 4);
	else if (dst)
		memcpy(&((struct sockaddr_in6 *)&out->addr)->sin6_addr, dst, 16);
	return true;
}

/* Growable array filled by the dump callbacks. */
struct dump {
	void *items;
	size_t n, cap, size;
	bool (*parse)(const struct nlmsghdr *nlh, void *out);
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;

	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		void *p = realloc(d->items, cap * d->size);

		if (!p)
			return MNL_CB_ERROR;
		d->items = p;
		d->cap = cap;
	}
	if (d->parse(nlh, (char *)d->items + d->n * d->size))
		d->n++;
	return MNL_CB_OK;
}

/* Sends one request (NLM_F_ACK added) on a socket of its own and feeds every
 * answer to cb until the acknowledgement or the end of a dump.
 * 0 or -errno (the kernel's answer for a refused request). */
static int request(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned seq = (unsigned)time(NULL), portid;
	ssize_t len;
	int ret, err = 0;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	do {
		len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0) {
			err = -errno;
			goto out;
		}
		errno = 0;
		ret = mnl_cb_run(buf, (size_t)len, seq, portid, cb, data);
	} while (ret > MNL_CB_STOP);
	if (ret < 0)
		err = errno ? -errno : -EIO;
out:
	mnl_socket_close(nl);
	return err;
}

static int dump(uint16_t type, struct dump *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtgenmsg *rt;
	int err;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_DUMP;
	rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	rt->rtgen_family = AF_UNSPEC;
	err = request(nlh, dump_cb, d);
	if (err) {
		free(d->items);
		d->items = NULL;
		d->n = 0;
	}
	return err;
}

static bool parse_link_any(const struct nlmsghdr *nlh, void *out)
{
	return nl_parse_link(nlh, out);
}

static bool parse_addr_any(const struct nlmsghdr *nlh, void *out)
{
	return nl_parse_addr(nlh, out);
}

/* One dump of type into a malloc'ed array of n items of size. */
static int dump_all(uint16_t type, bool (*parse)(const struct nlmsghdr *, void *), size_t size,
		    void **out, size_t *n)
{
	struct dump d = { .size = size, .parse = parse };
	int err = dump(type, &d);

	*out = d.items;
	*n = d.n;
	return err;
}

int nl_dump_links(struct nl_link **out, size_t *n)
{
	return dump_all(RTM_GETLINK, parse_link_any, sizeof(**out), (void **)out, n);
}

int nl_dump_addrs(struct nl_addr **out, size_t *n)
{
	return dump_all(RTM_GETADDR, parse_addr_any, sizeof(**out), (void **)out, n);
}

static bool parse_neigh_any(const struct nlmsghdr *nlh, void *out)
{
	return nl_parse_neigh(nlh, out);
}

int nl_dump_neighs(struct nl_neigh **out, size_t *n)
{
	return dump_all(RTM_GETNEIGH, parse_neigh_any, sizeof(**out), (void **)out, n);
}

static bool parse_local_any(const struct nlmsghdr *nlh, void *out)
{
	return nl_parse_local(nlh, out);
}

/* Every table is dumped and the local one kept: a table filter needs
 * NETLINK_GET_STRICT_CHK, under which the other dumps' short headers are
 * refused. This runs at start and when the local table changes. */
int nl_dump_local(struct nl_prefix **out, size_t *n)
{
	return dump_all(RTM_GETROUTE, parse_local_any, sizeof(**out), (void **)out, n);
}

struct mnl_socket *nl_subscribe(unsigned groups)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int err;

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		err = errno;
		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	return nl;
}

/* An RTM_*LINK request about ifindex and/or name. */
static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, int ifindex,
				 const char *name)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nlh;
}

static int link_get_cb(const struct nlmsghdr *nlh, void *data)
{
	nl_parse_link(nlh, data);
	return MNL_CB_OK;
}

int nl_link_get(const char *name, struct nl_link *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int err;

	memset(out, 0, sizeof(*out));
	err = request(link_msg(buf, RTM_GETLINK, 0, 0, name), link_get_cb, out);
	if (!err && !out->ifindex)
		err = -ENODEV;
	return err;
}

int nl_link_add(const char *name, const char *kind)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, name);
	struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);

	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, info);
	return request(nlh, NULL, NULL);
}

int nl_link_set_up(int ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, ifindex, NULL);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return request(nlh, NULL, NULL);
}

int nl_link_del(int ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	return request(link_msg(buf, RTM_DELLINK, 0, ifindex, NULL), NULL, NULL);
}
