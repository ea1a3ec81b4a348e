/* The daemon's metrics: a snapshot of every relay thread's counters and
 * state (common/metrics.h renders it), served on the stats socket (JSON)
 * and, with `prometheus`, over HTTP. */
#ifndef XT_STATS_H
#define XT_STATS_H

#include <stdint.h>

#include "common/metrics.h"

struct config;
struct turn_server;

/* Clears m and fills the protocol's part of it from n servers (one per
 * worker thread, sharing their quota); the fast path's part comes from
 * offload_snapshot. */
void stats_collect(struct metrics_snapshot *m, struct turn_server *const *t, unsigned n);

/* The daemon's endpoints: the Unix socket (config stats-socket) and, with
 * `prometheus`, HTTP on prometheus-ip:prometheus-port. One epoll fd to poll;
 * stats_event() handles what is ready. Each request takes a snapshot
 * through collect(ctx, m), which must fill all of m. */
#define STATS_MAX_CLIENTS 16		/* concurrent HTTP connections */
#define STATS_MAX_REQUEST 2048		/* bytes of an HTTP request read */
struct stats;
typedef void (*stats_collect_fn)(void *ctx, struct metrics_snapshot *m);
struct web;
/* web (may be NULL): the check page's routes, served on web-ip:web-port
 * (its own listener, or prometheus's when they are the same). */
int stats_open(struct stats **out, const struct config *cfg, stats_collect_fn collect,
	       void *ctx, struct web *web, char *err, size_t errlen);
int stats_fd(const struct stats *ms);
void stats_event(struct stats *ms);
/* Closes everything and removes the socket file. NULL is fine. */
void stats_close(struct stats *ms);

#endif
