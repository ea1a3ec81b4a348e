#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "turn/alloc.h"

/* Per-user allocation counts, for user-quota. */
struct user_count {
	struct user_count *next;
	unsigned n;
	char name[];
};

#define USER_BUCKETS 1024

/* Quota counts, shared by the tables of every worker thread: a client's
 * allocations may live on several workers, its quota must not. */
struct alloc_quota {
	pthread_mutex_t lock;
	unsigned total;
	unsigned users;			/* distinct usernames holding allocations */
	struct user_count *buckets[USER_BUCKETS];
};

struct alloc_table {
	struct allocation **buckets;
	size_t nbuckets;	/* power of two */
	unsigned count;		/* this table's allocations */
	struct alloc_quota *quota;
	bool own_quota;
	struct alloc_limits lim;
	struct alloc_hooks hooks;
};

static uint64_t tuple_hash(const struct sockaddr_storage *client,
			   const struct sockaddr_storage *listener)
{
	return addr_hash(client, true) * 31 + addr_hash(listener, true);
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
	return h;
}

struct alloc_quota *alloc_quota_new(void)
{
	struct alloc_quota *q = calloc(1, sizeof(*q));

	if (q)
		pthread_mutex_init(&q->lock, NULL);
	return q;
}

void alloc_quota_free(struct alloc_quota *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < USER_BUCKETS; i++) {
		struct user_count *u = q->buckets[i], *next;
		for (; u; u = next) {
			next = u->next;
			free(u);
		}
	}
	pthread_mutex_destroy(&q->lock);
	free(q);
}

struct alloc_table *alloc_table_new(const struct alloc_limits *lim, const struct alloc_hooks *h,
				    struct alloc_quota *quota)
{
	struct alloc_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->own_quota = !quota;
	t->quota = quota ? quota : alloc_quota_new();
	if (!t->buckets || !t->quota) {
		free(t->buckets);
		if (t->own_quota)
			alloc_quota_free(t->quota);
		free(t);
		return NULL;
	}
	t->lim = *lim;
	if (h)
		t->hooks = *h;
	return t;
}

/* The user functions below run with q->lock held. */
static struct user_count **user_slot(struct alloc_quota *q, const char *name)
{
	struct user_count **p = &q->buckets[str_hash(name) & (USER_BUCKETS - 1)];

	while (*p && strcmp((*p)->name, name))
		p = &(*p)->next;
	return p;
}

static unsigned user_count(struct alloc_quota *q, const char *name)
{
	struct user_count *u = *user_slot(q, name);

	return u ? u->n : 0;
}

unsigned alloc_user_count(const struct alloc_table *t, const char *username)
{
	unsigned n;

	pthread_mutex_lock(&t->quota->lock);
	n = user_count(t->quota, username);
	pthread_mutex_unlock(&t->quota->lock);
	return n;
}

static int user_inc(struct alloc_quota *q, const char *name)
{
	struct user_count **p = user_slot(q, name);

	if (!*p) {
		size_t len = strlen(name) + 1;
		*p = calloc(1, sizeof(**p) + len);
		if (!*p)
			return -ENOMEM;
		memcpy((*p)->name, name, len);
		q->users++;
	}
	(*p)->n++;
	q->total++;
	return 0;
}

static void user_dec(struct alloc_quota *q, const char *name)
{
	struct user_count **p = user_slot(q, name), *u = *p;

	q->total--;
	if (u && --u->n == 0) {
		*p = u->next;
		free(u);
		q->users--;
	}
}

/* Doubles the buckets when the load passes 1, so lookups stay O(1) at any
 * total-quota. The user table keeps its size: it is only touched on
 * allocate and delete. */
static void maybe_grow(struct alloc_table *t)
{
	size_t n = t->nbuckets * 2;
	struct allocation **nb;

	if (t->count < t->nbuckets)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct allocation *a = t->buckets[i], *next;
		for (; a; a = next) {
			size_t b = tuple_hash(&a->client, &a->listener) & (n - 1);
			next = a->next;
			a->next = nb[b];
			nb[b] = a;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

static int quota_check_locked(const struct alloc_table *t, const char *username)
{
	if (t->lim.total_quota && t->quota->total >= t->lim.total_quota)
		return -ENOSPC;
	if (t->lim.user_quota && user_count(t->quota, username) >= t->lim.user_quota)
		return -EDQUOT;
	return 0;
}

int alloc_quota_check(const struct alloc_table *t, const char *username)
{
	int err;

	pthread_mutex_lock(&t->quota->lock);
	err = quota_check_locked(t, username);
	pthread_mutex_unlock(&t->quota->lock);
	return err;
}

int alloc_quota_hold(struct alloc_table *t, const char *username)
{
	int err;

	pthread_mutex_lock(&t->quota->lock);
	err = quota_check_locked(t, username);
	if (!err)
		err = user_inc(t->quota, username);
	pthread_mutex_unlock(&t->quota->lock);
	return err;
}

void alloc_quota_release(struct alloc_table *t, const char *username)
{
	pthread_mutex_lock(&t->quota->lock);
	user_dec(t->quota, username);
	pthread_mutex_unlock(&t->quota->lock);
}

struct allocation *alloc_find_tp(const struct alloc_table *t, const struct sockaddr_storage *client,
				 const struct sockaddr_storage *listener, bool stream)
{
	struct allocation *a = t->buckets[tuple_hash(client, listener) & (t->nbuckets - 1)];

	for (; a; a = a->next)
		if (a->stream == stream && addr_eq(&a->client, client) &&
		    addr_eq(&a->listener, listener))
			return a;
	return NULL;
}

struct allocation *alloc_find(const struct alloc_table *t, const struct sockaddr_storage *client,
			      const struct sockaddr_storage *listener)
{
	return alloc_find_tp(t, client, listener, false);
}

int alloc_insert(struct alloc_table *t, struct allocation *a)
{
	size_t b;
	int err;

	if (alloc_find_tp(t, &a->client, &a->listener, a->stream))
		return -EEXIST;
	/* Check and count in one step: workers allocate concurrently. */
	pthread_mutex_lock(&t->quota->lock);
	err = quota_check_locked(t, a->username);
	if (!err)
		err = user_inc(t->quota, a->username);
	pthread_mutex_unlock(&t->quota->lock);
	if (err)
		return err;
	maybe_grow(t);
	b = tuple_hash(&a->client, &a->listener) & (t->nbuckets - 1);
	a->next = t->buckets[b];
	t->buckets[b] = a;
	t->count++;
	if (t->hooks.alloc_up)
		t->hooks.alloc_up(t->hooks.ctx, a);
	return 0;
}

static void chan_stop(struct alloc_table *t, struct allocation *a, struct chan *c)
{
	if (!c->active)
		return;
	if (t->hooks.chan_down)
		t->hooks.chan_down(t->hooks.ctx, a, c);
	c->active = false;
	c->in_kernel = false;
}

static void chan_start(struct alloc_table *t, struct allocation *a, struct chan *c)
{
	if (c->active)
		return;
	c->active = true;
	c->in_kernel = t->hooks.chan_up ? t->hooks.chan_up(t->hooks.ctx, a, c) : false;
}

static void alloc_free_one(struct alloc_table *t, struct allocation *a)
{
	for (unsigned i = 0; i < a->nchans; i++)
		chan_stop(t, a, &a->chans[i]);
	for (unsigned i = 0; i < a->nperms; i++)
		if (t->hooks.perm_down)
			t->hooks.perm_down(t->hooks.ctx, a, &a->perms[i]);
	if (t->hooks.alloc_down)
		t->hooks.alloc_down(t->hooks.ctx, a);
	pthread_mutex_lock(&t->quota->lock);
	user_dec(t->quota, a->username);
	pthread_mutex_unlock(&t->quota->lock);
	alloc_tx_clear(a);
	free(a->perms);
	free(a->chans);
	free(a->chan_keys);
	free(a);
}

const char *alloc_end_name(enum alloc_end e)
{
	static const char *const names[] = {
		[ALLOC_END_NONE] = "live", [ALLOC_END_EXPIRED] = "expired",
		[ALLOC_END_DELETED] = "deleted", [ALLOC_END_KILLED] = "killed",
		[ALLOC_END_DRAINED] = "drained", [ALLOC_END_CLOSED] = "connection closed",
		[ALLOC_END_REVOKED] = "revoked", [ALLOC_END_SHUTDOWN] = "shutdown",
	};

	return (unsigned)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

const char *alloc_transport_name(enum alloc_transport t)
{
	return t == ALLOC_TLS ? "tls" : t == ALLOC_TCP ? "tcp" : "udp";
}

void alloc_end_at_next_expiry(struct allocation *a, enum alloc_end why)
{
	if (!a->end)
		a->end = (uint8_t)why;
	a->expires = 0;
}

void alloc_foreach(const struct alloc_table *t, void (*fn)(void *ctx, struct allocation *a),
		   void *ctx)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct allocation *a = t->buckets[i]; a; a = a->next)
			fn(ctx, a);
}

void alloc_delete(struct alloc_table *t, struct allocation *a, enum alloc_end why)
{
	struct allocation **p = &t->buckets[tuple_hash(&a->client, &a->listener) & (t->nbuckets - 1)];

	while (*p && *p != a)
		p = &(*p)->next;
	if (!*p)
		return;
	*p = a->next;
	t->count--;
	if (!a->end)
		a->end = (uint8_t)why;
	alloc_free_one(t, a);
}

void alloc_table_free(struct alloc_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct allocation *a = t->buckets[i], *next;
		for (; a; a = next) {
			next = a->next;
			if (!a->end)
				a->end = ALLOC_END_SHUTDOWN;
			alloc_free_one(t, a);
		}
	}
	free(t->buckets);
	if (t->own_quota)
		alloc_quota_free(t->quota);
	free(t);
}

unsigned alloc_count(const struct alloc_table *t)
{
	return t->count;
}

void alloc_totals(const struct alloc_table *t, struct alloc_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < t->nbuckets; i++)
		for (const struct allocation *a = t->buckets[i]; a; a = a->next) {
			out->perms += a->nperms;
			out->chans += a->nchans;
			for (unsigned c = 0; c < a->nchans; c++)
				out->chans_in_kernel += a->chans[c].in_kernel;
		}
	pthread_mutex_lock(&t->quota->lock);
	out->users = t->quota->users;
	pthread_mutex_unlock(&t->quota->lock);
}

static struct perm *perm_find(const struct allocation *a, const struct sockaddr_storage *peer)
{
	for (unsigned i = 0; i < a->nperms; i++)
		if (addr_ip_eq(&a->perms[i].peer, peer))
			return &a->perms[i];
	return NULL;
}

const struct perm *alloc_perm_find(const struct allocation *a, const struct sockaddr_storage *peer)
{
	return perm_find(a, peer);
}

void alloc_refresh(struct alloc_table *t, struct allocation *a, time_t expires)
{
	a->expires = expires;
	if (t->hooks.alloc_refreshed)
		t->hooks.alloc_refreshed(t->hooks.ctx, a);
}

bool alloc_perm_ok(const struct allocation *a, const struct sockaddr_storage *peer, time_t now)
{
	const struct perm *p = perm_find(a, peer);

	return p && p->expires > now;
}

/* Room for more permissions: 0 or -ENOMEM. The first CreatePermission
 * gets exactly what it asks (most allocations never have another peer),
 * growth after that doubles. */
static int perm_reserve(struct allocation *a, unsigned more)
{
	unsigned cap = a->capperms ? a->capperms : a->nperms + more;
	struct perm *p;

	if (a->nperms + more <= a->capperms)
		return 0;
	while (cap < a->nperms + more)
		cap *= 2;
	p = realloc(a->perms, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	a->perms = p;
	a->capperms = cap;
	return 0;
}

/* Installs or refreshes the permission for peer's IP until expires. */
static int perm_add(struct alloc_table *t, struct allocation *a,
		    const struct sockaddr_storage *peer, time_t expires)
{
	struct perm *p = perm_find(a, peer);

	if (p) {
		p->expires = expires;
		if (!p->in_kernel && t->hooks.perm_up)
			p->in_kernel = t->hooks.perm_up(t->hooks.ctx, a, p);
		else if (t->hooks.perm_refreshed)
			t->hooks.perm_refreshed(t->hooks.ctx, a, p);
		return 0;
	}
	if (a->nperms >= t->lim.max_perms || perm_reserve(a, 1))
		return -ENOSPC;
	p = &a->perms[a->nperms++];
	memset(p, 0, sizeof(*p));
	p->peer = *peer;
	addr_canon(&p->peer);
	addr_set_port(&p->peer, 0);
	p->expires = expires;
	if (t->hooks.perm_up)
		p->in_kernel = t->hooks.perm_up(t->hooks.ctx, a, p);
	/* A channel to this IP whose permission had lapsed is usable again. */
	for (unsigned i = 0; i < a->nchans; i++)
		if (addr_ip_eq(&a->chans[i].peer, peer))
			chan_start(t, a, &a->chans[i]);
	return 0;
}

int alloc_perm_add(struct alloc_table *t, struct allocation *a,
		   const struct sockaddr_storage *peer, time_t now)
{
	return perm_add(t, a, peer, now + t->lim.permission_lifetime);
}

int alloc_perm_restore(struct alloc_table *t, struct allocation *a,
		       const struct sockaddr_storage *peer, time_t expires)
{
	return perm_add(t, a, peer, expires);
}

int alloc_perm_add_all(struct alloc_table *t, struct allocation *a,
		       const struct sockaddr_storage *peers, unsigned n, time_t now)
{
	unsigned fresh = 0;

	/* Counted first: a request that does not fit changes nothing. */
	for (unsigned i = 0; i < n; i++) {
		bool seen = perm_find(a, &peers[i]) != NULL;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = addr_ip_eq(&peers[j], &peers[i]);
		fresh += !seen;
	}
	if (a->nperms + fresh > t->lim.max_perms || perm_reserve(a, fresh))
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++)
		alloc_perm_add(t, a, &peers[i], now);	/* room reserved: cannot fail */
	return 0;
}

struct chan *alloc_chan_by_number(struct allocation *a, uint16_t number, time_t now)
{
	for (unsigned i = 0; i < a->nchans; i++)
		if (a->chan_keys[i].number == number && a->chans[i].expires > now)
			return &a->chans[i];
	return NULL;
}

struct chan *alloc_chan_by_peer(struct allocation *a, const struct sockaddr_storage *peer,
				time_t now)
{
	uint32_t h = (uint32_t)addr_hash(peer, true);

	for (unsigned i = 0; i < a->nchans; i++)
		if (a->chan_keys[i].peer_hash == h && addr_eq(&a->chans[i].peer, peer) &&
		    a->chans[i].expires > now)
			return &a->chans[i];
	return NULL;
}

static void expire_one(struct alloc_table *t, struct allocation *a, time_t now);

/* A new channel at the end of a's, not started; NULL when out of memory. */
static struct chan *chan_append(struct allocation *a, uint16_t number,
				const struct sockaddr_storage *peer, time_t expires)
{
	struct chan *c = realloc(a->chans, (a->nchans + 1) * sizeof(*c));
	struct chan_key *k;

	if (c)
		a->chans = c;
	k = realloc(a->chan_keys, (a->nchans + 1) * sizeof(*k));
	if (k)
		a->chan_keys = k;
	if (!c || !k)
		return NULL;
	k = &a->chan_keys[a->nchans];
	c = &a->chans[a->nchans++];
	memset(c, 0, sizeof(*c));
	c->number = number;
	c->peer = *peer;
	addr_canon(&c->peer);
	k->number = number;
	k->peer_hash = (uint32_t)addr_hash(&c->peer, true);
	c->expires = expires;
	return c;
}

int alloc_chan_bind(struct alloc_table *t, struct allocation *a, uint16_t number,
		    const struct sockaddr_storage *peer, time_t now)
{
	struct chan *byn, *byp, *c;
	int err;

	if (number < CHANNEL_MIN || number > CHANNEL_MAX)
		return -EINVAL;
	/* Drop what has lapsed first, so a stale entry with the same number
	 * or peer cannot be swept later and take the new binding with it. */
	expire_one(t, a, now);
	byn = alloc_chan_by_number(a, number, now);
	byp = alloc_chan_by_peer(a, peer, now);
	if (byn != byp)
		return -EBUSY;	/* one of them is bound to something else */
	if (!byn && a->nchans >= t->lim.max_channels)
		return -ENOSPC;
	if (!perm_find(a, peer) && a->nperms >= t->lim.max_perms)
		return -ENOSPC;
	if (byn) {
		byn->expires = now + t->lim.channel_lifetime;
		return alloc_perm_add(t, a, peer, now);
	}
	if (!(c = chan_append(a, number, peer, now + t->lim.channel_lifetime)))
		return -ENOSPC;
	/* The permission first: alloc_perm_add starts channels it unblocks,
	 * this new one included. */
	err = alloc_perm_add(t, a, peer, now);
	if (err) {
		a->nchans--;
		return err;
	}
	chan_start(t, a, c);
	return 0;
}

/* Removes element i of an array of n by moving the last one into it. */
#define ARRAY_DEL(arr, n, i) do { (arr)[i] = (arr)[(n) - 1]; (n)--; } while (0)

static void expire_one(struct alloc_table *t, struct allocation *a, time_t now)
{
	for (unsigned i = 0; i < a->nchans;) {
		if (a->chans[i].expires <= now) {
			chan_stop(t, a, &a->chans[i]);
			a->chan_keys[i] = a->chan_keys[a->nchans - 1];
			ARRAY_DEL(a->chans, a->nchans, i);
		} else {
			i++;
		}
	}
	for (unsigned i = 0; i < a->nperms;) {
		struct perm *p = &a->perms[i];
		if (p->expires > now) {
			i++;
			continue;
		}
		/* Bound channels to this IP stay bound but carry nothing. */
		for (unsigned j = 0; j < a->nchans; j++)
			if (addr_ip_eq(&a->chans[j].peer, &p->peer))
				chan_stop(t, a, &a->chans[j]);
		if (t->hooks.perm_down)
			t->hooks.perm_down(t->hooks.ctx, a, p);
		ARRAY_DEL(a->perms, a->nperms, i);
	}
}

unsigned alloc_expire(struct alloc_table *t, time_t now)
{
	unsigned deleted = 0;

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct allocation **p = &t->buckets[i];
		while (*p) {
			struct allocation *a = *p;
			if (a->expires <= now) {
				*p = a->next;
				t->count--;
				if (!a->end)
					a->end = ALLOC_END_EXPIRED;
				alloc_free_one(t, a);
				deleted++;
				continue;
			}
			expire_one(t, a, now);
			p = &a->next;
		}
	}
	return deleted;
}

unsigned alloc_revoke(struct alloc_table *t, const struct alloc_keep *k)
{
	unsigned n = 0;

	/* Expiry 0 is past for any clock; a dead allocation takes the rest. */
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct allocation *a = t->buckets[i]; a; a = a->next) {
			if (k->alloc && !k->alloc(k->ctx, a)) {
				alloc_end_at_next_expiry(a, ALLOC_END_REVOKED);
				n++;
				continue;
			}
			for (unsigned j = 0; j < a->nperms; j++) {
				struct perm *p = &a->perms[j];
				if (k->perm && !k->perm(k->ctx, a, p)) {
					p->expires = 0;
					n++;
					for (unsigned c = 0; c < a->nchans; c++)
						if (a->chans[c].expires &&
						    addr_ip_eq(&a->chans[c].peer, &p->peer)) {
							a->chans[c].expires = 0;
							n++;
						}
				}
			}
			for (unsigned j = 0; j < a->nchans; j++) {
				struct chan *c = &a->chans[j];
				if (c->expires && k->chan && !k->chan(k->ctx, a, c)) {
					c->expires = 0;
					n++;
				}
			}
		}
	}
	if (n)
		alloc_expire(t, 0);
	return n;
}

struct allocation *alloc_new(const char *username)
{
	size_t n = strnlen(username, STUN_MAX_USERNAME - 1);
	struct allocation *a = calloc(1, sizeof(*a) + n + 1);

	if (a)
		memcpy(a->username, username, n);
	return a;
}

const struct tx_entry *alloc_tx_find(const struct allocation *a, const uint8_t tid[STUN_TID_LEN])
{
	for (unsigned i = 0; i < ALLOC_TX_CACHE; i++)
		if (a->tx[i].len && !memcmp(a->tx[i].tid, tid, STUN_TID_LEN))
			return &a->tx[i];
	return NULL;
}

void alloc_tx_store(struct allocation *a, const uint8_t tid[STUN_TID_LEN], const uint8_t *buf,
		    size_t len)
{
	struct tx_entry *e = &a->tx[a->tx_next];
	uint8_t *copy;

	/* Not cached (too long, no memory): a retransmission is then
	 * processed again. */
	if (len > ALLOC_TX_MAXLEN || !(copy = malloc(len)))
		return;
	a->tx_next = (a->tx_next + 1) % ALLOC_TX_CACHE;
	free(e->buf);
	memcpy(e->tid, tid, STUN_TID_LEN);
	memcpy(copy, buf, len);
	e->buf = copy;
	e->len = (uint16_t)len;
}

void alloc_tx_clear(struct allocation *a)
{
	for (unsigned i = 0; i < ALLOC_TX_CACHE; i++) {
		free(a->tx[i].buf);
		a->tx[i] = (struct tx_entry){ .len = 0 };
	}
}

/* const in, mutable out, as strchr: callers with a const allocation only read. */
struct relay *alloc_relay_for(const struct allocation *a, int family)
{
	for (unsigned i = 0; i < a->nrelays; i++)
		if (a->relays[i].addr.ss_family == family)
			return (struct relay *)&a->relays[i];
	return NULL;
}

int alloc_chan_restore(struct alloc_table *t, struct allocation *a, uint16_t number,
		       const struct sockaddr_storage *peer, time_t expires)
{
	struct chan *c;

	if (number < CHANNEL_MIN || number > CHANNEL_MAX || a->nchans >= t->lim.max_channels)
		return -EINVAL;
	if (!(c = chan_append(a, number, peer, expires)))
		return -ENOMEM;
	if (perm_find(a, peer))
		chan_start(t, a, c);
	return 0;
}
