/* What the daemon pins in bpffs, as the daemon and xturnstat both read it:
 * the default directory and the global XDP counters summed over CPUs. The
 * maps' layout is bpf/xturn_kern_user.h. */
#ifndef XT_PINS_H
#define XT_PINS_H

#include "xturn_kern_user.h"

#define PINS_DEFAULT_DIR "/sys/fs/bpf/xturn"

/* The counters of XT_MAP_STATS (a per-CPU array, map_fd) summed over the
 * CPUs. 0, or -errno. */
int pins_read_counters(int map_fd, struct xt_count out[XT_CNT_MAX]);

#endif
