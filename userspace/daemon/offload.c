#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/fastpath.h"
#include "daemon/offload.h"

struct offload_ops {
	void (*alloc)(struct offload *o, const struct allocation *a, bool up);
	bool (*perm)(struct offload *o, struct allocation *a, const struct perm *p, bool up);
	bool (*chan_up)(struct offload *o, struct allocation *a, const struct chan *c);
	void (*chan_down)(struct offload *o, struct allocation *a, const struct chan *c);
	int (*netlink_fd)(struct offload *o);
	void (*netlink_event)(struct offload *o);
	void (*snapshot)(struct offload *o, struct metrics_snapshot *m);
};

struct offload {
	const struct offload_ops *ops;
	struct fastpath *fp;
	pthread_mutex_t lock;	/* every relay thread writes through fp */
	uint64_t full;		/* channels left to userspace: a map was full */
};

/* ---- the fast path ----------------------------------------------------------------- */

static void fp_alloc(struct offload *o, const struct allocation *a, bool up)
{
	pthread_mutex_lock(&o->lock);
	for (unsigned i = 0; i < a->nrelays; i++)
		if (up)
			fp_relay_add(o->fp, &a->relays[i].addr);
		else
			fp_relay_del(o->fp, &a->relays[i].addr);
	pthread_mutex_unlock(&o->lock);
}

static bool fp_perm(struct offload *o, struct allocation *a, const struct perm *p, bool up)
{
	struct relay *r = alloc_relay_for(a, p->peer.ss_family);
	int err = 0;

	if (!r)
		return true;
	pthread_mutex_lock(&o->lock);
	if (up)
		err = fp_perm_add(o->fp, &r->addr, &p->peer);
	else
		fp_perm_del(o->fp, &r->addr, &p->peer);
	pthread_mutex_unlock(&o->lock);
	return !err;
}

static void chan_to_fp(struct allocation *a, const struct chan *c, struct fp_chan *fc)
{
	const struct relay *r = alloc_relay_for(a, c->peer.ss_family);

	memset(fc, 0, sizeof(*fc));
	fc->client = a->client;
	fc->listener = a->listener;
	fc->relay = r->addr;
	fc->peer = c->peer;
	fc->channel = c->number;
}

static bool fp_chan_up(struct offload *o, struct allocation *a, const struct chan *c)
{
	struct fp_chan fc;
	int err;

	/* XDP carries UDP clients only: a TCP/TLS client's channels stay here. */
	if (a->stream || !alloc_relay_for(a, c->peer.ss_family))
		return false;
	chan_to_fp(a, c, &fc);
	pthread_mutex_lock(&o->lock);
	err = fp_chan_add(o->fp, &fc);
	if (err)
		o->full++;
	pthread_mutex_unlock(&o->lock);
	if (err) {
		/* Userspace relays this channel; never an error to the client. */
		log_warn("channel 0x%04x stays in userspace: %s", c->number, strerror(-err));
		return false;
	}
	return true;
}

static void fp_chan_down(struct offload *o, struct allocation *a, const struct chan *c)
{
	struct fp_chan fc;

	if (!c->in_kernel)
		return;
	chan_to_fp(a, c, &fc);
	pthread_mutex_lock(&o->lock);
	fp_chan_del(o->fp, &fc);
	pthread_mutex_unlock(&o->lock);
}

static int fp_nl_fd(struct offload *o)
{
	return fp_netlink_fd(o->fp);
}

static void fp_nl_event(struct offload *o)
{
	pthread_mutex_lock(&o->lock);
	fp_netlink_event(o->fp);
	pthread_mutex_unlock(&o->lock);
}

static void fp_snapshot(struct offload *o, struct metrics_snapshot *m)
{
	pthread_mutex_lock(&o->lock);
	m->fastpath = 1;
	m->fastpath_full = o->full;
	m->fastpath_perms_missing = fp_perms_missing(o->fp);
	m->xdp = !fp_counters(o->fp, m->xdp_cnt);
	pthread_mutex_unlock(&o->lock);
}

static const struct offload_ops fp_ops = {
	.alloc = fp_alloc,
	.perm = fp_perm,
	.chan_up = fp_chan_up,
	.chan_down = fp_chan_down,
	.netlink_fd = fp_nl_fd,
	.netlink_event = fp_nl_event,
	.snapshot = fp_snapshot,
};

/* ---- no fast path ------------------------------------------------------------------ */

static void null_alloc(struct offload *o, const struct allocation *a, bool up) {}
static bool null_perm(struct offload *o, struct allocation *a, const struct perm *p, bool up)
{
	return true;
}
static bool null_chan_up(struct offload *o, struct allocation *a, const struct chan *c)
{
	return false;
}
static void null_chan_down(struct offload *o, struct allocation *a, const struct chan *c) {}
static int null_nl_fd(struct offload *o)
{
	return -1;
}
static void null_nl_event(struct offload *o) {}
static void null_snapshot(struct offload *o, struct metrics_snapshot *m) {}

static const struct offload_ops null_ops = {
	.alloc = null_alloc,
	.perm = null_perm,
	.chan_up = null_chan_up,
	.chan_down = null_chan_down,
	.netlink_fd = null_nl_fd,
	.netlink_event = null_nl_event,
	.snapshot = null_snapshot,
};

/* ---- the interface ----------------------------------------------------------------- */

struct offload *offload_new(struct fastpath *fp)
{
	struct offload *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->ops = fp ? &fp_ops : &null_ops;
	o->fp = fp;
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

void offload_free(struct offload *o)
{
	if (!o)
		return;
	pthread_mutex_destroy(&o->lock);
	free(o);
}

void offload_alloc_up(struct offload *o, const struct allocation *a)
{
	o->ops->alloc(o, a, true);
}

void offload_alloc_down(struct offload *o, const struct allocation *a)
{
	o->ops->alloc(o, a, false);
}

bool offload_perm(struct offload *o, struct allocation *a, const struct perm *p, bool up)
{
	return o->ops->perm(o, a, p, up);
}

bool offload_chan_up(struct offload *o, struct allocation *a, const struct chan *c)
{
	return o->ops->chan_up(o, a, c);
}

void offload_chan_down(struct offload *o, struct allocation *a, const struct chan *c)
{
	o->ops->chan_down(o, a, c);
}

int offload_netlink_fd(struct offload *o)
{
	return o->ops->netlink_fd(o);
}

void offload_netlink_event(struct offload *o)
{
	o->ops->netlink_event(o);
}

void offload_snapshot(struct offload *o, struct metrics_snapshot *m)
{
	o->ops->snapshot(o, m);
}
