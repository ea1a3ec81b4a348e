/* The TURN protocol (turn/, all of it) in one process, without sockets,
 * threads or clocks: a turn_server with a fake turn_io (relay "sockets" are
 * numbers with addresses, what the server sends is queued per destination,
 * the wall clock and the random source are the test's), driven by the
 * client library through turnc_open_pipe. Asserts the exact STUN answers
 * of RFC 8489/8656 for the cases that need no real socket; the daemon tier
 * (tests/daemon/test_turn.c) keeps those that do. Time is moved, never
 * waited for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "common/addr.h"
#include "common/stun.h"
#include "turn/alloc.h"
#include "turn/auth.h"
#include "turn/hostaddr.h"
#include "turn/policy.h"
#include "turn/turn.h"
#include "client/turnclient.h"

#define REALM "xturn"
#define SECRET "conf-secret"
#define CHECK_SECRET "check-secret"
#define MIN_PORT 20000
#define MAX_PORT (MIN_PORT + 63)
#define MAX_LIFETIME 1800
#define MAX_PERMS 4
#define UNKNOWN_ATTR 0x0031	/* comprehension-required, unassigned */
#define WALL0 1700000000	/* the fake wall clock's start */
#define LISTENER_FD 3
#define MAX_CLIENTS 16
#define MAX_PEERS 8
#define QLEN 64
#define NFDS 256

/* ---- the fake world ------------------------------------------------------ */

struct dgram {
	struct sockaddr_storage from;
	uint16_t len;
	uint8_t data[1500];
};

/* A place datagrams are queued for: a client or a peer. */
struct inbox {
	struct sockaddr_storage addr;
	struct dgram q[QLEN];
	unsigned head, n;
};

struct world {
	struct turn_server *turn;
	struct hostaddr *host;
	struct sockaddr_storage listen4, listen6;
	time_t now, wall;		/* monotonic and wall clock */
	uint8_t rnd;			/* the random source: a counter */
	/* relay sockets: fd -> bound address (AF_UNSPEC: closed) */
	struct sockaddr_storage relay[NFDS];
	struct allocation *alloc_of[NFDS];
	unsigned relays_open;
	struct inbox clients[MAX_CLIENTS];
	unsigned nclients;
	struct inbox peers[MAX_PEERS];
	unsigned npeers;
	unsigned dropped;		/* sent to nobody we know */
};

static struct world W;

static struct sockaddr_storage A(const char *s)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(s, 0, &a), 0);
	return a;
}

static struct inbox *inbox_of(struct inbox *boxes, unsigned n, const struct sockaddr_storage *a)
{
	for (unsigned i = 0; i < n; i++)
		if (addr_eq(&boxes[i].addr, a))
			return &boxes[i];
	return NULL;
}

static int deliver(struct inbox *b, const struct sockaddr_storage *from, const struct iovec *iov,
		   int iovcnt)
{
	struct dgram *d;
	size_t len = 0;

	if (!b || b->n == QLEN) {
		W.dropped++;
		return 0;
	}
	d = &b->q[(b->head + b->n++) % QLEN];
	for (int i = 0; i < iovcnt; i++) {
		assert_true(len + iov[i].iov_len <= sizeof(d->data));
		memcpy(d->data + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	d->len = (uint16_t)len;
	d->from = *from;
	return 0;
}

/* The next datagram queued at b: its length (0: none). */
static int take(struct inbox *b, void *buf, size_t cap, struct sockaddr_storage *from)
{
	struct dgram *d;
	size_t n;

	if (!b->n)
		return 0;
	d = &b->q[b->head];
	b->head = (b->head + 1) % QLEN;
	b->n--;
	n = d->len < cap ? d->len : cap;
	memcpy(buf, d->data, n);
	if (from)
		*from = d->from;
	return (int)n;
}

static int io_relay_open(void *ctx, int family, const struct sockaddr_storage *at, bool even,
			 bool df, struct sockaddr_storage *addr, struct sockaddr_storage *adv)
{
	struct sockaddr_storage ip = A(family == AF_INET6 ? "::1" : "127.0.0.1");
	uint16_t port = at ? addr_port(at) : 0;
	int fd = -1;

	if (at && !addr_ip_eq(at, &ip))
		return -EADDRNOTAVAIL;

	for (int f = LISTENER_FD + 1; f < NFDS && fd < 0; f++)
		if (W.relay[f].ss_family == AF_UNSPEC)
			fd = f;
	assert_true(fd > 0);
	for (unsigned p = port ? port : MIN_PORT; p <= (port ? port : MAX_PORT); p++) {
		bool taken = false;

		if (p < MIN_PORT || p > MAX_PORT || (even && !port && (p & 1)))
			continue;
		addr_set_port(&ip, (uint16_t)p);
		for (int f = 0; f < NFDS; f++)
			taken |= addr_eq(&W.relay[f], &ip);
		if (taken)
			continue;
		W.relay[fd] = ip;
		W.relays_open++;
		*addr = *adv = ip;
		hostaddr_relay_bound(W.host, &ip);
		return fd;
	}
	return -EADDRINUSE;
}

static void io_relay_close(void *ctx, int fd)
{
	assert_true(fd > LISTENER_FD && fd < NFDS && W.relay[fd].ss_family != AF_UNSPEC);
	hostaddr_relay_closed(W.host, &W.relay[fd]);
	memset(&W.relay[fd], 0, sizeof(W.relay[fd]));
	W.alloc_of[fd] = NULL;
	W.relays_open--;
}

static int io_send_client(void *ctx, int listener_fd, const struct sockaddr_storage *listener,
			  const struct sockaddr_storage *client, const struct iovec *iov, int iovcnt)
{
	assert_int_equal(listener_fd, LISTENER_FD);
	return deliver(inbox_of(W.clients, W.nclients, client), listener, iov, iovcnt);
}

static int io_send_peer(void *ctx, int relay_fd, const struct sockaddr_storage *peer,
			const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	assert_true(relay_fd > LISTENER_FD && relay_fd < NFDS);
	assert_int_not_equal(W.relay[relay_fd].ss_family, AF_UNSPEC);
	return deliver(inbox_of(W.peers, W.npeers, peer), &W.relay[relay_fd], &iov, 1);
}

static int io_random(void *ctx, void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = W.rnd++;
	return 0;
}

static time_t io_wall_clock(void *ctx)
{
	return W.wall;
}

static void hook_alloc_up(void *ctx, struct allocation *a)
{
	for (unsigned i = 0; i < a->nrelays; i++)
		W.alloc_of[a->relays[i].fd] = a;
}

/* Relay fds close through the hook's owner in the daemon (the worker); here
 * the test's bookkeeping does it. */
static void hook_alloc_down(void *ctx, struct allocation *a)
{
	for (unsigned i = 0; i < a->nrelays; i++)
		io_relay_close(ctx, a->relays[i].fd);
}

/* What xturnd's flags give the main test daemon, as the protocol sees it. */
struct opts {
	unsigned user_quota, total_quota, max_channels, stale_nonce;
	unsigned unauth_rate, unauth_burst;
	bool no_software;
	bool alternates;	/* ALT0 and ALT1 as alternate-server */
};

static const struct sockaddr_storage *alternates(void)
{
	static struct sockaddr_storage alt[2];

	alt[0] = A("192.0.2.50:3478");
	alt[1] = A("[2001:db8::51]:3479");
	return alt;
}

static void world_start(const struct opts *o)
{
	static const char *const allowed[] = { "127.0.0.1", "::1", "127.0.1.1", "127.0.1.2",
					       "127.0.1.3", "127.0.1.200" };
	struct sockaddr_storage relays[2] = { A("127.0.0.1"), A("::1") };
	/* This host: loopback, as the daemon's netlink dump finds it. */
	struct hostaddr_net local[] = { { A("127.0.0.0"), 8 }, { A("::1"), 128 } };
	struct turn_cfg tc = {
		.limits = { .user_quota = o->user_quota, .total_quota = o->total_quota,
			    .max_perms = MAX_PERMS, .max_channels = o->max_channels,
			    .permission_lifetime = 300, .channel_lifetime = 600 },
		.max_lifetime = MAX_LIFETIME,
		.default_lifetime = 600,
		.unauth_rate = o->unauth_rate,
		.unauth_burst = o->unauth_burst,
		.no_software = o->no_software,
		.alternates = o->alternates ? alternates() : NULL,
		.nalternates = o->alternates ? 2 : 0,
	};
	struct turn_io io = { .relay_open = io_relay_open, .relay_close = io_relay_close,
			      .send_client = io_send_client, .send_peer = io_send_peer,
			      .random = io_random, .wall_clock = io_wall_clock };
	struct alloc_hooks hooks = { .alloc_up = hook_alloc_up, .alloc_down = hook_alloc_down };
	struct auth *auth = auth_new(REALM, o->stale_nonce);
	struct policy *pol = policy_new();

	memset(&W, 0, sizeof(W));
	W.now = 1000;
	W.wall = WALL0;
	W.listen4 = A("127.0.0.1:3478");
	W.listen6 = A("[::1]:3478");
	W.host = hostaddr_new(relays, 2);
	assert_non_null(W.host);
	assert_int_equal(hostaddr_set(W.host, local, 2), 0);
	tc.host = W.host;
	assert_non_null(auth);
	assert_non_null(pol);
	assert_int_equal(auth_add_user(auth, "alice", "secret"), 0);
	assert_int_equal(auth_add_user(auth, "bob", "pw"), 0);
	assert_int_equal(auth_add_secret(auth, SECRET), 0);
	assert_int_equal(auth_set_check_secret(auth, CHECK_SECRET), 0);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		assert_int_equal(policy_allow(pol, allowed[i]), 0);
	W.turn = turn_new(&tc, auth, pol, &io, &hooks, NULL);
	assert_non_null(W.turn);
}

static void world_stop(void)
{
	turn_free(W.turn);	/* deletes allocations: their relays close */
	assert_int_equal(W.relays_open, 0);
	hostaddr_free(W.host);
}

/* Time passes: lifetimes (turn_tick) and the wall clock (nonces, REST). */
static void pass(time_t s)
{
	W.now += s;
	W.wall += s;
	turn_tick(W.turn, W.now);
}

/* ---- clients -------------------------------------------------------------- */

struct pipe_end {
	struct sockaddr_storage addr;
	const struct sockaddr_storage *listener;
	struct inbox *box;
};

static struct pipe_end ends[MAX_CLIENTS];

static int pipe_send(void *ctx, const void *buf, size_t len)
{
	struct pipe_end *e = ctx;
	uint8_t copy[65536];

	/* A private copy, as a socket gives: the server must not read past len. */
	memcpy(copy, buf, len);
	turn_on_client(W.turn, LISTENER_FD, &e->addr, e->listener, copy, len, W.now);
	return 0;
}

static int pipe_recv(void *ctx, void *buf, size_t cap)
{
	struct pipe_end *e = ctx;

	return take(e->box, buf, cap, NULL);
}

/* A client at local (its 5-tuple's source) talking to the listener of
 * local's family; a client at the same address as an earlier one shares
 * its 5-tuple and inbox. */
static struct turnc *cl_at(const struct sockaddr_storage *local, const char *user,
			   const char *pass)
{
	struct turnc_pipe p = { .send = pipe_send, .recv = pipe_recv, .local = *local };
	struct inbox *box = inbox_of(W.clients, W.nclients, local);
	struct pipe_end *e;
	struct turnc *t = NULL;

	if (!box) {
		assert_true(W.nclients < MAX_CLIENTS);
		box = &W.clients[W.nclients++];
		box->addr = *local;
	}
	e = &ends[box - W.clients];
	e->addr = *local;
	e->listener = local->ss_family == AF_INET6 ? &W.listen6 : &W.listen4;
	e->box = box;
	p.ctx = e;
	assert_int_equal(turnc_open_pipe(&t, &p, user, pass), 0);
	return t;
}

/* A client at a new address of family. */
static struct turnc *cl(int family, const char *user, const char *pass)
{
	char s[64];

	if (family == AF_INET6)
		snprintf(s, sizeof(s), "[2001:db8:c::%x]:40000", W.nclients + 1);
	else
		snprintf(s, sizeof(s), "198.51.100.%u:40000", W.nclients + 1);
	struct sockaddr_storage a = A(s);
	return cl_at(&a, user, pass);
}

static struct turnc *alloc_cl(const char *user, const char *pass,
			      const struct turnc_alloc_opts *o, struct turnc_alloc *res)
{
	struct turnc *t = cl(AF_INET, user, pass);

	assert_int_equal(turnc_allocate(t, o, res), 0);
	return t;
}

/* A browser check's credential, as GET /check/credentials mints them:
 * ending ttl seconds from now (negative: ended). */
static void check_cred(long ttl, char user[64], char pass[128])
{
	snprintf(user, 64, "%lld:xturn-check-%u", (long long)W.wall + ttl, W.nclients);
	assert_int_equal(stun_rest_password(CHECK_SECRET, user, pass, 128) < 0, 0);
}

static struct turnc *cl_rest_user(const char *username)
{
	char pass[128];

	assert_int_equal(stun_rest_password(SECRET, username, pass, sizeof(pass)) < 0, 0);
	return cl(AF_INET, username, pass);
}

/* Deletes the allocation and closes. */
static void release(struct turnc *t)
{
	assert_int_equal(turnc_refresh(t, 0, NULL), 0);
	turnc_close(t);
}

#define assert_stun_err(call, t, c)                                  \
	do {                                                         \
		assert_int_equal((call), -(c));                      \
		assert_int_equal(turnc_error(t)->code, (c));         \
	} while (0)

static void assert_relay_in_range(const struct sockaddr_storage *r, const char *ip)
{
	struct sockaddr_storage want = A(ip);

	assert_true(addr_ip_eq(r, &want));
	assert_true(addr_port(r) >= MIN_PORT && addr_port(r) <= MAX_PORT);
}

/* ---- peers ------------------------------------------------------------------ */

/* A peer at ip, a port of its own; returns its number. */
static int peer_open(const char *ip, struct sockaddr_storage *addr)
{
	char s[64];

	assert_true(W.npeers < MAX_PEERS);
	snprintf(s, sizeof(s), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, 6000 + W.npeers);
	*addr = A(s);
	W.peers[W.npeers].addr = *addr;
	return (int)W.npeers++;
}

/* The next datagram a peer got: its length, or -ETIMEDOUT. */
static int peer_recv(int peer, void *buf, size_t cap, struct sockaddr_storage *from)
{
	int n = take(&W.peers[peer], buf, cap, from);

	return n ? n : -ETIMEDOUT;
}

/* A datagram from a peer to a relayed address (dropped, like the kernel
 * would, if no relay has it). */
static void peer_send(int peer, const struct sockaddr_storage *to, const void *buf, size_t len)
{
	uint8_t d[TURN_PEER_HEADROOM + 1500];

	assert_true(len <= sizeof(d) - TURN_PEER_HEADROOM);
	for (int fd = 0; fd < NFDS; fd++) {
		if (!W.alloc_of[fd] || !addr_eq(&W.relay[fd], to))
			continue;
		memcpy(d + TURN_PEER_HEADROOM, buf, len);
		turn_on_peer(W.turn, W.alloc_of[fd], &W.peers[peer].addr, d + TURN_PEER_HEADROOM,
			     len, W.now);
		return;
	}
}

/* ---- request fillers ------------------------------------------------------------ */

static void fill_transport(struct stun_builder *b, void *arg)
{
	uint8_t proto = arg ? *(const uint8_t *)arg : IPPROTO_UDP;

	stun_add_u32(b, STUN_A_REQUESTED_TRANSPORT, (uint32_t)proto << 24);
}

static void fill_unknown(struct stun_builder *b, void *arg)
{
	static const uint8_t v[4] = { 1, 2, 3, 4 };

	fill_transport(b, NULL);
	stun_add_attr(b, UNKNOWN_ATTR, v, sizeof(v));
}

/* ---- setups: the daemons of tests/daemon/test_turn.c, as options ----------- */

static const struct opts o_main = { .user_quota = 3, .total_quota = 32, .stale_nonce = 600,
				    .max_channels = 64, .unauth_rate = 50, .unauth_burst = 200 };
/* total-quota 4 with user-quota 3: alice fills her quota, bob the rest. */
static const struct opts o_quota = { .user_quota = 3, .total_quota = 4, .stale_nonce = 600,
				     .max_channels = 64 };
static const struct opts o_limit = { .user_quota = 3, .total_quota = 32, .stale_nonce = 600,
				     .max_channels = 64, .unauth_rate = 1, .unauth_burst = 3 };

static const struct opts o_nosoft = { .user_quota = 3, .total_quota = 32, .stale_nonce = 600,
				      .max_channels = 64, .no_software = true };

static const struct opts o_quota_alt = { .user_quota = 3, .total_quota = 4, .stale_nonce = 600,
					 .max_channels = 64, .alternates = true };

static int setup_main(void **state) { world_start(&o_main); return 0; }
static int setup_quota_alt(void **state) { world_start(&o_quota_alt); return 0; }
static int setup_nosoft(void **state) { world_start(&o_nosoft); return 0; }
static int setup_quota(void **state) { world_start(&o_quota); return 0; }
static int setup_limit(void **state) { world_start(&o_limit); return 0; }
/* Every test leaves no allocation and no relay socket behind. */
static int teardown(void **state) { world_stop(); return 0; }

/* ---- Binding ------------------------------------------------------------------- */

/* XOR-MAPPED-ADDRESS is the client's address as the server saw it. */
static void test_binding(void **state)
{
	struct turnc *t4 = cl(AF_INET, "", ""), *t6 = cl(AF_INET6, "", "");
	struct sockaddr_storage mapped, local;

	assert_int_equal(turnc_binding(t4, &mapped), 0);
	assert_int_equal(turnc_local_addr(t4, &local), 0);
	assert_true(addr_eq(&mapped, &local));
	assert_int_equal(turnc_binding(t6, &mapped), 0);
	assert_int_equal(turnc_local_addr(t6, &local), 0);
	assert_int_equal(mapped.ss_family, AF_INET6);
	assert_true(addr_eq(&mapped, &local));
	turnc_close(t4);
	turnc_close(t6);
}

/* ---- authentication ---------------------------------------------------------------- */

static void test_auth_challenge(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	const struct stun_msg *m;
	const struct stun_attr *realm;

	/* auth=false: the request goes out without credentials and the 401
	 * comes back to us instead of being answered. */
	assert_stun_err(turnc_request(t, TURN_ALLOCATE, fill_transport, NULL, false), t, 401);
	m = turnc_response(t);
	assert_non_null(m);
	assert_int_equal(m->cls, STUN_ERROR);
	realm = stun_find(m, STUN_A_REALM);
	assert_non_null(realm);
	assert_int_equal(realm->len, strlen(REALM));
	assert_memory_equal(stun_attr_val(m, realm), REALM, strlen(REALM));
	assert_non_null(stun_find(m, STUN_A_NONCE));
	/* a challenge is not signed: the client's key is not known yet */
	assert_null(stun_find(m, STUN_A_MESSAGE_INTEGRITY));
	turnc_close(t);
}

/* What an unauthenticated request gets back stays small (a spoofed source
 * is the victim): a bare 28-byte Allocate's 401 at most 4 times its size,
 * with no SOFTWARE; a Binding answer has none either. An authenticated
 * answer names the software. */
static void test_unauth_size(void **state)
{
	static const uint8_t alloc[28] = {
		0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 'a', 'm', 'p', 'l', 'i', 'f', 'y', '-',
		't', 'e', 's', 't', 0x00, 0x19, 0x00, 0x04, IPPROTO_UDP, 0, 0, 0,
	};
	static const uint8_t binding[20] = {
		0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 'b', 'i', 'n', 'd', 'i', 'n', 'g', '-',
		's', 'i', 'z', 'e',
	};
	struct turnc *t = cl(AF_INET, "alice", "secret");
	uint8_t resp[STUN_MAX_MSG];
	struct turnc_alloc res;
	struct stun_msg m;
	int n;

	n = turnc_raw(t, alloc, sizeof(alloc), resp, sizeof(resp));
	assert_true(n > 0);
	assert_true(n <= 4 * (int)sizeof(alloc));
	assert_int_equal(stun_parse(&m, resp, (size_t)n), STUN_OK);
	assert_int_equal(m.cls, STUN_ERROR);
	assert_non_null(stun_find(&m, STUN_A_NONCE));
	assert_null(stun_find(&m, STUN_A_SOFTWARE));
	n = turnc_raw(t, binding, sizeof(binding), resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(stun_parse(&m, resp, (size_t)n), STUN_OK);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_null(stun_find(&m, STUN_A_SOFTWARE));
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	assert_non_null(stun_find(turnc_response(t), STUN_A_SOFTWARE));
	release(t);
}

/* A check credential is useless to an abuser: it reaches our own relayed
 * addresses only (the browser's call is relay to relay), two allocations,
 * each no longer than the credential (120 s). */
static void test_check_credentials(void **state)
{
	char user[64], pass[128];
	struct turnc *t, *u, *third;
	struct turnc_alloc res, res2;
	struct sockaddr_storage other = A("127.0.0.1:9"), other_ip = A("127.0.1.1:9");
	uint32_t granted;

	check_cred(120, user, pass);
	t = cl(AF_INET, user, pass);
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	assert_true(res.lifetime <= 120);
	assert_int_equal(turnc_refresh(t, 600, &granted), 0);
	assert_true(granted <= 120 && granted > 0);
	/* Any other peer: refused, allowed-peer-ip or not (127.0.0.1 is). */
	assert_stun_err(turnc_create_permission(t, &other_ip, 1), t, 403);
	assert_stun_err(turnc_channel_bind(t, 0x4000, &other), t, 403);
	/* Its own relayed address is fine (a second allocation of the same
	 * credential is the call's other end). */
	u = cl(AF_INET, user, pass);
	assert_int_equal(turnc_allocate(u, NULL, &res2), 0);
	assert_int_equal(turnc_create_permission(t, &res2.relayed[0], 1), 0);
	assert_int_equal(turnc_channel_bind(t, 0x4001, &res2.relayed[0]), 0);
	/* A Send indication elsewhere is dropped, counted as denied. */
	uint64_t denied = turn_stats(W.turn)->peer_denied;
	assert_int_equal(turnc_send_indication(t, &other, "x", 1), 0);
	assert_int_equal(turn_stats(W.turn)->peer_denied, denied + 1);
	/* A third allocation of the credential: 486. */
	third = cl(AF_INET, user, pass);
	assert_stun_err(turnc_allocate(third, NULL, &res), third, 486);
	turnc_close(third);
	release(u);
	release(t);
	/* An ended one does not authenticate (REST rules). */
	check_cred(-1, user, pass);
	t = cl(AF_INET, user, pass);
	assert_stun_err(turnc_allocate(t, NULL, &res), t, 401);
	turnc_close(t);
}

/* no-software-attribute: not even an authenticated answer names it. */
static void test_no_software(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	struct turnc_alloc res;

	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	assert_null(stun_find(turnc_response(t), STUN_A_SOFTWARE));
	release(t);
}

static void expect_alloc_401(const char *user, const char *pass)
{
	struct turnc *t = cl(AF_INET, user, pass);
	struct turnc_alloc res;

	assert_stun_err(turnc_allocate(t, NULL, &res), t, 401);
	turnc_close(t);
}

static void test_auth_wrong_password(void **state) { expect_alloc_401("alice", "wrong"); }
static void test_auth_unknown_user(void **state) { expect_alloc_401("mallory", "secret"); }

static void test_rest_valid(void **state)
{
	char user[64];
	struct turnc_alloc res;
	struct turnc *t;

	snprintf(user, sizeof(user), "%lld:carol", (long long)W.wall + 600);
	t = cl_rest_user(user);
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	assert_int_equal(res.nrelayed, 1);
	release(t);
}

/* RFC 8489 password algorithms: a client that picks SHA-256 from the
 * server's PASSWORD-ALGORITHMS is answered with MESSAGE-INTEGRITY-SHA256
 * under the SHA-256 key (and the client library checks that MAC). */
static void test_auth_sha256(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	struct turnc_alloc res;
	const struct stun_msg *m;

	turnc_set_sha256(t, true);
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	m = turnc_response(t);
	assert_non_null(m);
	assert_non_null(stun_find(m, STUN_A_MESSAGE_INTEGRITY_SHA256));
	assert_null(stun_find(m, STUN_A_MESSAGE_INTEGRITY));
	release(t);
}

/* Correctly signed by the secret, but the expiry passed a minute ago; and
 * a name valid now that expires while its allocation lives: its next
 * request is refused. The expiry is Unix time (the io's wall clock): the
 * daemon once compared it with its monotonic clock and accepted every
 * expired name. */
static void test_rest_expired(void **state)
{
	char user[64];
	struct turnc_alloc res;
	struct turnc *t;

	snprintf(user, sizeof(user), "%lld:carol", (long long)W.wall - 60);
	t = cl_rest_user(user);
	assert_stun_err(turnc_allocate(t, NULL, &res), t, 401);
	turnc_close(t);

	snprintf(user, sizeof(user), "%lld:carol", (long long)W.wall + 30);
	t = cl_rest_user(user);
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	W.wall += 31;
	assert_stun_err(turnc_refresh(t, 600, NULL), t, 401);
	W.wall -= 31;
	release(t);
}

static void test_rest_wrong_secret(void **state)
{
	char user[64], pass[128];

	snprintf(user, sizeof(user), "%lld:carol", (long long)W.wall + 600);
	assert_int_equal(stun_rest_password("not-the-secret", user, pass, sizeof(pass)) < 0, 0);
	expect_alloc_401(user, pass);
}

/* A nonce older than stale-nonce (600 s of wall clock) gets 438 with a
 * fresh one, and the client recovers. */
static void test_stale_nonce(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	uint8_t req[STUN_MAX_MSG], resp[STUN_MAX_MSG], tid[STUN_TID_LEN] = "stale-nonce";
	const struct stun_attr *ec;
	struct stun_builder b;
	struct stun_msg m;
	size_t len;
	int n;

	W.wall += 601;
	/* by hand, signed with the old nonce: the raw answer is 438 */
	stun_build_init(&b, req, sizeof(req), TURN_REFRESH, STUN_REQUEST, tid);
	stun_add_u32(&b, STUN_A_LIFETIME, 600);
	assert_int_equal(turnc_sign(t, &b), 0);
	len = stun_build_finish(&b);
	assert_true(len > 0);
	n = turnc_raw(t, req, len, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(stun_parse(&m, resp, (size_t)n), STUN_OK);
	assert_int_equal(m.cls, STUN_ERROR);
	ec = stun_find(&m, STUN_A_ERROR_CODE);
	assert_non_null(ec);
	assert_int_equal((stun_attr_val(&m, ec)[2] & 7) * 100 + stun_attr_val(&m, ec)[3], 438);
	assert_non_null(stun_find(&m, STUN_A_NONCE));
	/* a nonce 599 s old still works; the client library sees the same
	 * 438 and retries with the new nonce */
	assert_int_equal(turnc_refresh(t, 600, NULL), 0);
	W.wall += 599;
	assert_int_equal(turnc_refresh(t, 600, NULL), 0);
	release(t);
}

/* ---- Allocate ---------------------------------------------------------------------- */

static void test_alloc_no_transport(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");

	assert_stun_err(turnc_request(t, TURN_ALLOCATE, NULL, NULL, true), t, 400);
	turnc_close(t);
}

static void test_alloc_tcp(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	uint8_t tcp = IPPROTO_TCP;

	assert_stun_err(turnc_request(t, TURN_ALLOCATE, fill_transport, &tcp, true), t, 442);
	assert_int_equal(W.relays_open, 0);
	turnc_close(t);
}

static void test_alloc_twice(void **state)
{
	struct turnc_alloc res, res2;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);

	assert_stun_err(turnc_allocate(t, NULL, &res2), t, 437);
	assert_int_equal(W.relays_open, 1);
	release(t);
}

/* A retransmitted Allocate (same transaction id) gets the very same bytes,
 * not a 437 for the allocation it created. */
static void test_alloc_retransmit(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	uint8_t req[STUN_MAX_MSG], r1[STUN_MAX_MSG], r2[STUN_MAX_MSG], tid[STUN_TID_LEN] = "again";
	struct stun_builder b;
	struct stun_msg m;
	size_t len;
	int n1, n2;

	/* learn REALM and NONCE: a Refresh without allocation is 437 */
	assert_stun_err(turnc_refresh(t, 600, NULL), t, 437);
	stun_build_init(&b, req, sizeof(req), TURN_ALLOCATE, STUN_REQUEST, tid);
	fill_transport(&b, NULL);
	assert_int_equal(turnc_sign(t, &b), 0);
	len = stun_build_finish(&b);
	assert_true(len > 0);
	n1 = turnc_raw(t, req, len, r1, sizeof(r1));
	assert_true(n1 > 0);
	assert_int_equal(stun_parse(&m, r1, (size_t)n1), STUN_OK);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_int_equal(m.method, TURN_ALLOCATE);
	assert_non_null(stun_find(&m, STUN_A_XOR_RELAYED_ADDRESS));
	n2 = turnc_raw(t, req, len, r2, sizeof(r2));
	assert_int_equal(n2, n1);
	assert_memory_equal(r1, r2, (size_t)n1);
	assert_int_equal(W.relays_open, 1);
	release(t);
}

static void test_alloc_ipv6(void **state)
{
	struct turnc_alloc_opts o = { .family = STUN_FAMILY_IPV6 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", &o, &res);

	assert_int_equal(res.nrelayed, 1);
	assert_relay_in_range(&res.relayed[0], "::1");
	release(t);
}

static void test_alloc_dual(void **state)
{
	struct turnc_alloc_opts o = { .additional_family = STUN_FAMILY_IPV6 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", &o, &res);

	assert_int_equal(res.nrelayed, 2);
	assert_int_equal(turnc_error(t)->address_error, 0);
	assert_relay_in_range(&res.relayed[0], "127.0.0.1");
	assert_relay_in_range(&res.relayed[1], "::1");
	assert_int_equal(W.relays_open, 2);
	release(t);
}

/* EVEN-PORT with R: port + 1 is held for the token's holder, who gets it;
 * a token is good once. */
static void test_alloc_reservation(void **state)
{
	struct turnc_alloc_opts o1 = { .even_port = true, .reserve_next = true };
	struct turnc_alloc_opts o2 = { .has_token = true };
	struct turnc_alloc r1, r2, r3;
	struct turnc *t1 = alloc_cl("alice", "secret", &o1, &r1), *t2, *t3;

	assert_int_equal(addr_port(&r1.relayed[0]) % 2, 0);
	assert_true(r1.has_token);
	assert_int_equal(W.relays_open, 2);	/* the reserved port's socket too */
	memcpy(o2.token, r1.token, sizeof(o2.token));
	t2 = alloc_cl("bob", "pw", &o2, &r2);
	assert_true(addr_ip_eq(&r1.relayed[0], &r2.relayed[0]));
	assert_int_equal(addr_port(&r2.relayed[0]), addr_port(&r1.relayed[0]) + 1);
	assert_int_equal(W.relays_open, 2);
	t3 = cl(AF_INET, "bob", "pw");
	assert_stun_err(turnc_allocate(t3, &o2, &r3), t3, 508);
	turnc_close(t3);
	release(t2);
	release(t1);
}

/* An unused reservation lapses after 30 s: its socket closes and its token
 * is refused. */
static void test_reservation_lapses(void **state)
{
	struct turnc_alloc_opts o1 = { .even_port = true, .reserve_next = true };
	struct turnc_alloc_opts o2 = { .has_token = true };
	struct turnc_alloc r1, r2;
	struct turnc *t1 = alloc_cl("alice", "secret", &o1, &r1), *t2;

	assert_int_equal(W.relays_open, 2);
	pass(29);
	assert_int_equal(W.relays_open, 2);
	pass(2);
	assert_int_equal(W.relays_open, 1);
	memcpy(o2.token, r1.token, sizeof(o2.token));
	t2 = cl(AF_INET, "bob", "pw");
	assert_stun_err(turnc_allocate(t2, &o2, &r2), t2, 508);
	turnc_close(t2);
	release(t1);
}

static void test_alloc_lifetime_clamped(void **state)
{
	struct turnc_alloc_opts o = { .lifetime = 100000 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", &o, &res);
	uint32_t granted = 0;

	assert_int_equal(res.lifetime, MAX_LIFETIME);
	assert_int_equal(turnc_refresh(t, 99999, &granted), 0);
	assert_int_equal(granted, MAX_LIFETIME);
	release(t);
}

/* The allocation lives its lifetime, not a second more: its relay closes
 * and the client's Refresh finds nothing. A Refresh moves the end. */
static void test_alloc_expires(void **state)
{
	struct turnc_alloc_opts o = { .lifetime = 700 };
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", &o, &res);
	uint32_t granted = 0;

	assert_int_equal(res.lifetime, 700);
	pass(600);
	assert_int_equal(turnc_refresh(t, 700, &granted), 0);
	assert_int_equal(granted, 700);
	pass(699);
	assert_int_equal(W.relays_open, 1);
	pass(1);
	assert_int_equal(W.relays_open, 0);
	assert_stun_err(turnc_refresh(t, 600, NULL), t, 437);
	turnc_close(t);
}

static void test_unknown_attribute(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	const struct stun_msg *m;
	const struct stun_attr *ua;

	assert_stun_err(turnc_request(t, TURN_ALLOCATE, fill_unknown, NULL, true), t, 420);
	m = turnc_response(t);
	ua = stun_find(m, STUN_A_UNKNOWN_ATTRIBUTES);
	assert_non_null(ua);
	assert_int_equal(ua->len, 2);
	assert_int_equal(stun_attr_val(m, ua)[0] << 8 | stun_attr_val(m, ua)[1], UNKNOWN_ATTR);
	/* nothing was allocated: the next Refresh finds no allocation */
	assert_stun_err(turnc_refresh(t, 600, NULL), t, 437);
	assert_int_equal(W.relays_open, 0);
	turnc_close(t);
}

/* ---- quotas ------------------------------------------------------------------------- */

static void test_user_quota(void **state)
{
	struct turnc_alloc res;
	struct turnc *t[4];

	for (int i = 0; i < 3; i++)
		t[i] = alloc_cl("alice", "secret", NULL, &res);
	t[3] = cl(AF_INET, "alice", "secret");
	assert_stun_err(turnc_allocate(t[3], NULL, &res), t[3], 486);
	turnc_close(t[3]);
	/* deleting one gives the quota back */
	release(t[0]);
	t[0] = alloc_cl("alice", "secret", NULL, &res);
	for (int i = 0; i < 3; i++)
		release(t[i]);
}

/* An EVEN-PORT reservation holds a socket like an allocation, and counts
 * like one against user-quota (3 here) until it is taken or lapses. */
static void test_reservation_quota(void **state)
{
	struct turnc_alloc_opts even = { .even_port = true, .reserve_next = true };
	struct turnc_alloc_opts tok = { .has_token = true };
	struct turnc_alloc r1, r2, res;
	struct turnc *t1 = alloc_cl("alice", "secret", &even, &r1);	/* 2 of 3 */
	struct turnc *t2 = cl(AF_INET, "alice", "secret"), *t3, *t4;

	assert_true(r1.has_token);
	/* another with a reservation needs 2 more: refused whole */
	assert_stun_err(turnc_allocate(t2, &even, &r2), t2, 486);
	turnc_close(t2);
	t2 = alloc_cl("alice", "secret", NULL, &res);		/* 3 of 3 */
	t3 = cl(AF_INET, "alice", "secret");
	assert_stun_err(turnc_allocate(t3, NULL, &res), t3, 486);
	turnc_close(t3);
	/* bob takes the reserved port: alice's quota gets that place back */
	memcpy(tok.token, r1.token, sizeof(tok.token));
	t4 = alloc_cl("bob", "pw", &tok, &r2);
	t3 = alloc_cl("alice", "secret", NULL, &res);
	release(t3);
	release(t4);
	release(t2);
	release(t1);
}

/* total-quota 4: alice fills her quota of 3, bob the last one. */
static void fill_server(struct turnc *t[4])
{
	struct turnc_alloc res;

	for (int i = 0; i < 3; i++)
		t[i] = alloc_cl("alice", "secret", NULL, &res);
	t[3] = alloc_cl("bob", "pw", NULL, &res);
}

static void test_total_quota(void **state)
{
	struct turnc_alloc res;
	struct turnc *t[4], *extra;

	fill_server(t);
	/* bob is under his quota, the server is full */
	extra = cl(AF_INET, "bob", "pw");
	assert_stun_err(turnc_allocate(extra, NULL, &res), extra, 508);
	turnc_close(extra);
	for (int i = 0; i < 4; i++)
		release(t[i]);
}

/* 300 Try Alternate, signed, naming the alternates round robin. */
static void expect_alternate(struct turnc *t, const char *want)
{
	struct turnc_alloc res;
	struct sockaddr_storage got, w = A(want);
	const struct stun_attr *alt;

	assert_stun_err(turnc_allocate(t, NULL, &res), t, 300);
	alt = stun_find(turnc_response(t), STUN_A_ALTERNATE_SERVER);
	assert_non_null(alt);
	assert_int_equal(stun_attr_addr(turnc_response(t), alt, &got), 0);
	assert_true(addr_eq(&got, &w));
	assert_non_null(stun_find(turnc_response(t), STUN_A_MESSAGE_INTEGRITY));
}

/* total-quota reached with alternate-server set: the client is sent on. */
static void test_total_quota_alternate(void **state)
{
	struct turnc *t[4], *extra;

	fill_server(t);
	extra = cl(AF_INET, "bob", "pw");
	expect_alternate(extra, "192.0.2.50:3478");
	expect_alternate(extra, "[2001:db8::51]:3479");
	expect_alternate(extra, "192.0.2.50:3478");
	turnc_close(extra);
	for (int i = 0; i < 4; i++)
		release(t[i]);
}

/* Draining: new Allocates go elsewhere, what exists keeps refreshing and
 * permitting; drain off, allocations are made again. */
static void test_drain(void **state)
{
	struct turnc_alloc res;
	struct turnc *old = alloc_cl("alice", "secret", NULL, &res), *fresh;
	struct sockaddr_storage peer = A("127.0.0.1:9");

	turn_set_draining(W.turn, true);
	fresh = cl(AF_INET, "bob", "pw");
	expect_alternate(fresh, "192.0.2.50:3478");
	assert_int_equal(turnc_refresh(old, 600, NULL), 0);
	assert_int_equal(turnc_create_permission(old, &peer, 1), 0);
	turn_set_draining(W.turn, false);
	assert_int_equal(turnc_allocate(fresh, NULL, &res), 0);
	release(fresh);
	release(old);
}

/* Draining without alternate-server: 508, as when full. */
static void test_drain_no_alternate(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = cl(AF_INET, "bob", "pw");

	turn_set_draining(W.turn, true);
	assert_stun_err(turnc_allocate(t, NULL, &res), t, 508);
	turnc_close(t);
}

/* ---- requests that need an allocation ----------------------------------------------- */

static void test_no_allocation(void **state)
{
	struct turnc *t = cl(AF_INET, "alice", "secret");
	struct sockaddr_storage peer = A("127.0.0.1:9");

	assert_stun_err(turnc_refresh(t, 600, NULL), t, 437);
	assert_stun_err(turnc_create_permission(t, &peer, 1), t, 437);
	assert_stun_err(turnc_channel_bind(t, 0x4000, &peer), t, 437);
	turnc_close(t);
}

/* Bob's credentials on alice's 5-tuple: 441; alice's own still work. */
static void test_wrong_credentials(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage local;
	struct turnc *bob, *again;

	assert_int_equal(turnc_local_addr(t, &local), 0);
	turnc_close(t);
	bob = cl_at(&local, "bob", "pw");
	assert_stun_err(turnc_refresh(bob, 600, NULL), bob, 441);
	turnc_close(bob);
	again = cl_at(&local, "alice", "secret");
	release(again);
}

/* ---- CreatePermission --------------------------------------------------------------- */

static void test_permission_policy(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage ok = A("127.0.0.1:5000"), lo2 = A("127.0.0.2:5000"),
				mapped = A("[::ffff:127.0.0.2]:5000"), priv = A("10.1.2.3:5000"),
				v6 = A("[::1]:5000");

	assert_int_equal(turnc_create_permission(t, &ok, 1), 0);
	/* loopback, but not in allowed-peer-ip */
	assert_stun_err(turnc_create_permission(t, &lo2, 1), t, 403);
	/* the IPv4-mapped spelling of the same address */
	assert_stun_err(turnc_create_permission(t, &mapped, 1), t, 403);
	assert_stun_err(turnc_create_permission(t, &priv, 1), t, 403);
	/* IPv6 peer on an IPv4-only allocation */
	assert_stun_err(turnc_create_permission(t, &v6, 1), t, 443);
	release(t);
}

static void test_permission_max(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage p = A("127.0.0.1:5000");
	struct sockaddr_storage two[] = { A("127.0.1.3:5000"), A("127.0.1.200:5000") };

	assert_int_equal(turnc_create_permission(t, &p, 1), 0);
	for (int i = 1; i < MAX_PERMS - 1; i++) {
		char s[32];

		snprintf(s, sizeof(s), "127.0.1.%d:5000", i);
		p = A(s);
		assert_int_equal(turnc_create_permission(t, &p, 1), 0);
	}
	/* refreshing an existing one is not a new permission */
	assert_int_equal(turnc_create_permission(t, &p, 1), 0);
	/* two new ones, one place left: all or nothing, so the place stays */
	assert_stun_err(turnc_create_permission(t, two, 2), t, 508);
	assert_int_equal(turnc_create_permission(t, &two[1], 1), 0);
	assert_stun_err(turnc_create_permission(t, &two[0], 1), t, 508);
	release(t);
}

/* A permission lasts 300 s unless refreshed: then the peer's data is
 * dropped again. */
static void test_permission_expires(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage pa, got_peer;
	int p = peer_open("127.0.0.1", &pa);
	char buf[64];
	uint16_t ch;

	assert_int_equal(turnc_create_permission(t, &pa, 1), 0);
	pass(299);
	peer_send(p, &res.relayed[0], "in", 2);
	assert_int_equal(turnc_recv(t, 0, &got_peer, &ch, buf, sizeof(buf)), 2);
	pass(1);
	peer_send(p, &res.relayed[0], "late", 4);
	assert_int_equal(turnc_recv(t, 0, &got_peer, &ch, buf, sizeof(buf)), -ETIMEDOUT);
	release(t);
}

/* ---- ChannelBind -------------------------------------------------------------------- */

static void test_channel_rules(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage pa = A("127.0.0.1:5001"), pb = A("127.0.0.1:5002");

	assert_stun_err(turnc_channel_bind(t, 0x3FFF, &pa), t, 400);
	assert_stun_err(turnc_channel_bind(t, 0x8000, &pa), t, 400);
	assert_int_equal(turnc_channel_bind(t, 0x4000, &pa), 0);
	/* channel 0x4000 belongs to A */
	assert_stun_err(turnc_channel_bind(t, 0x4000, &pb), t, 400);
	/* A has channel 0x4000 */
	assert_stun_err(turnc_channel_bind(t, 0x4001, &pa), t, 400);
	/* the same pair again is a refresh */
	assert_int_equal(turnc_channel_bind(t, 0x4000, &pa), 0);
	/* B is free to take another number */
	assert_int_equal(turnc_channel_bind(t, 0x4001, &pb), 0);
	release(t);
}

/* ---- data ---------------------------------------------------------------------------- */

/* Binds a channel to a peer and relays one datagram each way: it must
 * arrive intact, from the relayed address / on the channel. */
static void channel_roundtrip(struct turnc *t, const struct turnc_alloc *res, const char *peer_ip,
			      uint16_t channel)
{
	struct sockaddr_storage pa, from, got_peer;
	int p = peer_open(peer_ip, &pa);
	static const char c2p[] = "client to peer over channel";
	static const char p2c[] = "peer to client over channel";
	char buf[256];
	uint16_t ch = 0;
	int n;

	assert_int_equal(turnc_channel_bind(t, channel, &pa), 0);
	assert_int_equal(turnc_send_channel(t, channel, c2p, sizeof(c2p)), 0);
	n = peer_recv(p, buf, sizeof(buf), &from);
	assert_int_equal(n, sizeof(c2p));
	assert_memory_equal(buf, c2p, sizeof(c2p));
	assert_true(addr_eq(&from, &res->relayed[0]));

	peer_send(p, &res->relayed[0], p2c, sizeof(p2c));
	n = turnc_recv(t, 0, &got_peer, &ch, buf, sizeof(buf));
	assert_int_equal(n, sizeof(p2c));
	assert_int_equal(ch, channel);
	assert_true(addr_eq(&got_peer, &pa));
	assert_memory_equal(buf, p2c, sizeof(p2c));
}

static void test_data_channel(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);

	channel_roundtrip(t, &res, "127.0.0.1", 0x4001);
	release(t);
}

/* The same over an IPv6 relay, client on the IPv6 listener. */
static void test_data_ipv6(void **state)
{
	struct turnc_alloc_opts o = { .family = STUN_FAMILY_IPV6 };
	struct turnc_alloc res;
	struct turnc *t = cl(AF_INET6, "alice", "secret");

	assert_int_equal(turnc_allocate(t, &o, &res), 0);
	assert_relay_in_range(&res.relayed[0], "::1");
	channel_roundtrip(t, &res, "::1", 0x4FFF);
	release(t);
}

/* The permission is per IP: another port of a permitted IP without a
 * channel reaches the client as a Data indication naming it. */
static void test_data_indication(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage pa, pq, got_peer;
	int q;
	static const char msg[] = "no channel, permission only";
	char buf[256];
	uint16_t ch = 0xFFFF;
	int n;

	peer_open("127.0.0.1", &pa);
	q = peer_open("127.0.0.1", &pq);
	assert_int_equal(turnc_channel_bind(t, 0x4002, &pa), 0);
	peer_send(q, &res.relayed[0], msg, sizeof(msg));
	n = turnc_recv(t, 0, &got_peer, &ch, buf, sizeof(buf));
	assert_int_equal(n, sizeof(msg));
	assert_int_equal(ch, 0);
	assert_true(addr_eq(&got_peer, &pq));
	assert_memory_equal(buf, msg, sizeof(msg));
	release(t);
}

/* Without a permission nothing passes either way; Send indications pass
 * once it is installed. */
static void test_permission_gates_data(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage pa, from, got_peer;
	int p = peer_open("127.0.0.1", &pa);
	static const char in[] = "unpermitted peer", out[] = "send indication";
	char buf[256];
	uint16_t ch;
	int n;

	peer_send(p, &res.relayed[0], in, sizeof(in));
	assert_int_equal(turnc_recv(t, 0, &got_peer, &ch, buf, sizeof(buf)), -ETIMEDOUT);
	assert_int_equal(turnc_send_indication(t, &pa, out, sizeof(out)), 0);
	assert_int_equal(peer_recv(p, buf, sizeof(buf), &from), -ETIMEDOUT);

	assert_int_equal(turnc_create_permission(t, &pa, 1), 0);
	assert_int_equal(turnc_send_indication(t, &pa, out, sizeof(out)), 0);
	n = peer_recv(p, buf, sizeof(buf), &from);
	assert_int_equal(n, sizeof(out));
	assert_memory_equal(buf, out, sizeof(out));
	assert_true(addr_eq(&from, &res.relayed[0]));
	release(t);
}

/* ---- Refresh ----------------------------------------------------------------------- */

static void test_refresh_zero(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	uint32_t granted = 1;

	assert_int_equal(W.relays_open, 1);
	assert_int_equal(turnc_refresh(t, 0, &granted), 0);
	assert_int_equal(granted, 0);
	assert_int_equal(W.relays_open, 0);
	assert_stun_err(turnc_refresh(t, 600, NULL), t, 437);
	turnc_close(t);
}

/* ---- malformed input ----------------------------------------------------------------- */

static size_t build_binding(uint8_t *buf, size_t cap, bool fingerprint)
{
	static uint8_t seq;
	uint8_t tid[STUN_TID_LEN] = "malformed";
	struct stun_builder b;

	tid[11] = seq++;
	stun_build_init(&b, buf, cap, STUN_BINDING, STUN_REQUEST, tid);
	stun_add_attr(&b, STUN_A_SOFTWARE, "conformance", 11);
	if (fingerprint)
		stun_add_fingerprint(&b);
	return stun_build_finish(&b);
}

/* Garbage, truncations, lying lengths: no answer, nothing relayed, each
 * counted as malformed; the allocation survives them all. */
static void test_malformed(void **state)
{
	struct turnc_alloc res;
	struct turnc *t = alloc_cl("alice", "secret", NULL, &res);
	struct sockaddr_storage pa, from, mapped;
	int p = peer_open("127.0.0.1", &pa);
	uint8_t msg[STUN_MAX_MSG], resp[STUN_MAX_MSG];
	static const uint8_t garbage[] = "\x00\x01\xff\xfe not a STUN message at all";
	/* Binding header claiming 8 bytes of attributes; SOFTWARE says 0xFFF0 */
	static const uint8_t huge_attr[] = {
		0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
		0x80, 0x22, 0xFF, 0xF0, 'x', 'x', 'x', 'x',
	};
	/* channel 0x4000 (bound below) claiming 1000 bytes, carrying 8 */
	static const uint8_t long_cd[] = { 0x40, 0x00, 0x03, 0xE8, 1, 2, 3, 4, 5, 6, 7, 8 };
	uint64_t before;
	uint16_t ch;
	size_t len;
	char buf[64];

	assert_int_equal(turnc_channel_bind(t, 0x4000, &pa), 0);
	before = turn_stats(W.turn)->malformed;
	assert_int_equal(turnc_send_raw(t, garbage, sizeof(garbage)), 0);
	assert_int_equal(turnc_send_raw(t, msg, 0), 0);
	len = build_binding(msg, sizeof(msg), false);
	assert_int_equal(turnc_send_raw(t, msg, len - 4), 0);	/* truncated */
	assert_int_equal(turnc_send_raw(t, msg, 10), 0);		/* half a header */
	assert_int_equal(turnc_send_raw(t, huge_attr, sizeof(huge_attr)), 0);
	assert_int_equal(turnc_send_raw(t, long_cd, sizeof(long_cd)), 0);
	assert_int_equal(turn_stats(W.turn)->malformed, before + 6);
	/* no answer to any, and the bad ChannelData is not relayed in part */
	assert_int_equal(turnc_recv(t, 0, &from, &ch, buf, sizeof(buf)), -ETIMEDOUT);
	assert_int_equal(peer_recv(p, buf, sizeof(buf), &from), -ETIMEDOUT);

	/* a valid FINGERPRINT is answered, a wrong one is dropped */
	len = build_binding(msg, sizeof(msg), true);
	assert_true(turnc_raw(t, msg, len, resp, sizeof(resp)) > 0);
	len = build_binding(msg, sizeof(msg), true);
	msg[len - 1] ^= 0x01;
	assert_int_equal(turnc_raw(t, msg, len, resp, sizeof(resp)), -ETIMEDOUT);

	assert_int_equal(turnc_binding(t, &mapped), 0);
	/* and the allocation survived it all */
	assert_int_equal(turnc_send_channel(t, 0x4000, "ok", 2), 0);
	assert_int_equal(peer_recv(p, buf, sizeof(buf), &from), 2);
	release(t);
}

/* ---- the unauthenticated rate limit --------------------------------------------- */

/* rate 1/s, burst 3: of 10 bare Allocates from one source 3 get their 401;
 * a second later one more does; authenticated errors are not limited. */
static void test_unauth_limit(void **state)
{
	uint8_t req[28] = {
		0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 'l', 'i', 'm', 'i', 't', '-', 't', 'e',
		's', 't', '-', 0, 0x00, 0x19, 0x00, 0x04, IPPROTO_UDP, 0, 0, 0,
	};
	struct sockaddr_storage denied = A("127.0.0.2:9"), local;
	struct turnc *t = cl(AF_INET, "alice", "secret");
	struct turnc_alloc res;
	struct inbox *box;
	uint8_t buf[512];
	int got = 0;

	assert_int_equal(turnc_local_addr(t, &local), 0);
	box = inbox_of(W.clients, W.nclients, &local);
	for (int i = 0; i < 10; i++) {
		req[19] = (uint8_t)i;	/* a new transaction each */
		assert_int_equal(turnc_send_raw(t, req, sizeof(req)), 0);
	}
	while (take(box, buf, sizeof(buf), NULL) > 0)
		got++;
	assert_int_equal(got, 3);
	assert_int_equal(turn_stats(W.turn)->unauth_limited, 7);
	pass(1);
	/* The bucket refilled by one: the client gets its 401, then is
	 * authenticated. */
	assert_int_equal(turnc_allocate(t, NULL, &res), 0);
	for (int i = 0; i < 5; i++)
		assert_stun_err(turnc_create_permission(t, &denied, 1), t, 403);
	assert_int_equal(turn_stats(W.turn)->unauth_limited, 7);
	release(t);
}

/* ---- main ------------------------------------------------------------------------------ */

/* Each test gets a fresh server (setup/teardown per test): none depends on
 * another's leftovers, and teardown checks every relay was closed. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_binding, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_auth_challenge, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_unauth_size, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_auth_wrong_password, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_auth_unknown_user, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_rest_valid, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_auth_sha256, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_rest_expired, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_rest_wrong_secret, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_stale_nonce, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_no_transport, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_tcp, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_twice, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_retransmit, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_ipv6, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_dual, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_reservation, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_reservation_lapses, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_lifetime_clamped, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_expires, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_attribute, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_user_quota, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_reservation_quota, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_no_allocation, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_credentials, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_permission_policy, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_permission_max, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_permission_expires, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_channel_rules, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_data_channel, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_data_ipv6, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_data_indication, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_permission_gates_data, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_zero, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup_main, teardown),
	};
	const struct CMUnitTest quota[] = {
		cmocka_unit_test_setup_teardown(test_total_quota, setup_quota, teardown),
		cmocka_unit_test_setup_teardown(test_no_software, setup_nosoft, teardown),
		cmocka_unit_test_setup_teardown(test_total_quota_alternate, setup_quota_alt,
						teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup_quota_alt, teardown),
		cmocka_unit_test_setup_teardown(test_drain_no_alternate, setup_main, teardown),
		cmocka_unit_test_setup_teardown(test_check_credentials, setup_main, teardown),
	};
	const struct CMUnitTest limit[] = {
		cmocka_unit_test_setup_teardown(test_unauth_limit, setup_limit, teardown),
	};
	int failed = cmocka_run_group_tests_name("main", tests, NULL, NULL);

	failed += cmocka_run_group_tests_name("quota", quota, NULL, NULL);
	failed += cmocka_run_group_tests_name("limit", limit, NULL, NULL);
	return failed ? 1 : 0;
}
