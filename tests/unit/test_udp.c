/* Relay sockets on loopback (no root): allocations spread over every
 * relay-ip, an exact address is bound as asked or refused, and a range
 * that is full says so. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "common/addr.h"
#include "daemon/config.h"
#include "daemon/udp.h"
#include "turn/hostaddr.h"

/* Below the ephemeral range, so no other socket of this machine is likely
 * to hold them. */
#define LO_PORT 29100
#define HI_PORT 29103

static struct config cfg;
static struct hostaddr *host;

static void set(const char *key, const char *value)
{
	char err[256];

	assert_int_equal(config_set(&cfg, key, value, "test", err, sizeof(err)), 0);
}

static int setup(void **state)
{
	config_init(&cfg);
	set("relay-ip", "127.0.0.1");
	set("relay-ip", "127.0.0.2");
	set("min-port", "29100");
	set("max-port", "29103");
	host = hostaddr_new(cfg.relay, cfg.nrelay);
	return host ? 0 : -1;
}

static int teardown(void **state)
{
	hostaddr_free(host);
	config_free(&cfg);
	return 0;
}

static const char *ip(const struct sockaddr_storage *a, char *buf)
{
	return addr_str(a, false, buf, 64);
}

/* Every (address, port) pair of the range once, the addresses
 * alternating; then the range is full. */
static void test_spread_over_relay_ips(void **state)
{
	struct udp_ports p = { .cfg = &cfg, .host = host };
	struct sockaddr_storage addr[8], adv;
	int fds[8], seen[2] = { 0, 0 };
	char b[64];

	for (int i = 0; i < 8; i++) {
		fds[i] = udp_relay_open(&p, AF_INET, NULL, false, false, &addr[i], &adv);
		assert_true(fds[i] >= 0);
		assert_string_equal(ip(&addr[i], b), i % 2 ? "127.0.0.2" : "127.0.0.1");
		assert_in_range(addr_port(&addr[i]), LO_PORT, HI_PORT);
		assert_true(addr_eq(&addr[i], &adv));	/* no external-ip */
		assert_true(hostaddr_is_relay(host, &addr[i]));	/* for relay to relay */
		seen[i % 2] |= 1 << (addr_port(&addr[i]) - LO_PORT);
	}
	assert_int_equal(seen[0], 0xf);
	assert_int_equal(seen[1], 0xf);
	assert_int_equal(udp_relay_open(&p, AF_INET, NULL, false, false, &adv, &adv),
			 -EADDRINUSE);
	/* A freed pair is found again, wherever the cursor is. */
	udp_relay_close(&p, fds[5], NULL);
	assert_false(hostaddr_is_relay(host, &addr[5]));
	fds[5] = udp_relay_open(&p, AF_INET, NULL, false, false, &adv, &adv);
	assert_true(fds[5] >= 0);
	assert_true(addr_eq(&adv, &addr[5]));
	for (int i = 0; i < 8; i++)
		udp_relay_close(&p, fds[i], NULL);
}

/* even: even ports only, still on both addresses. */
static void test_even(void **state)
{
	struct udp_ports p = { .cfg = &cfg, .host = host };
	struct sockaddr_storage addr, adv;
	int fds[4];
	char b[64];

	for (int i = 0; i < 4; i++) {
		fds[i] = udp_relay_open(&p, AF_INET, NULL, true, false, &addr, &adv);
		assert_true(fds[i] >= 0);
		assert_int_equal(addr_port(&addr) % 2, 0);
		assert_string_equal(ip(&addr, b), i % 2 ? "127.0.0.2" : "127.0.0.1");
	}
	assert_int_equal(udp_relay_open(&p, AF_INET, NULL, true, false, &addr, &adv),
			 -EADDRINUSE);
	for (int i = 0; i < 4; i++)
		udp_relay_close(&p, fds[i], NULL);
}

/* An exact address: bound as asked on either relay-ip; refused when it is
 * not a relay address, out of the range, taken, or of a family with no
 * relay-ip. */
static void test_exact(void **state)
{
	struct udp_ports p = { .cfg = &cfg, .host = host };
	struct sockaddr_storage at, addr, adv;
	int fd;

	assert_int_equal(addr_parse("127.0.0.2:29102", 0, &at), 0);
	fd = udp_relay_open(&p, AF_INET, &at, false, false, &addr, &adv);
	assert_true(fd >= 0);
	assert_true(addr_eq(&addr, &at));
	assert_int_equal(udp_relay_open(&p, AF_INET, &at, false, false, &addr, &adv),
			 -EADDRINUSE);
	udp_relay_close(&p, fd, NULL);

	assert_int_equal(addr_parse("127.0.0.3:29102", 0, &at), 0);
	assert_int_equal(udp_relay_open(&p, AF_INET, &at, false, false, &addr, &adv),
			 -EADDRNOTAVAIL);
	assert_int_equal(addr_parse("127.0.0.1:29104", 0, &at), 0);
	assert_int_equal(udp_relay_open(&p, AF_INET, &at, false, false, &addr, &adv),
			 -EADDRINUSE);
	assert_int_equal(udp_relay_open(&p, AF_INET6, NULL, false, false, &addr, &adv),
			 -EAFNOSUPPORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread_over_relay_ips),
		cmocka_unit_test(test_even),
		cmocka_unit_test(test_exact),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
