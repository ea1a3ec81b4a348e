#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "common/addr.h"
#include "common/log.h"
#include "turn/auth.h"
#include "turn/hostaddr.h"
#include "turn/policy.h"
#include "turn/ratelimit.h"
#include "turn/turn.h"

#define SOFTWARE "xturn"
#define RESERVATION_LIFETIME 30		/* seconds a reserved port is held (RFC 8656 §7.2) */
#define MAX_RESERVATIONS 1024
#define EVEN_PORT_TRIES 16
#define CHECK_ALLOCS 2			/* allocations a check credential may hold */

struct reservation {
	uint8_t token[8];
	int fd;
	struct sockaddr_storage addr, adv;
	time_t expires;
	char username[STUN_MAX_USERNAME];	/* whose quota it counts against */
};

/* What the worker threads' servers share: quota counts, and ports held by
 * EVEN-PORT reservations (the token may come back on another 5-tuple, which
 * SO_REUSEPORT may hand to another worker). */
struct turn_shared {
	pthread_mutex_t lock;		/* for resv */
	struct reservation resv[MAX_RESERVATIONS];
	unsigned nresv;
	struct alloc_quota *quota;
};

struct turn_server {
	struct turn_cfg cfg;
	struct auth *auth;
	struct policy *policy;
	struct turn_io io;
	struct alloc_table *allocs;
	struct ratelimit *unauth;	/* NULL: no limit */
	struct turn_shared *shared;
	bool own_shared;
	bool revalidate;		/* the policy changed: revoke at the next tick */
	uint64_t host_gen;		/* hostaddr generation last revalidated against */
	uint8_t tid_seed[4];		/* server-originated transaction ids */
	uint64_t tid_counter;
	bool draining;
	unsigned alt_next;		/* round robin over the alternates */
	struct turn_stats stats;
};

/* A request being answered: everything the handlers need. */
struct req {
	struct turn_server *s;
	const struct stun_msg *m;
	int listener_fd;
	const struct sockaddr_storage *client;
	const struct sockaddr_storage *listener;
	bool stream;			/* over TCP/TLS: listener_fd is the connection */
	uint8_t transport;		/* enum alloc_transport */
	time_t now;			/* monotonic: lifetimes */
	time_t wall;			/* Unix time: REST expiry and nonces */
	struct auth_result auth;	/* valid when authenticated */
	bool authenticated;
	struct allocation *alloc;	/* the 5-tuple's allocation, if any */
};

struct reply {
	struct stun_builder b;
	uint8_t buf[STUN_MAX_MSG];
};

struct turn_shared *turn_shared_new(void)
{
	struct turn_shared *sh = calloc(1, sizeof(*sh));

	if (!sh)
		return NULL;
	sh->quota = alloc_quota_new();
	if (!sh->quota) {
		free(sh);
		return NULL;
	}
	pthread_mutex_init(&sh->lock, NULL);
	return sh;
}

void turn_shared_free(struct turn_shared *sh)
{
	if (!sh)
		return;
	alloc_quota_free(sh->quota);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

struct turn_server *turn_new(const struct turn_cfg *cfg, struct auth *auth, struct policy *pol,
			     const struct turn_io *io, const struct alloc_hooks *hooks,
			     struct turn_shared *shared)
{
	struct turn_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->auth = auth;
	s->policy = pol;
	s->io = *io;
	s->host_gen = cfg->host ? hostaddr_generation(cfg->host) : 0;
	s->own_shared = !shared;
	s->shared = shared ? shared : turn_shared_new();
	s->allocs = s->shared ? alloc_table_new(&cfg->limits, hooks, s->shared->quota) : NULL;
	s->unauth = ratelimit_new(cfg->unauth_rate, cfg->unauth_burst);
	if (!s->allocs || (cfg->unauth_rate && !s->unauth) ||
	    s->io.random(s->io.ctx, s->tid_seed, sizeof(s->tid_seed))) {
		ratelimit_free(s->unauth);
		alloc_table_free(s->allocs);
		if (s->own_shared)
			turn_shared_free(s->shared);
		free(s);
		return NULL;
	}
	return s;
}

void turn_free(struct turn_server *s)
{
	struct turn_shared *sh;

	if (!s)
		return;
	sh = s->shared;
	pthread_mutex_lock(&sh->lock);
	for (unsigned i = 0; i < sh->nresv; i++) {
		alloc_quota_release(s->allocs, sh->resv[i].username);
		s->io.relay_close(s->io.ctx, sh->resv[i].fd);
	}
	sh->nresv = 0;
	pthread_mutex_unlock(&sh->lock);
	alloc_table_free(s->allocs);
	ratelimit_free(s->unauth);
	if (s->own_shared)
		turn_shared_free(s->shared);
	auth_free(s->auth);
	policy_free(s->policy);
	free(s);
}

void turn_replace_auth(struct turn_server *s, struct auth *auth, struct policy *pol)
{
	auth_free(s->auth);
	policy_free(s->policy);
	s->auth = auth;
	s->policy = pol;
	s->revalidate = true;
}

const struct turn_stats *turn_stats(const struct turn_server *s)
{
	return &s->stats;
}

struct alloc_table *turn_allocs(struct turn_server *s)
{
	return s->allocs;
}

/* ---- responses ----------------------------------------------------------- */

static void reply_init(struct reply *r, const struct req *q, enum stun_class cls)
{
	stun_build_init(&r->b, r->buf, sizeof(r->buf), q->m->method, cls, q->m->tid);
}

/* Signs (when the request was authenticated), adds FINGERPRINT when the
 * request had one, sends, and caches the answer for retransmissions. */
static void reply_send(struct req *q, struct reply *r, struct allocation *cache_in)
{
	struct turn_server *s = q->s;
	struct iovec iov;
	size_t len;

	if (s->cfg.no_software)
		;
	else if (s->cfg.software && s->cfg.software[0])
		stun_add_attr(&r->b, STUN_A_SOFTWARE, s->cfg.software,
			      (uint16_t)strlen(s->cfg.software));
	else if (q->authenticated)
		stun_add_attr(&r->b, STUN_A_SOFTWARE, SOFTWARE, sizeof(SOFTWARE) - 1);
	if (q->authenticated) {
		if (q->auth.sha256)
			stun_add_integrity_sha256(&r->b, q->auth.key, q->auth.keylen);
		else
			stun_add_integrity(&r->b, q->auth.key, q->auth.keylen);
	}
	if (stun_find(q->m, STUN_A_FINGERPRINT))
		stun_add_fingerprint(&r->b);
	len = stun_build_finish(&r->b);
	if (!len) {
		log_warn("response to method 0x%03x did not fit", q->m->method);
		return;
	}
	if (cache_in)
		alloc_tx_store(cache_in, q->m->tid, r->buf, len);
	iov.iov_base = r->buf;
	iov.iov_len = len;
	s->io.send_client(s->io.ctx, q->listener_fd, q->listener, q->client, &iov, 1);
}

static void send_error(struct req *q, int code)
{
	struct reply r;

	/* An answer to anyone who claims a source: a spoofer's reflection,
	 * held to a rate per source. (TCP and TLS sources cannot be forged.) */
	if (!q->authenticated && !q->stream && !ratelimit_take(q->s->unauth, q->client, q->now)) {
		q->s->stats.unauth_limited++;
		return;
	}
	q->s->stats.error_responses++;
	if (log_level >= LOG_DEBUG && code != 401) {
		char c[ADDR_STRLEN];
		log_debug("method 0x%03x from %s: error %d", q->m->method,
			  addr_str(q->client, true, c, sizeof(c)), code);
	}
	reply_init(&r, q, STUN_ERROR);
	stun_add_error(&r.b, code, NULL);
	if (code == 401 || code == 438)
		auth_add_challenge(q->s->auth, &r.b, q->client, q->wall);
	if (code == 420)
		stun_add_unknown_attrs(&r.b, q->m->unknown, q->m->nunknown);
	/* A 401/438 is never signed: the client's credentials did not pass. */
	if (code == 401 || code == 438)
		q->authenticated = false;
	reply_send(q, &r, q->authenticated ? q->alloc : NULL);
}

/* 300 Try Alternate naming the next alternate server for the client's
 * transport (RFC 8489 §10), or 508 when there is none. Signed: the client
 * must not follow a redirect anyone could forge. */
static void send_alternate(struct req *q)
{
	struct turn_server *s = q->s;
	bool tls = q->transport == ALLOC_TLS;
	const struct sockaddr_storage *alt = tls ? s->cfg.tls_alternates : s->cfg.alternates;
	unsigned n = tls ? s->cfg.ntls_alternates : s->cfg.nalternates;
	struct reply r;

	if (!n) {
		send_error(q, 508);
		return;
	}
	s->stats.error_responses++;
	reply_init(&r, q, STUN_ERROR);
	stun_add_error(&r.b, 300, NULL);
	stun_add_addr(&r.b, STUN_A_ALTERNATE_SERVER, &alt[s->alt_next++ % n]);
	reply_send(q, &r, NULL);
}

void turn_set_draining(struct turn_server *s, bool on)
{
	s->draining = on;
}

/* ---- helpers --------------------------------------------------------------- */

static bool alloc_has_family(struct allocation *a, int family)
{
	return alloc_relay_for(a, family) != NULL;
}

/* May a client relay to peer? transport: to its IP and port (a channel, a
 * Send), else to its IP (a permission). The policy decides, then this host:
 * its own addresses are open only to an allowed-peer-ip rule of exactly
 * that IP, and our relay IPs to a permission and to our live relays (relay
 * to relay). A range that merely contains a host address opens nothing. */
static bool peer_ok(struct turn_server *s, const struct sockaddr_storage *peer, bool transport)
{
	struct hostaddr *h = s->cfg.host;

	if (!(transport ? policy_transport_allowed(s->policy, peer) :
			  policy_peer_allowed(s->policy, peer)))
		return false;
	if (!h || !hostaddr_is_local(h, peer) || policy_exact_allowed(s->policy, peer, !transport))
		return true;
	return transport ? hostaddr_is_relay(h, peer) : hostaddr_is_relay_ip(h, peer);
}

/* What a check credential may reach: our own relayed addresses only (the
 * browser's call is relay to relay), so it is useless to an abuser. */
static bool check_peer_ok(struct turn_server *s, const struct sockaddr_storage *peer,
			  bool transport)
{
	struct hostaddr *h = s->cfg.host;

	return h && (transport ? hostaddr_is_relay(h, peer) : hostaddr_is_relay_ip(h, peer));
}

/* What a datagram to a permitted peer still needs checking for, the rest
 * having been checked when its permission or channel was made (and again
 * whenever the policy or this host's addresses change): a port of our relay
 * IP is open only while a relay of ours holds it. A lock-free bit for
 * peers on a relay IP, nothing for others. */
static bool relay_port_ok(struct turn_server *s, const struct sockaddr_storage *peer)
{
	struct hostaddr *h = s->cfg.host;

	return !h || !hostaddr_is_relay_ip(h, peer) || hostaddr_is_relay(h, peer) ||
	       peer_ok(s, peer, true);
}

/* Decodes an XOR-PEER-ADDRESS and applies the family and peer checks. */
static int check_peer(struct req *q, const struct stun_attr *at, struct sockaddr_storage *peer,
		      bool transport)
{
	char buf[ADDR_STRLEN];

	if (stun_attr_xor_addr(q->m, at, peer))
		return 400;
	addr_canon(peer);
	if (!alloc_has_family(q->alloc, peer->ss_family))
		return 443;
	if (!peer_ok(q->s, peer, transport) ||
	    (q->alloc->check && !check_peer_ok(q->s, peer, transport))) {
		q->s->stats.peer_denied++;
		log_debug("peer %s denied for %s", addr_str(peer, transport, buf, sizeof(buf)),
			  q->alloc->username);
		return 403;
	}
	return 0;
}

static uint32_t requested_lifetime(struct req *q, bool *present)
{
	uint32_t lt;

	*present = stun_attr_u32(q->m, STUN_A_LIFETIME, &lt) == 0;
	return *present ? lt : q->s->cfg.default_lifetime;
}

/* RFC 8656 §7.2: the client may ask for less or more than the default;
 * the server grants at most max-allocate-lifetime. */
static uint32_t grant_lifetime(struct turn_server *s, uint32_t requested)
{
	if (requested > s->cfg.max_lifetime)
		return s->cfg.max_lifetime;
	if (requested < s->cfg.default_lifetime)
		return s->cfg.default_lifetime;
	return requested;
}

/* A check credential's allocation lives no longer than the credential
 * (its username's expiry, which auth has checked is ahead). */
static uint32_t check_lifetime(const struct req *q, uint32_t lt)
{
	unsigned long long exp = strtoull(q->auth.username, NULL, 10);
	unsigned long long wall = (unsigned long long)q->wall;
	unsigned long long left = exp > wall ? exp - wall : 1;

	return left < lt ? (uint32_t)left : lt;
}


/* ---- Allocate ---------------------------------------------------------------- */

/* Takes the reservation of a token out of the shared store: true and *out
 * filled if there was one. */
static bool resv_take(struct turn_shared *sh, const uint8_t *token, struct reservation *out)
{
	bool found = false;

	pthread_mutex_lock(&sh->lock);
	for (unsigned i = 0; i < sh->nresv; i++) {
		if (!memcmp(sh->resv[i].token, token, 8)) {
			*out = sh->resv[i];
			sh->resv[i] = sh->resv[--sh->nresv];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return found;
}

static bool resv_put(struct turn_shared *sh, const struct reservation *r)
{
	bool ok;

	pthread_mutex_lock(&sh->lock);
	ok = sh->nresv < MAX_RESERVATIONS;
	if (ok)
		sh->resv[sh->nresv++] = *r;
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

/* Opens the relay for family; with even_port and reserve, also opens the
 * next port into *rv (its token drawn; the caller stores it once the
 * allocation stands). */
static int open_relay(struct req *q, int family, bool even, bool reserve, bool df,
		      struct relay *out, struct reservation *rv, bool *reserved)
{
	struct turn_server *s = q->s;

	*reserved = false;
	for (int tries = 0; tries < EVEN_PORT_TRIES; tries++) {
		int fd = s->io.relay_open(s->io.ctx, family, NULL, even, df, &out->addr, &out->adv);
		if (fd < 0)
			return fd;
		out->fd = fd;
		if (!reserve)
			return 0;
		struct sockaddr_storage next = out->addr;	/* same IP, port + 1 */

		addr_set_port(&next, (uint16_t)(addr_port(&out->addr) + 1));
		int rfd = s->io.relay_open(s->io.ctx, family, &next, false, df, &rv->addr, &rv->adv);
		if (rfd >= 0) {
			rv->fd = rfd;
			rv->expires = q->now + RESERVATION_LIFETIME;
			snprintf(rv->username, sizeof(rv->username), "%s", q->auth.username);
			if (s->io.random(s->io.ctx, rv->token, 8)) {
				s->io.relay_close(s->io.ctx, rfd);
				s->io.relay_close(s->io.ctx, fd);
				return -ENOSPC;
			}
			*reserved = true;
			return 0;
		}
		/* port+1 taken: try another even port */
		s->io.relay_close(s->io.ctx, fd);
	}
	return -EADDRINUSE;
}

static int relay_error_code(int err)
{
	return err == -EAFNOSUPPORT ? 440 : 508;
}

static void put_address_error(struct stun_builder *b, int family, int code)
{
	uint8_t v[4 + 32];
	const char *reason = stun_error_reason(code);
	size_t rl = strlen(reason);

	if (rl > 32)
		rl = 32;
	v[0] = family == AF_INET ? STUN_FAMILY_IPV4 : STUN_FAMILY_IPV6;
	v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, rl);
	stun_add_attr(b, STUN_A_ADDRESS_ERROR_CODE, v, (uint16_t)(4 + rl));
}

static void handle_allocate(struct req *q)
{
	struct turn_server *s = q->s;
	const struct stun_attr *at;
	const struct stun_attr *raf = stun_find(q->m, STUN_A_REQUESTED_ADDRESS_FAMILY);
	const struct stun_attr *aaf = stun_find(q->m, STUN_A_ADDITIONAL_ADDRESS_FAMILY);
	const struct stun_attr *even = stun_find(q->m, STUN_A_EVEN_PORT);
	const struct stun_attr *token = stun_find(q->m, STUN_A_RESERVATION_TOKEN);
	bool df = stun_find(q->m, STUN_A_DONT_FRAGMENT) != NULL;
	int families[2] = { AF_INET, 0 };
	struct reservation rv, taken;
	bool reserved = false, have_token = false, lt_present;
	int dual_error = 0, err;
	struct allocation *a;
	struct reply r;

	if (q->alloc) {
		send_error(q, 437);	/* same 5-tuple, another transaction */
		return;
	}
	if (s->draining) {
		send_alternate(q);
		return;
	}
	at = stun_find(q->m, STUN_A_REQUESTED_TRANSPORT);
	if (!at || at->len != 4) {
		send_error(q, 400);
		return;
	}
	if (stun_attr_val(q->m, at)[0] != IPPROTO_UDP) {
		send_error(q, 442);
		return;
	}
	if ((token && even) || (raf && aaf) || (token && raf) || (token && aaf)) {
		send_error(q, 400);
		return;
	}
	if (raf) {
		uint8_t f = raf->len == 4 ? stun_attr_val(q->m, raf)[0] : 0;
		if (f == STUN_FAMILY_IPV6)
			families[0] = AF_INET6;
		else if (f != STUN_FAMILY_IPV4) {
			send_error(q, 440);
			return;
		}
	}
	if (aaf) {
		if (aaf->len != 4 || stun_attr_val(q->m, aaf)[0] != STUN_FAMILY_IPV6) {
			send_error(q, 400);
			return;
		}
		families[1] = AF_INET6;
	}
	if (even && even->len != 1) {
		send_error(q, 400);
		return;
	}
	/* A reservation counts against its user's quota until it is taken:
	 * given back first, so it makes room for the allocation it becomes. */
	if (token) {
		if (token->len != 8 || !resv_take(s->shared, stun_attr_val(q->m, token), &taken)) {
			send_error(q, 508);
			return;
		}
		alloc_quota_release(s->allocs, taken.username);
		have_token = true;
	}
	err = alloc_quota_check(s->allocs, q->auth.username);
	if (!err && q->auth.check && alloc_user_count(s->allocs, q->auth.username) >= CHECK_ALLOCS)
		err = -EDQUOT;
	a = err ? NULL : alloc_new(q->auth.username);
	if (!a) {
		if (have_token)
			s->io.relay_close(s->io.ctx, taken.fd);
		if (err == -ENOSPC)
			send_alternate(q);	/* total-quota: another server may have room */
		else
			send_error(q, err == -EDQUOT ? 486 : 508);
		return;
	}
	a->client = *q->client;
	a->transport = q->transport;
	a->created = q->now;
	a->created_wall = q->wall;
	if (s->io.random(s->io.ctx, &a->id, sizeof(a->id)))
		a->id = ++s->tid_counter;	/* unique within this server still */
	a->listener = *q->listener;
	a->listener_fd = q->listener_fd;
	a->stream = q->stream;
	memcpy(a->key, q->auth.key, q->auth.keylen);
	a->keylen = q->auth.keylen;
	memcpy(a->alloc_tid, q->m->tid, STUN_TID_LEN);

	if (have_token) {
		a->relays[0].fd = taken.fd;
		a->relays[0].addr = taken.addr;
		a->relays[0].adv = taken.adv;
		a->nrelays = 1;
	} else {
		bool want_reserve = even && (stun_attr_val(q->m, even)[0] & 0x80);
		err = open_relay(q, families[0], even != NULL, want_reserve, df, &a->relays[0],
				 &rv, &reserved);
		if (err) {
			free(a);
			send_error(q, relay_error_code(err));
			return;
		}
		a->nrelays = 1;
		if (families[1]) {
			bool unused;
			err = open_relay(q, families[1], false, false, df, &a->relays[1], NULL,
					 &unused);
			if (err)
				dual_error = relay_error_code(err);
			else
				a->nrelays = 2;
		}
	}
	a->check = q->auth.check;
	a->expires = q->now + grant_lifetime(s, requested_lifetime(q, &lt_present));
	if (a->check)
		a->expires = q->now + check_lifetime(q, (uint32_t)(a->expires - q->now));
	err = alloc_insert(s->allocs, a);
	if (err) {
		for (unsigned i = 0; i < a->nrelays; i++)
			s->io.relay_close(s->io.ctx, a->relays[i].fd);
		if (reserved)
			s->io.relay_close(s->io.ctx, rv.fd);
		free(a);
		send_error(q, err == -EDQUOT ? 486 : 508);
		return;
	}
	/* The reservation is a second allocation's worth of quota; without
	 * room for it (or in the store) the request fails whole. */
	if (reserved) {
		err = alloc_quota_hold(s->allocs, rv.username);
		if (!err && !resv_put(s->shared, &rv)) {
			alloc_quota_release(s->allocs, rv.username);
			err = -ENOSPC;
		}
		if (err) {
			s->io.relay_close(s->io.ctx, rv.fd);
			alloc_delete(s->allocs, a, ALLOC_END_DELETED);
			send_error(q, err == -EDQUOT ? 486 : 508);
			return;
		}
	}
	s->stats.allocations_created++;
	q->alloc = a;

	reply_init(&r, q, STUN_SUCCESS);
	for (unsigned i = 0; i < a->nrelays; i++)
		stun_add_xor_addr(&r.b, STUN_A_XOR_RELAYED_ADDRESS, &a->relays[i].adv);
	if (dual_error)
		put_address_error(&r.b, AF_INET6, dual_error);
	stun_add_u32(&r.b, STUN_A_LIFETIME, (uint32_t)(a->expires - q->now));
	if (reserved)
		stun_add_attr(&r.b, STUN_A_RESERVATION_TOKEN, rv.token, 8);
	stun_add_xor_addr(&r.b, STUN_A_XOR_MAPPED_ADDRESS, q->client);
	reply_send(q, &r, a);
	if (log_level >= LOG_DEBUG) {
		char c[ADDR_STRLEN], rl[ADDR_STRLEN];
		log_debug("allocation %s -> %s for %s, %lds", addr_str(q->client, true, c, sizeof(c)),
			  addr_str(&a->relays[0].addr, true, rl, sizeof(rl)), a->username,
			  (long)(a->expires - q->now));
	}
}

/* ---- Refresh, CreatePermission, ChannelBind --------------------------------- */

static void handle_refresh(struct req *q)
{
	const struct stun_attr *raf = stun_find(q->m, STUN_A_REQUESTED_ADDRESS_FAMILY);
	struct allocation *a = q->alloc;
	uint32_t lt;
	bool present;
	struct reply r;

	if (raf) {
		uint8_t f = raf->len == 4 ? stun_attr_val(q->m, raf)[0] : 0;
		int fam = f == STUN_FAMILY_IPV4 ? AF_INET : f == STUN_FAMILY_IPV6 ? AF_INET6 : 0;
		if (!fam || !alloc_has_family(a, fam)) {
			send_error(q, 443);
			return;
		}
	}
	lt = requested_lifetime(q, &present);
	reply_init(&r, q, STUN_SUCCESS);
	if (present && lt == 0) {
		stun_add_u32(&r.b, STUN_A_LIFETIME, 0);
		/* Answer first, then delete: the response is signed and its
		 * retransmissions get 437 (the allocation is gone), as in the RFC. */
		reply_send(q, &r, NULL);
		alloc_delete(q->s->allocs, a, ALLOC_END_DELETED);
		q->alloc = NULL;
		return;
	}
	lt = grant_lifetime(q->s, lt);
	if (a->check)
		lt = check_lifetime(q, lt);
	alloc_refresh(q->s->allocs, a, q->now + lt);
	stun_add_u32(&r.b, STUN_A_LIFETIME, lt);
	reply_send(q, &r, a);
}

static void handle_create_permission(struct req *q)
{
	struct sockaddr_storage peers[STUN_MAX_ATTRS];
	unsigned n = 0;
	struct reply r;

	/* All peers are checked before any is installed: all or nothing. */
	for (unsigned i = 0; i < q->m->nattrs; i++) {
		if (q->m->attrs[i].type != STUN_A_XOR_PEER_ADDRESS)
			continue;
		int code = check_peer(q, &q->m->attrs[i], &peers[n], false);
		if (code) {
			send_error(q, code);
			return;
		}
		n++;
	}
	if (!n) {
		send_error(q, 400);
		return;
	}
	if (alloc_perm_add_all(q->s->allocs, q->alloc, peers, n, q->now)) {
		send_error(q, 508);
		return;
	}
	reply_init(&r, q, STUN_SUCCESS);
	reply_send(q, &r, q->alloc);
}

static void handle_channel_bind(struct req *q)
{
	const struct stun_attr *cn = stun_find(q->m, STUN_A_CHANNEL_NUMBER);
	const struct stun_attr *pa = stun_find(q->m, STUN_A_XOR_PEER_ADDRESS);
	struct sockaddr_storage peer;
	uint32_t v;
	int code, err;
	struct reply r;

	if (!cn || !pa || stun_attr_u32(q->m, STUN_A_CHANNEL_NUMBER, &v)) {
		send_error(q, 400);
		return;
	}
	code = check_peer(q, pa, &peer, true);
	if (code) {
		send_error(q, code);
		return;
	}
	err = alloc_chan_bind(q->s->allocs, q->alloc, (uint16_t)(v >> 16), &peer, q->now);
	if (err) {
		send_error(q, err == -ENOSPC ? 508 : 400);
		return;
	}
	reply_init(&r, q, STUN_SUCCESS);
	reply_send(q, &r, q->alloc);
}

/* ---- dispatch ------------------------------------------------------------------ */

static void handle_binding(struct req *q)
{
	struct reply r;

	q->s->stats.binding++;
	reply_init(&r, q, STUN_SUCCESS);
	stun_add_xor_addr(&r.b, STUN_A_XOR_MAPPED_ADDRESS, q->client);
	reply_send(q, &r, NULL);
}

static void handle_request(struct req *q)
{
	struct turn_server *s = q->s;
	const struct tx_entry *tx;

	s->stats.requests++;
	if (q->m->method == STUN_BINDING) {
		if (q->m->nunknown)
			send_error(q, 420);
		else
			handle_binding(q);
		return;
	}
	if (q->m->method != TURN_ALLOCATE && q->m->method != TURN_REFRESH &&
	    q->m->method != TURN_CREATE_PERMISSION && q->m->method != TURN_CHANNEL_BIND) {
		send_error(q, 400);
		return;
	}
	/* A retransmission gets the very answer the first copy got. */
	if (q->alloc && (tx = alloc_tx_find(q->alloc, q->m->tid))) {
		struct iovec iov = { .iov_base = (void *)tx->buf, .iov_len = tx->len };
		s->io.send_client(s->io.ctx, q->listener_fd, q->listener, q->client, &iov, 1);
		return;
	}
	auth_check(s->auth, q->m, q->client, q->wall, &q->auth);
	if (q->auth.verdict != AUTH_OK) {
		if (q->auth.verdict == AUTH_CHALLENGE)
			s->stats.auth_challenges++;
		else
			s->stats.auth_failures++;
		if (q->auth.verdict != AUTH_CHALLENGE && log_level >= LOG_DEBUG) {
			char c[ADDR_STRLEN];
			log_debug("auth %d from %s: %s", q->auth.error_code,
				  addr_str(q->client, true, c, sizeof(c)), q->auth.why);
		}
		send_error(q, q->auth.error_code);
		return;
	}
	q->authenticated = true;
	if (q->m->nunknown) {
		send_error(q, 420);
		return;
	}
	if (q->alloc && strcmp(q->alloc->username, q->auth.username)) {
		send_error(q, 441);
		return;
	}
	/* Adopted from a journal, which holds no keys: this request's. */
	if (q->alloc && !q->alloc->keylen) {
		memcpy(q->alloc->key, q->auth.key, q->auth.keylen);
		q->alloc->keylen = q->auth.keylen;
	}
	if (q->m->method == TURN_ALLOCATE) {
		handle_allocate(q);
		return;
	}
	if (!q->alloc) {
		send_error(q, 437);
		return;
	}
	if (q->m->method == TURN_REFRESH)
		handle_refresh(q);
	else if (q->m->method == TURN_CREATE_PERMISSION)
		handle_create_permission(q);
	else
		handle_channel_bind(q);
}

/* Sends data from the allocation's relay to a peer the caller found
 * permitted. */
static void send_to_peer(struct turn_server *s, struct allocation *a,
			 const struct sockaddr_storage *peer, const uint8_t *data, size_t len)
{
	struct relay *r = alloc_relay_for(a, peer->ss_family);

	if (!r) {
		s->stats.dropped_no_perm++;
		return;
	}
	if (s->io.send_peer(s->io.ctx, r->fd, peer, data, len) >= 0) {
		s->stats.c2p_packets[a->transport]++;
		s->stats.c2p_bytes[a->transport] += len;
		a->c2p.packets++;
		a->c2p.bytes += len;
	}
}

static void handle_send(struct turn_server *s, struct allocation *a, const struct stun_msg *m,
			time_t now)
{
	const struct stun_attr *pa = stun_find(m, STUN_A_XOR_PEER_ADDRESS);
	const struct stun_attr *data = stun_find(m, STUN_A_DATA);
	struct sockaddr_storage peer;

	if (!a || !pa || !data || m->nunknown || stun_attr_xor_addr(m, pa, &peer)) {
		s->stats.dropped_no_alloc++;
		return;
	}
	addr_canon(&peer);
	if (!alloc_perm_ok(a, &peer, now)) {
		s->stats.dropped_no_perm++;
		return;
	}
	if (a->check && !check_peer_ok(s, &peer, true)) {
		s->stats.peer_denied++;
		return;
	}
	/* The permission is for the IP: with port rules, the port is judged
	 * here; without, only a relay IP's port can still be closed. */
	if (policy_has_ports(s->policy) ? !peer_ok(s, &peer, true) : !relay_port_ok(s, &peer)) {
		s->stats.peer_denied++;
		return;
	}
	send_to_peer(s, a, &peer, stun_attr_val(m, data), data->len);
}

static void on_client(struct turn_server *s, int listener_fd, const struct sockaddr_storage *client,
		      const struct sockaddr_storage *listener, uint8_t transport,
		      const uint8_t *buf, size_t len, time_t now)
{
	bool stream = transport != ALLOC_UDP;
	struct stun_msg m;
	struct req q;

	if (channeldata_looks_like(buf, len)) {
		uint16_t number, dlen;
		const uint8_t *data;
		struct allocation *a;
		struct chan *c;

		if (channeldata_parse(buf, len, &number, &data, &dlen)) {
			s->stats.malformed++;
			return;
		}
		a = alloc_find_tp(s->allocs, client, listener, stream);
		c = a ? alloc_chan_by_number(a, number, now) : NULL;
		if (!c) {
			s->stats.dropped_no_alloc++;
			return;
		}
		/* active: bound and permitted (alloc.c keeps it in step with
		 * the permission), so no permission search per packet. */
		if (!c->active) {
			s->stats.dropped_no_perm++;
			return;
		}
		/* Bound to a relay of ours that may have closed since: its port
		 * may now be anyone's. */
		if (!relay_port_ok(s, &c->peer)) {
			s->stats.peer_denied++;
			return;
		}
		send_to_peer(s, a, &c->peer, data, dlen);
		return;
	}
	if (stun_parse(&m, buf, len) != STUN_OK) {
		s->stats.malformed++;
		return;
	}
	if (m.cls == STUN_INDICATION) {
		if (m.method == TURN_SEND)
			handle_send(s, alloc_find_tp(s->allocs, client, listener, stream), &m, now);
		return;
	}
	if (m.cls != STUN_REQUEST)
		return;	/* responses to a server are dropped */
	memset(&q, 0, sizeof(q));
	q.s = s;
	q.m = &m;
	q.listener_fd = listener_fd;
	q.client = client;
	q.listener = listener;
	q.stream = stream;
	q.transport = transport;
	q.now = now;
	q.wall = s->io.wall_clock(s->io.ctx);
	q.alloc = alloc_find_tp(s->allocs, client, listener, stream);
	handle_request(&q);
}

void turn_on_client(struct turn_server *s, int listener_fd, const struct sockaddr_storage *client,
		    const struct sockaddr_storage *listener, const uint8_t *buf, size_t len,
		    time_t now)
{
	on_client(s, listener_fd, client, listener, ALLOC_UDP, buf, len, now);
}

void turn_on_stream(struct turn_server *s, int conn_fd, bool tls,
		    const struct sockaddr_storage *client, const struct sockaddr_storage *listener,
		    const uint8_t *msg, size_t len, time_t now)
{
	on_client(s, conn_fd, client, listener, tls ? ALLOC_TLS : ALLOC_TCP, msg, len, now);
}

void turn_on_peer(struct turn_server *s, struct allocation *a, const struct sockaddr_storage *peer,
		  uint8_t *buf, size_t len, time_t now)
{
	struct chan *c = alloc_chan_by_peer(a, peer, now);
	struct iovec iov;

	/* A usable channel implies the permission; otherwise search it. */
	if (!(c && c->active) && !alloc_perm_ok(a, peer, now)) {
		s->stats.dropped_no_perm++;
		return;
	}
	if (c && c->active) {
		channeldata_put_hdr(buf - CHANNELDATA_HDR_LEN, c->number, (uint16_t)len);
		iov.iov_base = buf - CHANNELDATA_HDR_LEN;
		iov.iov_len = len + CHANNELDATA_HDR_LEN;
	} else {
		/* No channel: a Data indication (RFC 8656 §10.3). */
		static __thread struct reply r;
		uint8_t tid[STUN_TID_LEN];
		uint64_t ctr = ++s->tid_counter;

		memcpy(tid, s->tid_seed, 4);
		memcpy(tid + 4, &ctr, 8);
		stun_build_init(&r.b, r.buf, sizeof(r.buf), TURN_DATA, STUN_INDICATION, tid);
		stun_add_xor_addr(&r.b, STUN_A_XOR_PEER_ADDRESS, peer);
		stun_add_attr(&r.b, STUN_A_DATA, buf, (uint16_t)len);
		iov.iov_len = stun_build_finish(&r.b);
		iov.iov_base = r.buf;
		if (!iov.iov_len) {
			s->stats.dropped_no_alloc++;
			return;
		}
	}
	if (s->io.send_client(s->io.ctx, a->listener_fd, &a->listener, &a->client, &iov, 1) >= 0) {
		s->stats.p2c_packets[a->transport]++;
		s->stats.p2c_bytes[a->transport] += len;
		a->p2c.packets++;
		a->p2c.bytes += len;
	}
}

static bool keep_alloc(void *ctx, const struct allocation *a)
{
	const struct turn_server *s = ctx;

	/* An adopted allocation's key comes back with its next request. */
	return !a->keylen || auth_key_valid(s->auth, a->username, a->key, a->keylen);
}

int turn_adopt(struct turn_server *s, const struct allocation *rec, int listener_fd, time_t now)
{
	struct allocation *a;
	int err = 0;

	if (rec->transport == ALLOC_TLS || rec->expires <= now)
		return -ESTALE;
	if (!(a = alloc_new(rec->username)))
		return -ENOMEM;
	a->client = rec->client;
	a->listener = rec->listener;
	a->listener_fd = listener_fd;
	memcpy(a->alloc_tid, rec->alloc_tid, STUN_TID_LEN);
	a->id = rec->id;
	a->created = rec->created;
	a->created_wall = rec->created_wall;
	a->transport = rec->transport;
	a->stream = rec->transport != ALLOC_UDP;	/* listener_fd: its connection */
	a->check = rec->check;
	a->c2p = rec->c2p;
	a->p2c = rec->p2c;
	a->expires = rec->expires;
	/* The relayed ports as they were: clients and peers know them. */
	for (unsigned i = 0; i < rec->nrelays && !err; i++) {
		const struct sockaddr_storage *want = &rec->relays[i].addr;
		int fd = s->io.relay_open(s->io.ctx, want->ss_family, want, false, false,
					  &a->relays[i].addr, &a->relays[i].adv);

		if (fd < 0) {
			err = fd;
		} else if (!addr_eq(&a->relays[i].addr, want)) {
			s->io.relay_close(s->io.ctx, fd);
			err = -EADDRNOTAVAIL;	/* relay-ip changed */
		} else {
			a->relays[i].fd = fd;
			a->nrelays++;
		}
	}
	if (!err && (err = alloc_insert(s->allocs, a)) == 0) {
		for (unsigned i = 0; i < rec->nperms; i++)
			if (rec->perms[i].expires > now)
				alloc_perm_restore(s->allocs, a, &rec->perms[i].peer,
						   rec->perms[i].expires);
		for (unsigned i = 0; i < rec->nchans; i++)
			if (rec->chans[i].expires > now)
				alloc_chan_restore(s->allocs, a, rec->chans[i].number,
						   &rec->chans[i].peer, rec->chans[i].expires);
		return 0;
	}
	for (unsigned i = 0; i < a->nrelays; i++)
		s->io.relay_close(s->io.ctx, a->relays[i].fd);
	free(a);
	return err;
}

static bool keep_perm(void *ctx, const struct allocation *a, const struct perm *p)
{
	return peer_ok(ctx, &p->peer, false);
}

static bool keep_chan(void *ctx, const struct allocation *a, const struct chan *c)
{
	return peer_ok(ctx, &c->peer, true);
}

void turn_tick(struct turn_server *s, time_t now)
{
	struct turn_shared *sh = s->shared;
	uint64_t gen = s->cfg.host ? hostaddr_generation(s->cfg.host) : 0;

	if (s->revalidate || gen != s->host_gen) {
		/* Users only change with a reload. */
		const struct alloc_keep keep = { s, s->revalidate ? keep_alloc : NULL, keep_perm,
						 keep_chan };

		s->revalidate = false;
		s->host_gen = gen;
		s->stats.revoked += alloc_revoke(s->allocs, &keep);
	}
	alloc_expire(s->allocs, now);
	pthread_mutex_lock(&sh->lock);
	for (unsigned i = 0; i < sh->nresv;) {
		if (sh->resv[i].expires <= now) {
			alloc_quota_release(s->allocs, sh->resv[i].username);
			s->io.relay_close(s->io.ctx, sh->resv[i].fd);
			sh->resv[i] = sh->resv[--sh->nresv];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&sh->lock);
}
