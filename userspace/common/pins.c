#include <errno.h>
#include <stdlib.h>
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
