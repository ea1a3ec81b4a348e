/* --xdp-sink: the injector object's counting sink attached to a peer's
 * interface (the bench's peer), and --detach; --xdp-pass: a program that
 * passes everything, so a veth end delivers what is redirected into it. */
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/pins.h"
#include "xturngen.h"
#include "xturngen_inject.h"
#include "xturngen_inject.skel.h"

/* The sink's program if it is what is attached natively to ifindex: its fd
 * (caller closes), -ENOENT if nothing is, -EBUSY if something else is. */
static int sink_attached(int ifindex)
{
	struct bpf_prog_info info = { 0 };
	__u32 id = 0, len = sizeof(info);
	int fd, ret;

	ret = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);
	if (ret < 0)
		return ret;
	if (!id)
		return -ENOENT;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (ret < 0 || strcmp(info.name, "xturngen_sink")) {
		close(fd);
		return ret < 0 ? -errno : -EBUSY;
	}
	return fd;
}

static int sink_detach(const struct opts *o, int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, xo);
	int fd = sink_attached(ifindex), ret = 0;

	if (fd >= 0) {
		/* old_prog_fd: fails rather than detach what replaced it meanwhile. */
		xo.old_prog_fd = fd;
		ret = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, &xo);
		close(fd);
	} else if (fd != -ENOENT) {
		ret = fd;
	}
	if (ret < 0)
		fprintf(stderr, "xturngen: detaching the sink from %s: %s\n", o->sink_if,
			strerror(-ret));
	if (o->pin && unlink(o->pin) < 0 && errno != ENOENT) {
		fprintf(stderr, "xturngen: %s: %s\n", o->pin, strerror(errno));
		ret = ret ?: -errno;
	}
	return ret;
}

/* ifname's index, or 0 (said why). */
static int ifindex_of(const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname);

	if (!ifindex)
		fprintf(stderr, "xturngen: %s: %s\n", ifname, strerror(errno));
	return ifindex;
}

/* The injector's object with only the program prog loaded; NULL and errno
 * (or the load's error in *err) on failure. */
static struct xturngen_inject *load_one(const char *prog, int *err)
{
	struct xturngen_inject *skel = xturngen_inject__open();
	struct bpf_program *p;

	if (!skel) {
		*err = -errno;
		return NULL;
	}
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), prog));
	*err = xturngen_inject__load(skel);
	if (*err) {
		xturngen_inject__destroy(skel);
		return NULL;
	}
	return skel;
}

int run_sink(const struct opts *o)
{
	int ifindex = ifindex_of(o->sink_if), ret;
	struct xturngen_inject *skel;

	if (!ifindex)
		return -ENODEV;
	if (o->detach)
		return sink_detach(o, ifindex);
	/* A host that mounts no bpffs at boot has none for the pin (the bench
	 * on a fresh machine failed so when coturn ran before any xturnd). */
	if (o->pin && !strncmp(o->pin, PINS_BPFFS "/", sizeof(PINS_BPFFS)) &&
	    (ret = pins_mount_bpffs()))
		fprintf(stderr, "xturngen: mount -t bpf %s: %s\n", PINS_BPFFS, strerror(-ret));
	skel = load_one("xturngen_sink", &ret);
	if (!skel)
		return ret;
	ret = bpf_map__pin(skel->maps.xg_sink, o->pin);
	if (!ret) {
		/* NOEXIST: never replace another program (the relay's, a stale sink). */
		ret = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.xturngen_sink),
				     XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (ret < 0)
			bpf_map__unpin(skel->maps.xg_sink, o->pin);
	}
	if (ret < 0)
		fprintf(stderr, "xturngen: attaching the sink to %s (pin %s): %s\n", o->sink_if,
			o->pin, strerror(-ret));
	/* The attachment keeps the program, the pin its map, after we exit. */
	xturngen_inject__destroy(skel);
	return ret;
}

int run_pass(const struct opts *o)
{
	int ifindex = ifindex_of(o->pass_if), ret;
	struct xturngen_inject *skel;

	if (!ifindex)
		return -ENODEV;
	skel = load_one("xturngen_pass", &ret);
	if (skel)
		ret = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.xturngen_pass),
				     XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	if (ret < 0)
		fprintf(stderr, "xturngen: attaching the pass program to %s: %s\n", o->pass_if,
			strerror(-ret));
	xturngen_inject__destroy(skel);	/* the attachment keeps the program */
	return ret;
}
