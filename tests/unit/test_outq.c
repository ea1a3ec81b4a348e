/* The egress queue on loopback sockets (no root): flows keep their order
 * whatever the interleaving, GSO runs arrive as the datagrams they were,
 * the source address comes from IP_PKTINFO, a full queue flushes itself,
 * and what cannot be sent is counted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cmocka.h>

#include "common/addr.h"
#include "daemon/outq.h"

/* A socket on ip, port chosen by the kernel, reads time out after 1 s. */
static int bound(const char *ip, struct sockaddr_storage *a)
{
	struct timeval tv = { .tv_sec = 1 };
	socklen_t len = sizeof(*a);
	int one = 1, fd;

	assert_int_equal(addr_parse(ip, 0, a), 0);
	fd = socket(a->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)a, addr_len(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	return fd;
}

static void push(struct outq *q, int fd, const struct sockaddr_storage *to,
		 const struct sockaddr_storage *src, uint8_t tag, size_t len)
{
	uint8_t buf[OUTQ_DGRAM_MAX];
	struct iovec iov[2] = { { buf, 1 }, { buf + 1, len - 1 } };

	memset(buf, tag, len);
	assert_int_equal(outq_push(q, fd, to, src, iov, 2), 0);
}

/* The next datagram on fd: its length and first byte (its tag); from its
 * source if from is not NULL. */
static void expect(int fd, uint8_t tag, size_t len, struct sockaddr_storage *from)
{
	uint8_t buf[OUTQ_DGRAM_MAX + 1];
	struct sockaddr_storage f;
	socklen_t flen = sizeof(f);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&f, &flen);

	if (n != (ssize_t)len || buf[0] != tag || buf[n - 1] != tag)
		fail_msg("got %zd bytes tagged %u, want %zu tagged %u", n, n > 0 ? buf[0] : 0,
			 len, tag);
	if (from) {
		addr_canon(&f);
		*from = f;
	}
}

static void nothing_more(int fd)
{
	uint8_t b;

	assert_int_equal(recv(fd, &b, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* Two flows interleaved: each arrives in its order, with its sizes (a run
 * of 100s ending in a shorter one is one GSO send). */
static void test_flows_in_order(void **state)
{
	struct sockaddr_storage sa, r1a, r2a;
	int s = bound("127.0.0.1", &sa), r1 = bound("127.0.0.1", &r1a), r2 = bound("127.0.0.1", &r2a);
	struct outq *q = outq_new();
	static const size_t sizes1[] = { 100, 100, 100, 60, 100, 1 };

	assert_non_null(q);
	for (unsigned i = 0; i < 6; i++) {
		push(q, s, &r1a, NULL, (uint8_t)(1 + i), sizes1[i]);
		if (i % 2)
			push(q, s, &r2a, NULL, (uint8_t)(100 + i), 300 + i);
	}
	nothing_more(r1);	/* nothing before the flush */
	outq_flush(q);
	for (unsigned i = 0; i < 6; i++)
		expect(r1, (uint8_t)(1 + i), sizes1[i], NULL);
	for (unsigned i = 1; i < 6; i += 2)
		expect(r2, (uint8_t)(100 + i), 300 + i, NULL);
	nothing_more(r1);
	nothing_more(r2);
	assert_int_equal(outq_drops(q), 0);
	outq_free(q);
	close(s);
	close(r1);
	close(r2);
}

/* A socket on the any-address answers from the address it is told. */
static void test_source_address(void **state)
{
	struct sockaddr_storage sa, ra, src, from;
	int s = bound("0.0.0.0", &sa), r = bound("127.0.0.1", &ra);
	struct outq *q = outq_new();

	assert_int_equal(addr_parse("127.0.0.2", 0, &src), 0);
	push(q, s, &ra, &src, 7, 40);
	push(q, s, &ra, NULL, 8, 40);
	outq_flush(q);
	/* Two flows (the source differs): either may come first. */
	for (int i = 0; i < 2; i++) {
		uint8_t tag;

		assert_int_equal(recv(r, &tag, 1, MSG_PEEK), 1);
		expect(r, tag, 40, &from);
		if (tag == 7)
			assert_true(addr_ip_eq(&from, &src));
		else
			assert_int_equal(tag, 8);
	}
	outq_free(q);
	close(s);
	close(r);
}

/* More than the queue holds: it flushes itself when full, nothing is lost
 * or reordered. (Six receivers: one socket's default buffer holds only
 * some 200 small datagrams.) */
#define RX 6
static void test_full_queue(void **state)
{
	struct sockaddr_storage sa, ra[RX];
	int s = bound("127.0.0.1", &sa), r[RX];
	struct outq *q = outq_new();
	unsigned i, got;

	for (i = 0; i < RX; i++)
		r[i] = bound("127.0.0.1", &ra[i]);
	/* Until the first one is there: the queue was full and went out. */
	for (i = 0; i < 600; i++) {
		uint8_t b;

		push(q, s, &ra[i % RX], NULL, (uint8_t)(i / RX), 64);
		if (recv(r[0], &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
			break;
	}
	assert_true(i > 200 && i < 600);
	got = i + 1;
	for (i++; i < 600; i++)
		push(q, s, &ra[i % RX], NULL, (uint8_t)(i / RX), 64);
	outq_flush(q);
	for (i = 0; i < 600; i++)
		expect(r[i % RX], (uint8_t)(i / RX), 64, NULL);
	for (i = 0; i < RX; i++) {
		nothing_more(r[i]);
		close(r[i]);
	}
	assert_int_equal(outq_drops(q), 0);
	print_message("the queue flushed itself at datagram %u\n", got);
	outq_free(q);
	close(s);
}

/* Too big to queue, or refused by the kernel (an IPv6 destination on an
 * IPv4 socket, alone and inside a GSO run): dropped and counted, the rest
 * goes. */
static void test_drops_counted(void **state)
{
	struct sockaddr_storage sa, ra, v6;
	int s = bound("127.0.0.1", &sa), r = bound("127.0.0.1", &ra);
	struct outq *q = outq_new();
	uint8_t big[OUTQ_DGRAM_MAX + 1] = { 0 };
	struct iovec iov = { big, sizeof(big) };

	assert_int_equal(addr_parse("::1", 9, &v6), 0);
	assert_int_equal(outq_push(q, s, &ra, NULL, &iov, 1), -EMSGSIZE);
	assert_int_equal(outq_drops(q), 1);
	push(q, s, &v6, NULL, 1, 50);
	push(q, s, &ra, NULL, 2, 50);
	for (int i = 0; i < 3; i++)
		push(q, s, &v6, NULL, 3, 50);
	outq_flush(q);
	expect(r, 2, 50, NULL);
	nothing_more(r);
	assert_int_equal(outq_drops(q), 5);
	outq_free(q);
	close(s);
	close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flows_in_order),
		cmocka_unit_test(test_source_address),
		cmocka_unit_test(test_full_queue),
		cmocka_unit_test(test_drops_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
