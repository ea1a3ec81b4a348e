/* The event loop on eventfds (no root): callbacks get their source and the
 * event; a source retired by an earlier callback of the same batch gets no
 * call (the stale-event guard), even when its fd number was reused in the
 * batch; releases run after the batch, in the order of retirement. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <cmocka.h>

#include "daemon/evloop.h"

struct rec {
	struct ev_src ev;
	int id;
	int calls;
	struct rec *kill;	/* retired (and its fd closed) when this one runs */
	struct ev_loop *loop;
};

static int released[8], released_at[8], nreleased;
static int ncalls;	/* callbacks so far */

/* Records which source was released, and how many callbacks had run. */
static void release(struct ev_src *s)
{
	released_at[nreleased] = ncalls;
	released[nreleased++] = ((struct rec *)s)->id;
}

static void on_event(struct ev_src *s, uint32_t events)
{
	struct rec *r = (struct rec *)s;
	uint64_t v;

	assert_ptr_equal(s->data, r);
	assert_true(events & EPOLLIN);
	assert_int_equal(read(s->fd, &v, sizeof(v)), sizeof(v));
	r->calls++;
	ncalls++;
	if (r->kill && r->kill->ev.fd >= 0) {
		close(r->kill->ev.fd);
		ev_retire(r->loop, &r->kill->ev, release);
	}
}

static int fired(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one);
}

static void add(struct ev_loop *l, struct rec *r, int id)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	r->id = id;
	r->loop = l;
	assert_int_equal(ev_add(l, &r->ev, fd, on_event, r), 0);
}

static void batch(struct ev_loop *l, int want)
{
	assert_int_equal(ev_wait(l, 1000), want);
	ev_dispatch(l);
}

/* Every ready source is called once per batch with its event. */
static void test_dispatch(void **state)
{
	struct ev_loop *l = ev_new();
	struct rec r[3] = { 0 };

	(void)state;
	for (int i = 0; i < 3; i++)
		add(l, &r[i], i);
	assert_true(fired(r[0].ev.fd) && fired(r[2].ev.fd));
	batch(l, 2);
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[1].calls, 0);
	assert_int_equal(r[2].calls, 1);
	assert_int_equal(ev_wait(l, 0), 0);
	for (int i = 0; i < 3; i++)
		close(r[i].ev.fd);
	ev_free(l);
}

/* Two ready sources that retire each other: whichever runs first wins, the
 * other is not called in that batch, although its event was fetched. */
static void test_retired_in_batch(void **state)
{
	struct ev_loop *l = ev_new();
	struct rec a = { 0 }, b = { 0 };

	(void)state;
	nreleased = 0;
	add(l, &a, 1);
	add(l, &b, 2);
	a.kill = &b;
	b.kill = &a;
	assert_true(fired(a.ev.fd) && fired(b.ev.fd));
	batch(l, 2);
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(nreleased, 1);
	assert_int_equal(released[0], a.calls ? 2 : 1);
	close(a.calls ? a.ev.fd : b.ev.fd);
	ev_free(l);
}

/* The retired source's fd number reused within the batch by a new source:
 * the new one gets its own events, the retired one none. */
struct reuser {
	struct ev_src ev;
	struct rec *victim;
	struct rec *fresh;
	struct ev_loop *loop;
};

static void on_reuse(struct ev_src *s, uint32_t events)
{
	struct reuser *u = (struct reuser *)s;
	int old = u->victim->ev.fd;
	uint64_t v;

	(void)events;
	assert_int_equal(read(s->fd, &v, sizeof(v)), sizeof(v));
	close(old);
	ev_retire(u->loop, &u->victim->ev, release);
	add(u->loop, u->fresh, 9);
	assert_int_equal(u->fresh->ev.fd, old);	/* the lowest free number */
}

static void test_fd_reused(void **state)
{
	struct ev_loop *l = ev_new();
	struct rec victim = { 0 }, fresh = { 0 };
	struct reuser u = { .victim = &victim, .fresh = &fresh, .loop = l };
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	(void)state;
	nreleased = 0;
	assert_int_equal(ev_add(l, &u.ev, fd, on_reuse, &u), 0);
	add(l, &victim, 3);
	assert_true(fired(fd) && fired(victim.ev.fd));
	batch(l, 2);
	assert_int_equal(victim.calls, 0);
	assert_int_equal(nreleased, 1);
	assert_true(fired(fresh.ev.fd));
	batch(l, 1);
	assert_int_equal(fresh.calls, 1);
	close(fd);
	close(fresh.ev.fd);
	ev_free(l);
}

/* Releases come after the whole batch (whichever of its two callbacks ran
 * first), in the order of retirement (a source array is freed by its first
 * element, retired last). */
static void on_retire_many(struct ev_src *s, uint32_t events)
{
	struct rec *r = (struct rec *)s;
	uint64_t v;

	(void)events;
	assert_int_equal(read(s->fd, &v, sizeof(v)), sizeof(v));
	ncalls++;
	for (int i = 3; i >= 1; i--) {
		close(r[i].ev.fd);
		ev_retire(r->loop, &r[i].ev, release);
	}
}

static void test_release_order(void **state)
{
	struct ev_loop *l = ev_new();
	struct rec r[4] = { 0 }, other = { 0 };

	(void)state;
	nreleased = ncalls = 0;
	for (int i = 0; i < 4; i++)
		add(l, &r[i], i);
	add(l, &other, 7);
	r[0].ev.fn = on_retire_many;
	assert_true(fired(r[0].ev.fd) && fired(other.ev.fd));
	batch(l, 2);
	assert_int_equal(other.calls, 1);
	assert_int_equal(nreleased, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(released[i], 3 - i);
		assert_int_equal(released_at[i], 2);
	}
	close(r[0].ev.fd);
	close(other.ev.fd);
	ev_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_retired_in_batch),
		cmocka_unit_test(test_fd_reused),
		cmocka_unit_test(test_release_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
