#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "common/addr.h"
#include "common/pins.h"
#include "daemon/fastpath/fp.h"

/* A full hash map answers -E2BIG; the header promises -ENOSPC. */
static int map_err(int err)
{
	return err == -E2BIG ? -ENOSPC : err;
}

/* ---- userspace record of what each relay owns ---------------------------- */

static void relay_key(const struct sockaddr_storage *relay, struct xt_relay_key *k)
{
	memset(k, 0, sizeof(*k));
	addr_to_mapped(relay, k->relay);
	k->relay_port = htons(addr_port(relay));
}

static struct fp_relay **relay_slot(struct fastpath *fp, const struct xt_relay_key *k)
{
	uint32_t h = k->relay[0] ^ k->relay[1] ^ k->relay[2] ^ k->relay[3] ^ k->relay_port;
	struct fp_relay **pp = &fp->relays[(h * 2654435761u) >> (32 - fp->relay_bits)];

	while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)))
		pp = &(*pp)->next;
	return pp;
}

static struct fp_relay *relay_get(struct fastpath *fp, const struct xt_relay_key *k)
{
	struct fp_relay **pp = relay_slot(fp, k);

	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp)
			(*pp)->key = *k;
	}
	return *pp;
}

/* Room for one more of n items of size in *arr (capacity *cap): 0 or -ENOMEM.
 * Two first: a relay's usual permission and channel. */
static int room_for_one(void **arr, size_t n, size_t *cap, size_t size)
{
	size_t c = *cap ? 2 * *cap : 2;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, c * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* Makes room for one more entry before the maps are written, so a failed
 * allocation never leaves a map entry the record does not know about. */
static int relay_reserve(struct fp_relay *r)
{
	return room_for_one((void **)&r->entries, r->n, &r->cap, sizeof(*r->entries));
}

static struct fp_entry *relay_find(struct fp_relay *r, const struct fp_entry *e)
{
	for (size_t i = 0; i < r->n; i++)
		if (!memcmp(&r->entries[i], e, sizeof(*e)))
			return &r->entries[i];
	return NULL;
}

static void relay_forget(struct fastpath *fp, const struct xt_relay_key *k,
			 const struct fp_entry *e)
{
	struct fp_relay *r = *relay_slot(fp, k);
	struct fp_entry *found = r ? relay_find(r, e) : NULL;

	if (found)
		*found = r->entries[--r->n];
}

/* ---- map writes ------------------------------------------------------------ */

int fp_relay_add(struct fastpath *fp, const struct sockaddr_storage *relay)
{
	struct xt_relay_key k;
	struct xt_relay_val v = { 0 };

	relay_key(relay, &k);
	if (!relay_get(fp, &k))
		return -ENOMEM;
	return map_err(bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_relays), &k, &v,
					   BPF_ANY));
}

static struct xt_perm_key *missing_find(struct fp_relay *r, const struct xt_perm_key *k)
{
	for (size_t i = 0; i < r->nmissing; i++)
		if (!memcmp(&r->missing[i], k, sizeof(*k)))
			return &r->missing[i];
	return NULL;
}

/* Writes the relay's flags as its missing permissions say. */
static void relay_flags(struct fastpath *fp, struct fp_relay *r)
{
	struct xt_relay_val v = { .flags = r->nmissing ? XT_RELAY_PERMS_INCOMPLETE : 0 };

	bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_relays), &r->key, &v, BPF_EXIST);
}

/* A permission the map could not take: remembered (a refresh retries it),
 * the relay flagged. -ENOMEM if even that fails (then XDP drops the peer). */
static int missing_add(struct fastpath *fp, struct fp_relay *r, const struct xt_perm_key *k)
{
	if (missing_find(r, k))
		return 0;
	if (room_for_one((void **)&r->missing, r->nmissing, &r->capmissing, sizeof(*k)))
		return -ENOMEM;
	r->missing[r->nmissing++] = *k;
	fp->perms_missing++;
	if (r->nmissing == 1)
		relay_flags(fp, r);
	return 0;
}

static void missing_del(struct fastpath *fp, struct fp_relay *r, const struct xt_perm_key *k)
{
	struct xt_perm_key *m = missing_find(r, k);

	if (!m)
		return;
	*m = r->missing[--r->nmissing];
	fp->perms_missing--;
	if (!r->nmissing)
		relay_flags(fp, r);
}

static void perm_entry(const struct sockaddr_storage *relay, const struct sockaddr_storage *peer,
		       struct fp_entry *e)
{
	memset(e, 0, sizeof(*e));
	addr_to_mapped(relay, e->perm.relay);
	addr_to_mapped(peer, e->perm.peer);
	e->perm.relay_port = htons(addr_port(relay));
}

int fp_perm_add(struct fastpath *fp, const struct sockaddr_storage *relay,
		const struct sockaddr_storage *peer, uint64_t expires_ns)
{
	struct xt_relay_key rk;
	struct xt_perm_val v = { .expires_ns = expires_ns };
	struct fp_relay *r;
	struct fp_entry e;
	int err;

	relay_key(relay, &rk);
	r = relay_get(fp, &rk);
	if (!r || relay_reserve(r))
		return -ENOMEM;
	perm_entry(relay, peer, &e);
	err = bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_perms), &e.perm, &v, BPF_ANY);
	if (err) {
		err = map_err(err);
		return missing_add(fp, r, &e.perm) ? -ENOMEM : err;
	}
	missing_del(fp, r, &e.perm);
	/* A refreshed permission is written again but recorded once. */
	if (!relay_find(r, &e))
		r->entries[r->n++] = e;
	return 0;
}

void fp_perm_del(struct fastpath *fp, const struct sockaddr_storage *relay,
		 const struct sockaddr_storage *peer)
{
	struct xt_relay_key rk;
	struct fp_entry e;
	struct fp_relay *r;

	relay_key(relay, &rk);
	perm_entry(relay, peer, &e);
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_perms), &e.perm);
	relay_forget(fp, &rk, &e);
	r = *relay_slot(fp, &rk);
	if (r)
		missing_del(fp, r, &e.perm);
}

static void chan_entry(const struct fp_chan *c, struct fp_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->is_chan = true;
	addr_to_mapped(&c->client, e->chan.client);
	addr_to_mapped(&c->listener, e->chan.listener);
	e->chan.client_port = htons(addr_port(&c->client));
	e->chan.listener_port = htons(addr_port(&c->listener));
	e->chan.channel = htons(c->channel);
}

/* Expiry slots (xt_expiry's indices), one a binding: a stack of the free,
 * which are those no binding already in the maps (an earlier daemon's,
 * adopted or swept later) names. */
int fp_slots_init(struct fastpath *fp)
{
	int c2p = bpf_map__fd(fp->skel->maps.xt_c2p);
	struct xt_c2p_key k, *prev = NULL;
	struct xt_c2p_val v;
	uint8_t *used = calloc(fp->max_bindings, 1);

	fp->free_slots = malloc(fp->max_bindings * sizeof(*fp->free_slots));
	if (!used || !fp->free_slots) {
		free(used);
		return -ENOMEM;
	}
	fp->nchans = 0;
	while (!bpf_map_get_next_key(c2p, prev, &k)) {
		if (!bpf_map_lookup_elem(c2p, &k, &v) && v.exp_slot < fp->max_bindings)
			used[v.exp_slot] = 1;
		fp->nchans++;
		prev = &k;
	}
	fp->nfree = 0;
	for (uint32_t i = fp->max_bindings; i-- > 0;)
		if (!used[i])
			fp->free_slots[fp->nfree++] = i;
	free(used);
	return 0;
}

static int slot_set(struct fastpath *fp, uint32_t slot, uint64_t expires_ns)
{
	return bpf_map_update_elem(bpf_map__fd(fp->skel->maps.xt_expiry), &slot, &expires_ns,
				   BPF_ANY);
}

/* Deletes both directions of the binding keyed k (the p2c key comes from
 * the map, not from the caller), with what they had counted into st (if
 * not NULL): lookup-and-delete, so no packet counted in between is lost. */
static void chan_remove(struct fastpath *fp, const struct fp_entry *e, struct fp_chan_stats *st)
{
	int c2p = bpf_map__fd(fp->skel->maps.xt_c2p);
	struct xt_relay_key rk = { 0 };
	struct xt_p2c_key pk;
	struct xt_c2p_val v;
	struct xt_p2c_val pv = { 0 };

	if (bpf_map_lookup_and_delete_elem(c2p, &e->chan, &v))
		return;
	xt_p2c_key_of(&v, &pk);
	bpf_map_lookup_and_delete_elem(bpf_map__fd(fp->skel->maps.xt_p2c), &pk, &pv);
	slot_set(fp, v.exp_slot, 0);
	fp->free_slots[fp->nfree++] = v.exp_slot;
	if (st) {
		st->c2p_packets = v.packets;
		st->c2p_bytes = v.bytes;
		st->p2c_packets = pv.packets;
		st->p2c_bytes = pv.bytes;
	}
	fp->nchans--;
	memcpy(rk.relay, v.relay, sizeof(rk.relay));
	rk.relay_port = v.relay_port;
	relay_forget(fp, &rk, e);
}

int fp_chan_add(struct fastpath *fp, const struct fp_chan *c)
{
	int c2p = bpf_map__fd(fp->skel->maps.xt_c2p), p2c = bpf_map__fd(fp->skel->maps.xt_p2c);
	struct xt_relay_key rk;
	struct xt_c2p_val v = { 0 }, old;
	struct xt_p2c_key pk;
	struct xt_p2c_val pv = { 0 };
	struct fp_relay *r;
	struct fp_entry e;
	int err;

	relay_key(&c->relay, &rk);
	r = relay_get(fp, &rk);
	if (!r || relay_reserve(r))
		return -ENOMEM;
	chan_entry(c, &e);
	/* The same binding already in the maps (an earlier daemon's, its
	 * state adopted): kept as it is, counters and all, with its new end. */
	addr_to_mapped(&c->relay, v.relay);
	addr_to_mapped(&c->peer, v.peer);
	v.relay_port = htons(addr_port(&c->relay));
	v.peer_port = htons(addr_port(&c->peer));
	if (!bpf_map_lookup_elem(c2p, &e.chan, &old) && !memcmp(old.relay, v.relay, 32) &&
	    old.relay_port == v.relay_port && old.peer_port == v.peer_port) {
		if ((err = slot_set(fp, old.exp_slot, c->expires_ns)))
			return map_err(err);
		if (!relay_find(r, &e))
			r->entries[r->n++] = e;
		return 0;
	}
	/* A rebinding replaces the old binding: its p2c key may differ. */
	chan_remove(fp, &e, NULL);
	if (!fp->nfree)
		return -ENOSPC;
	/* The expiry first: the binding is never live without one. */
	v.exp_slot = pv.exp_slot = fp->free_slots[fp->nfree - 1];
	if ((err = slot_set(fp, v.exp_slot, c->expires_ns)))
		return map_err(err);

	/* Our relays share the relay's IP (one relay-ip per family), so only
	 * such a peer can be one (hairpin). A relay on another of our IPs is
	 * still reached, through the kernel: the route lookup finds it local. */
	if (addr_ip_eq(&c->peer, &c->relay))
		v.flags = XT_C2P_PEER_LOCAL;
	xt_p2c_key_of(&v, &pk);
	memcpy(pv.client, e.chan.client, sizeof(pv.client));
	memcpy(pv.listener, e.chan.listener, sizeof(pv.listener));
	pv.client_port = e.chan.client_port;
	pv.listener_port = e.chan.listener_port;
	pv.channel = e.chan.channel;

	err = bpf_map_update_elem(p2c, &pk, &pv, BPF_NOEXIST);
	if (!err && (err = bpf_map_update_elem(c2p, &e.chan, &v, BPF_NOEXIST)))
		bpf_map_delete_elem(p2c, &pk);
	if (err) {
		slot_set(fp, v.exp_slot, 0);
		return map_err(err);
	}
	fp->nfree--;
	/* chan_remove() above took any earlier copy out of the record. */
	r->entries[r->n++] = e;
	fp->nchans++;
	return 0;
}

int fp_chan_expire(struct fastpath *fp, const struct fp_chan *c)
{
	struct xt_c2p_val v;
	struct fp_entry e;

	chan_entry(c, &e);
	if (bpf_map_lookup_elem(bpf_map__fd(fp->skel->maps.xt_c2p), &e.chan, &v))
		return -ENOENT;
	return map_err(slot_set(fp, v.exp_slot, c->expires_ns));
}

void fp_chan_del(struct fastpath *fp, const struct fp_chan *c, struct fp_chan_stats *st)
{
	struct fp_entry e;

	chan_entry(c, &e);
	chan_remove(fp, &e, st);
}

int fp_chan_stats(struct fastpath *fp, const struct fp_chan *c, struct fp_chan_stats *st)
{
	struct xt_c2p_val v;
	struct xt_p2c_val pv = { 0 };
	struct xt_p2c_key pk;
	struct fp_entry e;

	chan_entry(c, &e);
	if (bpf_map_lookup_elem(bpf_map__fd(fp->skel->maps.xt_c2p), &e.chan, &v))
		return -ENOENT;
	xt_p2c_key_of(&v, &pk);
	bpf_map_lookup_elem(bpf_map__fd(fp->skel->maps.xt_p2c), &pk, &pv);
	st->c2p_packets = v.packets;
	st->c2p_bytes = v.bytes;
	st->p2c_packets = pv.packets;
	st->p2c_bytes = pv.bytes;
	return 0;
}

void fp_relay_del(struct fastpath *fp, const struct sockaddr_storage *relay)
{
	struct xt_relay_key k;
	struct fp_relay **pp, *r;

	relay_key(relay, &k);
	bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_relays), &k);
	pp = relay_slot(fp, &k);
	r = *pp;
	if (!r)
		return;
	/* Unlinked first, so chan_remove()'s relay_forget() leaves it alone. */
	*pp = r->next;
	for (size_t i = 0; i < r->n; i++) {
		if (r->entries[i].is_chan)
			chan_remove(fp, &r->entries[i], NULL);
		else
			bpf_map_delete_elem(bpf_map__fd(fp->skel->maps.xt_perms),
					    &r->entries[i].perm);
	}
	fp->perms_missing -= r->nmissing;
	free(r->missing);
	free(r->entries);
	free(r);
}

unsigned fp_perms_missing(const struct fastpath *fp)
{
	return fp->perms_missing;
}

/* ---- counters -------------------------------------------------------------- */

int fp_counters(struct fastpath *fp, struct xt_count out[XT_CNT_MAX])
{
	return pins_read_counters(bpf_map__fd(fp->skel->maps.xt_stats), out);
}

unsigned fp_chan_count(struct fastpath *fp)
{
	return fp->nchans;
}

int fp_relays_init(struct fastpath *fp)
{
	fp->relay_bits = 12;
	while (fp->relay_bits < 31 && (1u << (fp->relay_bits + 1)) <= fp->max_relays)
		fp->relay_bits++;
	fp->relays = calloc((size_t)1 << fp->relay_bits, sizeof(*fp->relays));
	return fp->relays ? 0 : -ENOMEM;
}

void fp_relays_free(struct fastpath *fp)
{
	for (size_t i = 0; fp->relays && i < (size_t)1 << fp->relay_bits; i++) {
		while (fp->relays[i]) {
			struct fp_relay *r = fp->relays[i];

			fp->relays[i] = r->next;
			free(r->missing);
			free(r->entries);
			free(r);
		}
	}
	free(fp->relays);
	fp->relays = NULL;
}

/* Whether the record holds entry e of relay k. */
static bool recorded(struct fastpath *fp, const struct xt_relay_key *k, const struct fp_entry *e)
{
	struct fp_relay *r = *relay_slot(fp, k);

	return r && (!e || relay_find(r, e));
}

unsigned fp_sweep(struct fastpath *fp)
{
	int c2p = bpf_map__fd(fp->skel->maps.xt_c2p), perms = bpf_map__fd(fp->skel->maps.xt_perms);
	int relays = bpf_map__fd(fp->skel->maps.xt_relays);
	struct xt_c2p_key ck, *cprev = NULL;
	struct xt_perm_key mk, *mprev = NULL;
	struct xt_relay_key rk, *rprev = NULL;
	struct xt_c2p_val v;
	unsigned n = 0;

	/* Deleting the key just read ends the walk's place: start again. */
	while (!bpf_map_get_next_key(c2p, cprev, &ck)) {
		struct xt_relay_key k = { 0 };
		struct fp_entry e;

		memset(&e, 0, sizeof(e));	/* compared whole, padding too */
		e.is_chan = true;
		e.chan = ck;

		if (bpf_map_lookup_elem(c2p, &ck, &v)) {
			cprev = &ck;
			continue;
		}
		memcpy(k.relay, v.relay, sizeof(k.relay));
		k.relay_port = v.relay_port;
		if (recorded(fp, &k, &e)) {
			cprev = &ck;
			continue;
		}
		chan_remove(fp, &e, NULL);
		n++;
		cprev = NULL;
	}
	while (!bpf_map_get_next_key(perms, mprev, &mk)) {
		struct xt_relay_key k = { 0 };
		struct fp_entry e;

		memset(&e, 0, sizeof(e));
		e.perm = mk;

		memcpy(k.relay, mk.relay, sizeof(k.relay));
		k.relay_port = mk.relay_port;
		if (recorded(fp, &k, &e)) {
			mprev = &mk;
			continue;
		}
		bpf_map_delete_elem(perms, &mk);
		n++;
		mprev = NULL;
	}
	while (!bpf_map_get_next_key(relays, rprev, &rk)) {
		if (recorded(fp, &rk, NULL)) {
			rprev = &rk;
			continue;
		}
		bpf_map_delete_elem(relays, &rk);
		n++;
		rprev = NULL;
	}
	return n;
}
