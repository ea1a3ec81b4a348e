#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "common/netlink.h"
#include "daemon/fastpath/fp.h"

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

int fp_cfg_write(struct fastpath *fp)
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

int fp_lookup_open(struct fastpath *fp, char *why, size_t whylen)
{
	struct nl_link l;
	int err = -EOPNOTSUPP;

	for (size_t i = 0; i < sizeof(lookup_kinds) / sizeof(lookup_kinds[0]) &&
			   err == -EOPNOTSUPP; i++)
		err = nl_link_add(fp->lookup_dev, lookup_kinds[i]);
	if (err == -EOPNOTSUPP) {
		fp_say(why, whylen, "the kernel has neither the dummy nor the ifb driver");
		return err;
	}
	if (!err || err == -EEXIST)
		err = nl_link_get(fp->lookup_dev, &l);
	if (err) {
		fp_say(why, whylen, "%s", strerror(-err));
		return err;
	}
	/* Someone else's device: not ours to reconfigure or delete. */
	if (!lookup_kind_ok(l.kind)) {
		fp_say(why, whylen, "a device of kind \"%s\" has that name", l.kind);
		return -EEXIST;
	}
	fp->lookup_ifindex = l.ifindex;
	err = nl_link_set_up(l.ifindex);
	if (!err)
		err = forwarding_on(fp->lookup_dev);
	if (err)
		fp_say(why, whylen, "enabling it: %s", strerror(-err));
	return err;
}

void fp_lookup_close(struct fastpath *fp)
{
	if (fp->lookup_ifindex)
		nl_link_del(fp->lookup_ifindex);
	fp->lookup_ifindex = 0;
}

void fp_flush_next_hops(struct fastpath *fp)
{
	fp->cfg.fib_epoch = fp->cfg.fib_epoch + 1 ?: 1;	/* never 0 */
	fp_cfg_write(fp);
}

/* Deleted under us: look up with the ingress interface from now on (the
 * kernel answers FWD_DISABLED there unless forwarding is on, and the daemon
 * relays), and never delete a device that may get its ifindex. */
void fp_lookup_gone(struct fastpath *fp)
{
	fp->lookup_ifindex = 0;
	fp->cfg.fib_ifindex = 0;
	fp_cfg_write(fp);
}
