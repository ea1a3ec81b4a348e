/* What a daemon that did not stop cleanly (SIGKILL, a crash, OOM) leaves
 * behind: its program attached (forwarding, until the lifetimes in its maps
 * end), its pins, its lookup device. A daemon holds its pin dir locked while
 * it runs, so the next one knows whether they are a live daemon's or
 * leftovers. The program is found by its id on the interfaces (reading what
 * is attached needs no privilege, unlike libxdp's look at a program); one
 * behind libxdp's dispatcher is libxdp's to remove (attach.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/log.h"
#include "common/netlink.h"
#include "daemon/fastpath/fp.h"

const char *const fp_prog_pins[FP_NPROGS] = { XT_PIN_PROG, XT_PIN_PROG_TC };

static const char *const pin_names[] = {
	XT_MAP_C2P, XT_MAP_P2C, XT_MAP_RELAYS, XT_MAP_PERMS, XT_MAP_STATS,
	XT_MAP_TX_PORTS, XT_MAP_CFG, XT_MAP_EXPIRY, XT_PIN_PROG, XT_PIN_PROG_TC,
};

int fp_pin_dir_lock(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* flock: released by the kernel however the process ends. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return err;
	}
	return fd;
}

__u32 fp_prog_mode(int ifindex, int prog_fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) || bpf_xdp_query(ifindex, 0, &q))
		return 0;
	return q.drv_prog_id == info.id ? XDP_FLAGS_DRV_MODE :
	       q.skb_prog_id == info.id ? XDP_FLAGS_SKB_MODE :
	       q.hw_prog_id == info.id ? XDP_FLAGS_HW_MODE : 0;
}

__u32 fp_tc_prog_id(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO);
	int err;

	/* Most interfaces have no clsact qdisc: the kernel's "Parent Qdisc
	 * doesn't exists" is the answer, not a warning. */
	fp_libs_quiet(true);
	err = bpf_tc_query(&h, &o);
	fp_libs_quiet(false);
	return err ? 0 : o.prog_id;
}

int fp_tc_detach(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO);

	return bpf_tc_detach(&h, &o);
}

unsigned fp_detach_prog(int prog_fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	struct nl_link *links = NULL;
	unsigned n = 0;
	size_t nlinks;

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) || nl_dump_links(&links, &nlinks))
		return 0;
	for (size_t i = 0; i < nlinks; i++) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, xo, .old_prog_fd = prog_fd);
		bool tc = info.type == BPF_PROG_TYPE_SCHED_CLS;
		__u32 mode = tc ? 0 : fp_prog_mode(links[i].ifindex, prog_fd);

		if (tc ? fp_tc_prog_id(links[i].ifindex) == info.id && !fp_tc_detach(links[i].ifindex) :
		    mode && !bpf_xdp_detach(links[i].ifindex, mode, &xo)) {
			log_info("fast path: %s: detached the %s program a stopped xturnd left",
				 links[i].name, tc ? "TC" : "XDP");
			n++;
		}
	}
	free(links);
	return n;
}

void fp_stale_program(const char *pin_dir)
{
	char path[PATH_MAX];
	int fd;

	for (int i = 0; i < FP_NPROGS; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, fp_prog_pins[i]);
		if ((fd = bpf_obj_get(path)) < 0)
			continue;
		fp_detach_prog(fd);
		close(fd);
		unlink(path);
	}
}

int fp_clear_stale(const char *pin_dir, const char *lookup_dev, char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct nl_link l;
	unsigned pins = 0;
	int lock = fp_pin_dir_lock(pin_dir);

	if (lock == -EBUSY) {
		fp_say(why, whylen, "%s belongs to a running xturnd: left alone", pin_dir);
		return lock;
	}
	if (lock >= 0) {
		fp_stale_program(pin_dir);
		for (size_t i = 0; i < sizeof(pin_names) / sizeof(pin_names[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", pin_dir, pin_names[i]);
			pins += !unlink(path);
		}
		if (pins)
			log_info("fast path: removed the %u pins a stopped xturnd left in %s", pins,
				 pin_dir);
		close(lock);
	}
	/* Only beside leftover pins: without them the device may be another
	 * daemon's (another pin dir); and a device of another kind with that
	 * name is not ours at all. */
	if (pins && lookup_dev && !nl_link_get(lookup_dev, &l) &&
	    (!strcmp(l.kind, "dummy") || !strcmp(l.kind, "ifb")) && !nl_link_del(l.ifindex))
		log_info("fast path: removed the lookup device %s a stopped xturnd left",
			 lookup_dev);
	return 0;
}
