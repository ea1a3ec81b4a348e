#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/netlink.h"
#include "daemon/fastpath/fp.h"

/* ---- interfaces ------------------------------------------------------------ */

static struct fp_iface *iface_find(struct fastpath *fp, int ifindex)
{
	for (unsigned i = 0; i < fp->nattached; i++)
		if (fp->attached[i].ifindex == ifindex)
			return &fp->attached[i];
	return NULL;
}

/* A crashed daemon leaves its program attached, and libxdp refuses to
 * attach over it: take it off if (and only if) it is an xturn program. */
static void detach_stale(int ifindex)
{
	struct xdp_multiprog *mp;

	fp_libs_quiet(true);	/* without CAP_SYS_ADMIN it cannot read the program */
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	fp_libs_quiet(false);
	struct xdp_program *main;

	if (libxdp_get_error(mp) || !mp)
		return;
	main = xdp_multiprog__main_prog(mp);
	if (xdp_multiprog__is_legacy(mp) && main && !strcmp(xdp_program__name(main), FP_PROG_NAME))
		xdp_multiprog__detach(mp);
	xdp_multiprog__close(mp);
}

/* Did libxdp attach the program alone (no dispatcher in front)? Asked of
 * the kernel by id: reading the dispatcher back needs CAP_SYS_ADMIN. */
static bool single_program(const struct fastpath *fp, int ifindex, enum xdp_attach_mode mode)
{
	__u32 id = 0;

	return !bpf_xdp_query_id(ifindex, mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE :
				 XDP_FLAGS_DRV_MODE, &id) && id == xdp_program__id(fp->prog);
}

/* Why XDP would not deliver on l, for auto mode to use TC there; NULL if it
 * would. XDP_TX and redirects into a veth reach its other end only if that
 * end runs an XDP program (NAPI; GRO on is not enough on recent kernels),
 * which a container's operator cannot see or change from inside. */
static const char *xdp_undeliverable(const struct nl_link *l)
{
	__u32 id = 0;

	if (strcmp(l->kind, "veth"))
		return NULL;
	if (l->link_netns || l->link <= 0)
		return "a veth whose other end is in another namespace";
	if (!bpf_xdp_query_id(l->link, XDP_FLAGS_DRV_MODE, &id) && id)
		return NULL;
	return "a veth whose other end runs no XDP program";
}

/* The TC program on l's clsact ingress (the qdisc made if missing), in
 * place of whatever filter holds our handle: a stopped daemon's. */
static int tc_attach(struct fastpath *fp, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO,
		    .flags = BPF_TC_F_REPLACE, .prog_fd = bpf_program__fd(fp->skel->progs.xturn_tc));
	int err;

	err = bpf_tc_hook_create(&h);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&h, &o);
}

static int attach(struct fastpath *fp, const struct nl_link *l, char *why, size_t whylen)
{
	/* In auto mode, each in turn (native XDP not where it would not
	 * deliver); otherwise the one asked for. */
	static const struct { enum fp_mode use; enum xdp_attach_mode mode; bool tc;
			      const char *name; } tries[] = {
		{ FP_NATIVE, XDP_MODE_NATIVE, false, "native XDP" },
		{ FP_TC, 0, true, "TC ingress" },
		{ FP_GENERIC, XDP_MODE_SKB, false, "generic XDP" },
	};
	uint32_t ifindex = (uint32_t)l->ifindex;
	const char *undeliverable = fp->mode == FP_AUTO ? xdp_undeliverable(l) : NULL;
	char msg[640] = "";
	size_t off = 0;
	int err = -EINVAL;

	/* The lookup device carries no traffic: nothing to attach to. */
	if (iface_find(fp, l->ifindex) || l->ifindex == fp->lookup_ifindex)
		return 0;
	if (fp->nattached == XT_MAX_IFACES) {
		fp_say(why, whylen, "%s: more than %d interfaces", l->name, XT_MAX_IFACES);
		return -ENOSPC;
	}
	/* Redirects to it work from the program's first packet on. */
	err = bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_tx_ports), &ifindex, &ifindex,
				  BPF_ANY);
	if (err) {
		fp_say(why, whylen, "%s: adding to %s failed: %s", l->name, XT_MAP_TX_PORTS,
		       strerror(-err));
		return err;
	}
	if (undeliverable)
		off = (size_t)snprintf(msg, sizeof(msg), "not XDP: %s", undeliverable);
	/* A stopped daemon's XDP program here: ours takes its place in one
	 * step, so forwarding never pauses (its maps are ours now). */
	if (fp->stale_fds[FP_PROG_XDP] >= 0 && fp->mode != FP_TC && !undeliverable) {
		__u32 flags = fp_prog_mode(l->ifindex, fp->stale_fds[FP_PROG_XDP]);
		LIBBPF_OPTS(bpf_xdp_attach_opts, xo, .old_prog_fd = fp->stale_fds[FP_PROG_XDP]);

		if (flags && !bpf_xdp_attach(l->ifindex, bpf_program__fd(fp->skel->progs.xturn_xdp),
					     flags | XDP_FLAGS_REPLACE, &xo)) {
			fp->attached[fp->nattached++] = (struct fp_iface){
				l->ifindex, flags == XDP_FLAGS_SKB_MODE ? XDP_MODE_SKB : XDP_MODE_NATIVE,
				false };
			log_info("fast path: %s: %s XDP, in place of the program a stopped xturnd "
				 "left", l->name, flags == XDP_FLAGS_SKB_MODE ? "generic" : "native");
			return 0;
		}
	}
	detach_stale(l->ifindex);
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		bool replaced = false;

		if ((fp->mode != FP_AUTO && fp->mode != tries[i].use) ||
		    (undeliverable && tries[i].use == FP_NATIVE))
			continue;
		/* Asked first: its kernel message is not the attach's. */
		replaced = tries[i].tc && fp_tc_prog_id(l->ifindex);
		fp_libs_quiet(true);
		err = tries[i].tc ? tc_attach(fp, l->ifindex) :
		      xdp_program__attach(fp->prog, l->ifindex, tries[i].mode, 0);
		fp_libs_quiet(false);
		if (!err) {
			fp->attached[fp->nattached++] = (struct fp_iface){ l->ifindex, tries[i].mode,
									   tries[i].tc };
			log_info("fast path: %s: %s%s%s%s%s%s", l->name, tries[i].name,
				 off ? " (" : "", msg, off ? ")" : "",
				 replaced ? ", in place of the program a stopped xturnd left" : "",
				 !tries[i].tc && single_program(fp, l->ifindex, tries[i].mode) ?
				 ", one program (libxdp's multi-program dispatcher did not load "
				 "here; log-level=debug says why)" : "");
			break;
		}
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s: %s%s%s%s",
					off ? ", " : "", tries[i].name, strerror(-err),
					*fp_libs_kernel_msg() ? " (" : "", fp_libs_kernel_msg(),
					*fp_libs_kernel_msg() ? ")" : "");
		if (off >= sizeof(msg))
			break;
	}
	if (err) {
		fp_tx_port_del(fp, ifindex);
		fp_say(why, whylen, "attaching to %s failed: %s", l->name, msg);
	}
	return err;
}

void fp_tx_port_del(struct fastpath *fp, __u32 ifindex)
{
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_tx_ports), &ifindex);
	fp_flush_next_hops(fp);
}

static void forget(struct fastpath *fp, int ifindex)
{
	struct fp_iface *f = iface_find(fp, ifindex);

	if (!f)
		return;
	*f = fp->attached[--fp->nattached];
	fp_tx_port_del(fp, (__u32)ifindex);
}

static const struct nl_link *link_by_index(const struct nl_link *links, size_t n, int ifindex)
{
	for (size_t i = 0; i < n; i++)
		if (links[i].ifindex == ifindex)
			return &links[i];
	return NULL;
}

static bool wanted(const struct nl_link *l)
{
	return (l->flags & IFF_UP) && !(l->flags & IFF_LOOPBACK);
}

int fp_scan(struct fastpath *fp, bool strict, char *why, size_t whylen)
{
	struct nl_link *links = NULL;
	struct nl_addr *addrs = NULL;
	size_t nlinks, naddrs;
	unsigned on_lo = 0;
	char buf[ADDR_STRLEN];
	int err;

	err = nl_dump_links(&links, &nlinks);
	if (!err)
		err = nl_dump_addrs(&addrs, &naddrs);
	if (err) {
		fp_say(why, whylen, "rtnetlink dump failed: %s", strerror(-err));
		goto out;
	}
	for (unsigned i = 0; i < fp->naddrs && !err; i++) {
		const struct sockaddr_storage *a = &fp->addrs[i];
		bool found = addr_is_any(a);

		for (size_t j = 0; j < nlinks && !err && addr_is_any(a); j++)
			if (wanted(&links[j]))
				err = attach(fp, &links[j], why, whylen);
		/* One IP may be on several interfaces: all get the program. */
		for (size_t j = 0; j < naddrs && !err && !addr_is_any(a); j++) {
			const struct nl_link *l = link_by_index(links, nlinks, addrs[j].ifindex);

			if (!l || !addr_ip_eq(a, &addrs[j].addr))
				continue;
			found = true;
			if (l->flags & IFF_LOOPBACK)
				on_lo++;
			else
				err = attach(fp, l, why, whylen);
		}
		if (!found && !err) {
			fp_say(why, whylen, "address %s is on no interface",
			    addr_str(a, false, buf, sizeof(buf)));
			err = -EADDRNOTAVAIL;
		}
		if (!strict)
			err = 0;
	}
	for (unsigned i = 0; i < fp->nifaces && !err; i++) {
		const struct nl_link *l = NULL;

		for (size_t j = 0; j < nlinks && !l; j++)
			if (!strcmp(links[j].name, fp->ifaces[i]))
				l = &links[j];
		if (l)
			err = attach(fp, l, why, whylen);
		else {
			fp_say(why, whylen, "interface %s does not exist", fp->ifaces[i]);
			err = -ENODEV;
		}
		if (!strict)
			err = 0;
	}
	if (!err && strict && !fp->nattached) {
		if (on_lo)
			fp_say(why, whylen, "the addresses are on loopback only: no XDP needed");
		else
			fp_say(why, whylen, "no up, non-loopback interface to attach to");
		err = -ENODEV;
	}
out:
	free(links);
	free(addrs);
	return strict ? err : 0;
}

struct nl_event {
	struct fastpath *fp;
	bool rescan;
	bool nh_stale;		/* next hops cached in XDP may be wrong now */
};

static int netlink_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_event *ev = data;
	struct nl_link l;

	ev->nh_stale = true;	/* every group we hear affects next hops */
	if (nlh->nlmsg_type == RTM_DELLINK && nl_parse_link(nlh, &l)) {
		forget(ev->fp, l.ifindex);
		if (l.ifindex == ev->fp->lookup_ifindex)
			fp_lookup_gone(ev->fp);
	} else if (nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_NEWADDR)
		ev->rescan = true;
	return MNL_CB_OK;
}

int fp_netlink_fd(struct fastpath *fp)
{
	return mnl_socket_get_fd(fp->nl);
}

void fp_netlink_event(struct fastpath *fp)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_event ev = { fp, false, false };
	ssize_t len;

	while ((len = mnl_socket_recvfrom(fp->nl, buf, sizeof(buf))) != 0) {
		if (len > 0) {
			mnl_cb_run(buf, (size_t)len, 0, 0, netlink_cb, &ev);
			continue;
		}
		/* Events were lost (overrun, or one too big for buf): the
		 * rescan below catches up. */
		if (errno == ENOBUFS || errno == ENOSPC)
			ev.rescan = ev.nh_stale = true;
		else if (errno != EINTR)
			break;
	}
	if (ev.nh_stale)
		fp_flush_next_hops(fp);
	/* One rescan for the batch: it attaches wherever our addresses are
	 * now, whatever the individual messages said. */
	if (ev.rescan)
		fp_scan(fp, false, NULL, 0);
}

/* libxdp's detach reads the dispatcher back, which needs CAP_SYS_ADMIN;
 * without it (xturnd with only its service's capabilities) the program,
 * attached alone, comes off by its id: only if it is still ours. */
void fp_detach_all(struct fastpath *fp)
{
	int ours = fp->nattached ? bpf_program__fd(fp->skel->progs.xturn_xdp) : -1;

	for (unsigned i = 0; i < fp->nattached; i++) {
		const struct fp_iface *f = &fp->attached[i];
		LIBBPF_OPTS(bpf_xdp_attach_opts, xo, .old_prog_fd = ours);
		__u32 flags;
		int err;

		if (f->tc) {
			if ((err = fp_tc_detach(f->ifindex)))
				log_warn("fast path: detaching TC from ifindex %d: %s", f->ifindex,
					 strerror(-err));
			continue;
		}
		fp_libs_quiet(true);
		err = xdp_program__detach(fp->prog, f->ifindex, f->mode, 0);
		fp_libs_quiet(false);
		/* Also what libxdp did not attach: put in place of a stopped
		 * daemon's program (attach()). */
		if (err && (flags = fp_prog_mode(f->ifindex, ours)))
			err = bpf_xdp_detach(f->ifindex, flags, &xo);
		if (err)
			log_warn("fast path: detaching from ifindex %d: %s", f->ifindex,
				 strerror(-err));
	}
	fp->nattached = 0;
}

bool fp_has_tc(const struct fastpath *fp)
{
	for (unsigned i = 0; i < fp->nattached; i++)
		if (fp->attached[i].tc)
			return true;
	return false;
}

void fp_describe(const struct fastpath *fp, FILE *out)
{
	for (unsigned i = 0; i < fp->nattached; i++) {
		char name[IF_NAMESIZE] = "?";

		if_indextoname((unsigned)fp->attached[i].ifindex, name);
		fprintf(out, "  %s: %s\n", name, fp->attached[i].tc ? "TC ingress" :
			fp->attached[i].mode == XDP_MODE_SKB ? "generic XDP" : "native XDP");
	}
}
