/* The daemon's metrics: one snapshot of the TURN counters, the live state
 * and the XDP counters, rendered as Prometheus text exposition format or as
 * a flat JSON object (and parsed back from it, for xturnstat). The daemon
 * serves it (daemon/stats.h); xturnstat reads it and the pinned maps. One
 * table of fields drives every format, so the daemon's endpoint and
 * xturnstat --prometheus cannot disagree on a name. */
#ifndef XT_METRICS_H
#define XT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counters.h"
#include "xturn_kern_user.h"

/* Where the daemon serves it by default (config stats-socket). */
#define METRICS_DEFAULT_SOCKET "/run/xturn/xturnd.sock"

struct metrics_snapshot {
	bool daemon;			/* the daemon's fields below are valid */
	bool xdp;			/* xdp[] is valid */
	uint64_t fastpath;		/* 1: the XDP fast path is on */
	uint64_t start_time;		/* the daemon's start, Unix seconds */
	uint64_t allocations, permissions, channels, channels_in_kernel, users;
	uint64_t fastpath_full;		/* channels the fast path could not take */
	uint64_t fastpath_perms_missing; /* permissions waiting for room in its map */
	uint64_t send_drops;		/* datagrams the kernel would not take */
	uint64_t tcp_connections;	/* open TCP/TLS client connections */
	struct stream_stats tcp;
	struct turn_stats turn;
	struct xt_count xdp_cnt[XT_CNT_MAX];
};

/* How an XDP counter is labelled: verdict "forwarded", "passed" or
 * "dropped"; label "direction" or "reason" with its value. */
struct metrics_xdp_desc {
	const char *verdict, *label, *value;
};
extern const struct metrics_xdp_desc metrics_xdp[XT_CNT_MAX];

/* Render into buf (NUL-terminated). Length written, or -ENOSPC. */
int metrics_prometheus(const struct metrics_snapshot *m, char *buf, size_t len);
int metrics_json(const struct metrics_snapshot *m, char *buf, size_t len);
/* Parse what metrics_json wrote (unknown keys ignored). 0 or -EINVAL. */
int metrics_json_parse(const char *json, struct metrics_snapshot *m);

#endif
