#include <errno.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/pins.h"

int pins_read_counters(int map_fd, struct xt_count out[XT_CNT_MAX])
{
	int ncpus = libbpf_num_possible_cpus(), err = 0;
	struct xt_count *v;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 k = 0; k < XT_CNT_MAX && !err; k++) {
		if (bpf_map_lookup_elem(map_fd, &k, v)) {
			err = -errno;
			break;
		}
		out[k] = (struct xt_count){ 0 };
		for (int c = 0; c < ncpus; c++) {
			out[k].packets += v[c].packets;
			out[k].bytes += v[c].bytes;
		}
	}
	free(v);
	return err;
}

bool pins_is_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && (unsigned long)st.f_type == BPF_FS_MAGIC;
}

int pins_mount_bpffs(void)
{
	if (pins_is_bpffs(PINS_BPFFS) || !mount("bpf", PINS_BPFFS, "bpf", 0, "mode=0700"))
		return 0;
	return -errno;
}
