/* Allocation state: lifetimes, permission and channel rules, quotas, and the
 * hooks that mirror channels into the fast path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/addr.h"
#include "turn/alloc.h"
#include "testalloc.h"

/* A fake fast path: the set of channels the hooks say are carried. */
struct mirror {
	int chans;		/* chan_up minus chan_down */
	int perms;
	int allocs_down;
	enum alloc_end ends[8];		/* the end reason each alloc_down saw */
	bool refuse;		/* chan_up answers "map full" */
	bool refuse_perms;	/* perm_up too */
	int perm_ups;
	uint16_t last_up, last_down;
};

static void m_alloc_down(void *ctx, struct allocation *a)
{
	struct mirror *m = ctx;

	if (m->allocs_down < 8)
		m->ends[m->allocs_down] = (enum alloc_end)a->end;
	m->allocs_down++;
}
static bool m_perm_up(void *ctx, struct allocation *a, const struct perm *p)
{
	struct mirror *m = ctx;

	m->perms++;
	m->perm_ups++;
	return !m->refuse_perms;
}
static void m_perm_down(void *ctx, struct allocation *a, const struct perm *p) { ((struct mirror *)ctx)->perms--; }
static bool m_chan_up(void *ctx, struct allocation *a, struct chan *c)
{
	struct mirror *m = ctx;
	m->chans++;
	m->last_up = c->number;
	return !m->refuse;
}
static void m_chan_down(void *ctx, struct allocation *a, struct chan *c)
{
	struct mirror *m = ctx;
	m->chans--;
	m->last_down = c->number;
}

static struct mirror mir;
static const struct alloc_limits limits = {
	.user_quota = 2, .total_quota = 3, .max_perms = 4, .max_channels = 3,
	.permission_lifetime = 300, .channel_lifetime = 600,
};

static struct alloc_table *new_table(void)
{
	struct alloc_hooks h = {
		.ctx = &mir, .alloc_down = m_alloc_down, .perm_up = m_perm_up,
		.perm_down = m_perm_down, .chan_up = m_chan_up, .chan_down = m_chan_down,
	};
	memset(&mir, 0, sizeof(mir));
	return alloc_table_new(&limits, &h, NULL);
}

static void test_insert_find_delete(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1000", "u", 100);
	struct sockaddr_storage c = A("198.51.100.1:1000"), l = A("192.0.2.1:3478");
	struct sockaddr_storage mapped = A("[::ffff:198.51.100.1]:1000");

	assert_int_equal(alloc_insert(t, a), 0);
	assert_ptr_equal(alloc_find(t, &c, &l), a);
	/* the 5-tuple is canonical: IPv4-mapped finds the IPv4 allocation */
	assert_ptr_equal(alloc_find(t, &mapped, &l), a);
	c = A("198.51.100.1:1001");
	assert_null(alloc_find(t, &c, &l));
	struct allocation *dup = mk("198.51.100.1:1000", "u", 100);
	assert_int_equal(alloc_insert(t, dup), -EEXIST);
	free(dup);
	assert_int_equal(alloc_count(t), 1);
	alloc_delete(t, a, ALLOC_END_DELETED);
	assert_int_equal(alloc_count(t), 0);
	assert_int_equal(mir.allocs_down, 1);
	alloc_table_free(t);
}

/* Each way an allocation goes names its reason once: the first one set
 * wins (a kill marked before the expiry that carries it out). */
static bool keep_none(void *ctx, const struct allocation *a) { return false; }

static void test_end_reasons(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 100), *b = mk("198.51.100.1:2", "v", 100);
	struct alloc_keep keep = { .alloc = keep_none };

	assert_int_equal(alloc_insert(t, a), 0);
	assert_int_equal(alloc_insert(t, b), 0);
	alloc_delete(t, a, ALLOC_END_CLOSED);
	alloc_end_at_next_expiry(b, ALLOC_END_KILLED);
	alloc_end_at_next_expiry(b, ALLOC_END_DRAINED);
	assert_int_equal(alloc_expire(t, 1), 1);
	assert_int_equal(alloc_insert(t, mk("198.51.100.1:3", "u", 100)), 0);
	assert_int_equal(alloc_expire(t, 100), 1);
	assert_int_equal(alloc_insert(t, mk("198.51.100.1:4", "u", 1000)), 0);
	assert_int_equal(alloc_revoke(t, &keep), 1);
	assert_int_equal(alloc_insert(t, mk("198.51.100.1:5", "u", 1000)), 0);
	alloc_table_free(t);
	assert_int_equal(mir.allocs_down, 5);
	assert_int_equal(mir.ends[0], ALLOC_END_CLOSED);
	assert_int_equal(mir.ends[1], ALLOC_END_KILLED);
	assert_int_equal(mir.ends[2], ALLOC_END_EXPIRED);
	assert_int_equal(mir.ends[3], ALLOC_END_REVOKED);
	assert_int_equal(mir.ends[4], ALLOC_END_SHUTDOWN);
	assert_string_equal(alloc_end_name(ALLOC_END_CLOSED), "connection closed");
	assert_string_equal(alloc_transport_name(ALLOC_TLS), "tls");
}

static void test_quotas(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *extra;

	assert_int_equal(alloc_insert(t, mk("198.51.100.1:1", "alice", 100)), 0);
	assert_int_equal(alloc_insert(t, mk("198.51.100.1:2", "alice", 100)), 0);
	assert_int_equal(alloc_quota_check(t, "alice"), -EDQUOT);
	extra = mk("198.51.100.1:3", "alice", 100);
	assert_int_equal(alloc_insert(t, extra), -EDQUOT);
	free(extra);
	assert_int_equal(alloc_quota_check(t, "bob"), 0);
	assert_int_equal(alloc_insert(t, mk("198.51.100.1:4", "bob", 100)), 0);
	/* total-quota of 3 reached */
	assert_int_equal(alloc_quota_check(t, "carol"), -ENOSPC);
	assert_int_equal(alloc_user_count(t, "alice"), 2);
	/* expiry gives quota back */
	assert_int_equal(alloc_expire(t, 100), 3);
	assert_int_equal(alloc_user_count(t, "alice"), 0);
	assert_int_equal(alloc_quota_check(t, "carol"), 0);
	alloc_table_free(t);
}

/* Worker threads' tables share one quota: a user's allocations count
 * wherever they live. */
static void test_shared_quota(void **st)
{
	struct alloc_quota *q = alloc_quota_new();
	struct alloc_table *t1 = alloc_table_new(&limits, NULL, q);
	struct alloc_table *t2 = alloc_table_new(&limits, NULL, q);
	struct allocation *extra;

	assert_int_equal(alloc_insert(t1, mk("198.51.100.1:1", "alice", 100)), 0);
	assert_int_equal(alloc_insert(t2, mk("198.51.100.1:2", "alice", 100)), 0);
	assert_int_equal(alloc_user_count(t1, "alice"), 2);
	extra = mk("198.51.100.1:3", "alice", 100);
	assert_int_equal(alloc_insert(t1, extra), -EDQUOT);
	free(extra);
	assert_int_equal(alloc_insert(t2, mk("198.51.100.1:4", "bob", 100)), 0);
	assert_int_equal(alloc_quota_check(t1, "carol"), -ENOSPC);	/* total 3 */
	assert_int_equal(alloc_count(t1), 1);
	assert_int_equal(alloc_count(t2), 2);
	alloc_table_free(t2);
	assert_int_equal(alloc_user_count(t1, "alice"), 1);
	assert_int_equal(alloc_quota_check(t1, "carol"), 0);
	alloc_table_free(t1);
	alloc_quota_free(q);
}

static void test_permissions(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 10000);
	struct sockaddr_storage p1 = A("203.0.113.5:7000"), p1other = A("203.0.113.5:9"),
				p1mapped = A("[::ffff:203.0.113.5]:1");

	alloc_insert(t, a);
	assert_false(alloc_perm_ok(a, &p1, 0));
	assert_int_equal(alloc_perm_add(t, a, &p1, 0), 0);
	/* permissions are per IP: any port, mapped or not */
	assert_true(alloc_perm_ok(a, &p1other, 1));
	assert_true(alloc_perm_ok(a, &p1mapped, 1));
	assert_int_equal(mir.perms, 1);
	/* a refresh extends, it does not add */
	assert_int_equal(alloc_perm_add(t, a, &p1, 200), 0);
	assert_int_equal(a->nperms, 1);
	alloc_expire(t, 499);
	assert_true(alloc_perm_ok(a, &p1, 499));
	alloc_expire(t, 500);
	assert_false(alloc_perm_ok(a, &p1, 500));
	assert_int_equal(mir.perms, 0);
	/* max-permissions */
	for (int i = 0; i < 4; i++) {
		char s[32];
		snprintf(s, sizeof(s), "203.0.113.%d", 10 + i);
		struct sockaddr_storage p = A(s);
		assert_int_equal(alloc_perm_add(t, a, &p, 600), 0);
	}
	struct sockaddr_storage p5 = A("203.0.113.99");
	assert_int_equal(alloc_perm_add(t, a, &p5, 600), -ENOSPC);
	alloc_table_free(t);
}

static void test_channel_rules(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 10000);
	struct sockaddr_storage p1 = A("203.0.113.5:7000"), p2 = A("203.0.113.6:7000"),
				p1port = A("203.0.113.5:7001");

	alloc_insert(t, a);
	assert_int_equal(alloc_chan_bind(t, a, 0x3FFF, &p1, 0), -EINVAL);
	assert_int_equal(alloc_chan_bind(t, a, 0x8000, &p1, 0), -EINVAL);
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p1, 0), 0);
	/* binding installs the permission and starts the channel */
	assert_true(alloc_perm_ok(a, &p1, 1));
	assert_int_equal(mir.chans, 1);
	/* same number, other peer; same peer, other number: 400 */
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p2, 1), -EBUSY);
	assert_int_equal(alloc_chan_bind(t, a, 0x4001, &p1, 1), -EBUSY);
	/* a different port of the same IP is a different peer */
	assert_int_equal(alloc_chan_bind(t, a, 0x4001, &p1port, 1), 0);
	/* rebinding the same pair refreshes */
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p1, 100), 0);
	assert_int_equal(a->nchans, 2);
	assert_ptr_equal(alloc_chan_by_number(a, 0x4000, 650), alloc_chan_by_peer(a, &p1, 650));
	assert_int_equal(mir.chans, 2);
	/* max-channels (3) */
	assert_int_equal(alloc_chan_bind(t, a, 0x4002, &p2, 100), 0);
	struct sockaddr_storage p3 = A("203.0.113.7:1");
	assert_int_equal(alloc_chan_bind(t, a, 0x4003, &p3, 100), -ENOSPC);
	alloc_table_free(t);
	assert_int_equal(mir.chans, 0);
}

/* Lookups by number and by peer after an expired channel left the middle
 * of the table: each finds its own channel and the lapsed one is gone. */
static void test_channel_lookup_after_expiry(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 10000);
	struct sockaddr_storage p[4] = { A("203.0.113.5:7000"), A("203.0.113.6:7000"),
					 A("203.0.113.7:7000"), A("203.0.113.8:7000") };
	struct chan *c;

	alloc_insert(t, a);
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p[0], 0), 0);
	assert_int_equal(alloc_chan_bind(t, a, 0x4001, &p[1], 100), 0);
	assert_int_equal(alloc_chan_bind(t, a, 0x4002, &p[2], 200), 0);
	/* 0x4000 lapses at 600; binding a fourth sweeps it (max-channels 3). */
	assert_int_equal(alloc_chan_bind(t, a, 0x4003, &p[3], 650), 0);
	assert_int_equal(a->nchans, 3);
	assert_null(alloc_chan_by_number(a, 0x4000, 650));
	assert_null(alloc_chan_by_peer(a, &p[0], 650));
	for (int i = 1; i < 4; i++) {
		c = alloc_chan_by_number(a, (uint16_t)(0x4000 + i), 650);
		assert_non_null(c);
		assert_true(addr_eq(&c->peer, &p[i]));
		assert_ptr_equal(alloc_chan_by_peer(a, &p[i], 650), c);
	}
	/* Still three live channels (0x4001 lapses at 700): no room. */
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p[0], 690), -ENOSPC);
	alloc_table_free(t);
}

/* The mirror (fast path maps) carries exactly the channels that are bound
 * and permitted, through permission lapse, re-permission and expiry. */
static void test_channel_mirror_follows_permission(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 100000);
	struct sockaddr_storage p1 = A("203.0.113.5:7000");

	alloc_insert(t, a);
	assert_int_equal(alloc_chan_bind(t, a, 0x4ABC, &p1, 0), 0);
	assert_int_equal(mir.chans, 1);
	assert_int_equal(mir.last_up, 0x4ABC);
	/* permission (300 s) lapses while the channel (600 s) lives */
	alloc_expire(t, 300);
	assert_int_equal(mir.chans, 0);
	assert_int_equal(mir.last_down, 0x4ABC);
	assert_non_null(alloc_chan_by_number(a, 0x4ABC, 300));
	/* CreatePermission brings the channel back into use */
	assert_int_equal(alloc_perm_add(t, a, &p1, 310), 0);
	assert_int_equal(mir.chans, 1);
	/* channel expiry */
	alloc_expire(t, 600);
	assert_int_equal(mir.chans, 0);
	assert_null(alloc_chan_by_number(a, 0x4ABC, 600));
	/* after expiry the number can be bound to another peer */
	struct sockaddr_storage p2 = A("203.0.113.9:1");
	assert_int_equal(alloc_chan_bind(t, a, 0x4ABC, &p2, 601), 0);
	assert_int_equal(mir.chans, 1);
	/* deleting the allocation takes everything down */
	alloc_delete(t, a, ALLOC_END_DELETED);
	assert_int_equal(mir.chans, 0);
	assert_int_equal(mir.perms, 0);
	alloc_table_free(t);
}

/* Revocation: refuse one peer's IP, one channel port of another peer,
 * then a whole allocation; each goes through the hooks, the rest stays. */
static bool refuse_ip(void *ctx, const struct allocation *a, const struct perm *p)
{
	struct sockaddr_storage bad = A("203.0.113.5");

	return !addr_ip_eq(&p->peer, &bad);
}
static bool refuse_port(void *ctx, const struct allocation *a, const struct chan *c)
{
	return addr_port(&c->peer) != 53;
}
static bool refuse_user(void *ctx, const struct allocation *a)
{
	return strcmp(a->username, "gone") != 0;
}

static void test_revoke(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 100000);
	struct allocation *b = mk("198.51.100.2:1", "gone", 100000);
	struct sockaddr_storage p1 = A("203.0.113.5:7000"), p2 = A("203.0.113.5:7001");
	struct sockaddr_storage q1 = A("203.0.113.6:53"), q2 = A("203.0.113.6:54");
	const struct alloc_keep keep = { NULL, refuse_user, refuse_ip, refuse_port };

	assert_int_equal(alloc_insert(t, a), 0);
	assert_int_equal(alloc_insert(t, b), 0);
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p1, 0), 0);
	assert_int_equal(alloc_chan_bind(t, a, 0x4001, &p2, 0), 0);
	assert_int_equal(alloc_chan_bind(t, a, 0x4002, &q1, 0), 0);
	assert_int_equal(alloc_perm_add(t, b, &q2, 0), 0);
	assert_int_equal(mir.chans, 3);
	assert_int_equal(mir.perms, 3);
	/* a: p's permission and its 2 channels, q1's channel; b: all of it */
	assert_int_equal(alloc_revoke(t, &keep), 5);
	assert_int_equal(mir.allocs_down, 1);
	assert_int_equal(alloc_count(t), 1);
	assert_int_equal(mir.perms, 1);		/* a's for q */
	assert_int_equal(mir.chans, 0);
	assert_null(alloc_chan_by_number(a, 0x4000, 1));
	assert_null(alloc_chan_by_number(a, 0x4002, 1));
	assert_true(alloc_perm_ok(a, &q2, 1));
	assert_false(alloc_perm_ok(a, &p1, 1));
	/* nothing left to refuse: nothing moves */
	assert_int_equal(alloc_revoke(t, &keep), 0);
	assert_int_equal(mir.perms, 1);
	alloc_table_free(t);
}

/* One CreatePermission with several peers is all or nothing. */
static void test_perm_add_all(void **st)
{
	struct alloc_table *t = new_table();	/* max_perms 4 */
	struct allocation *a = mk("198.51.100.1:1", "u", 100000);
	struct sockaddr_storage p[] = { A("203.0.113.1"), A("203.0.113.2"), A("203.0.113.3") };
	struct sockaddr_storage over[] = { A("203.0.113.1"), A("203.0.113.4"), A("203.0.113.5") };
	struct sockaddr_storage fits[] = { A("203.0.113.4:1"), A("203.0.113.4:2"), A("203.0.113.2") };

	assert_int_equal(alloc_insert(t, a), 0);
	assert_int_equal(alloc_perm_add_all(t, a, p, 3, 0), 0);
	assert_int_equal(a->nperms, 3);
	/* two new ones, one place: none is installed, none refreshed */
	assert_int_equal(alloc_perm_add_all(t, a, over, 3, 50), -ENOSPC);
	assert_int_equal(a->nperms, 3);
	assert_int_equal(mir.perms, 3);
	assert_false(alloc_perm_ok(a, &over[1], 1));
	assert_false(alloc_perm_ok(a, &p[0], 300));	/* not refreshed by the failure */
	/* one new IP (twice, other ports) and a refresh: fits */
	assert_int_equal(alloc_perm_add_all(t, a, fits, 3, 100), 0);
	assert_int_equal(a->nperms, 4);
	assert_true(alloc_perm_ok(a, &fits[0], 1));
	assert_true(alloc_perm_ok(a, &p[1], 350));	/* refreshed at 100 */
	alloc_table_free(t);
}

/* A permission the fast path could not take is offered again on refresh;
 * one it took is not. */
static void test_perm_retry(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 100000);
	struct sockaddr_storage p = A("203.0.113.5:7000");

	assert_int_equal(alloc_insert(t, a), 0);
	mir.refuse_perms = true;
	assert_int_equal(alloc_perm_add(t, a, &p, 0), 0);
	assert_int_equal(mir.perm_ups, 1);
	assert_int_equal(alloc_perm_add(t, a, &p, 10), 0);
	assert_int_equal(mir.perm_ups, 2);
	mir.refuse_perms = false;
	assert_int_equal(alloc_perm_add(t, a, &p, 20), 0);
	assert_int_equal(mir.perm_ups, 3);
	assert_int_equal(alloc_perm_add(t, a, &p, 30), 0);
	assert_int_equal(mir.perm_ups, 3);
	alloc_table_free(t);
}

/* A full map (chan_up refusing) leaves the channel working in userspace and
 * a later chan_down is still balanced. */
static void test_channel_map_full(void **st)
{
	struct alloc_table *t = new_table();
	struct allocation *a = mk("198.51.100.1:1", "u", 100000);
	struct sockaddr_storage p1 = A("203.0.113.5:7000");
	struct chan *c;

	alloc_insert(t, a);
	mir.refuse = true;
	assert_int_equal(alloc_chan_bind(t, a, 0x4000, &p1, 0), 0);
	c = alloc_chan_by_number(a, 0x4000, 0);
	assert_non_null(c);
	assert_true(c->active);
	assert_false(c->in_kernel);
	alloc_table_free(t);
	assert_int_equal(mir.chans, 0);
}

static void test_expiry_and_growth(void **st)
{
	struct alloc_table *t;
	struct alloc_limits big = limits;
	struct alloc_hooks h = { .ctx = &mir, .alloc_down = m_alloc_down };

	big.user_quota = 0;
	big.total_quota = 0;
	memset(&mir, 0, sizeof(mir));
	t = alloc_table_new(&big, &h, NULL);
	/* past the initial bucket count, so the table grows */
	for (int i = 0; i < 5000; i++) {
		char s[40];
		snprintf(s, sizeof(s), "198.51.%d.%d:%d", i / 250, i % 250, 1000 + i);
		assert_int_equal(alloc_insert(t, mk(s, "u", i % 2 ? 10 : 20)), 0);
	}
	struct sockaddr_storage c = A("198.51.19.249:5999"), l = A("192.0.2.1:3478");
	assert_non_null(alloc_find(t, &c, &l));
	assert_int_equal(alloc_expire(t, 10), 2500);
	assert_int_equal(alloc_count(t), 2500);
	assert_int_equal(alloc_user_count(t, "u"), 2500);
	assert_int_equal(alloc_expire(t, 20), 2500);
	assert_int_equal(mir.allocs_down, 5000);
	alloc_table_free(t);
}

static void test_tx_cache(void **st)
{
	struct allocation a;
	uint8_t tid[STUN_TID_LEN] = { 1, 2, 3 }, other[STUN_TID_LEN] = { 9 };
	const struct tx_entry *e;

	memset(&a, 0, sizeof(a));
	alloc_tx_store(&a, tid, (const uint8_t *)"resp", 4);
	e = alloc_tx_find(&a, tid);
	assert_non_null(e);
	assert_int_equal(e->len, 4);
	assert_memory_equal(e->buf, "resp", 4);
	assert_null(alloc_tx_find(&a, other));
	/* the cache is a ring: ALLOC_TX_CACHE newer answers push it out */
	for (int i = 0; i < ALLOC_TX_CACHE; i++) {
		uint8_t t2[STUN_TID_LEN] = { 0x40, (uint8_t)i };
		alloc_tx_store(&a, t2, (const uint8_t *)"x", 1);
	}
	assert_null(alloc_tx_find(&a, tid));
	/* Too long for the cache: not kept, the ring untouched. */
	uint8_t big[ALLOC_TX_MAXLEN + 1] = { 0 };
	alloc_tx_store(&a, tid, big, sizeof(big));
	assert_null(alloc_tx_find(&a, tid));
	assert_non_null(alloc_tx_find(&a, (uint8_t[STUN_TID_LEN]){ 0x40, ALLOC_TX_CACHE - 1 }));
	alloc_tx_clear(&a);
	assert_null(alloc_tx_find(&a, (uint8_t[STUN_TID_LEN]){ 0x40, ALLOC_TX_CACHE - 1 }));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_delete),
		cmocka_unit_test(test_end_reasons),
		cmocka_unit_test(test_quotas),
		cmocka_unit_test(test_shared_quota),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_channel_rules),
		cmocka_unit_test(test_channel_lookup_after_expiry),
		cmocka_unit_test(test_channel_mirror_follows_permission),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_perm_retry),
		cmocka_unit_test(test_perm_add_all),
		cmocka_unit_test(test_channel_map_full),
		cmocka_unit_test(test_expiry_and_growth),
		cmocka_unit_test(test_tx_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
