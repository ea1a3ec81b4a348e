/* The protocol through the real daemon, for what needs its sockets: starts
 * xturnd on loopback (userspace relaying, no XDP) and drives it with the
 * TURN client library and hand-built datagrams. Peers are UDP sockets of
 * this test on 127.0.0.1 / ::1. Listeners and relay sockets of both
 * families, the port walk, GSO/GRO trains, this host's addresses from
 * netlink, external-ip, SIGHUP reloads, the wall clock, a flood's memory,
 * the flags' wiring. The protocol's own behaviour is tested without a
 * daemon in tests/unit/test_protocol.c. */
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
#include <netinet/udp.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/addr.h"
#include "common/stun.h"
#include "turn/auth.h"
#include "client/turnclient.h"

#include "testd.h"

#define REALM "xturn"
#define SECRET "conf-secret"
#define RELAY_SPAN 64		/* relay ports per daemon */
#define QUIET_MS 300		/* how long "nothing arrives" is watched */
#define WAIT_MS 1000		/* bound for something that should arrive */

static bool pick_ports(struct testd *d, int attempt);
static bool ready(const struct testd *d);

static const char *const common_flags[] = {
	"--no-xdp",		/* relaying in userspace on loopback */
	"--listening-ip=127.0.0.1",
	"--listening-ip=::1",
	"--relay-ip=127.0.0.1",
	"--relay-ip=::1",
	"--realm=" REALM,
	"--user=alice:secret",
	"--user=bob:pw",
	"--use-auth-secret",
	"--static-auth-secret=" SECRET,
	"--allowed-peer-ip=127.0.0.1",
	"--allowed-peer-ip=::1",
	/* More allowed loopback IPs, only ever used as permission targets
	 * (never sent to), to reach max-permissions; 127.0.0.2 stays denied.
	 * One by one: loopback is this host, which only a rule of exactly one
	 * address opens. */
	"--allowed-peer-ip=127.0.1.1", "--allowed-peer-ip=127.0.1.2",
	"--allowed-peer-ip=127.0.1.3", "--allowed-peer-ip=127.0.1.200",
	"--max-permissions=4",
	"--max-allocate-lifetime=1800",
	NULL,
};
static const struct testd_kind kind = { .flags = common_flags, .pick_ports = pick_ports,
					.ready = ready, .ready_tries = 30 };
/* This host as a peer: loopback allowed only as a range (which opens none
 * of the host's addresses), 127.0.0.7 exactly, on ports 6000-6100. */
static const char *const host_flags[] = {
	"--no-xdp", "--listening-ip=127.0.0.1", "--listening-ip=::1", "--relay-ip=127.0.0.1",
	"--relay-ip=::1", "--realm=" REALM, "--user=alice:secret",
	"--allowed-peer-ip=127.0.0.0/8", "--allowed-peer-ip=127.0.0.7:6000-6100",
	NULL,
};
static const struct testd_kind host_kind = { .flags = host_flags, .pick_ports = pick_ports,
					     .ready = ready, .ready_tries = 30 };

struct daemon {
	struct testd td;
	struct sockaddr_storage srv4, srv6;	/* its listeners */
};

static struct daemon d_main = {
	.td = { .kind = &kind, .name = "main",
		.extra = { "--user-quota=3", "--total-quota=32", "--stale-nonce=600" } },
};
/* total-quota 4 with user-quota 3: alice fills her quota, bob the rest. */
static struct daemon d_quota = {
	.td = { .kind = &kind, .name = "quota",
		.extra = { "--user-quota=3", "--total-quota=4", "--stale-nonce=600",
			   "--max-channels=2" } },
};
static struct daemon d_limit = {
	.td = { .kind = &kind, .name = "limit",
		.extra = { "--unauth-rate-limit=1", "--unauth-rate-burst=3" } },
};
static struct daemon d_host = {
	.td = { .kind = &host_kind, .name = "host" },
};
/* The same, telling clients their relayed addresses are on 127.0.0.9 (as
 * behind 1:1 NAT). */
static struct daemon d_ext = {
	.td = { .kind = &host_kind, .name = "ext", .extra = { "--external-ip=127.0.0.9" } },
};
/* Reads a config file that the reload test rewrites before SIGHUP. */
static char reload_conf[64];
static char reload_flag[80];
static struct daemon d_reload = {
	.td = { .kind = &kind, .name = "reload", .extra = { reload_flag } },
};

/* ---- helpers --------------------------------------------------------------- */

static struct sockaddr_storage A(const char *s)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(s, 0, &a), 0);
	return a;
}

static unsigned rnd(unsigned n)
{
	unsigned v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned)getpid() ^ (unsigned)time(NULL);
	return v % n;
}

/* A peer: a UDP socket on ip, any free port; fills its address. */
static int peer_open(const char *ip, struct sockaddr_storage *addr)
{
	int fd = testd_bound(SOCK_DGRAM, ip, 0, false, addr);

	assert_true(fd >= 0);
	return fd;
}

/* Waits up to ms for a datagram: its length, or -ETIMEDOUT. */
static int peer_recv(int fd, int ms, void *buf, size_t cap, struct sockaddr_storage *from)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	socklen_t len = sizeof(*from);
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -ETIMEDOUT;
	n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, &len);
	return n < 0 ? -errno : (int)n;
}

static void peer_send(int fd, const struct sockaddr_storage *to, const void *buf, size_t len)
{
	assert_int_equal(sendto(fd, buf, len, 0, (const struct sockaddr *)to, addr_len(to)),
			 (ssize_t)len);
}

static void set_fast(struct turnc *t)
{
	/* 100 + 200 + 1600 ms at worst: a lost answer costs under 2 s. */
	turnc_set_timers(t, 100, 3);
}

static struct turnc *cl(const struct daemon *d, int family, const char *user, const char *pass)
{
	struct turnc *t = NULL;

	assert_int_equal(turnc_open(&t, family == AF_INET6 ? &d->srv6 : &d->srv4, NULL, user, pass),
			 0);
	set_fast(t);
	return t;
}

static struct turnc *cl_rest_user(const struct daemon *d, const char *username)
{
	char pass[128];

	assert_int_equal(stun_rest_password(SECRET, username, pass, sizeof(pass)) < 0, 0);
	return cl(d, AF_INET, username, pass);
}

static struct turnc *alloc_cl(const struct daemon *d, const char *user, const char *pass,
			      const struct turnc_alloc_opts *o, struct turnc_alloc *res)
{
	struct turnc *t = cl(d, AF_INET, user, pass);

	assert_int_equal(turnc_allocate(t, o, res), 0);
	return t;
}

/* Deletes the allocation (so quotas stay free for later tests) and closes. */
static void release(struct turnc *t)
{
	assert_int_equal(turnc_refresh(t, 0, NULL), 0);
	turnc_close(t);
}

/* A turnc_ call answered with STUN error code: the return value and the
 * recorded error agree. */
#define assert_stun_err(call, t, c)                                  \
	do {                                                         \
		assert_int_equal((call), -(c));                      \
		assert_int_equal(turnc_error(t)->code, (c));         \
	} while (0)

static void assert_relay_in_range(const struct daemon *d, const struct sockaddr_storage *r,
				  const char *ip)
{
	struct sockaddr_storage want = A(ip);

	assert_true(addr_ip_eq(r, &want));
	assert_true(addr_port(r) >= d->td.min_port && addr_port(r) <= d->td.max_port);
}

/* ---- daemon lifecycle --------------------------------------------------------- */

/* A port free for UDP on 127.0.0.1 and ::1. Relay ports below the kernel's
 * ephemeral range (32768+), so our own sockets never take them. */
static bool pick_ports(struct testd *d, int attempt)
{
	d->port = testd_free_port(SOCK_DGRAM, "::1", false);
	d->min_port = (uint16_t)(20000 + rnd(10000 / RELAY_SPAN) * RELAY_SPAN);
	d->max_port = (uint16_t)(d->min_port + RELAY_SPAN - 1);
	return d->port != 0;
}

/* A Binding over IPv4 and IPv6 answers. */
static bool ready(const struct testd *d)
{
	struct sockaddr_storage m, srv4, srv6;
	struct turnc *t4 = NULL, *t6 = NULL;
	bool ok;

	if (addr_parse("127.0.0.1", d->port, &srv4) || addr_parse("::1", d->port, &srv6) ||
	    turnc_open(&t4, &srv4, NULL, "", "") || turnc_open(&t6, &srv6, NULL, "", "")) {
		turnc_close(t4);
		return false;
	}
	turnc_set_timers(t4, 50, 1);	/* 800 ms per try */
	turnc_set_timers(t6, 50, 1);
	ok = turnc_binding(t4, &m) == 0 && turnc_binding(t6, &m) == 0;
	turnc_close(t4);
	turnc_close(t6);
	return ok;
}

static int daemon_start(void **state, struct daemon *d)
{
	snprintf(d->td.log, sizeof(d->td.log), "/tmp/xturn-conf-%s-%d.log", d->td.name,
		 (int)getpid());
	if (testd_start(&d->td))
		return -1;
	assert_int_equal(addr_parse("127.0.0.1", d->td.port, &d->srv4), 0);
	assert_int_equal(addr_parse("::1", d->td.port, &d->srv6), 0);
	*state = d;
	return 0;
}

/* cmocka 1.1.5 exits 0 when a group teardown fails: the daemons' exit
 * checks (status 0 on SIGTERM, under SAN=1 no leak report) are counted
 * here and added to the result in main. */
static int stop_failures;

static int stopped(struct testd *td)
{
	if (testd_stop(td))
		stop_failures++;
	return 0;
}

static int setup_main(void **state) { return daemon_start(state, &d_main); }
static int setup_quota(void **state) { return daemon_start(state, &d_quota); }
static int setup_host(void **state) { return daemon_start(state, &d_host); }
static int setup_ext(void **state) { return daemon_start(state, &d_ext); }
static int setup_limit(void **state) { return daemon_start(state, &d_limit); }

static void write_conf(const char *text)
{
	FILE *f = fopen(reload_conf, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup_reload(void **state)
{
	snprintf(reload_conf, sizeof(reload_conf), "/tmp/xturn-conf-reload-%d.conf", (int)getpid());
	snprintf(reload_flag, sizeof(reload_flag), "--config=%s", reload_conf);
	write_conf("user = carol:one\n");
	return daemon_start(state, &d_reload);
}

static int teardown_reload(void **state)
{
	unlink(reload_conf);
	return stopped(&d_reload.td);
}
static int teardown_main(void **state) { return stopped(&d_main.td); }
static int teardown_quota(void **state) { return stopped(&d_quota.td); }
static int teardown_host(void **state) { return stopped(&d_host.td); }
static int teardown_ext(void **state) { return stopped(&d_ext.td); }
static int teardown_limit(void **state) { return stopped(&d_limit.td); }

/* ---- Binding -------------------------------------------------------------------- */

static void check_binding(const struct daemon *d, int family)
{
	struct turnc *t = cl(d, family, "", "");
	struct sockaddr_storage mapped, local;

	assert_int_equal(turnc_binding(t, &mapped), 0);
	assert_int_equal(turnc_local_addr(t, &local), 0);
	assert_int_equal(mapped.ss_family, family);
	assert_true(addr_eq(&mapped, &local));
	turnc_close(t);
}

static void test_binding_v4(void **state) { check_binding(*state, AF_INET); }
static void test_binding_v6(void **state) { check_binding(*state, AF_INET6); }

/* ---- authentication ---------------------------------------------------------------- */

static void test_rest_expired(void **state)
{
	char user[64];

	/* correctly signed by the secret, but the expiry is a minute ago */
	snprintf(user, sizeof(user), "%lld:carol", (long long)time(NULL) - 60);
	struct turnc *t = cl_rest_user(*state, user);
	struct turnc_alloc res;
	int r = turnc_allocate(t, NULL, &res);

	/* The expiry is Unix time: the daemon must not compare it with its
	 * monotonic clock (it once did, and accepted every expired name). */
	assert_stun_err(r, t, 401);
	turnc_close(t);
}

/* ---- Allocate ---------------------------------------------------------------------- */

static void test_alloc_dual(void **state)
{
	struct turnc_alloc_opts o = { .additional_family = STUN_FAMILY_IPV6 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(*state, "alice", "secret", &o, &res);

	assert_int_equal(res.nrelayed, 2);
	assert_int_equal(turnc_error(t)->address_error, 0);
	assert_relay_in_range(*state, &res.relayed[0], "127.0.0.1");
	assert_relay_in_range(*state, &res.relayed[1], "::1");
	release(t);
}

static void test_alloc_even_port(void **state)
{
	struct turnc_alloc_opts o = { .even_port = true };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(*state, "alice", "secret", &o, &res);

	assert_relay_in_range(*state, &res.relayed[0], "127.0.0.1");
	assert_int_equal(addr_port(&res.relayed[0]) % 2, 0);
	assert_false(res.has_token);
	release(t);
}

/* ---- quotas ------------------------------------------------------------------------- */

/* max-channels through the daemon: a third channel gets 508, a rebinding
 * of a bound one does not count. */
static void test_channel_max(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(*state, "alice", "secret", NULL, &res);
	struct sockaddr_storage p1 = A("127.0.0.1:5001"), p2 = A("127.0.0.1:5002");
	struct sockaddr_storage p3 = A("127.0.0.1:5003");

	assert_int_equal(turnc_channel_bind(t, 0x4000, &p1), 0);
	assert_int_equal(turnc_channel_bind(t, 0x4001, &p2), 0);
	assert_int_equal(turnc_channel_bind(t, 0x4000, &p1), 0);	/* refresh */
	assert_stun_err(turnc_channel_bind(t, 0x4002, &p3), t, 508);
	release(t);
}

/* ---- data ---------------------------------------------------------------------------- */

/* Binds a channel to a peer socket of ours and relays one datagram each
 * way: it must arrive intact, from the relayed address / on the channel. */
static void channel_roundtrip(struct turnc *t, const struct turnc_alloc *res, const char *peer_ip,
			      uint16_t channel)
{
	struct sockaddr_storage pa, from, got_peer;
	int pfd = peer_open(peer_ip, &pa);
	static const char c2p[] = "client to peer over channel";
	static const char p2c[] = "peer to client over channel";
	char buf[256];
	uint16_t ch = 0;
	int n;

	assert_int_equal(turnc_channel_bind(t, channel, &pa), 0);
	assert_int_equal(turnc_send_channel(t, channel, c2p, sizeof(c2p)), 0);
	n = peer_recv(pfd, WAIT_MS, buf, sizeof(buf), &from);
	assert_int_equal(n, sizeof(c2p));
	assert_memory_equal(buf, c2p, sizeof(c2p));
	assert_true(addr_eq(&from, &res->relayed[0]));

	peer_send(pfd, &res->relayed[0], p2c, sizeof(p2c));
	n = turnc_recv(t, WAIT_MS, &got_peer, &ch, buf, sizeof(buf));
	assert_int_equal(n, sizeof(p2c));
	assert_int_equal(ch, channel);
	assert_true(addr_eq(&got_peer, &pa));
	assert_memory_equal(buf, p2c, sizeof(p2c));
	close(pfd);
}

/* A burst of equal-size datagrams one way and the other: the daemon sends
 * such runs as one UDP GSO send. Each must still arrive as its own datagram,
 * intact and in order, the shorter last one included. */
static void test_data_burst(void **state)
{
	enum { N = 24, SZ = 300, LAST = 100 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(*state, "alice", "secret", NULL, &res);
	struct sockaddr_storage pa, from, got_peer;
	int pfd = peer_open("127.0.0.1", &pa);
	uint8_t msg[SZ], buf[512];
	uint16_t ch;

	assert_int_equal(turnc_channel_bind(t, 0x4002, &pa), 0);
	for (int i = 0; i <= N; i++) {
		memset(msg, 'a' + i % 26, sizeof(msg));
		assert_int_equal(turnc_send_channel(t, 0x4002, msg, i < N ? SZ : LAST), 0);
	}
	for (int i = 0; i <= N; i++) {
		int n = peer_recv(pfd, WAIT_MS, buf, sizeof(buf), &from);
		assert_int_equal(n, i < N ? SZ : LAST);
		assert_true(buf[0] == 'a' + i % 26 && buf[n - 1] == 'a' + i % 26);
		assert_true(addr_eq(&from, &res.relayed[0]));
	}
	for (int i = 0; i <= N; i++) {
		memset(msg, 'A' + i % 26, sizeof(msg));
		peer_send(pfd, &res.relayed[0], msg, i < N ? SZ : LAST);
	}
	for (int i = 0; i <= N; i++) {
		int n = turnc_recv(t, WAIT_MS, &got_peer, &ch, buf, sizeof(buf));
		assert_int_equal(n, i < N ? SZ : LAST);
		assert_int_equal(ch, 0x4002);
		assert_true(buf[0] == 'A' + i % 26 && buf[n - 1] == 'A' + i % 26);
	}
	close(pfd);
	release(t);
}

/* Sends n datagrams of seg bytes (the last may be shorter) from buf as one
 * UDP GSO send. Over loopback it reaches a socket with UDP_GRO, like
 * xturnd's, whole: one train of datagrams, as GRO makes them on a NIC. */
static void send_train(int fd, const struct sockaddr_storage *to, const uint8_t *buf,
		       size_t len, uint16_t seg)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctrl = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = to ? addr_len(to) : 0,
			     .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf) };

	ctrl.align.cmsg_level = SOL_UDP;
	ctrl.align.cmsg_type = UDP_SEGMENT;
	ctrl.align.cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(&ctrl.align), &seg, sizeof(seg));
	assert_int_equal(sendmsg(fd, &mh, 0), (ssize_t)len);
}

/* Trains both ways. A client's train of ChannelData alternating between
 * two channels: every message reaches its peer, intact and in order (the
 * daemon splits the train, regroups it by peer and sends each group as one
 * GSO send). A peer's train: every datagram reaches the client as its own
 * ChannelData message (each header is written over the end of the datagram
 * before it, already sent). The last of each train is shorter. */
static void test_data_trains(void **state)
{
	enum { N = 20, DATA = 96, SEG = 4 + DATA, LAST = 40 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(*state, "alice", "secret", NULL, &res);
	struct sockaddr_storage pa[2], from, got_peer;
	int pfd[2] = { peer_open("127.0.0.1", &pa[0]), peer_open("127.0.0.1", &pa[1]) };
	static uint8_t train[N * SEG];
	uint8_t buf[512];
	int seen[2] = { 0, 0 };
	size_t len = 0;
	uint16_t ch;

	assert_int_equal(turnc_channel_bind(t, 0x4010, &pa[0]), 0);
	assert_int_equal(turnc_channel_bind(t, 0x4011, &pa[1]), 0);
	for (int i = 0; i < N; i++) {
		uint16_t dlen = i < N - 1 ? DATA : LAST;
		uint8_t *m = train + len;

		m[0] = 0x40;
		m[1] = (uint8_t)(0x10 + i % 2);
		m[2] = 0;
		m[3] = (uint8_t)dlen;
		memset(m + 4, 'a' + i, dlen);
		len += 4u + dlen;
	}
	send_train(turnc_fd(t), NULL, train, len, SEG);
	for (int i = 0; i < N; i++) {
		int k = i % 2, n = peer_recv(pfd[k], WAIT_MS, buf, sizeof(buf), &from);

		assert_int_equal(n, i < N - 1 ? DATA : LAST);
		assert_int_equal(buf[0], 'a' + 2 * seen[k] + k);	/* in order */
		assert_int_equal(buf[n - 1], buf[0]);
		assert_true(addr_eq(&from, &res.relayed[0]));
		seen[k]++;
	}

	len = 0;
	for (int i = 0; i < N; i++) {
		size_t dlen = i < N - 1 ? SEG : LAST;

		memset(train + len, 'A' + i, dlen);
		len += dlen;
	}
	send_train(pfd[0], &res.relayed[0], train, len, SEG);
	for (int i = 0; i < N; i++) {
		int n = turnc_recv(t, WAIT_MS, &got_peer, &ch, buf, sizeof(buf));

		assert_int_equal(n, i < N - 1 ? SEG : LAST);
		assert_int_equal(ch, 0x4010);
		assert_int_equal(buf[0], 'A' + i);
		assert_int_equal(buf[n - 1], 'A' + i);
	}
	close(pfd[0]);
	close(pfd[1]);
	release(t);
}

/* The same over an IPv6 relay, client on the IPv6 listener. */
static void test_data_ipv6(void **state)
{
	struct turnc_alloc_opts o = { .family = STUN_FAMILY_IPV6 };
	struct turnc_alloc res;
	struct turnc *t = cl(*state, AF_INET6, "alice", "secret");

	assert_int_equal(turnc_allocate(t, &o, &res), 0);
	assert_relay_in_range(*state, &res.relayed[0], "::1");
	channel_roundtrip(t, &res, "::1", 0x4FFF);
	release(t);
}

/* ---- Refresh ----------------------------------------------------------------------- */

/* Sends one datagram from a connected socket: true if ICMP port
 * unreachable came back (ECONNREFUSED) within the wait. */
static bool port_refused(const struct sockaddr_storage *to, int ms)
{
	struct sockaddr_storage me;
	int fd = peer_open("127.0.0.1", &me);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b[8];
	bool refused;

	assert_int_equal(connect(fd, (const struct sockaddr *)to, addr_len(to)), 0);
	assert_int_equal(send(fd, "ping", 4, 0), 4);
	refused = poll(&p, 1, ms) > 0 && recv(fd, b, sizeof(b), MSG_DONTWAIT) < 0 &&
		  errno == ECONNREFUSED;
	close(fd);
	return refused;
}

static void test_refresh_zero(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(*state, "alice", "secret", NULL, &res);
	uint32_t granted = 1;

	/* while allocated the relay port is open (unpermitted data is dropped
	 * silently) */
	assert_false(port_refused(&res.relayed[0], QUIET_MS));
	assert_int_equal(turnc_refresh(t, 0, &granted), 0);
	assert_int_equal(granted, 0);
	assert_stun_err(turnc_refresh(t, 600, NULL), t, 437);
	assert_true(port_refused(&res.relayed[0], WAIT_MS));
	turnc_close(t);
}

/* ---- malformed input ----------------------------------------------------------------- */

static size_t build_binding(uint8_t *buf, size_t cap, bool fingerprint)
{
	uint8_t tid[STUN_TID_LEN];
	struct stun_builder b;

	assert_int_equal(getrandom(tid, sizeof(tid), 0), (ssize_t)sizeof(tid));
	stun_build_init(&b, buf, cap, STUN_BINDING, STUN_REQUEST, tid);
	stun_add_attr(&b, STUN_A_SOFTWARE, "conformance", 11);
	if (fingerprint)
		stun_add_fingerprint(&b);
	return stun_build_finish(&b);
}

static void test_malformed(void **state)
{
	const struct daemon *d = *state;
	struct turnc_alloc res;
	struct turnc *t = alloc_cl(d, "alice", "secret", NULL, &res);
	struct sockaddr_storage pa, from, mapped;
	int pfd = peer_open("127.0.0.1", &pa), fd = turnc_fd(t);
	uint8_t msg[STUN_MAX_MSG], resp[STUN_MAX_MSG];
	static const uint8_t garbage[] = "\x00\x01\xff\xfe not a STUN message at all";
	/* Binding header claiming 8 bytes of attributes; SOFTWARE says 0xFFF0 */
	static const uint8_t huge_attr[] = {
		0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
		0x80, 0x22, 0xFF, 0xF0, 'x', 'x', 'x', 'x',
	};
	/* channel 0x4000 (bound below) claiming 1000 bytes, carrying 8 */
	static const uint8_t long_cd[] = { 0x40, 0x00, 0x03, 0xE8, 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t len;
	char buf[64];

	assert_int_equal(turnc_channel_bind(t, 0x4000, &pa), 0);
	assert_int_equal(send(fd, garbage, sizeof(garbage), 0), (ssize_t)sizeof(garbage));
	assert_int_equal(send(fd, msg, 0, 0), 0);
	len = build_binding(msg, sizeof(msg), false);
	assert_int_equal(send(fd, msg, len - 4, 0), (ssize_t)(len - 4));	/* truncated */
	assert_int_equal(send(fd, msg, 10, 0), 10);				/* half a header */
	assert_int_equal(send(fd, huge_attr, sizeof(huge_attr), 0), (ssize_t)sizeof(huge_attr));
	assert_int_equal(send(fd, long_cd, sizeof(long_cd), 0), (ssize_t)sizeof(long_cd));
	/* the bad ChannelData is dropped, not relayed in part */
	assert_int_equal(peer_recv(pfd, QUIET_MS, buf, sizeof(buf), &from), -ETIMEDOUT);

	/* a valid FINGERPRINT is answered, a wrong one is dropped */
	len = build_binding(msg, sizeof(msg), true);
	assert_true(turnc_raw(t, msg, len, resp, sizeof(resp)) > 0);
	len = build_binding(msg, sizeof(msg), true);
	msg[len - 1] ^= 0x01;
	turnc_set_timers(t, 50, 1);
	assert_int_equal(turnc_raw(t, msg, len, resp, sizeof(resp)), -ETIMEDOUT);
	set_fast(t);

	assert_true(testd_alive(&d->td));
	assert_int_equal(turnc_binding(t, &mapped), 0);
	/* and the allocation survived it all */
	assert_int_equal(turnc_send_channel(t, 0x4000, "ok", 2), 0);
	assert_int_equal(peer_recv(pfd, WAIT_MS, buf, sizeof(buf), &from), 2);
	close(pfd);
	release(t);
}

/* ---- main ------------------------------------------------------------------------------ */

/* Allocates as user:pass and releases; returns 0 or the error. */
static int try_user(const struct daemon *d, const char *user, const char *pass)
{
	struct turnc *t = cl(d, AF_INET, user, pass);
	struct turnc_alloc res;
	int r = turnc_allocate(t, NULL, &res);

	if (r == 0)
		release(t);
	else
		turnc_close(t);
	return r;
}

/* Rewrites the reload daemon's file, SIGHUPs it and gives it ms. */
static void reload_with(const struct daemon *d, const char *text, unsigned ms)
{
	write_conf(text);
	assert_int_equal(kill(d->td.pid, SIGHUP), 0);
	usleep(ms * 1000);
}

/* Nothing arrives at fd within 300 ms. */
static void assert_nothing(int fd)
{
	struct sockaddr_storage from;
	char buf[256];

	assert_int_equal(peer_recv(fd, 300, buf, sizeof(buf), &from), -ETIMEDOUT);
}

/* The TURN host itself is no peer: not a port of its relay address (a
 * service there, or an ephemeral port, would get the datagram from the
 * host's own address), not its listener (nested allocations), not another
 * of its addresses (127.0.0.2, inside the allowed range); relay to relay
 * works, and an exact rule opens its ports. */
static void test_host_peers(void **state)
{
	struct turnc_alloc ra, rb;
	struct turnc *a = alloc_cl(*state, "alice", "secret", NULL, &ra);
	struct turnc *b = alloc_cl(*state, "alice", "secret", NULL, &rb);
	const struct daemon *d = *state;
	struct sockaddr_storage pa, lo2 = A("127.0.0.2:5000"), got, from;
	struct sockaddr_storage x6000 = A("127.0.0.7:6000"), x7000 = A("127.0.0.7:7000");
	int pfd = peer_open("127.0.0.1", &pa), xfd = peer_open("127.0.0.7:6000", &from);
	static const char msg[] = "to the host itself";
	char buf[256];
	uint16_t ch = 0xFFFF;
	int n;

	/* The relay IP takes a permission (relay to relay needs one)... */
	assert_int_equal(turnc_create_permission(a, &pa, 1), 0);
	assert_int_equal(turnc_create_permission(b, &ra.relayed[0], 1), 0);
	/* ...but only our live relays get data on it. */
	assert_int_equal(turnc_send_indication(a, &pa, msg, sizeof(msg)), 0);
	assert_nothing(pfd);
	assert_stun_err(turnc_channel_bind(a, 0x4000, &pa), a, 403);
	assert_stun_err(turnc_channel_bind(a, 0x4001, &d->srv4), a, 403);
	assert_int_equal(turnc_send_indication(a, &d->srv4, msg, sizeof(msg)), 0);
	assert_int_equal(turnc_send_indication(a, &rb.relayed[0], msg, sizeof(msg)), 0);
	n = turnc_recv(b, WAIT_MS, &got, &ch, buf, sizeof(buf));
	assert_int_equal(n, sizeof(msg));
	assert_true(addr_eq(&got, &ra.relayed[0]));
	assert_int_equal(turnc_channel_bind(a, 0x4002, &rb.relayed[0]), 0);
	assert_int_equal(turnc_send_channel(a, 0x4002, msg, sizeof(msg)), 0);
	assert_int_equal(turnc_recv(b, WAIT_MS, &got, &ch, buf, sizeof(buf)), sizeof(msg));
	/* Another address of this host, though the allowed range has it. */
	assert_stun_err(turnc_create_permission(a, &lo2, 1), a, 403);
	/* An exact rule opens its ports, and only those. */
	assert_int_equal(turnc_create_permission(a, &x6000, 1), 0);
	assert_int_equal(turnc_channel_bind(a, 0x4003, &x6000), 0);
	assert_stun_err(turnc_channel_bind(a, 0x4004, &x7000), a, 403);
	assert_int_equal(turnc_send_channel(a, 0x4003, msg, sizeof(msg)), 0);
	assert_int_equal(peer_recv(xfd, WAIT_MS, buf, sizeof(buf), &got), sizeof(msg));
	/* A relay that has closed is no longer ours: whoever binds its port
	 * next gets nothing. */
	release(b);
	{
		int rfd = -1;

		/* The socket may close just after the Refresh's answer left. */
		for (int i = 0; i < 100 && rfd < 0; i++, usleep(10 * 1000))
			rfd = testd_bound(SOCK_DGRAM, "127.0.0.1", addr_port(&rb.relayed[0]),
					  false, &from);
		assert_true(rfd >= 0);
		assert_int_equal(turnc_send_channel(a, 0x4002, msg, sizeof(msg)), 0);
		assert_nothing(rfd);
		close(rfd);
	}
	close(pfd);
	close(xfd);
	release(a);
}

/* Relay to relay through the address we advertise (external-ip): it is
 * this host's, yet a live relay's port on it is a peer like the relay
 * itself; its other ports are not. */
static void test_host_advertised(void **state)
{
	struct turnc_alloc ra, rb;
	struct turnc *a = alloc_cl(*state, "alice", "secret", NULL, &ra);
	struct turnc *b = alloc_cl(*state, "alice", "secret", NULL, &rb);
	struct sockaddr_storage pub = A("127.0.0.9"), other = A("127.0.0.9:9");

	assert_true(addr_ip_eq(&rb.relayed[0], &pub));
	assert_int_equal(turnc_create_permission(a, &rb.relayed[0], 1), 0);
	assert_int_equal(turnc_channel_bind(a, 0x4000, &rb.relayed[0]), 0);
	assert_stun_err(turnc_channel_bind(a, 0x4001, &other), a, 403);
	release(b);
	release(a);
}

/* SIGHUP re-reads users from the file; a broken file keeps what runs. */
static void test_reload(void **state)
{
	const struct daemon *d = *state;

	assert_int_equal(try_user(d, "carol", "one"), 0);
	reload_with(d, "user = carol:two\n", 300);
	assert_int_equal(try_user(d, "carol", "one"), -401);
	assert_int_equal(try_user(d, "carol", "two"), 0);
	/* flags from the command line survive the reload */
	assert_int_equal(try_user(d, "alice", "secret"), 0);

	reload_with(d, "user = carol:three\nno-such-key = 1\n", 300);
	assert_true(testd_alive(&d->td));
	assert_int_equal(try_user(d, "carol", "three"), -401);
	assert_int_equal(try_user(d, "carol", "two"), 0);
}

/* A reload takes back what the new policy denies: the channel and the
 * permission to a peer whose allowed-peer-ip rule went stop carrying data
 * at the next tick (a second), in both directions. */
static void test_reload_revokes(void **state)
{
	const struct daemon *d = *state;
	struct turnc_alloc res;
	struct sockaddr_storage pa, got;
	int pfd = peer_open("127.0.1.50", &pa);
	static const char msg[] = "after the rule went";
	char buf[256];
	uint16_t ch;
	struct turnc *t;

	reload_with(d, "allowed-peer-ip = 127.0.1.50\n", 300);
	t = alloc_cl(d, "alice", "secret", NULL, &res);
	assert_int_equal(turnc_channel_bind(t, 0x4000, &pa), 0);
	assert_int_equal(turnc_send_channel(t, 0x4000, msg, sizeof(msg)), 0);
	assert_int_equal(peer_recv(pfd, WAIT_MS, buf, sizeof(buf), &got), sizeof(msg));

	reload_with(d, "user = carol:two\n", 1500);
	assert_int_equal(turnc_send_channel(t, 0x4000, msg, sizeof(msg)), 0);
	assert_int_equal(turnc_send_indication(t, &pa, msg, sizeof(msg)), 0);
	assert_nothing(pfd);
	peer_send(pfd, &res.relayed[0], msg, sizeof(msg));
	assert_int_equal(turnc_recv(t, 300, &got, &ch, buf, sizeof(buf)), -ETIMEDOUT);
	assert_stun_err(turnc_create_permission(t, &pa, 1), t, 403);
	close(pfd);
	release(t);
}

/* A reload revokes the allocations of users it removed or whose password
 * changed; those of users it kept carry on. */
static void test_reload_revokes_user(void **state)
{
	const struct daemon *d = *state;
	struct turnc_alloc rd, ra;
	struct sockaddr_storage pa, got;
	int pfd = peer_open("127.0.0.1", &pa);
	static const char msg[] = "still relayed?";
	char buf[256];
	struct turnc *dave, *alice;

	reload_with(d, "user = dave:one\n", 300);
	dave = alloc_cl(d, "dave", "one", NULL, &rd);
	alice = alloc_cl(d, "alice", "secret", NULL, &ra);
	assert_int_equal(turnc_channel_bind(dave, 0x4000, &pa), 0);
	assert_int_equal(turnc_channel_bind(alice, 0x4000, &pa), 0);

	reload_with(d, "user = dave:two\n", 1500);
	assert_int_equal(turnc_send_channel(dave, 0x4000, msg, sizeof(msg)), 0);
	assert_nothing(pfd);
	assert_int_equal(turnc_send_channel(alice, 0x4000, msg, sizeof(msg)), 0);
	assert_int_equal(peer_recv(pfd, WAIT_MS, buf, sizeof(buf), &got), sizeof(msg));
	assert_true(addr_eq(&got, &ra.relayed[0]));
	/* dave's relay port is free again: his allocation is gone */
	{
		struct sockaddr_storage b;
		int fd = testd_bound(SOCK_DGRAM, "127.0.0.1", addr_port(&rd.relayed[0]), false, &b);

		assert_true(fd >= 0);
		close(fd);
	}
	close(pfd);
	turnc_close(dave);
	release(alice);
}

/* The daemon's resident memory in KiB (VmRSS). */
static long rss_kib(pid_t pid)
{
	char path[64], line[128];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* "A flood of unauthenticated requests creates no state": 50 000 bare
 * Allocates, each from a port of its own, leave the daemon's memory
 * within a few MB of where it was. */
static void test_unauth_flood_no_state(void **state)
{
	const struct daemon *d = *state;
	uint8_t req[28] = {
		0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 'f', 'l', 'o', 'o', 'd', 0, 0, 0,
		0, 0, 0, 0, 0x00, 0x19, 0x00, 0x04, IPPROTO_UDP, 0, 0, 0,
	};
	struct sockaddr_storage me;
	long before, after;

	before = rss_kib(d->td.pid);
	for (unsigned i = 0; i < 50000; i++) {
		int fd = testd_bound(SOCK_DGRAM, "127.0.0.1", 0, false, &me);

		assert_true(fd >= 0);
		memcpy(req + 13, &i, sizeof(i));
		peer_send(fd, &d->srv4, req, sizeof(req));
		close(fd);
	}
	usleep(500 * 1000);	/* let the worker drain its socket */
	after = rss_kib(d->td.pid);
	assert_true(testd_alive(&d->td));
	if (after - before > 4096)
		fail_msg("RSS grew by %ld KiB (from %ld KiB)", after - before, before);
}

/* SIGHUP re-reads the REST secrets too: a secret added by the file works,
 * and once removed, it authenticates nobody and its allocations go. */
static void test_reload_secrets(void **state)
{
	const struct daemon *d = *state;
	const char *user = "4000000000:dora";
	char pass[128];
	struct turnc_alloc res;
	struct sockaddr_storage pa, got;
	int pfd = peer_open("127.0.0.1", &pa);
	static const char msg[] = "rest user's data";
	char buf[256];
	struct turnc *t;

	assert_int_equal(stun_rest_password("rotated-in", user, pass, sizeof(pass)) < 0, 0);
	assert_int_equal(try_user(d, user, pass), -401);
	reload_with(d, "static-auth-secret = rotated-in\n", 300);
	t = alloc_cl(d, user, pass, NULL, &res);
	assert_int_equal(turnc_channel_bind(t, 0x4000, &pa), 0);
	assert_int_equal(turnc_send_channel(t, 0x4000, msg, sizeof(msg)), 0);
	assert_int_equal(peer_recv(pfd, WAIT_MS, buf, sizeof(buf), &got), sizeof(msg));

	reload_with(d, "user = carol:two\n", 1500);
	assert_int_equal(try_user(d, user, pass), -401);
	assert_int_equal(turnc_send_channel(t, 0x4000, msg, sizeof(msg)), 0);
	assert_nothing(pfd);
	close(pfd);
	turnc_close(t);
}

int main(void)
{
	const struct CMUnitTest main_tests[] = {
		cmocka_unit_test(test_binding_v4),
		cmocka_unit_test(test_binding_v6),
		cmocka_unit_test(test_rest_expired),
		cmocka_unit_test(test_alloc_dual),
		cmocka_unit_test(test_alloc_even_port),
		cmocka_unit_test(test_data_burst),
		cmocka_unit_test(test_data_trains),
		cmocka_unit_test(test_data_ipv6),
		cmocka_unit_test(test_refresh_zero),
		cmocka_unit_test(test_malformed),
	};
	const struct CMUnitTest quota_tests[] = {
		cmocka_unit_test(test_channel_max),
	};
	const struct CMUnitTest reload_tests[] = {
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_reload_revokes),
		cmocka_unit_test(test_reload_revokes_user),
		cmocka_unit_test(test_reload_secrets),
	};
	const struct CMUnitTest host_tests[] = {
		cmocka_unit_test(test_host_peers),
	};
	const struct CMUnitTest ext_tests[] = {
		cmocka_unit_test(test_host_advertised),
	};
	const struct CMUnitTest limit_tests[] = {
		cmocka_unit_test(test_unauth_flood_no_state),
	};
	struct daemon *all[] = { &d_main, &d_quota, &d_reload, &d_host, &d_limit, &d_ext };
	int failed = 0;

	failed += cmocka_run_group_tests_name("turn-main", main_tests, setup_main, teardown_main);
	failed += cmocka_run_group_tests_name("turn-quota", quota_tests, setup_quota, teardown_quota);
	failed += cmocka_run_group_tests_name("turn-reload", reload_tests, setup_reload,
					      teardown_reload);
	failed += cmocka_run_group_tests_name("turn-host", host_tests, setup_host, teardown_host);
	failed += cmocka_run_group_tests_name("turn-ext", ext_tests, setup_ext, teardown_ext);
	failed += cmocka_run_group_tests_name("turn-limit", limit_tests, setup_limit, teardown_limit);
	failed += stop_failures;
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (failed)
			testd_dump_log(&all[i]->td);
		else
			unlink(all[i]->td.log);
	}
	return failed;
}
