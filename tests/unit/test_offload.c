/* The offload without a fast path (no root): every call is taken and does
 * nothing: channels and permissions stay in userspace with nothing to
 * retry, no netlink socket, the snapshot's fast-path fields stay 0. The
 * fast path's side is in tests/kernel/test_fastpath.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "common/addr.h"
#include "daemon/offload.h"

static void test_without_fast_path(void **state)
{
	struct offload *o = offload_new(NULL);
	struct allocation a;
	struct perm p = { 0 };
	struct chan c = { .number = 0x4001 };
	struct metrics_snapshot m;

	assert_non_null(o);
	memset(&a, 0, sizeof(a));
	assert_int_equal(addr_parse("192.0.2.1:49152", 0, &a.relays[0].addr), 0);
	a.nrelays = 1;
	assert_int_equal(addr_parse("198.51.100.7:6000", 0, &c.peer), 0);
	p.peer = c.peer;
	offload_alloc_up(o, &a);
	assert_true(offload_perm(o, &a, &p, true));
	assert_false(offload_chan_up(o, &a, &c));
	offload_chan_down(o, &a, &c);
	offload_alloc_down(o, &a);
	assert_int_equal(offload_netlink_fd(o), -1);
	offload_netlink_event(o);
	memset(&m, 0, sizeof(m));
	offload_snapshot(o, &m);
	assert_false(m.fastpath || m.xdp || m.fastpath_full || m.fastpath_perms_missing);
	offload_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_without_fast_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
