#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/rtnetlink.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/log.h"
#include "common/netlink.h"
#include "common/pins.h"
#include "daemon/fastpath/fp.h"

#define FP_LOOKUP_DEV "xturn0"

/* ---- open / close ---------------------------------------------------------- */

/* Mounts a bpffs on /sys/fs/bpf if there is none (libxdp keeps its state
 * there), then creates the pin dir, which must be on a bpffs. */
static int pin_dir_prepare(const char *dir, char *why, size_t whylen)
{
	char path[PATH_MAX], *slash;
	struct stat st;
	int mount_err = -pins_mount_bpffs();
	snprintf(path, sizeof(path), "%s", dir);
	while (stat(path, &st) && errno == ENOENT && (slash = strrchr(path, '/')) && slash != path)
		*slash = '\0';
	if (!pins_is_bpffs(path)) {
		fp_say(why, whylen, "pin dir %s is not on a bpffs%s%s", dir,
		    mount_err ? "; mount -t bpf " PINS_BPFFS " failed: " : "",
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

			fp_say(why, whylen, "mkdir %s: %s", path, strerror(-err));
			return err;
		}
		if (!c)
			return 0;
		*p = c;
	}
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

/* Pinned maps a stopped daemon left are kept when they are of this ABI:
 * libbpf reuses them, the XDP program it left goes on forwarding their
 * bindings until the new one takes its place, and what the new daemon does
 * not re-add (from its journal) is swept (fp_sweep). Of another ABI or size
 * (xdp-max-bindings...), all go. */
static void pins_prepare(struct fastpath *fp, char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	bool stale = false;
	int fd0;

	/* The kernel reports a devmap's flags with BPF_F_RDONLY_PROG added,
	 * so libbpf would refuse to reuse it: a new one, given the old one's
	 * interfaces before our program replaces the old on any of them (a
	 * packet the new program takes in on one may be redirected to one the
	 * old program still serves). */
	snprintf(path, sizeof(path), "%s/%s", fp->pin_dir, XT_MAP_TX_PORTS);
	if ((fd0 = bpf_obj_get(path)) >= 0) {
		__u32 k, *prev = NULL;

		while (fp->nold_ports < XT_MAX_IFACES && !bpf_map_get_next_key(fd0, prev, &k)) {
			fp->old_ports[fp->nold_ports++] = k;
			prev = &k;
		}
		close(fd0);
	}
	unlink(path);
	bpf_object__for_each_map(m, fp->skel->obj) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", fp->pin_dir, bpf_map__name(m));
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		stale |= !pin_matches(m, fd);
		close(fd);
	}
	if (!stale)
		return;
	/* The daemon re-adds its journal's bindings to the new maps; until
	 * then the stopped daemon's program forwards from the old ones. */
	bpf_object__for_each_map(m, fp->skel->obj) {
		snprintf(path, sizeof(path), "%s/%s", fp->pin_dir, bpf_map__name(m));
		unlink(path);
	}
	fp_say(why, whylen, "pinned maps in %s were of another ABI or size: replaced", fp->pin_dir);
}

static int fp_load(struct fastpath *fp, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = fp->pin_dir);
	int err;

	fp->skel = xturn_bpf__open_opts(&oo);
	if (!fp->skel) {
		err = -errno;
		fp_say(why, whylen, "opening the BPF object failed: %s", strerror(-err));
		return err;
	}
	/* Before the pins are compared (pin_matches): a map pinned at
	 * another size is replaced, not reused. */
	bpf_map__set_max_entries(fp->skel->maps.xt_c2p, fp->max_bindings);
	bpf_map__set_max_entries(fp->skel->maps.xt_p2c, fp->max_bindings);
	bpf_map__set_max_entries(fp->skel->maps.xt_expiry, fp->max_bindings);
	bpf_map__set_max_entries(fp->skel->maps.xt_relays, fp->max_relays);
	bpf_map__set_max_entries(fp->skel->maps.xt_perms, fp->max_perms);
	pins_prepare(fp, why, whylen);
	err = xturn_bpf__load(fp->skel);
	if (err) {
		fp_say(why, whylen, "loading the XDP program failed: %s", strerror(-err));
		return err;
	}
	/* Written before the first attach, so the program never sees a config
	 * of zeroes with the fast path nominally on. */
	err = fp_cfg_write(fp);
	if (err) {
		fp_say(why, whylen, "writing %s failed: %s", XT_MAP_CFG, strerror(-err));
		return err;
	}
	fp->prog = xdp_program__from_bpf_obj(fp->skel->obj, "xdp");
	err = (int)libxdp_get_error(fp->prog);
	if (err) {
		fp->prog = NULL;
		fp_say(why, whylen, "libxdp refused the program: %s", strerror(-err));
	}
	return err;
}

static int parse_mode(const char *s, enum fp_mode *out)
{
	static const char *const names[] = { [FP_AUTO] = "auto", [FP_NATIVE] = "native",
					     [FP_GENERIC] = "generic", [FP_TC] = "tc" };

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
	fp->max_bindings = o->max_bindings ? o->max_bindings : XT_DEF_BINDINGS;
	fp->max_relays = o->max_relays ? o->max_relays : XT_DEF_RELAYS;
	fp->max_perms = o->max_perms ? o->max_perms : XT_DEF_PERMS;
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
	char note[256], lookup[160], prog[PATH_MAX];
	int err;

	*out = NULL;
	fp_say(why, whylen, "%s", "");
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	fp->lock_fd = fp->stale_fds[FP_PROG_XDP] = fp->stale_fds[FP_PROG_TC] = -1;
	err = parse_mode(o->mode, &fp->mode);
	if (err) {
		fp_say(why, whylen, "unknown XDP mode \"%s\"", o->mode);
		goto fail;
	}
	err = copy_opts(fp, o);
	if (err) {
		fp_say(why, whylen, "bad options: %s", strerror(-err));
		goto fail;
	}
	/* Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; a failure
	 * here shows up as a load error below. */
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	err = pin_dir_prepare(fp->pin_dir, why, whylen);
	if (err)
		goto fail;
	/* Ours until we exit, however we exit: two daemons on one pin dir
	 * would replace each other's maps. */
	fp->lock_fd = o->lock_fd > 0 ? o->lock_fd : fp_pin_dir_lock(fp->pin_dir);
	if (fp->lock_fd < 0) {
		err = fp->lock_fd;
		fp_say(why, whylen, err == -EBUSY ? "pin dir %s is in use by another running "
		       "xturnd (bpf-pin-dir)" : "pin dir %s: %s", fp->pin_dir, strerror(-err));
		goto fail;
	}
	/* A stopped daemon's programs stay until ours replace them (attach). */
	for (int i = 0; i < FP_NPROGS; i++) {
		snprintf(prog, sizeof(prog), "%s/%s", fp->pin_dir, fp_prog_pins[i]);
		fp->stale_fds[i] = bpf_obj_get(prog);
		unlink(prog);
	}
	/* Before fp_load(), which writes its ifindex into xt_cfg. Without it
	 * the program looks up with the ingress interface. */
	if (fp_lookup_open(fp, lookup, sizeof(lookup)))
		fp_lookup_close(fp);
	else
		lookup[0] = '\0';
	fp->cfg.fib_ifindex = (__u32)fp->lookup_ifindex;
	err = fp_load(fp, why, whylen);
	if (!err && ((err = fp_slots_init(fp)) || (err = fp_relays_init(fp))))
		fp_say(why, whylen, "out of memory");
	if (err)
		goto fail;
	for (unsigned i = 0; i < fp->nold_ports; i++)
		bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_tx_ports), &fp->old_ports[i],
				    &fp->old_ports[i], BPF_ANY);
	/* Subscribed before the dumps in scan(), so no change falls between. */
	fp->nl = nl_subscribe(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
			      RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	if (!fp->nl) {
		err = -errno;
		fp_say(why, whylen, "rtnetlink socket: %s", strerror(-err));
		goto fail;
	}
	/* Pinned for the next daemon, should this one not stop cleanly. */
	for (int i = 0; i < FP_NPROGS; i++) {
		snprintf(prog, sizeof(prog), "%s/%s", fp->pin_dir, fp_prog_pins[i]);
		unlink(prog);
		if (bpf_obj_pin(bpf_program__fd(i == FP_PROG_TC ? fp->skel->progs.xturn_tc :
						fp->skel->progs.xturn_xdp), prog))
			log_warn("fast path: pinning the program at %s: %s", prog,
				 strerror(errno));
	}
	/* pins_prepare() may have left a note; a failure overwrites it. */
	snprintf(note, sizeof(note), "%s", whylen ? why : "");
	err = fp_scan(fp, true, why, whylen);
	if (err)
		goto fail;
	/* The old program's interfaces that are not ours any more. */
	for (unsigned i = 0; i < fp->nold_ports; i++) {
		bool ours = false;

		for (unsigned k = 0; k < fp->nattached; k++)
			ours |= (__u32)fp->attached[k].ifindex == fp->old_ports[i];
		if (!ours)
			fp_tx_port_del(fp, fp->old_ports[i]);
	}
	/* Where ours did not take its place (an interface no longer ours). */
	for (int i = 0; i < FP_NPROGS; i++)
		if (fp->stale_fds[i] >= 0) {
			fp_detach_prog(fp->stale_fds[i]);
			close(fp->stale_fds[i]);
			fp->stale_fds[i] = -1;
		}
	if (lookup[0])
		fp_say(why, whylen, "%s%sno lookup device %s (%s): the fast path needs forwarding "
		    "on the interfaces (net.ipv4.conf.IF.forwarding, net.ipv6.conf.IF.forwarding) "
		    "or the dummy module", note, note[0] ? "; " : "", fp->lookup_dev, lookup);
	else
		fp_say(why, whylen, "%s", note);
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
	fp_detach_all(fp);
	xdp_program__close(fp->prog);
	if (fp->nl)
		mnl_socket_close(fp->nl);
	fp_lookup_close(fp);
	/* Map by map: bpf_object__unpin_maps() stops at the first pin that
	 * is missing (a failed open may have pinned none). */
	if (fp->skel && !fp->keep_pins) {
		char prog[PATH_MAX];
		struct bpf_map *m;

		bpf_object__for_each_map(m, fp->skel->obj)
			if (bpf_map__pin_path(m))
				unlink(bpf_map__pin_path(m));
		for (int i = 0; i < FP_NPROGS; i++) {
			snprintf(prog, sizeof(prog), "%s/%s", fp->pin_dir, fp_prog_pins[i]);
			unlink(prog);
		}
	}
	xturn_bpf__destroy(fp->skel);
	/* Only when empty: the pin dir may be shared with other files. */
	if (!fp->keep_pins && fp->pin_dir[0])
		rmdir(fp->pin_dir);
	fp_relays_free(fp);
	free(fp->free_slots);
	for (int i = 0; i < FP_NPROGS; i++)
		if (fp->stale_fds[i] >= 0)
			close(fp->stale_fds[i]);
	if (fp->lock_fd >= 0)
		close(fp->lock_fd);
	free(fp->addrs);
	free(fp->ifaces);
	free(fp);
}

/* ---- libbpf and libxdp messages ------------------------------------------------ */

/* While an attach runs: libxdp tries its multi-program dispatcher first,
 * and where the kernel refuses it (freplace, here EPERM) libbpf and libxdp
 * warn in five lines before libxdp attaches the single program instead.
 * attach() says in one line what happened. */
static unsigned libs_quiet;	/* nested quiet sections */

/* The kernel's own reason for the last refusal libbpf reported while quiet
 * (netlink's extended ack: "Underlying driver does not support XDP in
 * native mode", a driver's "disable GRO_HW first"...). */
static char kernel_msg[256];
#define KERNEL_MSG "libbpf: Kernel error message: "

void fp_libs_quiet(bool on)
{
	if (on && !libs_quiet++)
		kernel_msg[0] = 0;
	else if (!on && libs_quiet)
		libs_quiet--;
}

const char *fp_libs_kernel_msg(void)
{
	return kernel_msg;
}

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char line[512];
	va_list copy;

	va_copy(copy, ap);
	vsnprintf(line, sizeof(line), fmt, copy);
	va_end(copy);
	if (libs_quiet && !strncmp(line, KERNEL_MSG, sizeof(KERNEL_MSG) - 1)) {
		const char *m = line + sizeof(KERNEL_MSG) - 1;
		size_t n = strcspn(m, "\n");

		if (n >= sizeof(kernel_msg))
			n = sizeof(kernel_msg) - 1;
		memcpy(kernel_msg, m, n);
		kernel_msg[n] = 0;
	}
	/* libbpf's warnings on probing are noise unless debugging. */
	log_msg(lvl == LIBBPF_WARN && !libs_quiet ? LOG_INFO : LOG_DEBUG, "%s", line);
	return 0;
}

static int libxdp_print(enum libxdp_print_level lvl, const char *fmt, va_list ap)
{
	log_vmsg(lvl == LIBXDP_WARN && !libs_quiet ? LOG_INFO : LOG_DEBUG, fmt, ap);
	return 0;
}

void fp_route_logs(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}

int fp_lock_fd(const struct fastpath *fp)
{
	return fp->lock_fd;
}
