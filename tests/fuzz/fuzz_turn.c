/* libFuzzer target: the whole TURN server logic (turn.c, alloc.c, auth.c,
 * policy.c, stun.c) driven by a fuzzed sequence of events, with fake I/O.
 * The harness can sign requests itself, so the fuzzer reaches the states
 * behind authentication (allocations, permissions, channels, expiry)
 * instead of bouncing off 401s. Built and run by `make fuzz`.
 *
 * Input: a sequence of records, each one op byte then its operands:
 *   0 LEN(1) BYTES     raw datagram from client (slot = op bit 4)
 *   1 M(2) LEN(1) ATTR request of method M with raw attributes ATTR,
 *                      signed by the harness for user "u" (MI or MI-SHA256)
 *   2 LEN(1) BYTES     datagram from a peer to the newest relay
 *   3 N(1)             time passes N seconds (expiry)
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/addr.h"
#include "common/stun.h"
#include "turn/alloc.h"
#include "turn/auth.h"
#include "turn/policy.h"
#include "turn/turn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RELAYS 64

struct fake {
	int next_fd;
	unsigned sent;
	struct allocation *last;	/* newest allocation, for peer datagrams */
};

static struct fake fk;
static uint8_t key[STUN_MAX_KEY];
static size_t keylen;

static int f_relay_open(void *ctx, int family, const struct sockaddr_storage *at, bool even,
			bool df, struct sockaddr_storage *addr, struct sockaddr_storage *adv)
{
	if (fk.next_fd >= 1000 + MAX_RELAYS)
		return -EADDRINUSE;
	addr_parse(family == AF_INET ? "192.0.2.1" : "2001:db8::1", 0, addr);
	addr_set_port(addr, at ? addr_port(at) : (uint16_t)(50000 + fk.next_fd - 1000));
	*adv = *addr;
	return fk.next_fd++;
}

static void f_relay_close(void *ctx, int fd) {}

static int f_send_client(void *ctx, int fd, const struct sockaddr_storage *l,
			 const struct sockaddr_storage *c, const struct iovec *iov, int n)
{
	/* Touch every byte: ASan sees a response built past its buffer. */
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < iov[i].iov_len; j++)
			fk.sent += ((const uint8_t *)iov[i].iov_base)[j];
	return 0;
}

static int f_send_peer(void *ctx, int fd, const struct sockaddr_storage *p, const void *buf,
		       size_t len)
{
	for (size_t j = 0; j < len; j++)
		fk.sent += ((const uint8_t *)buf)[j];
	return 0;
}

/* Fixed bytes: an input replays the same way. */
static int f_random(void *ctx, void *buf, size_t len)
{
	memset(buf, 0x5a, len);
	return 0;
}

static time_t f_wall_clock(void *ctx)
{
	return 1700000000;
}

static void f_alloc_up(void *ctx, struct allocation *a) { fk.last = a; }
static void f_alloc_down(void *ctx, struct allocation *a)
{
	if (fk.last == a)
		fk.last = NULL;
}

/* A request the server will accept as coming from user "u". */
static size_t build_signed(const struct auth *auth, const struct sockaddr_storage *client,
			   uint16_t method, const uint8_t *attrs, size_t alen, bool sha256,
			   uint8_t *buf, size_t cap, time_t wall)
{
	/* A new transaction each time, or the server's retransmission cache
	 * would answer everything after the first request. */
	static uint32_t seq;
	uint8_t tid[STUN_TID_LEN] = "fuzz";
	struct stun_builder b;
	char nonce[128];
	size_t nl;

	seq++;
	memcpy(tid + 8, &seq, sizeof(seq));
	stun_build_init(&b, buf, cap, method & 0x0FFF, STUN_REQUEST, tid);
	/* The fuzzed attribute blob goes in raw, padded, then the real ones. */
	alen &= ~(size_t)3;
	if (b.len + alen + 200 > cap)
		return 0;
	memcpy(buf + b.len, attrs, alen);
	b.len += alen;
	stun_add_attr(&b, STUN_A_USERNAME, "u", 1);
	stun_add_attr(&b, STUN_A_REALM, "fuzz", 4);
	nl = auth_nonce_make(auth, client, wall, nonce, sizeof(nonce));
	stun_add_attr(&b, STUN_A_NONCE, nonce, (uint16_t)nl);
	if (sha256)
		stun_add_integrity_sha256(&b, key, keylen);
	else
		stun_add_integrity(&b, key, keylen);
	return stun_build_finish(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct turn_cfg cfg = {
		.limits = { .user_quota = 4, .total_quota = 8, .max_perms = 4, .max_channels = 4,
			    .permission_lifetime = 300, .channel_lifetime = 600 },
		.max_lifetime = 3600, .default_lifetime = 600,
	};
	struct turn_io io = { .relay_open = f_relay_open, .relay_close = f_relay_close,
			      .send_client = f_send_client, .send_peer = f_send_peer,
			      .random = f_random, .wall_clock = f_wall_clock };
	struct alloc_hooks hooks = { .alloc_up = f_alloc_up, .alloc_down = f_alloc_down };
	struct auth *auth = auth_new("fuzz", 600);
	struct policy *pol = policy_new();
	struct sockaddr_storage clients[2], listener, peer;
	struct turn_server *s;
	time_t now = 1000;
	size_t i = 0;

	memset(&fk, 0, sizeof(fk));
	fk.next_fd = 1000;
	auth_add_user(auth, "u", "p");
	keylen = stun_long_term_key(STUN_PWALG_MD5, "u", "fuzz", "p", key);
	policy_allow(pol, "203.0.113.0/24");
	s = turn_new(&cfg, auth, pol, &io, &hooks, NULL);
	addr_parse("198.51.100.7:4000", 0, &clients[0]);
	addr_parse("[2001:db8::7]:4000", 0, &clients[1]);
	addr_parse("192.0.2.1:3478", 0, &listener);
	addr_parse("203.0.113.9:7000", 0, &peer);

	while (i < size) {
		uint8_t op = data[i++];
		const struct sockaddr_storage *client = &clients[(op >> 4) & 1];
		uint8_t buf[STUN_MAX_MSG + 64];
		size_t len, n;

		switch (op & 3) {
		case 0:
			if (i >= size)
				break;
			len = data[i++];
			len = len > size - i ? size - i : len;
			/* A private copy: the server must not read past len. */
			memcpy(buf, data + i, len);
			turn_on_client(s, 3, client, &listener, buf, len, now);
			i += len;
			break;
		case 1:
			if (i + 3 > size)
				break;
			len = data[i + 2];
			len = len > size - i - 3 ? size - i - 3 : len;
			n = build_signed(auth, client, (uint16_t)(data[i] << 8 | data[i + 1]),
					 data + i + 3, len, op & 0x80, buf, sizeof(buf), f_wall_clock(NULL));
			if (n)
				turn_on_client(s, 3, client, &listener, buf, n, now);
			i += 3 + len;
			break;
		case 2:
			if (i >= size)
				break;
			len = data[i++];
			len = len > size - i ? size - i : len;
			if (fk.last) {
				/* TURN_PEER_HEADROOM writable bytes in front. */
				memcpy(buf + TURN_PEER_HEADROOM, data + i, len);
				turn_on_peer(s, fk.last, &peer, buf + TURN_PEER_HEADROOM, len, now);
			}
			i += len;
			break;
		case 3:
			if (i >= size)
				break;
			now += data[i++] * 4;
			turn_tick(s, now);
			break;
		}
	}
	turn_free(s);	/* frees auth and pol too */
	return 0;
}
