#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <linux/rtnetlink.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/netlink.h"
#include "common/pins.h"
#include "daemon/fastpath.h"
#include "xturn.skel.h"

#define FP_BPFFS "/sys/fs/bpf"
#define FP_PROG_NAME "xturn_xdp"
#define FP_RELAY_BUCKETS 4096
#define FP_LOOKUP_DEV "xturn0"

enum fp_mode { FP_AUTO, FP_NATIVE, FP_GENERIC };

struct fp_iface {
	int ifindex;
	enum xdp_attach_mode mode;
};

/* One map entry written on behalf of a relayed address, remembered so that
 * fp_relay_del() removes exactly that relay's permissions and channels
 * without walking maps of up to XT_MAX_PERMS entries. */
struct fp_entry {
	bool is_chan;
	union {
		struct xt_perm_key perm;
		struct xt_c2p_key chan;
	};
};

struct fp_relay {
	struct fp_relay *next;
	struct xt_relay_key key;
	struct fp_entry *entries;
	size_t n, cap;
	/* Permissions that did not fit xt_perms: while there are any, the
	 * relay is flagged XT_RELAY_PERMS_INCOMPLETE (peers pass to us). */
	struct xt_perm_key *missing;
	size_t nmissing, capmissing;
};

struct fastpath {
	struct xturn_bpf *skel;
	struct xdp_program *prog;
	enum fp_mode mode;
	bool keep_pins;
	char pin_dir[PATH_MAX - 64];	/* room for "/<map name>" */
	struct xt_cfg cfg;		/* as written to xt_cfg */
	char lookup_dev[IF_NAMESIZE];
	int lookup_ifindex;		/* the lookup device, ours to delete; 0: none */
	struct sockaddr_storage *addrs;
	unsigned naddrs;
	char (*ifaces)[IF_NAMESIZE];
	unsigned nifaces;
	struct fp_iface attached[XT_MAX_IFACES];
	unsigned nattached;
	struct mnl_socket *nl;
	unsigned nchans;		/* bindings in the maps */
	unsigned perms_missing;		/* permissions not in xt_perms, all relays */
	struct fp_relay *relays[FP_RELAY_BUCKETS];
};

static void say(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* A full hash map answers -E2BIG; the header promises -ENOSPC. */
static int map_err(int err)
{
	return err == -E2BIG ? -ENOSPC : err;
}

/* ---- userspace record of what each relay owns ---------------------------- */

static void relay_key(const struct sockaddr_storage *relay, struct xt_relay_key *k)
{
	memset(k, 0, sizeof(*k));
	addr_to_mapped(relay, k->relay);
	k->relay_port = htons(addr_port(relay));
}

static struct fp_relay **relay_slot(struct fastpath *fp, const struct xt_relay_key *k)
{
	uint32_t h = k->relay[0] ^ k->relay[1] ^ k->relay[2] ^ k->relay[3] ^ k->relay_port;
	struct fp_relay **pp = &fp->relays[(h * 2654435761u) >> 20 & (FP_RELAY_BUCKETS - 1)];

	while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)))
		pp = &(*pp)->next;
	return pp;
}

static struct fp_relay *relay_get(struct fastpath *fp, const struct xt_relay_key *k)
{
	struct fp_relay **pp = relay_slot(fp, k);

	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp)
			(*pp)->key = *k;
	}
	return *pp;
}

/* Room for one more of n items of size in *arr (capacity *cap): 0 or -ENOMEM. */
static int room_for_one(void **arr, size_t n, size_t *cap, size_t size)
{
	size_t c = *cap ? 2 * *cap : 4;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, c * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* Makes room for one more entry before the maps are written, so a failed
 * allocation never leaves a map entry the record does not know about. */
static int relay_reserve(struct fp_relay *r)
{
	return room_for_one((void **)&r->entries, r->n, &r->cap, sizeof(*r->entries));
}

static struct fp_entry *relay_find(struct fp_relay *r, const struct fp_entry *e)
{
	for (size_t i = 0; i < r->n; i++)
		if (!memcmp(&r->entries[i], e, sizeof(*e)))
			return &r->entries[i];
	return NULL;
}

static void relay_forget(struct fastpath *fp, const struct xt_relay_key *k,
			 const struct fp_entry *e)
{
	struct fp_relay *r = *relay_slot(fp, k);
	struct fp_entry *found = r ? relay_find(r, e) : NULL;

	if (found)
		*found = r->entries[--r->n];
}

/* ---- map writes ------------------------------------------------------------ */

int fp_relay_add(struct fastpath *fp, const struct sockaddr_storage *relay)
{
	struct xt_relay_key k;
	struct xt_relay_val v = { 0 };

	relay_key(relay, &k);
	if (!relay_get(fp, &k))
		return -ENOMEM;
	return map_err(bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_relays), &k, &v,
					   BPF_ANY));
}

static struct xt_perm_key *missing_find(struct fp_relay *r, const struct xt_perm_key *k)
{
	for (size_t i = 0; i < r->nmissing; i++)
		if (!memcmp(&r->missing[i], k, sizeof(*k)))
			return &r->missing[i];
	return NULL;
}

/* Writes the relay's flags as its missing permissions say. */
static void relay_flags(struct fastpath *fp, struct fp_relay *r)
{
	struct xt_relay_val v = { .flags = r->nmissing ? XT_RELAY_PERMS_INCOMPLETE : 0 };

	bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_relays), &r->key, &v, BPF_EXIST);
}

/* A permission the map could not take: remembered (a refresh retries it),
 * the relay flagged. -ENOMEM if even that fails (then XDP drops the peer). */
static int missing_add(struct fastpath *fp, struct fp_relay *r, const struct xt_perm_key *k)
{
	if (missing_find(r, k))
		return 0;
	if (room_for_one((void **)&r->missing, r->nmissing, &r->capmissing, sizeof(*k)))
		return -ENOMEM;
	r->missing[r->nmissing++] = *k;
	fp->perms_missing++;
	if (r->nmissing == 1)
		relay_flags(fp, r);
	return 0;
}

static void missing_del(struct fastpath *fp, struct fp_relay *r, const struct xt_perm_key *k)
{
	struct xt_perm_key *m = missing_find(r, k);

	if (!m)
		return;
	*m = r->missing[--r->nmissing];
	fp->perms_missing--;
	if (!r->nmissing)
		relay_flags(fp, r);
}

static void perm_entry(const struct sockaddr_storage *relay, const struct sockaddr_storage *peer,
		       struct fp_entry *e)
{
	memset(e, 0, sizeof(*e));
	addr_to_mapped(relay, e->perm.relay);
	addr_to_mapped(peer, e->perm.peer);
	e->perm.relay_port = htons(addr_port(relay));
}

int fp_perm_add(struct fastpath *fp, const struct sockaddr_storage *relay,
		const struct sockaddr_storage *peer)
{
	struct xt_relay_key rk;
	struct xt_perm_val v = { 0 };
	struct fp_relay *r;
	struct fp_entry e;
	int err;

	relay_key(relay, &rk);
	r = relay_get(fp, &rk);
	if (!r || relay_reserve(r))
		return -ENOMEM;
	perm_entry(relay, peer, &e);
	err = bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_perms), &e.perm, &v, BPF_ANY);
	if (err) {
		err = map_err(err);
		return missing_add(fp, r, &e.perm) ? -ENOMEM : err;
	}
	missing_del(fp, r, &e.perm);
	/* A refreshed permission is written again but recorded once. */
	if (!relay_find(r, &e))
		r->entries[r->n++] = e;
	return 0;
}

void fp_perm_del(struct fastpath *fp, const struct sockaddr_storage *relay,
		 const struct sockaddr_storage *peer)
{
	struct xt_relay_key rk;
	struct fp_entry e;
	struct fp_relay *r;

	relay_key(relay, &rk);
	perm_entry(relay, peer, &e);
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_perms), &e.perm);
	relay_forget(fp, &rk, &e);
	r = *relay_slot(fp, &rk);
	if (r)
		missing_del(fp, r, &e.perm);
}

static void chan_entry(const struct fp_chan *c, struct fp_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->is_chan = true;
	addr_to_mapped(&c->client, e->chan.client);
	addr_to_mapped(&c->listener, e->chan.listener);
	e->chan.client_port = htons(addr_port(&c->client));
	e->chan.listener_port = htons(addr_port(&c->listener));
	e->chan.channel = htons(c->channel);
}

/* Deletes both directions of the binding keyed k (the p2c key comes from
 * the map, not from the caller). */
static void chan_remove(struct fastpath *fp, const struct fp_entry *e)
{
	int c2p = bpf_map__fd(fp->skel->maps.xt_c2p);
	struct xt_relay_key rk = { 0 };
	struct xt_p2c_key pk;
	struct xt_c2p_val v;

	if (bpf_map_lookup_elem(c2p, &e->chan, &v) || bpf_map_delete_elem(c2p, &e->chan))
		return;
	xt_p2c_key_of(&v, &pk);
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_p2c), &pk);
	fp->nchans--;
	memcpy(rk.relay, v.relay, sizeof(rk.relay));
	rk.relay_port = v.relay_port;
	relay_forget(fp, &rk, e);
}

int fp_chan_add(struct fastpath *fp, const struct fp_chan *c)
{
	int c2p = bpf_map__fd(fp->skel->maps.xt_c2p), p2c = bpf_map__fd(fp->skel->maps.xt_p2c);
	struct xt_relay_key rk;
	struct xt_c2p_val v = { 0 };
	struct xt_p2c_key pk;
	struct xt_p2c_val pv = { 0 };
	struct fp_relay *r;
	struct fp_entry e;
	int err;

	relay_key(&c->relay, &rk);
	r = relay_get(fp, &rk);
	if (!r || relay_reserve(r))
		return -ENOMEM;
	chan_entry(c, &e);
	/* A rebinding replaces the old binding: its p2c key may differ. */
	chan_remove(fp, &e);

	addr_to_mapped(&c->relay, v.relay);
	addr_to_mapped(&c->peer, v.peer);
	v.relay_port = htons(addr_port(&c->relay));
	v.peer_port = htons(addr_port(&c->peer));
	/* Our relays share the relay's IP (one relay-ip per family), so only
	 * such a peer can be one (hairpin). A relay on another of our IPs is
	 * still reached, through the kernel: the route lookup finds it local. */
	if (addr_ip_eq(&c->peer, &c->relay))
		v.flags = XT_C2P_PEER_LOCAL;
	xt_p2c_key_of(&v, &pk);
	memcpy(pv.client, e.chan.client, sizeof(pv.client));
	memcpy(pv.listener, e.chan.listener, sizeof(pv.listener));
	pv.client_port = e.chan.client_port;
	pv.listener_port = e.chan.listener_port;
	pv.channel = e.chan.channel;

	err = bpf_map_update_elem(p2c, &pk, &pv, BPF_NOEXIST);
	if (err)
		return map_err(err);
	err = bpf_map_update_elem(c2p, &e.chan, &v, BPF_NOEXIST);
	if (err) {
		bpf_map_delete_elem(p2c, &pk);
		return map_err(err);
	}
	/* chan_remove() above took any earlier copy out of the record. */
	r->entries[r->n++] = e;
	fp->nchans++;
	return 0;
}

void fp_chan_del(struct fastpath *fp, const struct fp_chan *c)
{
	struct fp_entry e;

	chan_entry(c, &e);
	chan_remove(fp, &e);
}

void fp_relay_del(struct fastpath *fp, const struct sockaddr_storage *relay)
{
	struct xt_relay_key k;
	struct fp_relay **pp, *r;

	relay_key(relay, &k);
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_relays), &k);
	pp = relay_slot(fp, &k);
	r = *pp;
	if (!r)
		return;
	/* Unlinked first, so chan_remove()'s relay_forget() leaves it alone. */
	*pp = r->next;
	for (size_t i = 0; i < r->n; i++) {
		if (r->entries[i].is_chan)
			chan_remove(fp, &r->entries[i]);
		else
			bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_perms),
					    &r->entries[i].perm);
	}
	fp->perms_missing -= r->nmissing;
	free(r->missing);
	free(r->entries);
	free(r);
}

unsigned fp_perms_missing(const struct fastpath *fp)
{
	return fp->perms_missing;
}

/* ---- counters -------------------------------------------------------------- */

int fp_counters(struct fastpath *fp, struct xt_count out[XT_CNT_MAX])
{
	return pins_read_counters(bpf_map__fd(fp->skel->maps.xt_stats), out);
}

unsigned fp_chan_count(struct fastpath *fp)
{
	return fp->nchans;
}

/* ---- the lookup device ------------------------------------------------------ */

/* Kinds of device that carry no traffic of their own. ifb, for kernels built
 * without the dummy driver, drops whatever tc does not redirect to it. */
static const char *const lookup_kinds[] = { "dummy", "ifb" };

static bool lookup_kind_ok(const char *kind)
{
	for (size_t i = 0; i < sizeof(lookup_kinds) / sizeof(lookup_kinds[0]); i++)
		if (!strcmp(kind, lookup_kinds[i]))
			return true;
	return false;
}

static int cfg_write(struct fastpath *fp)
{
	__u32 zero = 0;

	return bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_cfg), &zero, &fp->cfg, BPF_ANY);
}

/* net.ipv4/ipv6.conf.DEV.forwarding=1: per device and per network namespace. */
static int forwarding_on(const char *dev)
{
	static const char *const fams[] = { "ipv4", "ipv6" };
	char path[96];

	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		int fd, err = 0;

		snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/forwarding", fams[i], dev);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		/* A kernel without IPv6 has no IPv6 lookups to enable. */
		if (fd < 0 && errno == ENOENT && i == 1)
			continue;
		if (fd < 0)
			return -errno;
		if (write(fd, "1", 1) != 1)
			err = errno ? -errno : -EIO;
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

/* Creates the lookup device, or takes over the one a crashed run left, and
 * turns forwarding on for it. 0, or -errno with why saying what failed. */
static int lookup_dev_open(struct fastpath *fp, char *why, size_t whylen)
{
	struct nl_link l;
	int err = -EOPNOTSUPP;

	for (size_t i = 0; i < sizeof(lookup_kinds) / sizeof(lookup_kinds[0]) &&
			   err == -EOPNOTSUPP; i++)
		err = nl_link_add(fp->lookup_dev, lookup_kinds[i]);
	if (err == -EOPNOTSUPP) {
		say(why, whylen, "the kernel has neither the dummy nor the ifb driver");
		return err;
	}
	if (!err || err == -EEXIST)
		err = nl_link_get(fp->lookup_dev, &l);
	if (err) {
		say(why, whylen, "%s", strerror(-err));
		return err;
	}
	/* Someone else's device: not ours to reconfigure or delete. */
	if (!lookup_kind_ok(l.kind)) {
		say(why, whylen, "a device of kind \"%s\" has that name", l.kind);
		return -EEXIST;
	}
	fp->lookup_ifindex = l.ifindex;
	err = nl_link_set_up(l.ifindex);
	if (!err)
		err = forwarding_on(fp->lookup_dev);
	if (err)
		say(why, whylen, "enabling it: %s", strerror(-err));
	return err;
}

static void lookup_dev_close(struct fastpath *fp)
{
	if (fp->lookup_ifindex)
		nl_link_del(fp->lookup_ifindex);
	fp->lookup_ifindex = 0;
}

/* Next hops the XDP program cached in bindings are good for one epoch. */
static void flush_next_hops(struct fastpath *fp)
{
	fp->cfg.fib_epoch = fp->cfg.fib_epoch + 1 ?: 1;	/* never 0 */
	cfg_write(fp);
}

/* Deleted under us: look up with the ingress interface from now on (the
 * kernel answers FWD_DISABLED there unless forwarding is on, and the daemon
 * relays), and never delete a device that may get its ifindex. */
static void lookup_dev_gone(struct fastpath *fp)
{
	fp->lookup_ifindex = 0;
	fp->cfg.fib_ifindex = 0;
	cfg_write(fp);
}

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
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *main;

	if (libxdp_get_error(mp) || !mp)
		return;
	main = xdp_multiprog__main_prog(mp);
	if (xdp_multiprog__is_legacy(mp) && main && !strcmp(xdp_program__name(main), FP_PROG_NAME))
		xdp_multiprog__detach(mp);
	xdp_multiprog__close(mp);
}

static int attach(struct fastpath *fp, const struct nl_link *l, char *why, size_t whylen)
{
	static const struct { enum fp_mode use; enum xdp_attach_mode mode; const char *name; }
	tries[] = {
		{ FP_NATIVE, XDP_MODE_NATIVE, "native" },
		{ FP_GENERIC, XDP_MODE_SKB, "generic" },
	};
	uint32_t ifindex = (uint32_t)l->ifindex;
	char msg[256] = "";
	size_t off = 0;
	int err = -EINVAL;

	/* The lookup device carries no traffic: nothing to attach to. */
	if (iface_find(fp, l->ifindex) || l->ifindex == fp->lookup_ifindex)
		return 0;
	if (fp->nattached == XT_MAX_IFACES) {
		say(why, whylen, "%s: more than %d interfaces", l->name, XT_MAX_IFACES);
		return -ENOSPC;
	}
	detach_stale(l->ifindex);
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		if (fp->mode != FP_AUTO && fp->mode != tries[i].use)
			continue;
		err = xdp_program__attach(fp->prog, l->ifindex, tries[i].mode, 0);
		if (!err) {
			fp->attached[fp->nattached++] = (struct fp_iface){ l->ifindex, tries[i].mode };
			break;
		}
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s XDP: %s",
					off ? ", " : "", tries[i].name, strerror(-err));
		if (off >= sizeof(msg))
			break;
	}
	if (err) {
		say(why, whylen, "attaching to %s failed: %s", l->name, msg);
		return err;
	}
	err = bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_tx_ports), &ifindex, &ifindex,
				  BPF_ANY);
	if (err)
		say(why, whylen, "%s: adding to %s failed: %s", l->name, XT_MAP_TX_PORTS,
		    strerror(-err));
	return err;
}

static void forget(struct fastpath *fp, int ifindex)
{
	struct fp_iface *f = iface_find(fp, ifindex);
	uint32_t key = (uint32_t)ifindex;

	if (!f)
		return;
	*f = fp->attached[--fp->nattached];
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_tx_ports), &key);
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

/* Attaches to every interface that should have the program and lacks it.
 * strict (fp_open): an address on no interface, an unknown interface name,
 * an attach failure or nothing to attach to is an error explained in why;
 * otherwise (following netlink) such things are skipped. */
static int scan(struct fastpath *fp, bool strict, char *why, size_t whylen)
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
		say(why, whylen, "rtnetlink dump failed: %s", strerror(-err));
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
			say(why, whylen, "address %s is on no interface",
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
			say(why, whylen, "interface %s does not exist", fp->ifaces[i]);
			err = -ENODEV;
		}
		if (!strict)
			err = 0;
	}
	if (!err && strict && !fp->nattached) {
		if (on_lo)
			say(why, whylen, "the addresses are on loopback only: no XDP needed");
		else
			say(why, whylen, "no up, non-loopback interface to attach to");
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
			lookup_dev_gone(ev->fp);
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
		flush_next_hops(fp);
	/* One rescan for the batch: it attaches wherever our addresses are
	 * now, whatever the individual messages said. */
	if (ev.rescan)
		scan(fp, false, NULL, 0);
}

/* ---- open / close ---------------------------------------------------------- */

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && (unsigned long)st.f_type == BPF_FS_MAGIC;
}

/* Mounts a bpffs on /sys/fs/bpf if there is none (`ip netns exec` gives a
 * fresh /sys without one; libxdp keeps its state there), then creates the
 * pin dir, which must be on a bpffs. */
static int pin_dir_prepare(const char *dir, char *why, size_t whylen)
{
	char path[PATH_MAX], *slash;
	struct stat st;
	int mount_err = 0;

	if (!is_bpffs(FP_BPFFS) && mount("bpf", FP_BPFFS, "bpf", 0, "mode=0700"))
		mount_err = errno;
	snprintf(path, sizeof(path), "%s", dir);
	while (stat(path, &st) && errno == ENOENT && (slash = strrchr(path, '/')) && slash != path)
		*slash = '\0';
	if (!is_bpffs(path)) {
		say(why, whylen, "pin dir %s is not on a bpffs%s%s", dir,
		    mount_err ? "; mount -t bpf " FP_BPFFS " failed: " : "",
		    mount_err ? strerror(mount_err) : "");
		return -ENOTSUP;
	}
	/* mkdir -p */
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST) {
			int err = -errno;

			say(why, whylen, "mkdir %s: %s", path, strerror(-err));
			return err;
		}
		if (!c)
			return 0;
		*p = c;
	}
}

/* Binding maps start empty: the daemon's TURN state does not survive it.
 * The global counters and the config are kept across restarts unless the
 * pins are of another ABI, which libbpf could not reuse anyway. */
static bool keeps_state(const struct bpf_map *m)
{
	const char *n = bpf_map__name(m);

	return !strcmp(n, XT_MAP_STATS) || !strcmp(n, XT_MAP_CFG);
}

static bool pin_matches(const struct bpf_map *m, int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct xt_cfg cfg;
	__u32 zero = 0;

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != bpf_map__type(m) ||
	    info.key_size != bpf_map__key_size(m) || info.value_size != bpf_map__value_size(m) ||
	    info.max_entries != bpf_map__max_entries(m) || info.map_flags != bpf_map__map_flags(m))
		return false;
	if (strcmp(bpf_map__name(m), XT_MAP_CFG))
		return true;
	/* Same sizes, but a program of another ABI version wrote it. */
	return bpf_map_lookup_elem(fd, &zero, &cfg) ||
	       (cfg.magic == XT_MAGIC && cfg.abi_version == XT_ABI_VERSION);
}

static void pins_prepare(struct fastpath *fp, char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	bool stale = false;

	bpf_object__for_each_map(m, fp->skel->obj) {
		int fd;

		/* The others are replaced below anyway. */
		if (!keeps_state(m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", fp->pin_dir, bpf_map__name(m));
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		stale |= !pin_matches(m, fd);
		close(fd);
	}
	bpf_object__for_each_map(m, fp->skel->obj) {
		if (!stale && keeps_state(m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", fp->pin_dir, bpf_map__name(m));
		unlink(path);
	}
	if (stale)
		say(why, whylen, "pinned maps in %s were of another ABI: replaced", fp->pin_dir);
}

static int fp_load(struct fastpath *fp, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = fp->pin_dir);
	int err;

	fp->skel = xturn_bpf__open_opts(&oo);
	if (!fp->skel) {
		err = -errno;
		say(why, whylen, "opening the BPF object failed: %s", strerror(-err));
		return err;
	}
	pins_prepare(fp, why, whylen);
	err = xturn_bpf__load(fp->skel);
	if (err) {
		say(why, whylen, "loading the XDP program failed: %s", strerror(-err));
		return err;
	}
	/* Written before the first attach, so the program never sees a config
	 * of zeroes with the fast path nominally on. */
	err = cfg_write(fp);
	if (err) {
		say(why, whylen, "writing %s failed: %s", XT_MAP_CFG, strerror(-err));
		return err;
	}
	fp->prog = xdp_program__from_bpf_obj(fp->skel->obj, "xdp");
	err = (int)libxdp_get_error(fp->prog);
	if (err) {
		fp->prog = NULL;
		say(why, whylen, "libxdp refused the program: %s", strerror(-err));
	}
	return err;
}

static int parse_mode(const char *s, enum fp_mode *out)
{
	static const char *const names[] = { [FP_AUTO] = "auto", [FP_NATIVE] = "native",
					     [FP_GENERIC] = "generic" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s ? s : "auto", names[i])) {
			*out = (enum fp_mode)i;
			return 0;
		}
	return -EINVAL;
}

static int copy_opts(struct fastpath *fp, const struct fp_opts *o)
{
	const char *dev = o->lookup_dev ? o->lookup_dev : FP_LOOKUP_DEV;

	fp->keep_pins = o->keep_pins;
	if (snprintf(fp->pin_dir, sizeof(fp->pin_dir), "%s", o->pin_dir) >=
	    (int)sizeof(fp->pin_dir) ||
	    snprintf(fp->lookup_dev, sizeof(fp->lookup_dev), "%s", dev) >=
	    (int)sizeof(fp->lookup_dev))
		return -ENAMETOOLONG;
	/* It becomes part of a /proc/sys path. */
	if (!*dev || strchr(dev, '/'))
		return -EINVAL;
	fp->cfg = (struct xt_cfg){ .magic = XT_MAGIC, .abi_version = XT_ABI_VERSION,
				   .flags = XT_CFG_ENABLED |
					    (o->verify_csum ? XT_CFG_VERIFY_CSUM : 0),
				   .fib_epoch = 1 };
	fp->addrs = calloc(o->naddrs + 1, sizeof(*fp->addrs));
	fp->ifaces = calloc(o->nifaces + 1, sizeof(*fp->ifaces));
	if (!fp->addrs || !fp->ifaces)
		return -ENOMEM;
	memcpy(fp->addrs, o->addrs, o->naddrs * sizeof(*fp->addrs));
	fp->naddrs = o->naddrs;
	for (unsigned i = 0; i < o->nifaces; i++)
		if (snprintf(fp->ifaces[i], IF_NAMESIZE, "%s", o->ifaces[i]) >= IF_NAMESIZE)
			return -ENAMETOOLONG;
	fp->nifaces = o->nifaces;
	return 0;
}

int fp_open(struct fastpath **out, const struct fp_opts *o, char *why, size_t whylen)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct fastpath *fp;
	char note[256], lookup[160];
	int err;

	*out = NULL;
	say(why, whylen, "%s", "");
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	err = parse_mode(o->mode, &fp->mode);
	if (err) {
		say(why, whylen, "unknown XDP mode \"%s\"", o->mode);
		goto fail;
	}
	err = copy_opts(fp, o);
	if (err) {
		say(why, whylen, "bad options: %s", strerror(-err));
		goto fail;
	}
	/* Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; a failure
	 * here shows up as a load error below. */
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	err = pin_dir_prepare(fp->pin_dir, why, whylen);
	if (err)
		goto fail;
	/* Before fp_load(), which writes its ifindex into xt_cfg. Without it
	 * the program looks up with the ingress interface. */
	if (lookup_dev_open(fp, lookup, sizeof(lookup)))
		lookup_dev_close(fp);
	else
		lookup[0] = '\0';
	fp->cfg.fib_ifindex = (__u32)fp->lookup_ifindex;
	err = fp_load(fp, why, whylen);
	if (err)
		goto fail;
	/* Subscribed before the dumps in scan(), so no change falls between. */
	fp->nl = nl_subscribe(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
			      RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	if (!fp->nl) {
		err = -errno;
		say(why, whylen, "rtnetlink socket: %s", strerror(-err));
		goto fail;
	}
	/* pins_prepare() may have left a note; a failure overwrites it. */
	snprintf(note, sizeof(note), "%s", whylen ? why : "");
	err = scan(fp, true, why, whylen);
	if (err)
		goto fail;
	if (lookup[0])
		say(why, whylen, "%s%sno lookup device %s (%s): the fast path needs forwarding "
		    "on the interfaces (net.ipv4.conf.IF.forwarding, net.ipv6.conf.IF.forwarding) "
		    "or the dummy module", note, note[0] ? "; " : "", fp->lookup_dev, lookup);
	else
		say(why, whylen, "%s", note);
	*out = fp;
	return 0;
fail:
	fp_close(fp);
	return err;
}

void fp_close(struct fastpath *fp)
{
	if (!fp)
		return;
	for (unsigned i = 0; i < fp->nattached; i++)
		xdp_program__detach(fp->prog, fp->attached[i].ifindex, fp->attached[i].mode, 0);
	xdp_program__close(fp->prog);
	if (fp->nl)
		mnl_socket_close(fp->nl);
	lookup_dev_close(fp);
	/* Map by map: bpf_object__unpin_maps() stops at the first pin that
	 * is missing (a failed open may have pinned none). */
	if (fp->skel && !fp->keep_pins) {
		struct bpf_map *m;

		bpf_object__for_each_map(m, fp->skel->obj)
			if (bpf_map__pin_path(m))
				unlink(bpf_map__pin_path(m));
	}
	xturn_bpf__destroy(fp->skel);
	/* Only when empty: the pin dir may be shared with other files. */
	if (!fp->keep_pins && fp->pin_dir[0])
		rmdir(fp->pin_dir);
	for (unsigned i = 0; i < FP_RELAY_BUCKETS; i++) {
		while (fp->relays[i]) {
			struct fp_relay *r = fp->relays[i];

			fp->relays[i] = r->next;
			free(r->missing);
			free(r->entries);
			free(r);
		}
	}
	free(fp->addrs);
	free(fp->ifaces);
	free(fp);
}

/* ---- libbpf and libxdp messages ------------------------------------------------ */

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	/* libbpf's warnings on probing are noise unless debugging. */
	log_vmsg(lvl == LIBBPF_WARN ? LOG_INFO : LOG_DEBUG, fmt, ap);
	return 0;
}

static int libxdp_print(enum libxdp_print_level lvl, const char *fmt, va_list ap)
{
	log_vmsg(lvl == LIBXDP_WARN ? LOG_INFO : LOG_DEBUG, fmt, ap);
	return 0;
}

void fp_route_logs(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}
