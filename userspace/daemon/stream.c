#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <openssl/err.h>

#include "common/addr.h"
#include "daemon/config.h"
#include "daemon/stream.h"

#define SCRATCH 16384		/* one TLS record's plaintext at most */
#define TLS_RAW 16384		/* TLS bytes one read() takes */
#define READ_ROUNDS 16		/* reads per event: one connection cannot starve others */
#define WBUF_KEEP 16384		/* a larger emptied send buffer is given back */
#define LISTEN_BACKLOG 1024

/* Connections without an allocation, per source address. */
struct pending_ip {
	uint32_t key[4];		/* addr_source_key */
	unsigned n;
	struct pending_ip *next;
};
#define PENDING_BUCKETS 1024

struct stream_set {
	struct stream_limits lim;
	int epfd;
	int spare_fd;			/* given up to accept when out of fds */
	struct pending_ip *pending[PENDING_BUCKETS];
	struct stream_conn **byfd;	/* indexed by fd */
	size_t nbyfd;
	unsigned nconns;
	struct stream_conn *doomed;
	struct stream_conn *dirty;	/* ChannelData waits for stream_flush */
	struct stream_stats stats;
	BIO_METHOD *tls_in_meth;	/* see tls_in */
	struct tls_in { const uint8_t *p; size_t n; } tls_in;
	uint8_t scratch[SCRATCH];	/* what one read returns, framed in place */
	uint8_t raw[TLS_RAW];		/* TLS records as read, before OpenSSL */
};

/* ---- TLS ------------------------------------------------------------------------------ */

static int tls_fail(SSL_CTX *ctx, const char *key, const char *val, const char *why, char *err,
		    size_t errlen)
{
	char ossl[256] = "";
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	snprintf(err, errlen, "key '%s' (%s): %s", key, val, why ? why : ossl);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return -EINVAL;
}

int stream_tls_new(SSL_CTX **out, const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *cert = cfg->cert, *pkey = cfg->pkey, *ciphers = cfg->cipher_list;

	if (!ctx) {
		snprintf(err, errlen, "TLS context: out of memory");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, cfg->no_tlsv1_2 ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* A client that closes without close_notify is a close, not an error:
	 * nothing it sent after the last message could be cut off unseen. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
			    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Partial and moving writes: the send buffer is compacted and grown
	 * between retries. Released buffers: idle connections stay small. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_RELEASE_BUFFERS);
	/* No resumption: no session state, no TLS 1.2 tickets (stateless:
	 * the cache being off does not stop them), and no TLS 1.3 tickets to
	 * write after the handshake (they would need a writable socket at a
	 * random moment). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return tls_fail(ctx, "cert", cert, NULL, err, errlen);
	/* OpenSSL's default callback would prompt on the terminal; with no
	 * pkey-pwd an encrypted key fails to load instead. */
	SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)cfg->pkey_pwd);
	if (SSL_CTX_use_PrivateKey_file(ctx, pkey, SSL_FILETYPE_PEM) != 1)
		return tls_fail(ctx, "pkey", pkey, NULL, err, errlen);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls_fail(ctx, "pkey", pkey, "does not match the certificate", err, errlen);
	if (ciphers && *ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
		return tls_fail(ctx, "cipher-list", ciphers, NULL, err, errlen);
	*out = ctx;
	return 0;
}

/* OpenSSL takes a connection's records through this BIO, from the bytes one
 * read() put in set->raw, instead of from the socket (writes still go to
 * the socket). A socket BIO costs two read()s a record (header, body), and
 * read-ahead, OpenSSL's answer, moves what is left of its 16 KB buffer to
 * its front at every record (OpenSSL 3.0; measured at 200 B a record: two
 * read()s a record took 5.1-6.0 us of relay CPU a message, read-ahead
 * 3.1 us with 9 % of it in that memmove). No library BIO fits: a memory
 * BIO would copy the bytes once more and keep its buffer per connection. */
static int tls_in_read(BIO *b, char *buf, size_t len, size_t *got)
{
	struct tls_in *in = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (!in->n) {
		BIO_set_retry_read(b);	/* empty is "later", not EOF */
		return 0;
	}
	if (len > in->n)
		len = in->n;
	memcpy(buf, in->p, len);
	in->p += len;
	in->n -= len;
	*got = len;
	return 1;
}

static long tls_in_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH;	/* nothing else applies to input */
}

static BIO_METHOD *tls_in_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "xturn-tls-in");

	if (m && (!BIO_meth_set_read_ex(m, tls_in_read) || !BIO_meth_set_ctrl(m, tls_in_ctrl))) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

/* The connection's BIOs: input through tls_in, output to the socket. */
static int tls_bios(struct stream_set *set, SSL *ssl, int fd)
{
	BIO *rb = set->tls_in_meth ? BIO_new(set->tls_in_meth) : NULL;
	BIO *wb = BIO_new_socket(fd, BIO_NOCLOSE);

	if (!rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		return -ENOMEM;
	}
	BIO_set_data(rb, &set->tls_in);
	BIO_set_init(rb, 1);
	SSL_set_bio(ssl, rb, wb);
	return 0;
}

/* Before an SSL_ call, whose SSL_get_error reads the queue: it is empty
 * unless a failure left something, and clearing it always costs (4 % of
 * the relay's CPU at 200 B TLS records). */
static void err_empty(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

/* ---- sockets -------------------------------------------------------------------------- */

int stream_listen(const struct sockaddr_storage *addr)
{
	int one = 1, err;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (addr->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, addr_len(addr)) ||
	    listen(fd, LISTEN_BACKLOG)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

struct stream_set *stream_set_new(const struct stream_limits *lim, int epfd)
{
	struct stream_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->lim = *lim;
	set->epfd = epfd;
	set->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* Without it TLS connections fail to set up (tls_bios), others work. */
	set->tls_in_meth = tls_in_method();
	return set;
}

/* The slot of a's count (*slot NULL if it has none; create: make it). */
static struct pending_ip **pending_slot(struct stream_set *set, const struct sockaddr_storage *a,
					bool create)
{
	uint32_t key[4], h;
	struct pending_ip **pp;

	addr_source_key(a, key);
	h = (key[0] ^ key[1] * 31 ^ key[2] * 961 ^ key[3] * 29791) * 2654435761u;
	pp = &set->pending[h >> 22 & (PENDING_BUCKETS - 1)];
	while (*pp && memcmp((*pp)->key, key, sizeof(key)))
		pp = &(*pp)->next;
	if (!*pp && create && (*pp = calloc(1, sizeof(**pp))))
		memcpy((*pp)->key, key, sizeof(key));
	return pp;
}

/* Counts c as pending, or no longer. Out of memory it stays uncounted
 * (the limit then errs on the side of the client). */
static void pending_set(struct stream_set *set, struct stream_conn *c, bool on)
{
	struct pending_ip **pp, *p;

	if (c->pending == on || !(p = *(pp = pending_slot(set, &c->peer, on))))
		return;
	c->pending = on;
	if (on) {
		p->n++;
	} else if (--p->n == 0) {
		*pp = p->next;
		free(p);
	}
}

static unsigned pending_count(struct stream_set *set, const struct sockaddr_storage *a)
{
	const struct pending_ip *p = *pending_slot(set, a, false);

	return p ? p->n : 0;
}

/* No descriptor left: the spare goes, so the waiting connection can come
 * off the backlog and be closed; then the spare is taken back. */
static int accept_without_fds(struct stream_set *set, int lfd)
{
	int fd;

	if (set->spare_fd < 0)
		return -EMFILE;
	close(set->spare_fd);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	set->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	set->stats.rejected++;
	return fd >= 0 ? -EDQUOT : -EMFILE;
}

void stream_set_free(struct stream_set *set)
{
	if (!set)
		return;
	for (size_t fd = 0; fd < set->nbyfd; fd++)
		if (set->byfd[fd])
			stream_close(set, set->byfd[fd]);
	free(set->byfd);
	if (set->spare_fd >= 0)
		close(set->spare_fd);
	BIO_meth_free(set->tls_in_meth);
	for (unsigned i = 0; i < PENDING_BUCKETS; i++)
		while (set->pending[i]) {
			struct pending_ip *p = set->pending[i];
			set->pending[i] = p->next;
			free(p);
		}
	free(set);
}

const struct stream_stats *stream_stats(const struct stream_set *set)
{
	return &set->stats;
}

unsigned stream_count(const struct stream_set *set)
{
	return set->nconns;
}

struct stream_conn *stream_get(const struct stream_set *set, int fd)
{
	return fd >= 0 && (size_t)fd < set->nbyfd ? set->byfd[fd] : NULL;
}

static void doom(struct stream_set *set, struct stream_conn *c, uint64_t *counter)
{
	if (c->doomed)
		return;
	c->doomed = true;
	if (counter)
		(*counter)++;
	c->next_doomed = set->doomed;
	set->doomed = c;
}

void stream_doom_all(struct stream_set *set)
{
	for (size_t fd = 0; fd < set->nbyfd; fd++)
		if (set->byfd[fd])
			doom(set, set->byfd[fd], NULL);
}

struct stream_conn *stream_next_doomed(struct stream_set *set)
{
	struct stream_conn *c = set->doomed;

	if (c)
		set->doomed = c->next_doomed;
	return c;
}

static int table_put(struct stream_set *set, struct stream_conn *c)
{
	size_t fd = (size_t)c->fd;

	if (fd >= set->nbyfd) {
		size_t n = set->nbyfd ? set->nbyfd * 2 : 64;
		struct stream_conn **t;

		while (n <= fd)
			n *= 2;
		t = realloc(set->byfd, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(t + set->nbyfd, 0, (n - set->nbyfd) * sizeof(*t));
		set->byfd = t;
		set->nbyfd = n;
	}
	set->byfd[fd] = c;
	return 0;
}

static int conn_new(struct stream_set *set, int fd, struct sockaddr_storage *peer, SSL_CTX *tls,
		    time_t now, struct stream_conn **out);

int stream_accept(struct stream_set *set, int lfd, SSL_CTX *tls, time_t now,
		  struct stream_conn **out)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int fd;

	fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE))
		return accept_without_fds(set, lfd);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return conn_new(set, fd, &peer, tls, now, out);
}

int stream_adopt(struct stream_set *set, int fd, time_t now, struct stream_conn **out)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);

	if (getpeername(fd, (struct sockaddr *)&peer, &len) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		int err = -errno;
		close(fd);
		return err;
	}
	return conn_new(set, fd, &peer, NULL, now, out);
}

void stream_foreach(struct stream_set *set, void (*fn)(void *ctx, struct stream_conn *c),
		    void *ctx)
{
	for (size_t i = 0; i < set->nbyfd; i++)
		if (set->byfd[i] && !set->byfd[i]->doomed)
			fn(ctx, set->byfd[i]);
}

bool stream_passable(const struct stream_conn *c)
{
	return !c->ssl && !c->rlen && c->woff == c->wlen;
}

/* A connection the set takes on (accepted, or passed by a daemon before). */
static int conn_new(struct stream_set *set, int fd, struct sockaddr_storage *peer, SSL_CTX *tls,
		    time_t now, struct stream_conn **out)
{
	socklen_t len;
	struct stream_conn *c;
	int one = 1, err;

	addr_canon(peer);
	/* Accepted and closed rather than left in the backlog: a full backlog
	 * would wake the listener for ever. */
	if (set->nconns >= set->lim.max_conns ||
	    (set->lim.max_pending_per_ip &&
	     pending_count(set, peer) >= set->lim.max_pending_per_ip)) {
		close(fd);
		set->stats.rejected++;
		return -EDQUOT;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->peer = *peer;
	len = sizeof(c->local);
	if (getsockname(fd, (struct sockaddr *)&c->local, &len)) {
		err = -errno;
		goto fail;
	}
	addr_canon(&c->local);
	/* Media: latency over fewer segments. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The kernel's share of what waits for a client that does not read:
	 * autotuning would grow it to tcp_wmem's maximum (4 MB) and hide the
	 * client from max_sndbuf. The kernel doubles the value (its overhead).
	 * By the bandwidth-delay product, 128 KB of payload in flight is
	 * 10 Mbit/s at 100 ms of RTT, more than a call's media (not measured). */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ (int)(set->lim.max_sndbuf / 2) }, sizeof(int));
	c->deadline = now + set->lim.idle_timeout;
	if (tls) {
		c->ssl = SSL_new(tls);
		if (!c->ssl || tls_bios(set, c->ssl, fd)) {
			err = -ENOMEM;
			goto fail;
		}
		SSL_set_accept_state(c->ssl);
		c->hs_deadline = now + set->lim.handshake_timeout;
	}
	if ((err = table_put(set, c)))
		goto fail;
	pending_set(set, c, true);
	set->nconns++;
	set->stats.accepted++;
	*out = c;
	return 0;
fail:
	SSL_free(c->ssl);
	close(fd);
	free(c);
	return err;
}

static int set_events(struct stream_set *set, struct stream_conn *c, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = c->user };

	if (epoll_ctl(set->epfd, op, c->fd, &ev))
		return -errno;
	c->events = events;
	return 0;
}

int stream_watch(struct stream_set *set, struct stream_conn *c)
{
	return set_events(set, c, EPOLLIN, EPOLL_CTL_ADD);
}

/* EPOLLOUT only while something waits to be written. */
static void update_events(struct stream_set *set, struct stream_conn *c)
{
	uint32_t want = EPOLLIN;

	if (c->woff < c->wlen || c->tls_wants_write)
		want |= EPOLLOUT;
	if (want != c->events && set_events(set, c, want, EPOLL_CTL_MOD))
		doom(set, c, NULL);
}

void stream_close(struct stream_set *set, struct stream_conn *c)
{
	if (c->ssl) {
		/* Best effort: the peer learns it was no truncation attack. */
		if (!c->tls_failed && SSL_is_init_finished(c->ssl)) {
			err_empty();
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	pending_set(set, c, false);
	if (c->dirty) {
		struct stream_conn **pp = &set->dirty;

		while (*pp && *pp != c)
			pp = &(*pp)->next_dirty;
		if (*pp)
			*pp = c->next_dirty;
	}
	set->byfd[c->fd] = NULL;
	close(c->fd);		/* also leaves the epoll set */
	set->nconns--;
	free(c->hold);
	free(c->wbuf);
	free(c);
}

/* ---- reading: bytes into messages ------------------------------------------------------- */

/* One TLS or socket error: doomed, with the right counter. */
static void tls_error(struct stream_set *set, struct stream_conn *c, int e)
{
	if (e == SSL_ERROR_ZERO_RETURN) {
		doom(set, c, NULL);	/* orderly close_notify */
		return;
	}
	c->tls_failed = true;
	doom(set, c, &set->stats.tls_failures);
}

/* A whole message: STUN must carry the magic cookie; ChannelData goes up
 * without its padding. */
static void deliver(struct stream_set *set, struct stream_conn *c, const uint8_t *msg, size_t fl,
		    stream_msg_fn fn, void *arg)
{
	if (msg[0] & 0x40) {
		fn(arg, c, msg, CHANNELDATA_HDR_LEN + ((size_t)msg[2] << 8 | msg[3]));
		return;
	}
	if (!stun_looks_like(msg, fl)) {
		doom(set, c, &set->stats.bad_framing);
		return;
	}
	fn(arg, c, msg, fl);
}

/* Frames n bytes at p: whole messages straight from p, a split one through
 * c->rbuf. */
static void feed(struct stream_set *set, struct stream_conn *c, const uint8_t *p, size_t n,
		 stream_msg_fn fn, void *arg)
{
	while (n && !c->doomed) {
		ssize_t fl;
		size_t take;

		if (!c->rlen) {
			fl = stun_frame_len(p, n);
			if (fl < 0)
				break;
			if (fl && (size_t)fl <= n) {
				p += fl;
				n -= (size_t)fl;
				deliver(set, c, p - fl, (size_t)fl, fn, arg);
				continue;
			}
			/* Shorter than its header or its length: n < STUN_FRAME_MAX. */
			memcpy(c->rbuf, p, n);
			c->rlen = n;
			return;
		}
		/* Completing a split message: its header first, then the rest. */
		if (c->rlen < 4) {
			take = 4 - c->rlen < n ? 4 - c->rlen : n;
			memcpy(c->rbuf + c->rlen, p, take);
			c->rlen += take;
			p += take;
			n -= take;
			continue;
		}
		fl = stun_frame_len(c->rbuf, c->rlen);
		if (fl < 0)
			break;
		take = (size_t)fl - c->rlen < n ? (size_t)fl - c->rlen : n;
		memcpy(c->rbuf + c->rlen, p, take);
		c->rlen += take;
		p += take;
		n -= take;
		if (c->rlen < (size_t)fl)
			return;
		c->rlen = 0;
		deliver(set, c, c->rbuf, (size_t)fl, fn, arg);
	}
	if (n && !c->doomed)
		doom(set, c, &set->stats.bad_framing);
}

/* What OpenSSL left of in (it stopped to write first): kept for the next
 * event, which EPOLLOUT brings. Out of memory the connection goes. */
static void tls_keep(struct stream_set *set, struct stream_conn *c)
{
	const struct tls_in *in = &set->tls_in;
	uint8_t *h;

	if (c->hold && in->p >= c->hold && in->p < c->hold + c->hold_len) {
		memmove(c->hold, in->p, in->n);		/* the rest of the hold */
		c->hold_len = in->n;
		return;
	}
	h = realloc(c->hold, in->n);
	if (!h) {
		doom(set, c, NULL);
		return;
	}
	memcpy(h, in->p, in->n);
	c->hold = h;
	c->hold_len = in->n;
}

/* One round of TLS: the held bytes or one read()'s, every record in them. */
static bool tls_round(struct stream_set *set, struct stream_conn *c, stream_msg_fn fn, void *arg)
{
	if (c->hold) {
		set->tls_in = (struct tls_in){ c->hold, c->hold_len };
	} else {
		ssize_t n = read(c->fd, set->raw, sizeof(set->raw));

		if (n < 0 && errno == EINTR)
			return true;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0) {
			doom(set, c, NULL);	/* EOF or reset */
			return false;
		}
		set->tls_in = (struct tls_in){ set->raw, (size_t)n };
	}
	while (!c->doomed) {
		int r;

		err_empty();
		r = SSL_read(c->ssl, set->scratch, sizeof(set->scratch));
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			c->tls_wants_write = e == SSL_ERROR_WANT_WRITE;
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				tls_error(set, c, e);
			break;
		}
		c->tls_wants_write = false;
		feed(set, c, set->scratch, (size_t)r, fn, arg);
	}
	if (set->tls_in.n && !c->doomed) {
		tls_keep(set, c);
	} else {
		free(c->hold);
		c->hold = NULL;
		c->hold_len = 0;
	}
	set->tls_in.n = 0;
	return !c->hold && !c->doomed;
}

static void conn_read(struct stream_set *set, struct stream_conn *c, stream_msg_fn fn, void *arg)
{
	for (int round = 0; round < READ_ROUNDS && !c->doomed; round++) {
		ssize_t n;

		if (c->ssl) {
			if (!tls_round(set, c, fn, arg))
				return;
			continue;
		}
		n = read(c->fd, set->scratch, sizeof(set->scratch));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			doom(set, c, NULL);	/* EOF or reset */
			return;
		}
		feed(set, c, set->scratch, (size_t)n, fn, arg);
	}
}

/* ---- writing -------------------------------------------------------------------------- */

static void conn_flush(struct stream_set *set, struct stream_conn *c)
{
	while (c->woff < c->wlen && !c->doomed) {
		size_t len = c->wlen - c->woff;
		ssize_t n;

		if (c->ssl) {
			int r;

			err_empty();
			r = SSL_write(c->ssl, c->wbuf + c->woff, len > INT_MAX ? INT_MAX : (int)len);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					tls_error(set, c, e);
				break;
			}
			n = r;
		} else {
			n = send(c->fd, c->wbuf + c->woff, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				doom(set, c, NULL);
				break;
			}
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen) {
		c->woff = c->wlen = 0;
		if (c->wcap > WBUF_KEEP) {
			free(c->wbuf);
			c->wbuf = NULL;
			c->wcap = 0;
		}
	}
}

/* Room for need more bytes at the end of the send buffer. */
static int wbuf_reserve(struct stream_conn *c, size_t need)
{
	size_t cap;
	uint8_t *b;

	if (c->wcap - c->wlen >= need)
		return 0;
	if (c->woff) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
		if (c->wcap - c->wlen >= need)
			return 0;
	}
	cap = c->wcap ? c->wcap * 2 : 4096;
	while (cap - c->wlen < need)
		cap *= 2;
	b = realloc(c->wbuf, cap);
	if (!b)
		return -ENOMEM;
	c->wbuf = b;
	c->wcap = cap;
	return 0;
}

/* Writes what the socket takes and watches for the rest. */
static void conn_write(struct stream_set *set, struct stream_conn *c)
{
	conn_flush(set, c);
	if (!c->doomed)
		update_events(set, c);
}

int stream_send(struct stream_set *set, struct stream_conn *c, const struct iovec *iov,
		int iovcnt)
{
	static const uint8_t zeros[3];
	size_t total = 0, pad = 0;
	bool chan;

	if (c->doomed)
		return -EPIPE;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > STUN_HDR_LEN + 0xFFFF)	/* larger than any STUN or ChannelData */
		return -EMSGSIZE;
	chan = iovcnt && iov[0].iov_len && (((const uint8_t *)iov[0].iov_base)[0] & 0xC0) == 0x40;
	if (chan)
		pad = (4 - (total & 3)) & 3;
	if (c->wlen - c->woff + total + pad > set->lim.max_sndbuf) {
		/* The client does not read: it cannot be relaying media. */
		doom(set, c, &set->stats.overflow);
		return -ENOBUFS;
	}
	if (wbuf_reserve(c, total + pad)) {
		doom(set, c, NULL);
		return -ENOBUFS;
	}
	for (int i = 0; i < iovcnt; i++) {
		memcpy(c->wbuf + c->wlen, iov[i].iov_base, iov[i].iov_len);
		c->wlen += iov[i].iov_len;
	}
	memcpy(c->wbuf + c->wlen, zeros, pad);
	c->wlen += pad;
	if (chan) {
		if (!c->dirty) {
			c->dirty = true;
			c->next_dirty = set->dirty;
			set->dirty = c;
		}
		return 0;
	}
	conn_write(set, c);
	return c->doomed ? -EPIPE : 0;
}

void stream_flush(struct stream_set *set)
{
	struct stream_conn *c = set->dirty;

	set->dirty = NULL;
	while (c) {
		struct stream_conn *next = c->next_dirty;

		c->dirty = false;
		conn_write(set, c);
		c = next;
	}
}

void stream_event(struct stream_set *set, struct stream_conn *c, stream_msg_fn fn, void *arg)
{
	conn_read(set, c, fn, arg);
	conn_write(set, c);
}

void stream_hold(struct stream_set *set, struct stream_conn *c, bool held, time_t now)
{
	c->held = held;
	pending_set(set, c, !held);
	if (!held)
		c->deadline = now + set->lim.idle_timeout;
}

void stream_expire(struct stream_set *set, time_t now)
{
	for (size_t fd = 0; fd < set->nbyfd; fd++) {
		struct stream_conn *c = set->byfd[fd];

		if (!c || c->doomed)
			continue;
		/* ">": whole seconds, so a timeout of N is never under N s. */
		if ((!c->held && now > c->deadline) ||
		    (c->ssl && !SSL_is_init_finished(c->ssl) && now > c->hs_deadline))
			doom(set, c, &set->stats.timeouts);
	}
}
