/* TURN over TCP and TLS against the real daemon on loopback: the same
 * scenarios over both transports (allocation, permissions, channels and
 * indications relayed to a UDP peer, framing of split and batched writes,
 * garbage, the connection owning its allocation), then the limits (idle and
 * handshake timeouts, max-tcp-connections, UDP and TCP 5-tuples kept apart)
 * and the TLS configuration errors. The certificate is a self-signed one
 * made at run time with the openssl command. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/addr.h"
#include "common/stun.h"
#include "client/turnclient.h"
#include "daemon/stream.h"

#include "testd.h"

#define WAIT_MS 1000		/* bound for something that should arrive */
#define CLOSE_MS 5000		/* bound for a timeout of 1 s to close a connection */
#define QUIET_MS 300

static bool pick_ports(struct testd *d, int attempt);
static bool ready(const struct testd *d);

static const char *const common_flags[] = {
	"--no-xdp",		/* relaying in userspace on loopback */
	"--listening-ip=127.0.0.1",
	"--relay-ip=127.0.0.1",
	"--realm=xturn",
	"--user=alice:secret",
	"--user=bob:pw",
	"--user=carol:c",
	"--allowed-peer-ip=127.0.0.1",
	NULL,
};
static const struct testd_kind kind = { .flags = common_flags, .pick_ports = pick_ports,
					.ready = ready, .ready_tries = 40 };

static char tmpdir[32], cert[64], pkey[64], cert_flag[80], pkey_flag[80];
/* d_certs' files, which its test rewrites: a copy of cert/pkey at first,
 * then a renewed pair (CN=renewed, made beside them). */
static char live_cert[64], live_pkey[64], live_cert_flag[80], live_pkey_flag[80];
static char new_cert[64], new_pkey[64];

static struct testd d_main = {
	.kind = &kind,
	.name = "main",
	.extra = { cert_flag, pkey_flag, "--tls-handshake-timeout=1" },
};
/* One thread, so every connection meets the same table and limits. */
static struct testd d_limits = {
	.kind = &kind,
	.name = "limits",
	.extra = { cert_flag, pkey_flag, "--relay-threads=1", "--tcp-idle-timeout=1",
		   "--max-tcp-connections=3", "--user-quota=1" },
};

static struct testd d_certs = {
	.kind = &kind,
	.name = "certs",
	.extra = { live_cert_flag, live_pkey_flag, "--relay-threads=2" },
};

/* Two pending connections a source; few descriptors (a low hard
 * RLIMIT_NOFILE it cannot raise). */
#define NOFILE_LIMIT 48
static struct testd d_pending = {
	.kind = &kind,
	.name = "pending",
	.extra = { "--relay-threads=1", "--max-tcp-pending-per-ip=2", "--tcp-idle-timeout=30",
		   "--no-tls" },
};
static struct testd d_nofile = {
	.kind = &kind,
	.name = "nofile",
	.extra = { "--relay-threads=1", "--tcp-idle-timeout=30", "--no-tls",
		   "--max-tcp-pending-per-ip=0" },
	.nofile = NOFILE_LIMIT,
};
static enum turnc_transport g_tp;	/* the group's transport */

/* ---- helpers --------------------------------------------------------------- */

static struct sockaddr_storage at(const char *ip, uint16_t port)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(ip, port, &a), 0);
	return a;
}

/* Waits up to ms for a datagram: its length, or -ETIMEDOUT. */
static int peer_recv(int fd, int ms, void *buf, size_t cap)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, cap, MSG_DONTWAIT);
	return n < 0 ? -errno : (int)n;
}

static void peer_send(int fd, const struct sockaddr_storage *to, const void *buf, size_t len)
{
	assert_int_equal(sendto(fd, buf, len, 0, (const struct sockaddr *)to, addr_len(to)),
			 (ssize_t)len);
}

static void peer_expect(int fd, const void *want, size_t len)
{
	uint8_t buf[2048];

	assert_int_equal(peer_recv(fd, WAIT_MS, buf, sizeof(buf)), (int)len);
	assert_memory_equal(buf, want, len);
}

static struct sockaddr_storage server_of(const struct testd *d, enum turnc_transport tp)
{
	return at("127.0.0.1", tp == TURNC_TLS ? d->tls_port : d->port);
}

static int open_cl(const struct testd *d, enum turnc_transport tp,
		   const struct sockaddr_storage *local, const char *user, const char *pass,
		   struct turnc **out)
{
	struct sockaddr_storage srv = server_of(d, tp);
	int r = turnc_open_tp(out, &srv, local, user, pass, tp);

	if (!r)
		turnc_set_timers(*out, 100, 3);
	return r;
}

static struct turnc *cl(const struct testd *d, const char *user, const char *pass)
{
	struct turnc *t = NULL;

	assert_int_equal(open_cl(d, g_tp, NULL, user, pass, &t), 0);
	return t;
}

/* An allocation with a permission and channel 0x4001 for a fresh UDP peer. */
static struct turnc *relay_setup(const struct testd *d, int *pfd, struct sockaddr_storage *peer,
				 struct turnc_alloc *res)
{
	struct turnc *t = cl(d, "alice", "secret");

	*pfd = testd_bound(SOCK_DGRAM, "127.0.0.1", 0, true, peer);
	assert_true(*pfd >= 0);
	assert_int_equal(turnc_allocate(t, NULL, res), 0);
	assert_int_equal(res->nrelayed, 1);
	assert_int_equal(turnc_create_permission(t, peer, 1), 0);
	assert_int_equal(turnc_channel_bind(t, 0x4001, peer), 0);
	return t;
}

/* Waits for the connection to be closed by the server: -ECONNRESET (or a
 * broken pipe / reset from the socket layer). */
static int wait_closed(struct turnc *t, int ms)
{
	struct sockaddr_storage p;
	uint16_t ch;
	uint8_t buf[64];

	return turnc_recv(t, ms, &p, &ch, buf, sizeof(buf));
}

/* True once the relay's UDP port is free again (its socket closed), within
 * a bounded wait. */
static bool relay_freed(const struct sockaddr_storage *relay)
{
	char ip[ADDR_STRLEN];

	addr_str(relay, false, ip, sizeof(ip));
	for (int i = 0; i < 50; i++) {
		struct sockaddr_storage got;
		int fd = testd_bound(SOCK_DGRAM, ip, addr_port(relay), true, &got);

		if (fd >= 0) {
			close(fd);
			return true;
		}
		usleep(50 * 1000);
	}
	return false;
}

/* ---- over TCP and TLS -------------------------------------------------------- */

static void test_relay(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage peer, from;
	struct turnc_alloc res;
	uint8_t buf[256];
	uint16_t ch;
	int pfd;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	/* client -> peer: ChannelData (padded on the wire) and a Send indication */
	assert_int_equal(turnc_send_channel(t, 0x4001, "hello", 5), 0);
	peer_expect(pfd, "hello", 5);
	assert_int_equal(turnc_send_indication(t, &peer, "indicated", 9), 0);
	peer_expect(pfd, "indicated", 9);

	/* peer -> client: two odd-sized ChannelData back to back; the second
	 * is found only if the first was padded to 4 bytes. */
	peer_send(pfd, &res.relayed[0], "abcde", 5);
	peer_send(pfd, &res.relayed[0], "xyz", 3);
	assert_int_equal(turnc_recv(t, WAIT_MS, &from, &ch, buf, sizeof(buf)), 5);
	assert_int_equal(ch, 0x4001);
	assert_memory_equal(buf, "abcde", 5);
	assert_int_equal(turnc_recv(t, WAIT_MS, &from, &ch, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	assert_true(addr_eq(&from, &peer));

	/* A timeout of 0 takes what has arrived (xturngen reads echoes so). */
	peer_send(pfd, &res.relayed[0], "now", 3);
	assert_int_equal(poll(&(struct pollfd){ .fd = turnc_fd(t), .events = POLLIN }, 1, WAIT_MS),
			 1);
	assert_int_equal(turnc_recv(t, 0, &from, &ch, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "now", 3);
	turnc_close(t);
	close(pfd);
}

/* A batch of messages (over TLS a record each, one write for all) is
 * relayed whole and in order: nothing stays in the client's buffer. */
#define SEND_BATCH 20
static void test_send_batch(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage peer;
	struct turnc_alloc res;
	uint8_t msgs[SEND_BATCH][4 + 8], got[64];
	struct iovec iov[SEND_BATCH];
	int pfd;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	for (unsigned i = 0; i < SEND_BATCH; i++) {
		memcpy(msgs[i], (const uint8_t[]){ 0x40, 0x01, 0x00, 8 }, 4);
		memset(msgs[i] + 4, (int)i, 8);
		iov[i] = (struct iovec){ msgs[i], sizeof(msgs[i]) };
	}
	assert_int_equal(turnc_send_batch(t, iov, SEND_BATCH), SEND_BATCH);
	for (unsigned i = 0; i < SEND_BATCH; i++) {
		assert_int_equal(peer_recv(pfd, WAIT_MS, got, sizeof(got)), 8);
		assert_int_equal(got[0], (uint8_t)i);
	}
	turnc_close(t);
	close(pfd);
}

/* A client that does not read is dropped once 256 KB wait for it: 1 MB
 * from its peer while it reads nothing closes the connection (and with it
 * the allocation); the same 1 MB to a client reading as it comes keeps it.
 * The kernel's buffers (the client's receive buffer is cut to 4 KB) hold
 * far less than the 768 KB over the bound. */
#define FLOOD_MSGS 1000
#define FLOOD_LEN 1000
static void test_slow_reader_dropped(void **state)
{
	const struct testd *d = *state;
	static uint8_t msg[FLOOD_LEN];
	struct sockaddr_storage peer, from;
	struct turnc_alloc res;
	uint8_t buf[FLOOD_LEN];
	uint16_t ch;
	int pfd, small = 4096, got = 0;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	/* The reader: 50 messages sent, 50 read, twenty times. */
	for (int i = 0; i < FLOOD_MSGS; i += 50) {
		for (int j = 0; j < 50; j++)
			peer_send(pfd, &res.relayed[0], msg, sizeof(msg));
		for (int j = 0; j < 50; j++)
			got += turnc_recv(t, WAIT_MS, &from, &ch, buf, sizeof(buf)) == FLOOD_LEN;
	}
	assert_int_equal(got, FLOOD_MSGS);
	turnc_close(t);
	close(pfd);

	t = relay_setup(d, &pfd, &peer, &res);
	assert_int_equal(setsockopt(turnc_fd(t), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	for (int i = 0; i < FLOOD_MSGS; i++) {
		peer_send(pfd, &res.relayed[0], msg, sizeof(msg));
		if (i % 50 == 49)
			usleep(1000);	/* within the relay socket's buffer */
	}
	assert_true(relay_freed(&res.relayed[0]));
	/* What had reached the client's socket, then the server's close. */
	got = 0;
	while (turnc_recv(t, WAIT_MS, &from, &ch, buf, sizeof(buf)) == FLOOD_LEN)
		got++;
	assert_true(got < FLOOD_MSGS / 2);
	turnc_close(t);
	close(pfd);
}

/* A Data indication goes to a peer without a channel. */
static void test_data_indication(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage peer, from;
	struct turnc_alloc res;
	struct turnc *t = cl(d, "alice", "secret");
	uint8_t buf[256];
	uint16_t ch = 1;
	int pfd = testd_bound(SOCK_DGRAM, "127.0.0.1", 0, true, &peer);

	assert_true(pfd >= 0);
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	assert_int_equal(turnc_create_permission(t, &peer, 1), 0);
	peer_send(pfd, &res.relayed[0], "to-client", 9);
	assert_int_equal(turnc_recv(t, WAIT_MS, &from, &ch, buf, sizeof(buf)), 9);
	assert_int_equal(ch, 0);
	assert_true(addr_eq(&from, &peer));
	assert_memory_equal(buf, "to-client", 9);
	turnc_close(t);
	close(pfd);
}

/* Over TCP the bytes themselves: header, data, zero padding to 4. */
static void test_tcp_padding_on_wire(void **state)
{
	const struct testd *d = *state;
	static const uint8_t want[12] = { 0x40, 0x01, 0x00, 0x05, 'p', 'a', 'd', 'm', 'e', 0, 0, 0 };
	struct sockaddr_storage peer;
	struct turnc_alloc res;
	struct pollfd p;
	uint8_t buf[64];
	size_t got = 0;
	int pfd;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	peer_send(pfd, &res.relayed[0], "padme", 5);
	p.fd = turnc_fd(t);
	p.events = POLLIN;
	for (int i = 0; i < 20 && got < sizeof(want); i++) {
		ssize_t n;

		if (poll(&p, 1, WAIT_MS) <= 0)
			break;
		n = recv(p.fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	assert_int_equal(got, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	turnc_close(t);
	close(pfd);
}

/* Messages split into single bytes, and several in one write. */
static void test_split_and_batched(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage peer;
	struct turnc_alloc res;
	struct stun_builder b;
	uint8_t req[64], resp[512], batch[64];
	uint8_t tid[STUN_TID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	static const uint8_t chan[12] = { 0x40, 0x01, 0x00, 0x05, 's', 'p', 'l', 'i', 't', 0, 0, 0 };
	struct stun_msg m;
	size_t len;
	int pfd, n;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	for (size_t i = 0; i < sizeof(chan); i++) {
		assert_int_equal(turnc_send_raw(t, chan + i, 1), 0);
		usleep(1000);
	}
	peer_expect(pfd, "split", 5);

	/* A Binding request byte by byte; the last byte goes through
	 * turnc_raw, which then waits for the answer. */
	stun_build_init(&b, req, sizeof(req), STUN_BINDING, STUN_REQUEST, tid);
	len = stun_build_finish(&b);
	assert_int_equal(len, STUN_HDR_LEN);
	for (size_t i = 0; i + 1 < len; i++) {
		assert_int_equal(turnc_send_raw(t, req + i, 1), 0);
		usleep(1000);
	}
	n = turnc_raw(t, req + len - 1, 1, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(stun_parse(&m, resp, (size_t)n), STUN_OK);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_memory_equal(m.tid, tid, STUN_TID_LEN);
	assert_non_null(stun_find(&m, STUN_A_XOR_MAPPED_ADDRESS));

	/* Three ChannelData messages in one write, one of them unpadded-size 4. */
	memcpy(batch, chan, sizeof(chan));
	memcpy(batch + 12, (const uint8_t[]){ 0x40, 0x01, 0x00, 0x04, 'f', 'o', 'u', 'r' }, 8);
	memcpy(batch + 20, (const uint8_t[]){ 0x40, 0x01, 0x00, 0x01, '!', 0, 0, 0 }, 8);
	assert_int_equal(turnc_send_raw(t, batch, 28), 0);
	peer_expect(pfd, "split", 5);
	peer_expect(pfd, "four", 4);
	peer_expect(pfd, "!", 1);
	turnc_close(t);
	close(pfd);
}

/* Bytes that are neither STUN nor ChannelData: the connection is closed. */
static void test_garbage_closed(void **state)
{
	const struct testd *d = *state;
	struct turnc *t = cl(d, "alice", "secret");
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	assert_int_equal(turnc_send_raw(t, http, sizeof(http) - 1), 0);
	assert_int_equal(wait_closed(t, WAIT_MS), -ECONNRESET);
	turnc_close(t);

	/* STUN-shaped but without the magic cookie: closed as well. */
	t = cl(d, "alice", "secret");
	assert_int_equal(turnc_send_raw(t, (const uint8_t[20]){ 0x00, 0x01 }, 20), 0);
	assert_int_equal(wait_closed(t, WAIT_MS), -ECONNRESET);
	turnc_close(t);

	/* Messages are bounded (4 KB + a STUN header, 4116 bytes): a STUN header
	 * announcing 4100 bytes, or ChannelData announcing 4113, closes the
	 * connection before the body arrives; 4112 bytes of ChannelData are
	 * taken (no channel: dropped). */
	static const uint8_t big_stun[20] = { 0x00, 0x01, 0x10, 0x04, 0x21, 0x12, 0xa4, 0x42 };
	static const uint8_t big_cd[4] = { 0x40, 0x00, 0x10, 0x11 };
	static uint8_t max_cd[4 + 4112] = { 0x40, 0x00, 0x10, 0x10 };
	struct sockaddr_storage m;

	t = cl(d, "alice", "secret");
	assert_int_equal(turnc_send_raw(t, big_stun, sizeof(big_stun)), 0);
	assert_int_equal(wait_closed(t, WAIT_MS), -ECONNRESET);
	turnc_close(t);
	t = cl(d, "alice", "secret");
	assert_int_equal(turnc_send_raw(t, big_cd, sizeof(big_cd)), 0);
	assert_int_equal(wait_closed(t, WAIT_MS), -ECONNRESET);
	turnc_close(t);
	t = cl(d, "alice", "secret");
	assert_int_equal(turnc_send_raw(t, max_cd, sizeof(max_cd)), 0);
	assert_int_equal(turnc_binding(t, &m), 0);	/* still open, still framed */
	turnc_close(t);
}

/* Closing the connection deletes its allocation: the relay port is freed. */
static void test_close_deletes_allocation(void **state)
{
	const struct testd *d = *state;
	struct turnc_alloc res;
	struct turnc *t = cl(d, "alice", "secret");
	char ip[ADDR_STRLEN];
	struct sockaddr_storage got;
	int fd;

	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	/* While the allocation lives its relay port is taken. */
	addr_str(&res.relayed[0], false, ip, sizeof(ip));
	fd = testd_bound(SOCK_DGRAM, ip, addr_port(&res.relayed[0]), true, &got);
	assert_int_equal(fd, -EADDRINUSE);
	turnc_close(t);
	assert_true(relay_freed(&res.relayed[0]));
}

/* ---- TLS only --------------------------------------------------------------- */

/* Many records arriving at once, more than one read() and more than a
 * round's worth, the last of them ending the burst: each is relayed, in
 * order (none waits in the server for an event that will not come). */
#define BURST 200
static void test_tls_records_burst(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage peer;
	struct turnc_alloc res;
	uint8_t msg[4 + 100], got[256];
	int pfd, on = 1, off = 0, rcvbuf = 1 << 20;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	setsockopt(pfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* Corked: the records go out as full segments when uncorked. */
	assert_int_equal(setsockopt(turnc_fd(t), IPPROTO_TCP, TCP_CORK, &on, sizeof(on)), 0);
	for (unsigned i = 0; i < BURST; i++) {
		memcpy(msg, (const uint8_t[]){ 0x40, 0x01, 0x00, 100 }, 4);
		memset(msg + 4, (int)i, 100);
		assert_int_equal(turnc_send_raw(t, msg, sizeof(msg)), 0);
	}
	assert_int_equal(setsockopt(turnc_fd(t), IPPROTO_TCP, TCP_CORK, &off, sizeof(off)), 0);
	for (unsigned i = 0; i < BURST; i++) {
		assert_int_equal(peer_recv(pfd, WAIT_MS, got, sizeof(got)), 100);
		assert_int_equal(got[0], (uint8_t)i);
		assert_int_equal(got[99], (uint8_t)i);
	}
	turnc_close(t);
	close(pfd);
}

/* A batch of datagrams from the peer reaches a TLS client in one record
 * per batch, not one per message (each record costs a header, a MAC and
 * a write): the daemon is stopped while the peer sends, so the datagrams
 * wait in the relay socket for one recvmmsg; the records are counted in
 * what waits, unread, in the client's socket. */
#define PEER_BURST 50
static void test_tls_batch_records(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage peer, from;
	struct turnc_alloc res;
	static uint8_t raw[1 << 16];
	uint8_t msg[100], got[256];
	size_t cipher = 0;
	unsigned records = 0;
	uint16_t ch;
	int pfd;
	struct turnc *t = relay_setup(d, &pfd, &peer, &res);

	assert_int_equal(kill(d->pid, SIGSTOP), 0);
	for (unsigned i = 0; i < PEER_BURST; i++) {
		memset(msg, (int)i, sizeof(msg));
		peer_send(pfd, &res.relayed[0], msg, sizeof(msg));
	}
	assert_int_equal(kill(d->pid, SIGCONT), 0);
	/* Every message's plaintext is in the records once their ciphertext
	 * is at least as long. */
	for (int waited = 0; cipher < PEER_BURST * (4 + sizeof(msg)) && waited < WAIT_MS;
	     waited += 10) {
		ssize_t n;

		usleep(10 * 1000);
		n = recv(turnc_fd(t), raw, sizeof(raw), MSG_PEEK | MSG_DONTWAIT);
		records = 0;
		cipher = 0;
		for (ssize_t off = 0; off + 5 <= n; records++) {
			size_t len = (size_t)raw[off + 3] << 8 | raw[off + 4];

			if (off + 5 + (ssize_t)len > n)
				break;
			assert_int_equal(raw[off], 23);	/* application data */
			cipher += len;
			off += 5 + (ssize_t)len;
		}
	}
	assert_true(cipher >= PEER_BURST * (4 + sizeof(msg)));
	/* Two recvmmsg batches of 32 (a little slack); one record a message
	 * without batching. */
	assert_in_range(records, 1, 4);
	for (unsigned i = 0; i < PEER_BURST; i++) {
		assert_int_equal(turnc_recv(t, WAIT_MS, &from, &ch, got, sizeof(got)),
				 (int)sizeof(msg));
		assert_int_equal(got[0], (uint8_t)i);
		assert_int_equal(got[sizeof(msg) - 1], (uint8_t)i);
	}
	turnc_close(t);
	close(pfd);
}

/* Plain STUN on the TLS port is no handshake: closed. */
static void test_tls_plaintext_closed(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage srv = server_of(d, TURNC_TLS), m;
	struct turnc *t = NULL;

	assert_int_equal(turnc_open_tp(&t, &srv, NULL, "", "", TURNC_TCP), 0);
	turnc_set_timers(t, 100, 3);
	assert_int_equal(turnc_binding(t, &m), -ECONNRESET);
	turnc_close(t);
}

/* A connection that never starts its handshake is closed after
 * tls-handshake-timeout (1 s here; the idle timeout is 30 s). */
static void test_tls_handshake_timeout(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage srv = server_of(d, TURNC_TLS);
	struct turnc *t = NULL;

	assert_int_equal(turnc_open_tp(&t, &srv, NULL, "", "", TURNC_TCP), 0);
	assert_int_equal(wait_closed(t, CLOSE_MS), -ECONNRESET);
	turnc_close(t);
}

/* A TLS client of our own (not turnc's, which insists on 1.2+): versions
 * min..max, OpenSSL's security level 0 so that the client itself would
 * speak TLS 1.0/1.1 (the refusal must come from the server), resuming
 * sess if given. NULL when the handshake failed. Reads time out after
 * WAIT_MS so that a server that says nothing fails the test, not hangs it. */
static SSL *tls_dial(const struct testd *d, int minv, int maxv, SSL_SESSION *sess)
{
	struct sockaddr_storage srv = server_of(d, TURNC_TLS);
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_non_null(ctx);
	assert_true(fd >= 0);
	SSL_CTX_set_security_level(ctx, 0);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, minv), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, maxv), 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&srv, addr_len(&srv)), 0);
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);	/* the SSL holds a reference */
	assert_non_null(ssl);
	assert_int_equal(SSL_set_fd(ssl, fd), 1);
	if (sess)
		assert_int_equal(SSL_set_session(ssl, sess), 1);
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

static void tls_hangup(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_free(ssl);
	close(fd);
}

/* A Binding request over the connection and its success response: the
 * connection works (and a TLS 1.3 server's tickets, sent after the
 * handshake, have been read). */
static void tls_binding(SSL *ssl)
{
	uint8_t req[STUN_HDR_LEN] = { 0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42, 't', 'l', 's' };
	uint8_t resp[STUN_MAX_MSG];
	size_t got = 0, want = STUN_HDR_LEN;

	assert_int_equal(SSL_write(ssl, req, sizeof(req)), (int)sizeof(req));
	/* The whole response: what is left unread would be in the way of a
	 * renegotiation. */
	while (got < want) {
		int r = SSL_read(ssl, resp + got, (int)(want - got));

		assert_true(r > 0);
		got += (size_t)r;
		if (got == STUN_HDR_LEN)
			want += (size_t)(resp[2] << 8 | resp[3]);
		assert_true(want <= sizeof(resp));
	}
	assert_int_equal(resp[0] << 8 | resp[1], 0x0101);
	assert_memory_equal(resp + 8, req + 8, STUN_TID_LEN);
}

/* TLS 1.0 and 1.1 are refused; 1.2 and 1.3 are spoken (by this very
 * client, so the refusals are the server's). */
static void test_tls_versions(void **state)
{
	const struct testd *d = *state;
	static const int refused[] = { TLS1_VERSION, TLS1_1_VERSION };
	static const int spoken[] = { TLS1_2_VERSION, TLS1_3_VERSION };

	for (size_t i = 0; i < 2; i++) {
		SSL *ssl = tls_dial(d, refused[i], refused[i], NULL);

		if (ssl)
			fail_msg("the server spoke %s", SSL_get_version(ssl));
	}
	for (size_t i = 0; i < 2; i++) {
		SSL *ssl = tls_dial(d, spoken[i], spoken[i], NULL);

		assert_non_null(ssl);
		assert_int_equal(SSL_version(ssl), spoken[i]);
		tls_binding(ssl);
		tls_hangup(ssl);
	}
}

/* No resumption in either version: a second connection offering the first
 * one's session (TLS 1.2: its ID or ticket; TLS 1.3: a ticket, which the
 * server does not issue) gets a full handshake. */
static void test_tls_no_resumption(void **state)
{
	const struct testd *d = *state;
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };
	int resumed = 0;

	for (size_t i = 0; i < 2; i++) {
		SSL *ssl = tls_dial(d, versions[i], versions[i], NULL), *again;
		SSL_SESSION *sess;

		assert_non_null(ssl);
		tls_binding(ssl);
		sess = SSL_get1_session(ssl);
		assert_non_null(sess);
		/* Still open: freeing it first would make OpenSSL's client
		 * mark the session not resumable, and prove nothing. */
		again = tls_dial(d, versions[i], versions[i], sess);
		assert_non_null(again);
		if (SSL_session_reused(again)) {
			print_error("%s session resumed\n", SSL_get_version(again));
			resumed++;
		}
		tls_binding(again);
		tls_hangup(again);
		tls_hangup(ssl);
		SSL_SESSION_free(sess);
	}
	assert_int_equal(resumed, 0);
}

/* A client's renegotiation (TLS 1.2; 1.3 has none) is refused; the
 * daemon goes on serving others. */
static bool log_has(const char *path, const char *needle);

/* The common name of the certificate a new TLS connection to d is shown. */
static void peer_cn(const struct testd *d, char *cn, size_t len, SSL **keep)
{
	SSL *ssl = tls_dial(d, TLS1_2_VERSION, TLS1_3_VERSION, NULL);
	X509 *x;

	assert_non_null(ssl);
	x = SSL_get1_peer_certificate(ssl);
	assert_non_null(x);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      (int)len) > 0);
	X509_free(x);
	if (keep)
		*keep = ssl;
	else
		tls_hangup(ssl);
}

/* SIGHUP re-reads the certificate (certbot's deploy hook): connections from
 * then on get the renewed one, on every relay thread, while one made before
 * keeps working; a file that does not load keeps the running certificate. */
static void test_tls_reload(void **state)
{
	const struct testd *d = &d_certs;
	char cn[64], cmd[320];
	SSL *old;
	bool renewed = false;

	peer_cn(d, cn, sizeof(cn), &old);
	assert_string_equal(cn, "localhost");
	snprintf(cmd, sizeof(cmd), "cp %s %s && cp %s %s", new_cert, live_cert, new_pkey,
		 live_pkey);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(kill(d->pid, SIGHUP), 0);
	for (int i = 0; i < 40 && !renewed; i++) {
		usleep(50 * 1000);
		peer_cn(d, cn, sizeof(cn), NULL);
		renewed = !strcmp(cn, "renewed");
	}
	assert_true(renewed);
	/* both threads: SO_REUSEPORT spreads new connections over them */
	for (int i = 0; i < 8; i++) {
		peer_cn(d, cn, sizeof(cn), NULL);
		assert_string_equal(cn, "renewed");
	}
	tls_binding(old);
	tls_hangup(old);
	/* a truncated certificate: refused, the renewed one stays */
	snprintf(cmd, sizeof(cmd), "head -c 100 %s > %s", new_cert, live_cert);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(kill(d->pid, SIGHUP), 0);
	for (int i = 0; i < 40 && !log_has(d->log, "TLS: keeping the running certificate"); i++)
		usleep(50 * 1000);
	assert_true(log_has(d->log, "TLS: keeping the running certificate"));
	peer_cn(d, cn, sizeof(cn), NULL);
	assert_string_equal(cn, "renewed");
}

static void test_tls_no_renegotiation(void **state)
{
	const struct testd *d = *state;
	SSL *ssl = tls_dial(d, TLS1_2_VERSION, TLS1_2_VERSION, NULL), *other;

	assert_non_null(ssl);
	tls_binding(ssl);
	assert_int_equal(SSL_renegotiate(ssl), 1);
	if (SSL_do_handshake(ssl) == 1)
		fail_msg("the server renegotiated");
	tls_hangup(ssl);
	other = tls_dial(d, TLS1_2_VERSION, TLS1_3_VERSION, NULL);
	assert_non_null(other);
	tls_binding(other);
	tls_hangup(other);
}

/* ---- limits (one thread, idle timeout 1 s, 3 connections, quota 1) -------------- */

/* A client with an allocation. The previous test's connections may not be
 * closed on the server's side yet (over the limit: reset; quota: 486):
 * bounded retries. */
static struct turnc *alloc_retry(const struct testd *d, const char *user, const char *pass,
				 struct turnc_alloc *res)
{
	for (int i = 0; i < 40; i++) {
		struct turnc *t = cl(d, user, pass);

		if (turnc_allocate(t, NULL, res) == 0)
			return t;
		turnc_close(t);
		usleep(50 * 1000);
	}
	fail_msg("no allocation for %s", user);
	return NULL;
}

static void test_idle_timeout(void **state)
{
	const struct testd *d = *state;
	struct turnc_alloc res;
	struct turnc *busy = alloc_retry(d, "alice", "secret", &res);
	struct turnc *idle = cl(d, "alice", "secret");
	struct sockaddr_storage m;

	assert_int_equal(turnc_binding(idle, &m), 0);
	assert_int_equal(wait_closed(idle, CLOSE_MS), -ECONNRESET);
	/* The one with an allocation outlived the idle one. */
	assert_int_equal(turnc_refresh(busy, 600, NULL), 0);
	turnc_close(idle);
	turnc_close(busy);
}

static void test_max_connections(void **state)
{
	const struct testd *d = *state;
	struct turnc *t[3], *extra = NULL;
	struct turnc_alloc res[3];
	struct sockaddr_storage m;
	int r = -1;

	/* Allocations keep them past the idle timeout; quota 1 per user. */
	static const char *const users[3][2] = { { "alice", "secret" }, { "bob", "pw" },
						 { "carol", "c" } };
	for (int i = 0; i < 3; i++)
		t[i] = alloc_retry(d, users[i][0], users[i][1], &res[i]);
	extra = cl(d, "", "");
	assert_int_equal(turnc_binding(extra, &m), -ECONNRESET);
	turnc_close(extra);
	turnc_close(t[0]);
	/* The freed slot takes a new connection (the close is seen soon). */
	for (int i = 0; i < 20 && r; i++) {
		extra = cl(d, "", "");
		r = turnc_binding(extra, &m);
		turnc_close(extra);
		if (r)
			usleep(50 * 1000);
	}
	assert_int_equal(r, 0);
	turnc_close(t[1]);
	turnc_close(t[2]);
}

/* One address cannot hold more than max-tcp-pending-per-ip connections
 * without an allocation; one that allocates frees its place. */
static void test_pending_per_ip(void **state)
{
	struct turnc *a = cl(&d_pending, "alice", "secret"), *b = cl(&d_pending, "bob", "pw");
	struct turnc *c = NULL;
	struct turnc_alloc res;
	struct sockaddr_storage m;
	int r = -1;

	assert_int_equal(turnc_binding(a, &m), 0);
	assert_int_equal(turnc_binding(b, &m), 0);
	c = cl(&d_pending, "", "");
	assert_int_equal(turnc_binding(c, &m), -ECONNRESET);
	turnc_close(c);
	assert_int_equal(turnc_allocate(a, NULL, &res), 0);
	for (int i = 0; i < 20 && r; i++) {	/* the hold is seen at once; retry anyway */
		c = cl(&d_pending, "", "");
		r = turnc_binding(c, &m);
		turnc_close(c);
	}
	assert_int_equal(r, 0);
	turnc_close(a);
	turnc_close(b);
}

/* Out of descriptors, the daemon takes waiting connections off the backlog
 * and closes them (a spare descriptor makes room): the clients learn at
 * once, the listener does not spin, and it serves again once fds free up. */
static void test_out_of_fds(void **state)
{
	struct turnc *t[NOFILE_LIMIT];
	struct sockaddr_storage m;
	int open = 0, reset = 0, r = -1;

	for (int i = 0; i < NOFILE_LIMIT; i++) {
		t[i] = cl(&d_nofile, "", "");
		r = turnc_binding(t[i], &m);
		open += r == 0;
		reset += r == -ECONNRESET;
		assert_true(r == 0 || r == -ECONNRESET);	/* never left hanging */
	}
	assert_true(open > 0);
	assert_true(reset > 0);
	for (int i = 0; i < NOFILE_LIMIT; i++)
		turnc_close(t[i]);
	for (int i = 0; i < 40 && r; i++) {
		struct turnc *c = cl(&d_nofile, "", "");

		r = turnc_binding(c, &m);
		turnc_close(c);
		if (r)
			usleep(50 * 1000);
	}
	assert_int_equal(r, 0);
	assert_true(testd_alive(&d_nofile));
}

/* A UDP and a TCP client on the same address and port are two 5-tuples:
 * two allocations. Closing the TCP one frees the user's quota for UDP. */
static void test_udp_tcp_same_tuple(void **state)
{
	const struct testd *d = *state;
	struct sockaddr_storage local, srv4 = at("127.0.0.1", d->port);
	struct turnc_alloc ru, rt;
	struct turnc *u = NULL, *t = NULL, *u2 = NULL;
	int fd = testd_bound(SOCK_STREAM, "127.0.0.1", 0, true, &local), r = -1;

	assert_true(fd >= 0);
	close(fd);	/* a port number the TCP client can take; UDP may share it */
	assert_int_equal(open_cl(d, TURNC_TCP, &local, "alice", "secret", &t), 0);
	assert_int_equal(turnc_open(&u, &srv4, &local, "bob", "pw"), 0);
	turnc_set_timers(u, 100, 3);
	assert_int_equal(turnc_allocate(t, NULL, &rt), 0);
	assert_int_equal(turnc_allocate(u, NULL, &ru), 0);
	assert_false(addr_eq(&rt.relayed[0], &ru.relayed[0]));
	/* Each request meets its own allocation. */
	assert_int_equal(turnc_refresh(u, 0, NULL), 0);
	assert_int_equal(turnc_refresh(t, 600, NULL), 0);
	turnc_close(u);

	/* alice's quota (1) is the TCP allocation's until its connection ends. */
	assert_int_equal(turnc_open(&u2, &srv4, NULL, "alice", "secret"), 0);
	turnc_set_timers(u2, 100, 3);
	assert_int_equal(turnc_allocate(u2, NULL, &ru), -486);
	turnc_close(t);
	for (int i = 0; i < 20 && r; i++) {
		r = turnc_allocate(u2, NULL, &ru);
		if (r)
			usleep(50 * 1000);
	}
	assert_int_equal(r, 0);
	assert_int_equal(turnc_refresh(u2, 0, NULL), 0);
	turnc_close(u2);
}

/* ---- daemon lifecycle --------------------------------------------------------- */

/* A port free for UDP and TCP on 127.0.0.1 (the kernel picks it). */
static uint16_t free_port(void)
{
	return testd_free_port(SOCK_STREAM, "127.0.0.1", true);
}

static bool pick_ports(struct testd *d, int attempt)
{
	d->port = free_port();
	d->tls_port = free_port();
	d->min_port = (uint16_t)(20000 + (unsigned)(getpid() * 7 + attempt * 131 +
						    (d == &d_limits) * 64) % 9000);
	d->max_port = (uint16_t)(d->min_port + 31);
	return d->port && d->tls_port;
}

/* A Binding over UDP answers and a TCP connection is accepted. */
static bool ready(const struct testd *d)
{
	struct sockaddr_storage m, srv = at("127.0.0.1", d->port);
	struct turnc *u = NULL, *t = NULL;
	bool ok;

	if (turnc_open(&u, &srv, NULL, "", ""))
		return false;
	turnc_set_timers(u, 50, 1);
	ok = turnc_binding(u, &m) == 0;
	turnc_close(u);
	if (!ok || turnc_open_tp(&t, &srv, NULL, "", "", TURNC_TCP))
		return false;
	turnc_close(t);
	return true;
}

static int daemon_start(struct testd *d)
{
	snprintf(d->log, sizeof(d->log), "%s/xturnd-%s.log", tmpdir, d->name);
	return testd_start(d);
}

static int setup_tcp(void **state)
{
	g_tp = TURNC_TCP;
	*state = &d_main;
	return 0;
}

static int setup_tls(void **state)
{
	g_tp = TURNC_TLS;
	*state = &d_main;
	return 0;
}

static int setup_limits(void **state)
{
	g_tp = TURNC_TCP;
	*state = &d_limits;
	return 0;
}

/* ---- configuration errors (their own short-lived daemons) ------------------------ */

static bool log_has(const char *path, const char *needle)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* Runs xturnd with more flags until it exits (bounded): its exit status. */
static int run_to_exit(struct testd *d, const char *const *more)
{
	int st = -1;

	unlink(d->log);
	d->pid = testd_spawn(d, more);
	assert_true(d->pid > 0);
	for (int i = 0; i < 100; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return st;
		}
		usleep(50 * 1000);
	}
	testd_kill(d, &st);
	fail_msg("xturnd did not exit");
	return st;
}

static void test_bad_cert_fails(void **state)
{
	struct testd d = { .kind = &kind, .name = "badcert" };
	char kflag[128];
	const char *missing[] = { "--cert=/nonexistent/cert.pem", pkey_flag, NULL };
	const char *bad_key[] = { cert_flag, kflag, NULL };
	const char *nokey[] = { cert_flag, NULL };
	int st;

	(void)state;
	snprintf(d.log, sizeof(d.log), "%s/xturnd-badcert.log", tmpdir);
	d.port = free_port();
	d.tls_port = free_port();
	d.min_port = 40000;
	d.max_port = 40010;

	/* A certificate file that does not exist: the error names the key. */
	st = run_to_exit(&d, missing);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	assert_true(log_has(d.log, "key 'cert'"));

	/* The key file is the certificate (no key in it). */
	snprintf(kflag, sizeof(kflag), "--pkey=%s", cert);
	st = run_to_exit(&d, bad_key);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	assert_true(log_has(d.log, "key 'pkey'"));

	/* cert without pkey */
	st = run_to_exit(&d, nokey);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	assert_true(log_has(d.log, "pkey"));
}

/* no-tls: the bad certificate is never read and no TLS port listens;
 * no-tcp: no TCP port either, UDP still answers. */
static void test_no_tls_no_tcp(void **state)
{
	struct testd d = { .kind = &kind, .name = "notls" };
	static const char *const flags[] = { "--no-tls", "--no-tcp", "--cert=/nonexistent/c.pem",
					     "--pkey=/nonexistent/k.pem", NULL };
	struct sockaddr_storage srv, tsrv, m;
	struct turnc *u = NULL, *t = NULL;
	int st, r = -1;

	(void)state;
	snprintf(d.log, sizeof(d.log), "%s/xturnd-notls.log", tmpdir);
	d.port = free_port();
	d.tls_port = free_port();
	d.min_port = 40020;
	d.max_port = 40030;
	srv = at("127.0.0.1", d.port);
	tsrv = at("127.0.0.1", d.tls_port);
	d.pid = testd_spawn(&d, flags);
	assert_true(d.pid > 0);
	for (int i = 0; i < 40 && r; i++) {
		assert_true(testd_alive(&d));
		assert_int_equal(turnc_open(&u, &srv, NULL, "", ""), 0);
		turnc_set_timers(u, 50, 1);
		r = turnc_binding(u, &m);
		turnc_close(u);
		if (r)
			usleep(50 * 1000);
	}
	assert_int_equal(r, 0);
	assert_int_equal(turnc_open_tp(&t, &srv, NULL, "", "", TURNC_TCP), -ECONNREFUSED);
	assert_int_equal(turnc_open_tp(&t, &tsrv, NULL, "", "", TURNC_TCP), -ECONNREFUSED);
	testd_kill(&d, &st);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- main ------------------------------------------------------------------------------ */

static int make_cert(void)
{
	char cmd[1024];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xturn-stream-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(pkey, sizeof(pkey), "%s/key.pem", tmpdir);
	snprintf(cert_flag, sizeof(cert_flag), "--cert=%s", cert);
	snprintf(pkey_flag, sizeof(pkey_flag), "--pkey=%s", pkey);
	snprintf(live_cert, sizeof(live_cert), "%s/live-cert.pem", tmpdir);
	snprintf(live_pkey, sizeof(live_pkey), "%s/live-key.pem", tmpdir);
	snprintf(new_cert, sizeof(new_cert), "%s/new-cert.pem", tmpdir);
	snprintf(new_pkey, sizeof(new_pkey), "%s/new-key.pem", tmpdir);
	snprintf(live_cert_flag, sizeof(live_cert_flag), "--cert=%s", live_cert);
	snprintf(live_pkey_flag, sizeof(live_pkey_flag), "--pkey=%s", live_pkey);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-days 1 -subj /CN=localhost -keyout %s -out %s >/dev/null 2>&1 && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-days 1 -subj /CN=renewed -keyout %s -out %s >/dev/null 2>&1 && "
		 "cp %s %s && cp %s %s", pkey, cert, new_pkey, new_cert, cert, live_cert, pkey,
		 live_pkey);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	/* Run over TCP and over TLS. */
	const struct CMUnitTest stream_tests[] = {
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_send_batch),
		cmocka_unit_test(test_slow_reader_dropped),
		cmocka_unit_test(test_data_indication),
		cmocka_unit_test(test_split_and_batched),
		cmocka_unit_test(test_garbage_closed),
		cmocka_unit_test(test_close_deletes_allocation),
	};
	const struct CMUnitTest tcp_only[] = {
		cmocka_unit_test(test_tcp_padding_on_wire),
	};
	const struct CMUnitTest tls_only[] = {
		cmocka_unit_test(test_tls_plaintext_closed),
		cmocka_unit_test(test_tls_records_burst),
		cmocka_unit_test(test_tls_batch_records),
		cmocka_unit_test(test_tls_handshake_timeout),
		cmocka_unit_test(test_tls_versions),
		cmocka_unit_test(test_tls_no_resumption),
		cmocka_unit_test(test_tls_no_renegotiation),
	};
	const struct CMUnitTest certs_tests[] = {
		cmocka_unit_test(test_tls_reload),
	};
	/* First the one that binds a local port (no retries possible), last
	 * the one that fills the connection limit. */
	const struct CMUnitTest limits_tests[] = {
		cmocka_unit_test(test_udp_tcp_same_tuple),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_max_connections),
	};
	const struct CMUnitTest source_tests[] = {
		cmocka_unit_test(test_pending_per_ip),
		cmocka_unit_test(test_out_of_fds),
	};
	const struct CMUnitTest config_tests[] = {
		cmocka_unit_test(test_bad_cert_fails),
		cmocka_unit_test(test_no_tls_no_tcp),
	};
	char cmd[128];
	int failed = 0;

	/* Writes to a connection the daemon closed must fail, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (make_cert()) {
		fprintf(stderr, "could not make a self-signed certificate in %s\n", tmpdir);
		return 1;
	}
	if (daemon_start(&d_main) || daemon_start(&d_limits) || daemon_start(&d_pending) ||
	    daemon_start(&d_nofile) || daemon_start(&d_certs)) {
		failed = 1;
	} else {
		failed += cmocka_run_group_tests_name("stream-tcp", stream_tests, setup_tcp, NULL);
		failed += cmocka_run_group_tests_name("stream-tcp-only", tcp_only, setup_tcp, NULL);
		failed += cmocka_run_group_tests_name("stream-tls", stream_tests, setup_tls, NULL);
		failed += cmocka_run_group_tests_name("stream-tls-only", tls_only, setup_tls, NULL);
		failed += cmocka_run_group_tests_name("stream-certs", certs_tests, NULL, NULL);
		failed += cmocka_run_group_tests_name("stream-limits", limits_tests, setup_limits,
						      NULL);
		failed += cmocka_run_group_tests_name("stream-sources", source_tests, setup_limits,
						      NULL);
		failed += cmocka_run_group_tests_name("stream-config", config_tests, NULL, NULL);
	}
	failed += testd_stop(&d_main) ? 1 : 0;
	failed += testd_stop(&d_limits) ? 1 : 0;
	failed += testd_stop(&d_pending) ? 1 : 0;
	failed += testd_stop(&d_nofile) ? 1 : 0;
	failed += testd_stop(&d_certs) ? 1 : 0;
	if (failed) {
		testd_dump_log(&d_main);
		testd_dump_log(&d_limits);
		testd_dump_log(&d_pending);
		testd_dump_log(&d_nofile);
		testd_dump_log(&d_certs);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return failed;
}
