#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/addr.h"
#include "common/sock.h"
#include "client/turnclient.h"

#define TURNC_QLEN 8		/* data datagrams kept while a transaction waits */
#define TURNC_QSLOT 2048
#define TURNC_RBUF 65536	/* largest UDP datagram */
#define TURNC_WBUF 65536	/* TLS records waiting for a flush */
#define TURNC_AUTH_TRIES 3	/* first try, answer 401, answer one 438 */

struct turnc_chan {
	uint16_t channel;
	struct sockaddr_storage peer;
};

struct turnc {
	int fd;
	enum turnc_transport tp;
	struct turnc_pipe pipe;	/* pipe.send: no socket (turnc_open_pipe) */
	SSL_CTX *ctx;		/* TLS */
	SSL *ssl;
	struct sockaddr_storage server;
	char username[STUN_MAX_USERNAME];
	char password[256];
	/* From the last challenge (RFC 8489 allows up to 763 bytes each). */
	char realm[768];
	char nonce[768];
	uint8_t pwalgs[256];	/* PASSWORD-ALGORITHMS as offered, echoed back */
	uint16_t pwalgs_len;
	int pwalg;		/* STUN_PWALG_* used for the key */
	uint8_t key[STUN_MAX_KEY];
	size_t keylen;		/* 0 until a challenge was answered */
	bool sha256_pref;
	unsigned rto_ms, rc;
	struct turnc_error err;
	struct stun_msg resp;
	bool has_resp;
	struct turnc_chan chans[TURNC_MAX_CHANNELS];
	unsigned nchans;
	/* ChannelData / Data indications that arrived during a transaction. */
	struct {
		uint16_t len;
		uint8_t data[TURNC_QSLOT];
	} q[TURNC_QLEN];
	unsigned qhead, qcount;
	uint8_t rbuf[TURNC_RBUF];
	uint8_t resp_buf[STUN_MAX_MSG];
	/* TCP/TLS: bytes read but not yet a whole message */
	size_t slen;
	uint8_t sbuf[2 * STUN_FRAME_MAX];
};

/* 1 when fd is readable, 0 at the deadline, or -errno. */
static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		/* Polled once even at the deadline: a timeout of 0 asks what
		 * is there now. */
		int r = poll(&p, 1, left > 0 ? (int)left : 0);

		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0 && left <= 0)
			return 0;
	}
}

static int tls_connect(struct turnc *t)
{
	BIO *sock, *buf;

	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, t->fd) != 1)
		return -ENOMEM;
	if (SSL_connect(t->ssl) != 1) {
		ERR_clear_error();
		return -ECONNREFUSED;
	}
	/* Records are written through a buffer, flushed after each message
	 * (xmit) or each batch (turnc_send_batch): a batch's records, one a
	 * message as a media client writes them, then cost one write(). */
	sock = SSL_get_wbio(t->ssl);
	buf = BIO_new(BIO_f_buffer());
	if (!buf || BIO_set_write_buffer_size(buf, TURNC_WBUF) != 1 || !BIO_up_ref(sock)) {
		BIO_free(buf);
		return -ENOMEM;
	}
	SSL_set0_wbio(t->ssl, BIO_push(buf, sock));
	return 0;
}

/* A client with its credentials and the default timers, no socket yet. */
static int client_new(struct turnc **out, const char *username, const char *password)
{
	struct turnc *t;

	if (strlen(username) >= sizeof(t->username) || strlen(password) >= sizeof(t->password))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	strcpy(t->username, username);
	strcpy(t->password, password);
	t->rto_ms = TURNC_RTO_MS;
	t->rc = TURNC_RC;
	*out = t;
	return 0;
}

int turnc_open(struct turnc **out, const struct sockaddr_storage *server,
	       const struct sockaddr_storage *local, const char *username, const char *password)
{
	return turnc_open_tp(out, server, local, username, password, TURNC_UDP);
}

int turnc_open_tp(struct turnc **out, const struct sockaddr_storage *server,
		  const struct sockaddr_storage *local, const char *username,
		  const char *password, enum turnc_transport tp)
{
	struct turnc *t;
	int err;

	if (server->ss_family != AF_INET && server->ss_family != AF_INET6)
		return -EINVAL;
	err = client_new(&t, username, password);
	if (err)
		return err;
	t->server = *server;
	t->tp = tp;
	t->fd = socket(server->ss_family, (tp == TURNC_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
		       0);
	if (t->fd < 0) {
		err = -errno;
		free(t);
		return err;
	}
	/* Connected: the kernel filters out anything not from the server, and
	 * an ICMP port unreachable surfaces as ECONNREFUSED instead of a
	 * silent timeout. */
	if ((local && bind(t->fd, (const struct sockaddr *)local, addr_len(local)) < 0) ||
	    connect(t->fd, (const struct sockaddr *)server, addr_len(server)) < 0) {
		err = -errno;
		turnc_close(t);
		return err;
	}
	if (tp == TURNC_TLS && (err = tls_connect(t))) {
		turnc_close(t);
		return err;
	}
	*out = t;
	return 0;
}

int turnc_open_rest(struct turnc **out, const struct sockaddr_storage *server,
		    const struct sockaddr_storage *local, const char *name, const char *secret,
		    unsigned ttl_s)
{
	char user[STUN_MAX_USERNAME], pass[128];
	long long expiry = (long long)time(NULL) + ttl_s;
	int n, err;

	if (*name)
		n = snprintf(user, sizeof(user), "%lld:%s", expiry, name);
	else
		n = snprintf(user, sizeof(user), "%lld", expiry);
	if (n < 0 || (size_t)n >= sizeof(user))
		return -EINVAL;
	err = stun_rest_password(secret, user, pass, sizeof(pass));
	if (err < 0)
		return err;
	return turnc_open(out, server, local, user, pass);
}

int turnc_open_pipe(struct turnc **out, const struct turnc_pipe *pipe, const char *username,
		    const char *password)
{
	struct turnc *t;
	int err;

	if (!pipe->send || !pipe->recv)
		return -EINVAL;
	err = client_new(&t, username, password);
	if (err)
		return err;
	t->fd = -1;
	t->pipe = *pipe;
	t->rc = 1;	/* the server answered within send, or never will */
	t->tp = TURNC_UDP;
	*out = t;
	return 0;
}

void turnc_close(struct turnc *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

int turnc_fd(const struct turnc *t)
{
	return t->fd;
}

int turnc_local_addr(const struct turnc *t, struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);

	memset(out, 0, sizeof(*out));
	if (t->pipe.send) {
		*out = t->pipe.local;
		return 0;
	}
	return getsockname(t->fd, (struct sockaddr *)out, &len) < 0 ? -errno : 0;
}

void turnc_set_timers(struct turnc *t, unsigned rto_ms, unsigned rc)
{
	t->rto_ms = rto_ms ? rto_ms : 1;
	t->rc = rc ? rc : 1;
}

void turnc_set_sha256(struct turnc *t, bool on)
{
	t->sha256_pref = on;
}

const struct turnc_error *turnc_error(const struct turnc *t)
{
	return &t->err;
}

const struct stun_msg *turnc_response(const struct turnc *t)
{
	return t->has_resp ? &t->resp : NULL;
}

static void enqueue(struct turnc *t, const uint8_t *buf, size_t len)
{
	unsigned slot;

	if (len > TURNC_QSLOT || t->qcount == TURNC_QLEN)
		return;	/* best effort, like the network */
	slot = (t->qhead + t->qcount) % TURNC_QLEN;
	memcpy(t->q[slot].data, buf, len);
	t->q[slot].len = (uint16_t)len;
	t->qcount++;
}

static bool tid_matches(const uint8_t *buf, size_t len, const uint8_t *tid)
{
	if (len < STUN_HDR_LEN || !stun_looks_like(buf, len))
		return false;
	return !tid || !memcmp(buf + 8, tid, STUN_TID_LEN);
}

/* Reads what the stream has into sbuf after waiting until deadline: the
 * byte count, 0 at the deadline, or -errno (-ECONNRESET at EOF). */
static ssize_t stream_fill(struct turnc *t, int64_t deadline)
{
	for (;;) {
		size_t room = sizeof(t->sbuf) - t->slen;
		ssize_t n;
		int r;

		if (!t->ssl || !SSL_pending(t->ssl)) {
			r = wait_readable(t->fd, deadline);
			if (r <= 0)
				return r;
		}
		if (t->ssl) {
			r = SSL_read(t->ssl, t->sbuf + t->slen, (int)room);
			if (r <= 0) {
				ERR_clear_error();
				return -ECONNRESET;
			}
			return r;
		}
		n = recv(t->fd, t->sbuf + t->slen, room, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		return n ? n : -ECONNRESET;
	}
}

/* The next whole message of the stream into rbuf (ChannelData without its
 * padding): its length, 0 at the deadline, or -errno. */
static ssize_t stream_recv(struct turnc *t, int64_t deadline)
{
	for (;;) {
		ssize_t fl = stun_frame_len(t->sbuf, t->slen), n;

		if (fl < 0)
			return -EPROTO;
		if (fl && (size_t)fl <= t->slen) {
			memcpy(t->rbuf, t->sbuf, (size_t)fl);
			memmove(t->sbuf, t->sbuf + fl, t->slen - (size_t)fl);
			t->slen -= (size_t)fl;
			if (channeldata_looks_like(t->rbuf, (size_t)fl))
				fl = CHANNELDATA_HDR_LEN + (t->rbuf[2] << 8 | t->rbuf[3]);
			return fl;
		}
		n = stream_fill(t, deadline);
		if (n <= 0)
			return n;
		t->slen += (size_t)n;
	}
}

/* Writes all of buf into the stream (over TLS, into the record buffer). */
static int stream_write(struct turnc *t, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n;

		if (t->ssl) {
			int r = SSL_write(t->ssl, p, (int)len);
			if (r <= 0) {
				ERR_clear_error();
				return -EPIPE;
			}
			n = r;
		} else {
			n = send(t->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int tls_flush(struct turnc *t)
{
	if (t->ssl && BIO_flush(SSL_get_wbio(t->ssl)) != 1) {
		ERR_clear_error();
		return -EPIPE;
	}
	return 0;
}

/* Writes all of buf: one datagram, or into the stream. */
static int xmit(struct turnc *t, const void *buf, size_t len)
{
	int err;

	if (t->pipe.send)
		return t->pipe.send(t->pipe.ctx, buf, len);
	if (t->tp == TURNC_UDP)
		return send(t->fd, buf, len, 0) < 0 ? -errno : 0;
	err = stream_write(t, buf, len);
	return err ? err : tls_flush(t);
}

int turnc_send_batch(struct turnc *t, const struct iovec *iov, unsigned n)
{
	bool stream = !t->pipe.send && t->tp != TURNC_UDP;
	unsigned k;
	int err = 0;

	for (k = 0; k < n; k++) {
		err = stream ? stream_write(t, iov[k].iov_base, iov[k].iov_len)
			     : xmit(t, iov[k].iov_base, iov[k].iov_len);
		if (err)
			break;
	}
	/* What was buffered before a failure is not known to be sent. */
	if (stream && tls_flush(t))
		return -EPIPE;
	return k ? (int)k : err;
}

int turnc_send_raw(struct turnc *t, const void *buf, size_t len)
{
	return xmit(t, buf, len);
}

/* Waits until deadline for a datagram (a message over TCP/TLS); returns its
 * length, 0 at the deadline, or -errno. */
static ssize_t recv_until(struct turnc *t, int64_t deadline)
{
	if (t->pipe.send)
		return t->pipe.recv(t->pipe.ctx, t->rbuf, sizeof(t->rbuf));
	if (t->tp != TURNC_UDP)
		return stream_recv(t, deadline);
	for (;;) {
		ssize_t n;
		int r;

		r = wait_readable(t->fd, deadline);
		if (r <= 0)
			return r;
		n = recv(t->fd, t->rbuf, sizeof(t->rbuf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return n;
	}
}

/* Sends req with retransmissions until a STUN message with tid arrives (any
 * STUN message when tid is NULL); it is left in t->rbuf. Returns its length
 * or -ETIMEDOUT. */
static ssize_t transact(struct turnc *t, const uint8_t *req, size_t len, const uint8_t *tid)
{
	for (unsigned i = 0; i < t->rc; i++) {
		/* RFC 8489 §6.2.1: RTO doubles per transmission; after the last
		 * one the client waits Rm = 16 RTOs. */
		unsigned wait = i + 1 == t->rc ? 16 * t->rto_ms : t->rto_ms << (i < 16 ? i : 16);
		int64_t deadline = clock_mono_ms() + wait;
		ssize_t n;

		int err;

		/* A reliable transport carries the request once (RFC 8489
		 * §6.2.2); the waits add up to the same timeout. A pipe's
		 * server answered within the send, or will not. */
		if ((i == 0 || (t->tp == TURNC_UDP && !t->pipe.send)) &&
		    (err = xmit(t, req, len)) < 0)
			return err;
		while ((n = recv_until(t, deadline)) > 0) {
			if (tid_matches(t->rbuf, n, tid))
				return n;
			enqueue(t, t->rbuf, n);	/* relayed data, kept for turnc_recv() */
		}
		if (n < 0)
			return n;
	}
	return -ETIMEDOUT;
}

static void new_tid(uint8_t tid[STUN_TID_LEN])
{
	/* getrandom on a few bytes never blocks after boot and never fails
	 * short; fall back to a clock mix if it somehow does. */
	if (getrandom(tid, STUN_TID_LEN, 0) != STUN_TID_LEN) {
		int64_t v = clock_mono_ms() ^ (int64_t)getpid() << 32;

		memset(tid, 0, STUN_TID_LEN);
		memcpy(tid, &v, sizeof(v));
	}
}

static void copy_attr_str(const struct stun_msg *m, const struct stun_attr *a, char *out,
			  size_t cap)
{
	size_t n = a->len < cap - 1 ? a->len : cap - 1;

	memcpy(out, stun_attr_val(m, a), n);
	out[n] = '\0';
}

static void record_error(struct turnc *t, const struct stun_msg *m)
{
	const struct stun_attr *a = stun_find(m, STUN_A_ERROR_CODE);
	const uint8_t *v;

	t->err.code = 0;
	t->err.reason[0] = '\0';
	if (!a || a->len < 4) {
		t->err.code = 500;	/* an error response must carry ERROR-CODE */
		snprintf(t->err.reason, sizeof(t->err.reason), "error response without ERROR-CODE");
		return;
	}
	v = stun_attr_val(m, a);
	t->err.code = (v[2] & 7) * 100 + v[3];
	if (a->len > 4) {
		struct stun_attr r = { .type = a->type, .len = a->len - 4, .off = a->off + 4 };

		copy_attr_str(m, &r, t->err.reason, sizeof(t->err.reason));
	}
}

/* Chooses the password algorithm from PASSWORD-ALGORITHMS (RFC 8489
 * §14.11: a list of {u16 alg, u16 param length, params padded to 4}). */
static int pick_pwalg(struct turnc *t)
{
	bool md5 = false, sha256 = false;

	if (!t->pwalgs_len)
		return STUN_PWALG_MD5;
	for (size_t off = 0; off + 4 <= t->pwalgs_len;) {
		uint16_t alg = (uint16_t)(t->pwalgs[off] << 8 | t->pwalgs[off + 1]);
		uint16_t plen = (uint16_t)(t->pwalgs[off + 2] << 8 | t->pwalgs[off + 3]);

		md5 |= alg == STUN_PWALG_MD5;
		sha256 |= alg == STUN_PWALG_SHA256;
		off += 4 + ((plen + 3u) & ~3u);
	}
	if (sha256 && (t->sha256_pref || !md5))
		return STUN_PWALG_SHA256;
	return md5 ? STUN_PWALG_MD5 : -ENOTSUP;
}

/* Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 and derives
 * the long-term key. */
static int take_challenge(struct turnc *t, const struct stun_msg *m)
{
	const struct stun_attr *realm = stun_find(m, STUN_A_REALM);
	const struct stun_attr *nonce = stun_find(m, STUN_A_NONCE);
	const struct stun_attr *algs = stun_find(m, STUN_A_PASSWORD_ALGORITHMS);
	int alg;

	if (!nonce || (!realm && !t->realm[0]))
		return -EPROTO;
	if (realm)
		copy_attr_str(m, realm, t->realm, sizeof(t->realm));
	copy_attr_str(m, nonce, t->nonce, sizeof(t->nonce));
	if (algs) {
		if (algs->len > sizeof(t->pwalgs))
			return -EPROTO;
		memcpy(t->pwalgs, stun_attr_val(m, algs), algs->len);
		t->pwalgs_len = algs->len;
	}
	alg = pick_pwalg(t);
	if (alg < 0)
		return alg;
	t->pwalg = alg;
	t->keylen = stun_long_term_key(alg, t->username, t->realm, t->password, t->key);
	return t->keylen ? 0 : -EINVAL;
}

int turnc_sign(struct turnc *t, struct stun_builder *b)
{
	if (!t->keylen)
		return -ENOKEY;
	stun_add_attr(b, STUN_A_USERNAME, t->username, (uint16_t)strlen(t->username));
	stun_add_attr(b, STUN_A_REALM, t->realm, (uint16_t)strlen(t->realm));
	stun_add_attr(b, STUN_A_NONCE, t->nonce, (uint16_t)strlen(t->nonce));
	if (t->pwalgs_len) {
		/* RFC 8489 §9.2.4: echo the offer and name the choice. */
		uint8_t alg[4] = { (uint8_t)(t->pwalg >> 8), (uint8_t)t->pwalg, 0, 0 };

		stun_add_attr(b, STUN_A_PASSWORD_ALGORITHMS, t->pwalgs, t->pwalgs_len);
		stun_add_attr(b, STUN_A_PASSWORD_ALGORITHM, alg, sizeof(alg));
	}
	if (t->sha256_pref && t->pwalg == STUN_PWALG_SHA256)
		stun_add_integrity_sha256(b, t->key, t->keylen);
	else
		stun_add_integrity(b, t->key, t->keylen);
	return b->overflow ? -EMSGSIZE : 0;
}

int turnc_build(struct turnc *t, uint16_t method, turnc_fill_fn fill, void *arg, bool auth,
		void *buf, size_t cap)
{
	uint8_t tid[STUN_TID_LEN];
	struct stun_builder b;
	size_t len;
	int ret;

	new_tid(tid);
	stun_build_init(&b, buf, cap, method, STUN_REQUEST, tid);
	if (fill)
		fill(&b, arg);
	if (auth && t->keylen && (ret = turnc_sign(t, &b)) < 0)
		return ret;
	len = stun_build_finish(&b);
	return len ? (int)len : -EMSGSIZE;
}

int turnc_take_response(struct turnc *t, const void *resp, size_t len, bool auth, bool signed_req)
{
	if (len > sizeof(t->resp_buf))
		len = sizeof(t->resp_buf);
	memcpy(t->resp_buf, resp, len);
	memset(&t->err, 0, sizeof(t->err));
	t->has_resp = false;
	if (stun_parse(&t->resp, t->resp_buf, len) != STUN_OK)
		return -EBADMSG;
	t->has_resp = true;
	/* A response to a signed request must be signed with our key
	 * (RFC 8489 §9.2.5), except the 400/401/438 a server may send
	 * before it knows the key is right. */
	if (signed_req && t->resp.cls == STUN_SUCCESS &&
	    stun_check_integrity(&t->resp, t->key, t->keylen, NULL) != 0)
		return -EBADMSG;
	if (t->resp.cls == STUN_SUCCESS)
		return 0;
	if (t->resp.cls != STUN_ERROR)
		return -EPROTO;
	record_error(t, &t->resp);
	if (auth && ((t->err.code == 401 && !signed_req) || t->err.code == 438) &&
	    take_challenge(t, &t->resp) == 0)
		return 1;
	return -t->err.code;
}

bool turnc_has_key(const struct turnc *t)
{
	return t->keylen != 0;
}

int turnc_request(struct turnc *t, uint16_t method, turnc_fill_fn fill, void *arg, bool auth)
{
	int ret = -EPROTO;

	for (int attempt = 0; attempt < TURNC_AUTH_TRIES; attempt++) {
		uint8_t req[STUN_MAX_MSG];
		bool signed_req = auth && t->keylen;
		int len = turnc_build(t, method, fill, arg, auth, req, sizeof(req));
		ssize_t n;

		if (len < 0)
			return len;
		t->has_resp = false;
		memset(&t->err, 0, sizeof(t->err));
		n = transact(t, req, (size_t)len, req + 8);
		if (n < 0)
			return (int)n;
		ret = turnc_take_response(t, t->rbuf, (size_t)n, auth, signed_req);
		if (ret != 1)
			return ret;
		ret = -t->err.code;	/* a challenge on the last attempt */
	}
	return ret;
}

int turnc_raw(struct turnc *t, const void *req, size_t len, void *resp, size_t cap)
{
	uint8_t tid[STUN_TID_LEN];
	ssize_t n;

	if (len >= STUN_HDR_LEN)
		memcpy(tid, (const uint8_t *)req + 8, STUN_TID_LEN);
	t->has_resp = false;
	n = transact(t, req, len, len >= STUN_HDR_LEN ? tid : NULL);
	if (n < 0)
		return (int)n;
	if ((size_t)n > cap)
		n = (ssize_t)cap;
	memcpy(resp, t->rbuf, n);
	return (int)n;
}

static void put_family(struct stun_builder *b, uint16_t type, uint8_t family)
{
	uint8_t v[4] = { family, 0, 0, 0 };

	stun_add_attr(b, type, v, sizeof(v));
}

void turnc_fill_allocate(struct stun_builder *b, void *arg)
{
	const struct turnc_alloc_opts *o = arg;
	static const uint8_t none;	/* a valid pointer for empty values */

	stun_add_u32(b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);	/* UDP */
	if (o->lifetime)
		stun_add_u32(b, STUN_A_LIFETIME, o->lifetime);
	if (o->family)
		put_family(b, STUN_A_REQUESTED_ADDRESS_FAMILY, o->family);
	if (o->additional_family)
		put_family(b, STUN_A_ADDITIONAL_ADDRESS_FAMILY, o->additional_family);
	if (o->even_port) {
		uint8_t r = o->reserve_next ? 0x80 : 0;

		stun_add_attr(b, STUN_A_EVEN_PORT, &r, 1);
	}
	if (o->dont_fragment)
		stun_add_attr(b, STUN_A_DONT_FRAGMENT, &none, 0);
	if (o->has_token)
		stun_add_attr(b, STUN_A_RESERVATION_TOKEN, o->token, sizeof(o->token));
}

int turnc_allocate(struct turnc *t, const struct turnc_alloc_opts *opts, struct turnc_alloc *res)
{
	struct turnc_alloc_opts defaults = { 0 };
	int ret;

	memset(res, 0, sizeof(*res));
	ret = turnc_request(t, TURN_ALLOCATE, turnc_fill_allocate, opts ? (void *)opts : &defaults,
			    true);
	if (ret < 0)
		return ret;
	return turnc_alloc_result(t, res);
}

int turnc_alloc_result(struct turnc *t, struct turnc_alloc *res)
{
	const struct stun_msg *m = &t->resp;
	uint32_t lifetime = 0;

	memset(res, 0, sizeof(*res));
	if (!t->has_resp || m->cls != STUN_SUCCESS)
		return -EPROTO;
	t->nchans = 0;
	for (unsigned i = 0; i < m->nattrs; i++) {
		const struct stun_attr *a = &m->attrs[i];
		const uint8_t *v = stun_attr_val(m, a);

		if (a->type == STUN_A_XOR_RELAYED_ADDRESS && res->nrelayed < 2) {
			if (stun_attr_xor_addr(m, a, &res->relayed[res->nrelayed]) == 0)
				res->nrelayed++;
		} else if (a->type == STUN_A_XOR_MAPPED_ADDRESS) {
			stun_attr_xor_addr(m, a, &res->mapped);
		} else if (a->type == STUN_A_RESERVATION_TOKEN && a->len == sizeof(res->token)) {
			memcpy(res->token, v, sizeof(res->token));
			res->has_token = true;
		} else if (a->type == STUN_A_ADDRESS_ERROR_CODE && a->len >= 4) {
			t->err.address_error = (v[2] & 7) * 100 + v[3];
		}
	}
	if (stun_attr_u32(m, STUN_A_LIFETIME, &lifetime) == 0)
		res->lifetime = lifetime;
	return res->nrelayed ? 0 : -EPROTO;
}

void turnc_fill_lifetime(struct stun_builder *b, void *arg)
{
	stun_add_u32(b, STUN_A_LIFETIME, *(const uint32_t *)arg);
}

int turnc_refresh(struct turnc *t, uint32_t lifetime, uint32_t *granted)
{
	uint32_t got = 0;
	int ret = turnc_request(t, TURN_REFRESH, turnc_fill_lifetime, &lifetime, true);

	if (ret < 0)
		return ret;
	if (granted) {
		stun_attr_u32(&t->resp, STUN_A_LIFETIME, &got);
		*granted = got;
	}
	return 0;
}

void turnc_fill_peers(struct stun_builder *b, void *arg)
{
	const struct turnc_peers *p = arg;

	for (unsigned i = 0; i < p->n; i++)
		stun_add_xor_addr(b, STUN_A_XOR_PEER_ADDRESS, &p->peers[i]);
}

int turnc_create_permission(struct turnc *t, const struct sockaddr_storage *peers, unsigned n)
{
	struct turnc_peers p = { peers, n };

	return turnc_request(t, TURN_CREATE_PERMISSION, turnc_fill_peers, &p, true);
}

void turnc_fill_channel_bind(struct stun_builder *b, void *arg)
{
	const struct turnc_bind *c = arg;

	stun_add_u32(b, STUN_A_CHANNEL_NUMBER, (uint32_t)c->channel << 16);
	stun_add_xor_addr(b, STUN_A_XOR_PEER_ADDRESS, c->peer);
}

int turnc_channel_bind(struct turnc *t, uint16_t channel, const struct sockaddr_storage *peer)
{
	struct turnc_bind c = { channel, peer };
	unsigned i;
	int ret = turnc_request(t, TURN_CHANNEL_BIND, turnc_fill_channel_bind, &c, true);

	if (ret < 0)
		return ret;
	for (i = 0; i < t->nchans && t->chans[i].channel != channel; i++)
		;
	if (i < TURNC_MAX_CHANNELS) {
		t->chans[i].channel = channel;
		t->chans[i].peer = *peer;
		if (i == t->nchans)
			t->nchans++;
	}
	return 0;
}

int turnc_binding(struct turnc *t, struct sockaddr_storage *mapped)
{
	const struct stun_attr *a;
	int ret = turnc_request(t, STUN_BINDING, NULL, NULL, false);

	if (ret < 0)
		return ret;
	a = stun_find(&t->resp, STUN_A_XOR_MAPPED_ADDRESS);
	if (!a)
		return -EPROTO;
	return stun_attr_xor_addr(&t->resp, a, mapped);
}

int turnc_send_indication(struct turnc *t, const struct sockaddr_storage *peer,
			  const void *data, size_t len)
{
	uint8_t msg[STUN_MAX_MSG], tid[STUN_TID_LEN];
	struct stun_builder b;
	size_t n;

	if (len > STUN_MAX_MSG)
		return -EMSGSIZE;
	new_tid(tid);
	stun_build_init(&b, msg, sizeof(msg), TURN_SEND, STUN_INDICATION, tid);
	stun_add_xor_addr(&b, STUN_A_XOR_PEER_ADDRESS, peer);
	stun_add_attr(&b, STUN_A_DATA, data, (uint16_t)len);
	n = stun_build_finish(&b);
	if (!n)
		return -EMSGSIZE;
	return xmit(t, msg, n);
}

int turnc_send_channel(struct turnc *t, uint16_t channel, const void *data, size_t len)
{
	uint8_t hdr[CHANNELDATA_HDR_LEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (len > UINT16_MAX)
		return -EMSGSIZE;
	channeldata_put_hdr(hdr, channel, (uint16_t)len);
	if (t->pipe.send) {
		uint8_t msg[CHANNELDATA_HDR_LEN + UINT16_MAX];

		memcpy(msg, hdr, sizeof(hdr));
		memcpy(msg + sizeof(hdr), data, len);
		return xmit(t, msg, sizeof(hdr) + len);
	}
	if (t->tp != TURNC_UDP) {
		/* One write, padded to 4 bytes (RFC 8656 §12.5). */
		uint8_t msg[STUN_FRAME_MAX] = { 0 };
		size_t padded = CHANNELDATA_HDR_LEN + ((len + 3) & ~(size_t)3);

		if (padded > sizeof(msg))
			return -EMSGSIZE;
		memcpy(msg, hdr, sizeof(hdr));
		memcpy(msg + sizeof(hdr), data, len);
		return xmit(t, msg, padded);
	}
	return sendmsg(t->fd, &mh, 0) < 0 ? -errno : 0;
}

/* Decodes one datagram from the server as relayed data; -EAGAIN if it is
 * not data (a stray response). */
static int decode_data(struct turnc *t, const uint8_t *buf, size_t len,
		       struct sockaddr_storage *peer, uint16_t *channel, void *out, size_t cap)
{
	const uint8_t *data;
	uint16_t dlen, ch;

	memset(peer, 0, sizeof(*peer));
	if (channeldata_looks_like(buf, len)) {
		if (channeldata_parse(buf, len, &ch, &data, &dlen) < 0)
			return -EAGAIN;
		for (unsigned i = 0; i < t->nchans; i++)
			if (t->chans[i].channel == ch)
				*peer = t->chans[i].peer;
		*channel = ch;
	} else {
		struct stun_msg m;
		const struct stun_attr *pa, *da;

		if (stun_parse(&m, buf, len) != STUN_OK || m.method != TURN_DATA ||
		    m.cls != STUN_INDICATION)
			return -EAGAIN;
		pa = stun_find(&m, STUN_A_XOR_PEER_ADDRESS);
		da = stun_find(&m, STUN_A_DATA);
		if (!pa || !da || stun_attr_xor_addr(&m, pa, peer) < 0)
			return -EAGAIN;
		data = stun_attr_val(&m, da);
		dlen = da->len;
		*channel = 0;
	}
	if (dlen > cap)
		dlen = (uint16_t)cap;
	memcpy(out, data, dlen);
	return dlen;
}

int turnc_recv(struct turnc *t, int timeout_ms, struct sockaddr_storage *peer,
	       uint16_t *channel, void *buf, size_t cap)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	ssize_t n;
	int r;

	while (t->qcount) {
		unsigned slot = t->qhead;

		t->qhead = (t->qhead + 1) % TURNC_QLEN;
		t->qcount--;
		r = decode_data(t, t->q[slot].data, t->q[slot].len, peer, channel, buf, cap);
		if (r != -EAGAIN)
			return r;
	}
	while ((n = recv_until(t, deadline)) > 0) {
		r = decode_data(t, t->rbuf, n, peer, channel, buf, cap);
		if (r != -EAGAIN)
			return r;
	}
	return n < 0 ? (int)n : -ETIMEDOUT;
}
