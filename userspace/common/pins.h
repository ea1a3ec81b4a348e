/* What the daemon pins in bpffs, as the daemon and xturnstat both read it:
 * the default directory and the global XDP counters summed over CPUs. The
 * maps' layout is bpf/xturn_kern_user.h. */
#ifndef XT_PINS_H
#define XT_PINS_H

#include <stdbool.h>

#include "xturn_kern_user.h"

#define PINS_BPFFS "/sys/fs/bpf"
#define PINS_DEFAULT_DIR PINS_BPFFS "/xturn"

/* Is path (which must exist) on a bpffs? */
bool pins_is_bpffs(const char *path);
/* Mounts a bpffs on /sys/fs/bpf if there is none there (`ip netns exec`
 * gives a fresh /sys without one, and a minimal host may not mount it at
 * boot): 0, or -errno of the mount. */
int pins_mount_bpffs(void);

/* The counters of XT_MAP_STATS (a per-CPU array, map_fd) summed over the
 * CPUs. 0, or -errno. */
int pins_read_counters(int map_fd, struct xt_count out[XT_CNT_MAX]);

#endif
