/* The journal's records and files: an allocation through bytes and back,
 * every damaged record refused, a file's last record per allocation wins,
 * an end removes it, and a file that does not verify is set aside whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/addr.h"
#include "turn/snapshot.h"
#include "daemon/journal.h"

static struct allocation *mk(uint64_t id, const char *user, unsigned nperms, unsigned nchans)
{
	struct allocation *a = alloc_new(user);

	assert_non_null(a);
	a->id = id;
	assert_int_equal(addr_parse("198.51.100.7:40000", 0, &a->client), 0);
	assert_int_equal(addr_parse("[2001:db8::1]:3478", 0, &a->listener), 0);
	assert_int_equal(addr_parse("203.0.113.5:49152", 0, &a->relays[0].addr), 0);
	assert_int_equal(addr_parse("198.51.100.1:49152", 0, &a->relays[0].adv), 0);
	a->nrelays = 1;
	a->expires = 1000 + (time_t)id;
	a->created = 400;
	a->created_wall = 1764763200;
	memcpy(a->alloc_tid, "0123456789ab", STUN_TID_LEN);
	a->perms = calloc(nperms + 1, sizeof(*a->perms));
	a->chans = calloc(nchans + 1, sizeof(*a->chans));
	for (unsigned i = 0; i < nperms; i++) {
		assert_int_equal(addr_parse("192.0.2.9", 0, &a->perms[i].peer), 0);
		a->perms[i].expires = 700 + i;
	}
	a->nperms = nperms;
	for (unsigned i = 0; i < nchans; i++) {
		assert_int_equal(addr_parse("192.0.2.9:5000", 0, &a->chans[i].peer), 0);
		addr_set_port(&a->chans[i].peer, (uint16_t)(5000 + i));
		a->chans[i].number = (uint16_t)(0x4000 + i);
		a->chans[i].expires = 900 + i;
	}
	a->nchans = nchans;
	a->c2p = (struct alloc_traffic){ 11, 1100, 7, 700 };
	a->p2c = (struct alloc_traffic){ 5, 500, 2, 200 };
	return a;
}

static void drop(struct allocation *a)
{
	free(a->perms);
	free(a->chans);
	free(a);
}

static void test_roundtrip(void **state)
{
	struct allocation *a = mk(0x1122334455667788ull, "alice\xc3\xa9", 2, 3);
	uint8_t buf[4096];
	struct snap_rec r;
	size_t n;

	a->check = true;	/* a check credential's stays one after a restart */
	n = snap_encode_alloc(a, buf, sizeof(buf));

	assert_true(n > 0 && n <= snap_alloc_len(a));
	assert_int_equal(snap_decode(buf, n, &r), (long)n);
	assert_int_equal(r.type, SNAP_ALLOC);
	assert_int_equal(r.id, a->id);
	assert_string_equal(r.alloc->username, a->username);
	assert_true(addr_eq(&r.alloc->client, &a->client));
	assert_true(addr_eq(&r.alloc->listener, &a->listener));
	assert_true(addr_eq(&r.alloc->relays[0].addr, &a->relays[0].addr));
	assert_true(addr_eq(&r.alloc->relays[0].adv, &a->relays[0].adv));
	assert_int_equal(r.alloc->expires, a->expires);
	assert_int_equal(r.alloc->created_wall, a->created_wall);
	assert_memory_equal(r.alloc->alloc_tid, a->alloc_tid, STUN_TID_LEN);
	assert_int_equal(r.alloc->nperms, 2);
	assert_int_equal(r.alloc->perms[1].expires, 701);
	assert_int_equal(r.alloc->nchans, 3);
	assert_int_equal(r.alloc->chans[2].number, 0x4002);
	assert_int_equal(addr_port(&r.alloc->chans[2].peer), 5002);
	assert_int_equal(r.alloc->chans[2].expires, 902);
	assert_memory_equal(&r.alloc->c2p, &a->c2p, sizeof(a->c2p));
	assert_memory_equal(&r.alloc->p2c, &a->p2c, sizeof(a->p2c));
	assert_int_equal(r.alloc->keylen, 0);	/* no key in the record */
	assert_true(r.alloc->check);
	snap_free(&r);
	n = snap_encode_end(42, buf, sizeof(buf));
	assert_int_equal(snap_decode(buf, n, &r), (long)n);
	assert_int_equal(r.type, SNAP_END);
	assert_int_equal(r.id, 42);
	/* Too small a buffer: nothing. */
	assert_int_equal(snap_encode_alloc(a, buf, 40), 0);
	drop(a);
}

/* Every byte changed somewhere refuses the record (CRC, or the header's
 * own checks); every cut short reads as "not all here yet". */
static void test_damage_refused(void **state)
{
	struct allocation *a = mk(7, "bob", 1, 1);
	uint8_t buf[4096], bad[4096];
	struct snap_rec r;
	size_t n = snap_encode_alloc(a, buf, sizeof(buf));

	for (size_t i = 0; i < n; i++) {
		memcpy(bad, buf, n);
		bad[i] ^= 0x40;
		long rc = snap_decode(bad, n, &r);
		if (rc > 0)
			fail_msg("byte %zu flipped: accepted", i);
		snap_free(&r);
	}
	for (size_t cut = 0; cut < n; cut++)
		if (snap_decode(buf, cut, &r) > 0)
			fail_msg("cut at %zu: accepted", cut);
	drop(a);
}

struct adopted {
	uint64_t ids[8];
	unsigned n;
	time_t expires[8];
};

static void on_adopt(void *ctx, const struct allocation *rec)
{
	struct adopted *ad = ctx;

	ad->expires[ad->n] = rec->expires;
	ad->ids[ad->n++] = rec->id;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* The last record of an allocation wins, an end removes it; the file is
 * then written again from the table given (empty here). A damaged file is
 * renamed .bad and nothing in it adopted. */
static void test_journal_replay(void **state)
{
	char dir[] = "/tmp/xturn-test-journal-XXXXXX", path[128], badp[140];
	struct alloc_limits lim = { .max_perms = 8, .max_channels = 8 };
	struct alloc_table *t = alloc_table_new(&lim, &(struct alloc_hooks){ 0 }, NULL);
	struct allocation *a1 = mk(1, "a", 0, 0), *a2 = mk(2, "b", 0, 0);
	struct adopted ad = { 0 };
	uint8_t buf[8192];
	struct journal *j;
	struct stat st;
	size_t n = 0;
	int err;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/journal.0", dir);
	n += snap_encode_alloc(a1, buf + n, sizeof(buf) - n);
	n += snap_encode_alloc(a2, buf + n, sizeof(buf) - n);
	a1->expires = 5555;
	n += snap_encode_alloc(a1, buf + n, sizeof(buf) - n);	/* a refresh */
	n += snap_encode_end(2, buf + n, sizeof(buf) - n);
	write_file(path, buf, n);
	j = journal_open(dir, 0, on_adopt, &ad, t, &err);
	assert_non_null(j);
	assert_int_equal(ad.n, 1);
	assert_int_equal(ad.ids[0], 1);
	assert_int_equal(ad.expires[0], 5555);
	journal_close(j);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);	/* started afresh from the (empty) table */

	/* One byte of the second record damaged: nothing adopted, set aside. */
	buf[n - 20] ^= 1;
	write_file(path, buf, n);
	ad.n = 0;
	j = journal_open(dir, 0, on_adopt, &ad, t, &err);
	assert_non_null(j);
	assert_int_equal(ad.n, 0);
	snprintf(badp, sizeof(badp), "%s.bad", path);
	assert_int_equal(stat(badp, &st), 0);
	assert_int_equal((size_t)st.st_size, n);
	journal_close(j);
	unlink(badp);
	unlink(path);
	rmdir(dir);
	alloc_table_free(t);
	drop(a1);
	drop(a2);
}

/* A batch's records wait in the journal until journal_flush, then go in
 * one write: before it the file holds none of them, after it a daemon
 * starting from the file adopts what they leave live. */
static void test_journal_batch(void **state)
{
	char dir[] = "/tmp/xturn-test-journal-XXXXXX", path[128];
	struct alloc_limits lim = { .max_perms = 8, .max_channels = 8 };
	struct alloc_table *t = alloc_table_new(&lim, &(struct alloc_hooks){ 0 }, NULL);
	struct allocation *a1 = mk(1, "a", 0, 0), *a2 = mk(2, "b", 0, 0);
	struct adopted ad = { 0 };
	uint8_t buf[8192];
	struct journal *j, *j2;
	struct stat st;
	size_t n;
	int err;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/journal.0", dir);
	j = journal_open(dir, 0, on_adopt, &ad, t, &err);
	assert_non_null(j);
	journal_put(j, a1, t);
	journal_put(j, a2, t);
	journal_end(j, a2, t);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	journal_flush(j);
	n = snap_encode_alloc(a1, buf, sizeof(buf));
	n += snap_encode_alloc(a2, buf, sizeof(buf));
	n += snap_encode_end(2, buf, sizeof(buf));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((size_t)st.st_size, n);
	/* As after a SIGKILL: j never closed. */
	j2 = journal_open(dir, 0, on_adopt, &ad, t, &err);
	assert_non_null(j2);
	assert_int_equal(ad.n, 1);
	assert_int_equal(ad.ids[0], 1);
	journal_close(j2);
	journal_close(j);
	unlink(path);
	rmdir(dir);
	alloc_table_free(t);
	drop(a1);
	drop(a2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_damage_refused),
		cmocka_unit_test(test_journal_replay),
		cmocka_unit_test(test_journal_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
