/* common/frame: the RFC 1071 sum against the RFC's own example, and
 * frame_ip_udp's packets checked field by field, their checksums verified
 * the receiver's way (the sum over the covered bytes folds to 0xffff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "common/addr.h"
#include "common/frame.h"

static struct sockaddr_storage A(const char *s)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(s, 0, &a), 0);
	return a;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 2 ddf0, folded ddf2. */
static void test_rfc1071_example(void **state)
{
	static const uint8_t b[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	(void)state;
	assert_int_equal(frame_sum16(b, sizeof(b), 0), 0x2ddf0);
	assert_int_equal(frame_fold(frame_sum16(b, sizeof(b), 0)), 0xddf2);
	/* an odd length pads with a zero byte */
	assert_int_equal(frame_sum16(b, 3, 0), 0x0001 + 0xf200);
}

/* The UDP checksum verifies over the pseudo-header (addresses, protocol,
 * UDP length) and the datagram. */
static void check_udp(const uint8_t *udp, size_t ulen, const uint8_t *addrs, size_t alen)
{
	uint32_t s = frame_sum16(addrs, 2 * alen, IPPROTO_UDP + (uint32_t)ulen);

	assert_int_equal(frame_fold(frame_sum16(udp, ulen, s)), 0xffff);
	assert_int_not_equal(get16(udp + 6), 0);	/* 0 would mean "none" */
}

static void test_ipv4(void **state)
{
	struct sockaddr_storage src = A("192.0.2.1:40000"), dst = A("198.51.100.2:3478");
	uint8_t data[37], out[128];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	n = frame_ip_udp(&src, &dst, data, sizeof(data), out);
	assert_int_equal(n, 20 + 8 + sizeof(data));
	assert_int_equal(out[0], 0x45);
	assert_int_equal(get16(out + 2), n);
	assert_int_equal(get16(out + 6), 0x4000);	/* DF */
	assert_int_equal(out[8], 64);
	assert_int_equal(out[9], IPPROTO_UDP);
	assert_memory_equal(out + 12, &((struct sockaddr_in *)&src)->sin_addr, 4);
	assert_memory_equal(out + 16, &((struct sockaddr_in *)&dst)->sin_addr, 4);
	assert_int_equal(frame_fold(frame_sum16(out, 20, 0)), 0xffff);
	assert_int_equal(get16(out + 20), 40000);
	assert_int_equal(get16(out + 22), 3478);
	assert_int_equal(get16(out + 24), 8 + sizeof(data));
	assert_memory_equal(out + 28, data, sizeof(data));
	check_udp(out + 20, 8 + sizeof(data), out + 12, 4);
}

static void test_ipv6(void **state)
{
	struct sockaddr_storage src = A("[2001:db8::1]:5000"), dst = A("[2001:db8::2]:6000");
	uint8_t data[64], out[160];
	size_t n;

	(void)state;
	memset(data, 0xa5, sizeof(data));
	n = frame_ip_udp(&src, &dst, data, sizeof(data), out);
	assert_int_equal(n, 40 + 8 + sizeof(data));
	assert_int_equal(out[0], 0x60);
	assert_int_equal(get16(out + 4), 8 + sizeof(data));
	assert_int_equal(out[6], IPPROTO_UDP);
	assert_int_equal(out[7], 64);
	assert_memory_equal(out + 8, &((struct sockaddr_in6 *)&src)->sin6_addr, 16);
	assert_memory_equal(out + 24, &((struct sockaddr_in6 *)&dst)->sin6_addr, 16);
	check_udp(out + 40, 8 + sizeof(data), out + 8, 16);
}

/* A datagram whose checksum computes to 0 is sent with 0xffff. The data is
 * chosen to make it so: two bytes that bring the sum to 0xffff. */
static void test_zero_becomes_ffff(void **state)
{
	struct sockaddr_storage src = A("192.0.2.1:1000"), dst = A("192.0.2.2:2000");
	uint8_t data[2] = { 0, 0 }, out[64];
	uint16_t fill;

	(void)state;
	frame_ip_udp(&src, &dst, data, sizeof(data), out);
	/* The checksum c of data 0000 makes the sum 0xffff with c included;
	 * data c then adds what the checksum field added, leaving 0 to store. */
	fill = get16(out + 26);
	data[0] = (uint8_t)(fill >> 8);
	data[1] = (uint8_t)fill;
	frame_ip_udp(&src, &dst, data, sizeof(data), out);
	assert_int_equal(get16(out + 26), 0xffff);
	check_udp(out + 20, 10, out + 12, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc1071_example),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_zero_becomes_ffff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
