#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/addr.h"
#include "daemon/fastpath.h"
#include "daemon/offload.h"

/* Each call does nothing without a fast path (fp NULL): that answer is
 * here, once per operation, instead of at every call site. */
struct offload {
	struct fastpath *fp;
	pthread_mutex_t lock;	/* every relay thread writes through fp */
	uint64_t full;		/* channels left to userspace: a map was full */
};

struct offload *offload_new(struct fastpath *fp)
{
	struct offload *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
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

static void relays(struct offload *o, const struct allocation *a, bool up)
{
	if (!o->fp)
		return;
	pthread_mutex_lock(&o->lock);
	for (unsigned i = 0; i < a->nrelays; i++)
		if (up)
			fp_relay_add(o->fp, &a->relays[i].addr);
		else
			fp_relay_del(o->fp, &a->relays[i].addr);
	pthread_mutex_unlock(&o->lock);
}

void offload_alloc_up(struct offload *o, const struct allocation *a)
{
	relays(o, a, true);
}

void offload_alloc_down(struct offload *o, const struct allocation *a)
{
	relays(o, a, false);
}

/* The kernel's copy of an end: CLOCK_MONOTONIC seconds (what the daemon's
 * lifetimes count in) as ns, the earliest of those given. */
static uint64_t end_ns(time_t a, time_t b, time_t c)
{
	time_t t = a < b ? a : b;

	t = t < c ? t : c;
	return t > 0 ? (uint64_t)t * 1000000000ull : 0;
}

static uint64_t perm_end_ns(const struct allocation *a, const struct perm *p)
{
	return end_ns(a->expires, p->expires, p->expires);
}

static uint64_t chan_end_ns(const struct allocation *a, const struct chan *c)
{
	const struct perm *p = alloc_perm_find(a, &c->peer);

	return p ? end_ns(a->expires, c->expires, p->expires) : 0;
}

/* With the lock held. */
static int perm_write(struct offload *o, const struct allocation *a, const struct perm *p)
{
	struct relay *r = alloc_relay_for(a, p->peer.ss_family);

	return r ? fp_perm_add(o->fp, &r->addr, &p->peer, perm_end_ns(a, p)) : 0;
}

bool offload_perm(struct offload *o, struct allocation *a, const struct perm *p, bool up)
{
	struct relay *r = alloc_relay_for(a, p->peer.ss_family);
	int err = 0;

	if (!o->fp || !r)
		return true;	/* nothing to retry */
	pthread_mutex_lock(&o->lock);
	if (up)
		err = perm_write(o, a, p);
	else
		fp_perm_del(o->fp, &r->addr, &p->peer);
	pthread_mutex_unlock(&o->lock);
	return !err;
}

static void chan_to_fp(const struct allocation *a, const struct chan *c, struct fp_chan *fc)
{
	const struct relay *r = alloc_relay_for(a, c->peer.ss_family);

	memset(fc, 0, sizeof(*fc));
	fc->client = a->client;
	fc->listener = a->listener;
	fc->relay = r->addr;
	fc->peer = c->peer;
	fc->channel = c->number;
	fc->expires_ns = chan_end_ns(a, c);
}

/* Every end that moved, written again: perm p's (NULL: every permission's)
 * and those of the channels to its IP. With the lock held. */
static void ends_write(struct offload *o, const struct allocation *a, const struct perm *p)
{
	struct fp_chan fc;

	for (unsigned i = 0; i < a->nperms; i++)
		if ((!p || &a->perms[i] == p) && a->perms[i].in_kernel)
			perm_write(o, a, &a->perms[i]);
	for (unsigned i = 0; i < a->nchans; i++) {
		const struct chan *c = &a->chans[i];

		if (!c->in_kernel || (p && !addr_ip_eq(&c->peer, &p->peer)))
			continue;
		chan_to_fp(a, c, &fc);
		fp_chan_expire(o->fp, &fc);
	}
}

void offload_refreshed(struct offload *o, const struct allocation *a, const struct perm *p)
{
	if (!o->fp)
		return;
	pthread_mutex_lock(&o->lock);
	ends_write(o, a, p);
	pthread_mutex_unlock(&o->lock);
}

bool offload_chan_up(struct offload *o, struct allocation *a, const struct chan *c)
{
	struct fp_chan fc;
	int err;

	/* XDP carries UDP clients only: a TCP/TLS client's channels stay here. */
	if (!o->fp || a->stream || !alloc_relay_for(a, c->peer.ss_family))
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

static void add_xdp(struct allocation *a, const struct fp_chan_stats *st)
{
	a->c2p.xdp_packets += st->c2p_packets;
	a->c2p.xdp_bytes += st->c2p_bytes;
	a->p2c.xdp_packets += st->p2c_packets;
	a->p2c.xdp_bytes += st->p2c_bytes;
}

void offload_chan_down(struct offload *o, struct allocation *a, const struct chan *c)
{
	struct fp_chan_stats st = { 0 };
	struct fp_chan fc;

	if (!o->fp || !c->in_kernel)
		return;
	chan_to_fp(a, c, &fc);
	pthread_mutex_lock(&o->lock);
	fp_chan_del(o->fp, &fc, &st);
	pthread_mutex_unlock(&o->lock);
	/* What XDP relayed for it stays with the allocation's record. */
	add_xdp(a, &st);
}

void offload_traffic(struct offload *o, const struct allocation *a, struct alloc_traffic *c2p,
		     struct alloc_traffic *p2c)
{
	struct allocation sum = { .c2p = a->c2p, .p2c = a->p2c };

	if (o->fp) {
		pthread_mutex_lock(&o->lock);
		for (unsigned i = 0; i < a->nchans; i++) {
			const struct chan *c = &a->chans[i];
			struct fp_chan_stats st;
			struct fp_chan fc;

			if (!c->in_kernel)
				continue;
			chan_to_fp(a, c, &fc);
			if (!fp_chan_stats(o->fp, &fc, &st))
				add_xdp(&sum, &st);
		}
		pthread_mutex_unlock(&o->lock);
	}
	*c2p = sum.c2p;
	*p2c = sum.p2c;
}

int offload_netlink_fd(struct offload *o)
{
	return o->fp ? fp_netlink_fd(o->fp) : -1;
}

void offload_netlink_event(struct offload *o)
{
	if (!o->fp)
		return;
	pthread_mutex_lock(&o->lock);
	fp_netlink_event(o->fp);
	pthread_mutex_unlock(&o->lock);
}

void offload_snapshot(struct offload *o, struct metrics_snapshot *m)
{
	if (!o->fp)
		return;
	pthread_mutex_lock(&o->lock);
	m->fastpath = 1;
	m->fastpath_full = o->full;
	m->fastpath_perms_missing = fp_perms_missing(o->fp);
	m->xdp = !fp_counters(o->fp, m->xdp_cnt);
	pthread_mutex_unlock(&o->lock);
}

void offload_describe(struct offload *o, FILE *out)
{
	if (!o->fp) {
		fprintf(out, "fast path: off (relaying in userspace)\n");
		return;
	}
	fprintf(out, "fast path: XDP\n");
	pthread_mutex_lock(&o->lock);
	fp_describe(o->fp, out);
	pthread_mutex_unlock(&o->lock);
}

int offload_lock_fd(const struct offload *o)
{
	return o->fp ? fp_lock_fd(o->fp) : -1;
}
