/* hostaddr: this host's address blocks and our relay ports. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/addr.h"
#include "turn/hostaddr.h"

static struct sockaddr_storage A(const char *s)
{
	struct sockaddr_storage a;

	if (addr_parse(s, 0, &a))
		fail_msg("%s does not parse", s);
	addr_canon(&a);
	return a;
}

/* As rtnetlink gives it: not canonicalized (a mapped block stays IPv6). */
static struct hostaddr_net N(const char *ip, unsigned plen)
{
	struct hostaddr_net n = { .plen = plen };

	if (addr_parse(ip, 0, &n.ip))
		fail_msg("%s does not parse", ip);
	return n;
}

static void test_blocks(void **state)
{
	struct sockaddr_storage relay = A("203.0.113.9");
	struct hostaddr *h = hostaddr_new(&relay, 1);
	struct hostaddr_net v[] = {
		N("127.0.0.0", 8), N("10.0.0.5", 32), N("fd00::1", 128),
		N("::ffff:192.0.2.0", 120),	/* mapped: 192.0.2.0/24 */
		N("10.9.0.0", 33),		/* no such prefix: ignored */
	};
	struct sockaddr_storage a;
	uint64_t g;

	assert_non_null(h);
	g = hostaddr_generation(h);
	assert_int_equal(hostaddr_set(h, v, 5), 0);
	assert_true(hostaddr_generation(h) != g);
	static const char *const local[] = {
		"127.0.0.1", "127.255.255.255", "10.0.0.5", "fd00::1", "192.0.2.77",
		"::ffff:127.0.0.2", "::ffff:10.0.0.5", "203.0.113.9",	/* the relay */
	};
	static const char *const other[] = {
		"126.255.255.255", "128.0.0.0", "10.0.0.4", "10.0.0.6", "fd00::2", "192.0.3.0",
		"10.9.0.1", "::1", "203.0.113.10",
	};
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		a = A(local[i]);
		if (!hostaddr_is_local(h, &a))
			fail_msg("%s should be local", local[i]);
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		a = A(other[i]);
		if (hostaddr_is_local(h, &a))
			fail_msg("%s should not be local", other[i]);
	}
	/* The same set again (another order) is no change. */
	g = hostaddr_generation(h);
	struct hostaddr_net w[] = { v[3], v[2], v[1], v[0], v[1] };
	assert_int_equal(hostaddr_set(h, w, 5), 0);
	assert_true(hostaddr_generation(h) == g);
	assert_int_equal(hostaddr_set(h, w, 3), 0);
	assert_true(hostaddr_generation(h) != g);
	a = A("127.0.0.1");
	assert_false(hostaddr_is_local(h, &a));
	hostaddr_free(h);
}

static void test_relay_ports(void **state)
{
	struct sockaddr_storage relays[] = { A("10.0.0.1"), A("fd00::1") };
	struct hostaddr *h = hostaddr_new(relays, 2);
	struct sockaddr_storage r = A("10.0.0.1"), pub = A("198.51.100.7"), x;

	assert_int_equal(hostaddr_alias(h, &pub, &relays[0]), 0);
	x = A("10.0.0.2");
	assert_int_equal(hostaddr_alias(h, &pub, &x), -ENOENT);
	assert_true(hostaddr_is_relay_ip(h, &r));
	assert_true(hostaddr_is_relay_ip(h, &pub));
	assert_false(hostaddr_is_relay_ip(h, &x));
	assert_true(hostaddr_is_local(h, &pub));	/* an alias is this host too */

	addr_set_port(&r, 50000);
	assert_false(hostaddr_is_relay(h, &r));
	hostaddr_relay_bound(h, &r);
	assert_true(hostaddr_is_relay(h, &r));
	/* The advertised address holds the same port; neighbours are free. */
	addr_set_port(&pub, 50000);
	assert_true(hostaddr_is_relay(h, &pub));
	addr_set_port(&pub, 50001);
	assert_false(hostaddr_is_relay(h, &pub));
	addr_set_port(&x, 50000);
	assert_false(hostaddr_is_relay(h, &x));
	/* Port 0 and 65535, the ends of the bitmap; the IPv6 relay apart. */
	x = A("fd00::1");
	addr_set_port(&x, 65535);
	hostaddr_relay_bound(h, &x);
	assert_true(hostaddr_is_relay(h, &x));
	addr_set_port(&x, 50000);
	assert_false(hostaddr_is_relay(h, &x));
	hostaddr_relay_closed(h, &r);
	assert_false(hostaddr_is_relay(h, &r));
	addr_set_port(&pub, 50000);
	assert_false(hostaddr_is_relay(h, &pub));
	hostaddr_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_relay_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
