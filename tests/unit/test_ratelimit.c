/* Per-source token buckets for unauthenticated error responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/addr.h"
#include "turn/ratelimit.h"

static struct sockaddr_storage A(const char *s)
{
	struct sockaddr_storage a;

	if (addr_parse(s, 0, &a))
		fail_msg("%s does not parse", s);
	return a;
}

static unsigned takes(struct ratelimit *rl, const char *src, time_t now, unsigned tries)
{
	struct sockaddr_storage a = A(src);
	unsigned n = 0;

	for (unsigned i = 0; i < tries; i++)
		n += ratelimit_take(rl, &a, now);
	return n;
}

static void test_buckets(void **state)
{
	struct ratelimit *rl = ratelimit_new(2, 5);

	assert_non_null(rl);
	assert_int_equal(takes(rl, "192.0.2.1:1000", 100, 9), 5);	/* the burst */
	assert_int_equal(takes(rl, "192.0.2.1:2000", 100, 9), 0);	/* ports share it */
	assert_int_equal(takes(rl, "::ffff:192.0.2.1", 100, 9), 0);	/* so do mapped views */
	assert_int_equal(takes(rl, "192.0.2.2:1000", 100, 9), 5);	/* another source */
	assert_int_equal(takes(rl, "192.0.2.1:1000", 101, 9), 2);	/* the rate */
	assert_int_equal(takes(rl, "192.0.2.1:1000", 103, 9), 4);
	assert_int_equal(takes(rl, "192.0.2.1:1000", 200, 9), 5);	/* refills to the burst */
	/* IPv6: by /64 */
	assert_int_equal(takes(rl, "[2001:db8:1:2::1]:5", 100, 9), 5);
	assert_int_equal(takes(rl, "[2001:db8:1:2:ffff::9]:5", 100, 9), 0);
	assert_int_equal(takes(rl, "[2001:db8:1:3::1]:5", 100, 9), 5);
	/* a clock that goes back takes nothing and gives nothing */
	assert_int_equal(takes(rl, "192.0.2.1:1000", 150, 9), 0);
	ratelimit_free(rl);
	/* rate 0: no limit at all */
	rl = ratelimit_new(0, 5);
	assert_null(rl);
	assert_int_equal(takes(NULL, "192.0.2.1:1000", 100, 1000), 1000);
}

/* Many sources: the table stays bounded, and each new source starts with
 * its burst (what it evicts starts afresh too, never below its share). */
static void test_many_sources(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 2);
	unsigned got = 0;

	for (unsigned i = 0; i < 100000; i++) {
		struct sockaddr_storage a;
		char buf[32];

		snprintf(buf, sizeof(buf), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		a = A(buf);
		got += ratelimit_take(rl, &a, 7);
	}
	assert_int_equal(got, 100000);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_many_sources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
