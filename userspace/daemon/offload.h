/* TURN state mirrored into the XDP fast path: what every relay thread's
 * alloc hooks write (relays, permissions, channels), behind one lock, since
 * fastpath.c is not thread-safe, and the rule of what the kernel carries
 * (channels of UDP clients; a TCP/TLS client's stay in userspace). Without
 * a fast path every call does nothing, so no caller asks whether there is
 * one. */
#ifndef XT_OFFLOAD_H
#define XT_OFFLOAD_H

#include <stdbool.h>
#include <stdio.h>

#include "common/metrics.h"
#include "turn/alloc.h"

struct fastpath;
struct offload;

/* fp NULL: no fast path. fp stays the caller's (it closes it after
 * offload_free). NULL when out of memory. */
struct offload *offload_new(struct fastpath *fp);
void offload_free(struct offload *o);

/* An allocation's relays are up (may receive) or going down. */
void offload_alloc_up(struct offload *o, const struct allocation *a);
void offload_alloc_down(struct offload *o, const struct allocation *a);
/* True if the fast path has the permission now (up), or has nothing to
 * retry. */
bool offload_perm(struct offload *o, struct allocation *a, const struct perm *p, bool up);
/* Lifetimes moved: the kernel's copies of the ends follow, those of
 * permission p and the channels to its IP, or (p NULL, a Refresh) all of
 * a's. The kernel relays by itself only until these. */
void offload_refreshed(struct offload *o, const struct allocation *a, const struct perm *p);
/* True if the kernel carries the channel from now on (c->in_kernel). */
bool offload_chan_up(struct offload *o, struct allocation *a, const struct chan *c);
/* Takes the binding out of the maps; what XDP relayed for it is added to
 * a's xdp counters. */
void offload_chan_down(struct offload *o, struct allocation *a, const struct chan *c);
/* a's traffic so far: its own counters plus what its live bindings have
 * relayed in XDP. */
void offload_traffic(struct offload *o, const struct allocation *a, struct alloc_traffic *c2p,
		     struct alloc_traffic *p2c);

/* The fast path's rtnetlink socket (-1: none) and what to do when it is
 * readable (routes, links, neighbours changed). */
int offload_netlink_fd(struct offload *o);
void offload_netlink_event(struct offload *o);
/* "fast path: XDP" and a line per interface with its mode, or off. */
void offload_describe(struct offload *o, FILE *out);
/* The fast path's hold on its pin dir (a handover passes it), or -1. */
int offload_lock_fd(const struct offload *o);
/* The fast path's fields of a metrics snapshot (left 0 without one). */
void offload_snapshot(struct offload *o, struct metrics_snapshot *m);

#endif
