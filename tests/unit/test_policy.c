/* Peer policy: the built-in special-purpose deny (edges of every range, also
 * through IPv4-mapped IPv6), allowed/denied rules and their precedence, the
 * rule syntax. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/addr.h"
#include "turn/policy.h"

/* first, last: ends of the range; before, after: the neighbours just outside
 * (NULL where the neighbour is itself special or does not exist). */
struct special {
	const char *first, *last, *before, *after;
};

static const struct special specials[] = {
	{ "0.0.0.0", "0.255.255.255", NULL, "1.0.0.0" },
	{ "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0" },
	{ "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0" },
	{ "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0" },
	{ "169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0" },
	{ "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0" },
	{ "192.0.0.0", "192.0.0.8", "191.255.255.255", "192.0.0.9" },	/* PCP, TURN */
	{ "192.0.0.11", "192.0.0.255", "192.0.0.10", "192.0.1.0" },	/* anycast */
	{ "192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0" },
	{ "192.88.99.0", "192.88.99.255", "192.88.98.255", "192.88.100.0" },
	{ "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0" },
	{ "198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0" },
	{ "198.51.100.0", "198.51.100.255", "198.51.99.255", "198.51.101.0" },
	{ "203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0" },
	{ "224.0.0.0", "239.255.255.255", "223.255.255.255", NULL },
	{ "240.0.0.0", "255.255.255.254", NULL, NULL },
	{ "255.255.255.255", "255.255.255.255", NULL, NULL },
	/* IPv6 below 2000::/3: ::, ::1, IPv4-compatible, -mapped, -translated,
	 * NAT64, discard-only, ... */
	{ "::", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, "2000::" },
	{ "2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",	/* Teredo */
	  "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
	{ "2001:1::", "2001:1::", NULL, "2001:1::1" },		/* before PCP anycast */
	{ "2001:1::4", "2001:2:ffff:ffff:ffff:ffff:ffff:ffff", "2001:1::3", "2001:3::" },
	{ "2001:4::", "2001:4:111:ffff:ffff:ffff:ffff:ffff", "2001:3:ffff:ffff:ffff:ffff:ffff:ffff",
	  "2001:4:112::" },
	{ "2001:4:113::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff",
	  "2001:4:112:ffff:ffff:ffff:ffff:ffff", "2001:20::" },	/* ORCHIDv2 */
	{ "2001:40::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
	  "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::" },
	{ "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
	  "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::" },
	{ "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	  "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::" },
	{ "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
	  "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::" },
	/* above 2000::/3: SRv6 SIDs, unique and link local, multicast, ... */
	{ "4000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	  "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct sockaddr_storage ip(const char *s)
{
	struct sockaddr_storage a;

	if (addr_parse(s, 3480, &a))
		fail_msg("test address %s does not parse", s);
	return a;
}

/* "::ffff:a.b.c.d" for an IPv4 text, or NULL for IPv6. */
static const char *mapped(const char *s, char *buf, size_t len)
{
	if (strchr(s, ':'))
		return NULL;
	snprintf(buf, len, "::ffff:%s", s);
	return buf;
}

static void check_one(struct policy *def, struct policy *open, const char *s, bool special)
{
	struct sockaddr_storage a = ip(s);
	char buf[64];
	const char *m = mapped(s, buf, sizeof(buf));

	if (policy_is_special(&a) != special || policy_peer_allowed(def, &a) == special)
		fail_msg("%s: expected %s", s, special ? "special, denied" : "public, allowed");
	/* The permissive mode allows everything. */
	assert_true(policy_peer_allowed(open, &a));
	if (m) {
		a = ip(m);
		assert_int_equal(a.ss_family, AF_INET6);
		if (policy_is_special(&a) != special || policy_peer_allowed(def, &a) == special)
			fail_msg("%s: expected %s", m, special ? "special, denied" : "allowed");
	}
}

static void test_builtin_ranges(void **state)
{
	struct policy *def = policy_new(), *open = policy_new();

	assert_non_null(def);
	assert_non_null(open);
	policy_set_default_deny(open, false);
	for (size_t i = 0; i < N(specials); i++) {
		check_one(def, open, specials[i].first, true);
		check_one(def, open, specials[i].last, true);
		if (specials[i].before)
			check_one(def, open, specials[i].before, false);
		if (specials[i].after)
			check_one(def, open, specials[i].after, false);
	}
	policy_free(def);
	policy_free(open);
}

/* Each of the examples by name: accepted before the table followed
 * the registries. */
static void test_registry_gaps(void **state)
{
	static const char *const denied[] = {
		"::7f00:1",		/* IPv4-compatible 127.0.0.1 */
		"::a00:1",		/* IPv4-compatible 10.0.0.1 */
		"::ffff:0:7f00:1",	/* IPv4-translated 127.0.0.1 */
		"::ffff:0:808:808",	/* IPv4-translated, even of a public one */
		"3fff::1", "5f00::1", "100:0:0:1::1",
		"2001:2::1",		/* benchmarking */
	};
	struct policy *p = policy_new();

	for (size_t i = 0; i < N(denied); i++) {
		struct sockaddr_storage a = ip(denied[i]);

		if (!policy_is_special(&a) || policy_peer_allowed(p, &a))
			fail_msg("%s should be denied", denied[i]);
	}
	policy_free(p);
}

static void test_public_allowed(void **state)
{
	static const char *const pub[] = {
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111",
		"2a00:1450:4001::1", "2001:4860:4860::8888", "::ffff:8.8.4.4",
		"192.0.0.10", "2001:1::2",	/* TURN anycast */
	};
	struct policy *p = policy_new();

	for (size_t i = 0; i < N(pub); i++) {
		struct sockaddr_storage a = ip(pub[i]);

		if (policy_is_special(&a) || !policy_peer_allowed(p, &a))
			fail_msg("%s should be allowed", pub[i]);
	}
	policy_free(p);
}

/* ::ffff:0:0/96 is in the table, but canonicalization comes first: a mapped
 * public address is judged as the IPv4 address, not blanket-denied. */
static void test_mapped_canonicalized(void **state)
{
	struct sockaddr_storage pub = ip("::ffff:8.8.8.8"), lo = ip("::ffff:127.0.0.1");

	assert_false(policy_is_special(&pub));
	assert_true(policy_is_special(&lo));
}

static void test_allow_overrides_default(void **state)
{
	struct policy *p = policy_new();
	struct sockaddr_storage in = ip("10.1.2.3"), out = ip("10.1.3.1");
	struct sockaddr_storage in6 = ip("fd00::5"), out6 = ip("fd00::1:0");
	struct sockaddr_storage in_mapped = ip("::ffff:10.1.2.200");

	assert_false(policy_peer_allowed(p, &in));
	assert_int_equal(policy_allow(p, "10.1.2.0/24"), 0);
	assert_int_equal(policy_allow(p, "fd00::/112"), 0);
	assert_true(policy_peer_allowed(p, &in));
	assert_true(policy_peer_allowed(p, &in_mapped));
	assert_false(policy_peer_allowed(p, &out));
	assert_true(policy_peer_allowed(p, &in6));
	assert_false(policy_peer_allowed(p, &out6));
	/* Still special: the allow rule changes the verdict, not the registry. */
	assert_true(policy_is_special(&in));
	/* allowed-peer-ip wins over denied-peer-ip. */
	assert_int_equal(policy_deny(p, "10.0.0.0/8"), 0);
	assert_true(policy_peer_allowed(p, &in));
	policy_free(p);
}

static void test_deny_public(void **state)
{
	struct policy *p = policy_new();
	struct sockaddr_storage in = ip("8.8.8.8"), out = ip("8.8.9.0");
	struct sockaddr_storage in6 = ip("2606:4700::1"), out6 = ip("2606:4701::1");

	assert_true(policy_peer_allowed(p, &in));
	assert_int_equal(policy_deny(p, "8.8.8.0/24"), 0);
	assert_int_equal(policy_deny(p, "2606:4700::/32"), 0);
	assert_false(policy_peer_allowed(p, &in));
	assert_true(policy_peer_allowed(p, &out));
	assert_false(policy_peer_allowed(p, &in6));
	assert_true(policy_peer_allowed(p, &out6));
	/* A mapped-form rule denies the canonical IPv4 peer. */
	assert_int_equal(policy_deny(p, "::ffff:1.1.1.0/120"), 0);
	in = ip("1.1.1.1");
	assert_false(policy_peer_allowed(p, &in));
	/* The deny list also applies when the default deny is off. */
	policy_set_default_deny(p, false);
	in = ip("8.8.8.8");
	assert_false(policy_peer_allowed(p, &in));
	policy_free(p);
}

static void test_range_and_single(void **state)
{
	struct policy *p = policy_new();
	static const struct {
		const char *addr;
		bool allowed;
	} cases[] = {
		{ "5.5.5.9", true }, { "5.5.5.10", false }, { "5.5.5.15", false },
		{ "5.5.5.20", false }, { "5.5.5.21", true }, { "6.6.6.6", false },
		{ "6.6.6.7", true }, { "2a01::1", false }, { "2a01::", true }, { "2a01::2", true },
		{ "2a02::ff", false }, { "2a02::100", true },
	};

	assert_int_equal(policy_deny(p, "5.5.5.10-5.5.5.20"), 0);
	assert_int_equal(policy_deny(p, "6.6.6.6"), 0);
	assert_int_equal(policy_deny(p, "2a01::1"), 0);
	assert_int_equal(policy_deny(p, "2a02::-2a02::ff"), 0);
	assert_int_equal(policy_deny(p, "7.7.7.7/32"), 0);
	assert_int_equal(policy_deny(p, "9.0.0.0/0"), 0);	/* everything IPv4 */
	for (size_t i = 0; i < N(cases); i++) {
		struct sockaddr_storage a = ip(cases[i].addr);
		bool v4 = a.ss_family == AF_INET;

		/* The /0 rule denies all IPv4; the cases' IPv6 verdicts stand. */
		if (policy_peer_allowed(p, &a) != (cases[i].allowed && !v4))
			fail_msg("%s: wrong verdict", cases[i].addr);
	}
	policy_free(p);

	/* Without the /0 rule, the IPv4 verdicts are the cases'. */
	p = policy_new();
	assert_int_equal(policy_deny(p, "5.5.5.10-5.5.5.20"), 0);
	assert_int_equal(policy_deny(p, "6.6.6.6"), 0);
	for (size_t i = 0; i < 6; i++) {
		struct sockaddr_storage a = ip(cases[i].addr);

		if (policy_peer_allowed(p, &a) != cases[i].allowed)
			fail_msg("%s: wrong verdict", cases[i].addr);
	}
	policy_free(p);
}

/* Host bits below the prefix are ignored: 8.8.8.8/24 is 8.8.8.0/24. */
static void test_cidr_host_bits(void **state)
{
	struct policy *p = policy_new();
	struct sockaddr_storage lo = ip("8.8.8.0"), hi = ip("8.8.8.255"), out = ip("8.8.7.255");

	assert_int_equal(policy_deny(p, "8.8.8.8/24"), 0);
	assert_false(policy_peer_allowed(p, &lo));
	assert_false(policy_peer_allowed(p, &hi));
	assert_true(policy_peer_allowed(p, &out));
	policy_free(p);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4/33", "1.2.3.4/-1",
		"1.2.3.4/", "1.2.3.4/8x", "1.2.3.4/0024", "::/129", "fe80::/1000", "::1/+8",
		"1.2.3.4-::1", "::1-1.2.3.4", "1.2.3.5-1.2.3.4", "::2-::1", "1.2.3.4-",
		"-1.2.3.4", "1.2.3.4-1.2.3.5-1.2.3.6", "1.2.3.0/24-1.2.3.9", "1.2.3.4:",
		"1.2.3.4:65536", "1.2.3.4:80-79", "1.2.3.4:8a", "1.2.3.4:80-", "1.2.3.4:-80",
		"1.2.3.4:+80", "1.2.3.4:000080", "[::1", "[::1]x", "[::1]:", "[]:80", "[1.2.3.4",
		" 1.2.3.4", "1.2.3.4 ", "fe80::1%eth0", "example.com", "gggg::",
		"1.2.3.4/24/8",
	};
	struct policy *p = policy_new();
	struct sockaddr_storage any4 = ip("8.8.8.8");

	for (size_t i = 0; i < N(bad); i++) {
		if (policy_allow(p, bad[i]) != -EINVAL || policy_deny(p, bad[i]) != -EINVAL ||
		    policy_spec_check(bad[i]) != -EINVAL)
			fail_msg("'%s' should be rejected", bad[i]);
	}
	/* Nothing was added by the rejected rules. */
	assert_true(policy_peer_allowed(p, &any4));
	assert_int_equal(policy_spec_check("10.0.0.0/8"), 0);
	assert_int_equal(policy_spec_check("1.2.3.4-1.2.3.4"), 0);
	assert_int_equal(policy_spec_check("::/0"), 0);
	assert_int_equal(policy_spec_check("::1/128"), 0);
	policy_free(p);
}

static struct sockaddr_storage ipp(const char *s, uint16_t port)
{
	struct sockaddr_storage a = ip(s);

	addr_set_port(&a, port);
	return a;
}

/* Rules with ports: a permission (any port) needs some allowed port, a
 * channel or a Send the very port; "exact" is a rule of one IP. */
static void test_ports(void **state)
{
	struct policy *p = policy_new();
	struct sockaddr_storage a;

	assert_false(policy_has_ports(p));
	assert_int_equal(policy_allow(p, "10.1.2.0/24"), 0);
	assert_false(policy_has_ports(p));
	assert_int_equal(policy_allow(p, "10.0.0.5:5000-5999"), 0);
	assert_true(policy_has_ports(p));
	assert_int_equal(policy_allow(p, "10.1.0.0/24"), 0);
	assert_int_equal(policy_allow(p, "[fd00::5]:443"), 0);
	assert_int_equal(policy_deny(p, "8.8.8.8:53"), 0);
	assert_int_equal(policy_allow(p, "[2001:db8::1]"), 0);

	a = ipp("10.0.0.5", 1);
	assert_true(policy_peer_allowed(p, &a));
	assert_false(policy_transport_allowed(p, &a));
	assert_true(policy_exact_allowed(p, &a, true));
	assert_false(policy_exact_allowed(p, &a, false));
	a = ipp("10.0.0.5", 5000);
	assert_true(policy_transport_allowed(p, &a));
	assert_true(policy_exact_allowed(p, &a, false));
	a = ipp("10.0.0.5", 5999);
	assert_true(policy_transport_allowed(p, &a));
	a = ipp("10.0.0.5", 6000);
	assert_false(policy_transport_allowed(p, &a));
	a = ipp("10.0.0.6", 5000);
	assert_false(policy_peer_allowed(p, &a));
	assert_false(policy_exact_allowed(p, &a, true));
	/* A range is not exact, even around one address. */
	a = ipp("10.1.0.7", 9);
	assert_true(policy_transport_allowed(p, &a));
	assert_false(policy_exact_allowed(p, &a, true));
	a = ipp("fd00::5", 443);
	assert_true(policy_transport_allowed(p, &a));
	assert_true(policy_exact_allowed(p, &a, false));
	a = ipp("fd00::5", 444);
	assert_false(policy_transport_allowed(p, &a));
	a = ipp("2001:db8::1", 7);
	assert_true(policy_transport_allowed(p, &a));
	/* A deny with a port leaves the other ports, and so the permission. */
	a = ipp("8.8.8.8", 53);
	assert_true(policy_peer_allowed(p, &a));
	assert_false(policy_transport_allowed(p, &a));
	a = ipp("8.8.8.8", 54);
	assert_true(policy_transport_allowed(p, &a));
	policy_free(p);
}

static void test_unknown_family(void **state)
{
	struct policy *p = policy_new();
	struct sockaddr_storage a = { .ss_family = AF_UNIX };

	policy_set_default_deny(p, false);
	assert_false(policy_peer_allowed(p, &a));
	assert_true(policy_is_special(&a));
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_ranges),
		cmocka_unit_test(test_public_allowed),
		cmocka_unit_test(test_registry_gaps),
		cmocka_unit_test(test_mapped_canonicalized),
		cmocka_unit_test(test_allow_overrides_default),
		cmocka_unit_test(test_deny_public),
		cmocka_unit_test(test_range_and_single),
		cmocka_unit_test(test_cidr_host_bits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_unknown_family),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
