#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/rtnetlink.h>

#include "common/log.h"
#include "common/netlink.h"
#include "turn/hostaddr.h"
#include "daemon/hostwatch.h"

struct hostwatch {
	const struct config *cfg;
	struct hostaddr *host;
	struct mnl_socket *nl;		/* NULL: not followed */
};

/* On a dump failure the configured addresses still count. */
static void refresh(struct hostwatch *w)
{
	const struct config *c = w->cfg;
	struct hostaddr_net *v;
	struct nl_prefix *loc = NULL;
	size_t nloc = 0;
	unsigned n = 0;
	int err;

	err = nl_dump_local(&loc, &nloc);
	if (err)
		log_warn("this host's addresses: rtnetlink dump failed (%s); only the "
			 "configured ones are kept from peers", strerror(-err));
	v = calloc(CONFIG_MAX_ADDRS * 4 + nloc, sizeof(*v));
	if (!v) {
		free(loc);
		log_warn("this host's addresses: out of memory; the old set stays");
		return;
	}
#define ONE(a) (v[n++] = (struct hostaddr_net){ (a), (a).ss_family == AF_INET ? 32 : 128 })
	for (unsigned i = 0; i < c->nrelay; i++)
		ONE(c->relay[i]);
	for (unsigned i = 0; i < c->nlisten; i++)
		ONE(c->listen[i]);
	for (unsigned i = 0; i < c->next; i++) {
		ONE(c->ext_public[i]);
		if (c->ext_private[i].ss_family != AF_UNSPEC)
			ONE(c->ext_private[i]);
	}
#undef ONE
	for (size_t i = 0; i < nloc; i++)
		v[n++] = (struct hostaddr_net){ loc[i].addr, loc[i].plen };
	free(loc);
	if (hostaddr_set(w->host, v, n))
		log_warn("this host's addresses: out of memory; the old set stays");
	free(v);
}

struct hostwatch *hostwatch_new(const struct config *cfg, struct hostaddr *host)
{
	struct hostwatch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cfg = cfg;
	w->host = host;
	/* Subscribed before the dump: no change falls between the two. */
	w->nl = nl_subscribe(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
			     RTMGRP_IPV6_ROUTE);
	if (!w->nl)
		log_warn("this host's addresses: no rtnetlink events (%s); the set is not "
			 "followed", strerror(errno));
	refresh(w);
	return w;
}

void hostwatch_free(struct hostwatch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}

int hostwatch_fd(const struct hostwatch *w)
{
	return w->nl ? mnl_socket_get_fd(w->nl) : -1;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_prefix p;

	if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR ||
	    nl_parse_local(nlh, &p))
		*(bool *)data = true;
	return MNL_CB_OK;
}

/* The local table is read again when it may have changed (a route of
 * another table, a BGP feed's churn, is no reason). An overrun (ENOBUFS)
 * may have hidden one, so it counts as a change. */
void hostwatch_event(struct hostwatch *w)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	bool changed = false;
	ssize_t len;

	for (;;) {
		len = mnl_socket_recvfrom(w->nl, buf, sizeof(buf));
		if (len < 0 && errno == ENOBUFS) {
			changed = true;
			continue;
		}
		if (len <= 0)
			break;
		mnl_cb_run(buf, (size_t)len, 0, 0, msg_cb, &changed);
	}
	if (changed)
		refresh(w);
}
