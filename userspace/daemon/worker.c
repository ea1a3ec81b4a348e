#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <openssl/rand.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/sock.h"
#include "turn/auth.h"
#include "turn/policy.h"
#include "turn/turn.h"
#include "daemon/acct.h"
#include "daemon/evloop.h"
#include "daemon/handover.h"
#include "turn/snapshot.h"
#include "daemon/journal.h"
#include "daemon/offload.h"
#include "daemon/outq.h"
#include "daemon/stream.h"
#include "daemon/udp.h"
#include "daemon/worker.h"

#define STREAM_MAX_SNDBUF (256 * 1024)	/* per TCP/TLS client that does not read */
#define ACCEPT_BATCH 64
#define RX_ROUNDS 8	/* batches per event: a flood on one socket cannot starve the others */

/* The event sources. Each starts with its struct ev_src (whose data is the
 * worker), so the ev_src pointer an event hands over is the source's. */
struct listener {
	struct ev_src ev;
	struct sockaddr_storage local;	/* bound address */
	bool tls;			/* stream listeners */
};

/* One per relay socket of an allocation; a->user is the array. */
struct relay_src {
	struct ev_src ev;
	struct allocation *alloc;
};

/* A TCP/TLS connection's; c->user. Freed only between batches. */
struct conn_src {
	struct ev_src ev;
	struct stream_conn *conn;
	struct allocation *alloc;	/* its allocation, or NULL */
};

struct worker {
	struct worker_env env;
	unsigned id;
	pthread_t thread;
	atomic_bool stopping;
	pthread_mutex_t lock;		/* held while a batch is handled */
	struct ev_loop *loop;
	struct turn_server *turn;
	struct listener *listeners[CONFIG_MAX_ADDRS * 2 * 3];	/* UDP, TCP, TLS */
	unsigned nlisteners;
	struct stream_set *streams;	/* TCP and TLS client connections */
	struct ev_src timer, wake;
	struct udp_ports ports;
	struct udp_rx *rx;
	struct outq *out;		/* what a batch sends */
	atomic_bool tick_now;		/* run the TURN timers at once (kills, drains) */
	struct journal *journal;	/* NULL: none (journal-dir empty), or replaying */
	/* SIGHUP: new credentials and policy, handed over under lock */
	struct auth *new_auth;
	struct policy *new_pol;
};

/* ---- turn_io ----------------------------------------------------------------- */

static int io_relay_open(void *ctx, int family, const struct sockaddr_storage *at, bool even,
			 bool df, struct sockaddr_storage *addr, struct sockaddr_storage *adv)
{
	struct worker *w = ctx;
	int fd = at ? handover_relay(w->env.handover, at) : -1;

	/* An adopted allocation's relay, still open in the daemon before us. */
	if (fd >= 0)
		return udp_relay_adopt(&w->ports, fd, addr, adv);
	return udp_relay_open(&w->ports, family, at, even, df, addr, adv);
}

/* The end of a batch: its journal records, then its replies and relayed
 * data (a reply never tells of an allocation the file does not hold, but
 * for an outq filled mid-batch). */
static void flush_out(struct worker *w)
{
	journal_flush(w->journal);
	stream_flush(w->streams);
	outq_flush(w->out);
}

static void io_relay_close(void *ctx, int fd)
{
	struct worker *w = ctx;

	flush_out(w);
	udp_relay_close(&w->ports, fd, NULL);
}

static int io_send_client(void *ctx, int listener_fd, const struct sockaddr_storage *listener,
			  const struct sockaddr_storage *client, const struct iovec *iov, int iovcnt)
{
	struct worker *w = ctx;
	struct stream_conn *c = stream_get(w->streams, listener_fd);

	/* A connection's fd stands for it (turn_on_stream). */
	if (c)
		return stream_send(w->streams, c, iov, iovcnt);
	return outq_push(w->out, listener_fd, client, listener, iov, iovcnt);
}

static int io_send_peer(void *ctx, int relay_fd, const struct sockaddr_storage *peer,
			const void *buf, size_t len)
{
	struct worker *w = ctx;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return outq_push(w->out, relay_fd, peer, NULL, &iov, 1);
}

static int io_random(void *ctx, void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static time_t io_wall_clock(void *ctx)
{
	return time(NULL);
}

/* ---- alloc_hooks: relay sockets and the fast path follow TURN state ---------- */

static void on_relay(struct ev_src *s, uint32_t events);
static void on_listener(struct ev_src *s, uint32_t events);
static void adopt_conn(void *ctx, int fd, const uint8_t *rec, size_t len);

static void hook_alloc_up(void *ctx, struct allocation *a)
{
	struct worker *w = ctx;
	struct relay_src *srcs = calloc(a->nrelays, sizeof(*srcs));

	a->user = srcs;
	for (unsigned i = 0; srcs && i < a->nrelays; i++) {
		int rc = ev_add(w->loop, &srcs[i].ev, a->relays[i].fd, on_relay, w);

		srcs[i].alloc = a;
		if (rc)
			log_warn("epoll add relay: %s", strerror(-rc));
	}
	offload_alloc_up(w->env.offload, a);
	journal_put(w->journal, a, turn_allocs(w->turn));
	if (!srcs)
		log_err("out of memory: allocation's relay gets no events");
	if (a->stream) {
		/* The allocation lives and dies with its connection. */
		struct stream_conn *c = stream_get(w->streams, a->listener_fd);
		if (c) {
			((struct conn_src *)c->user)->alloc = a;
			stream_hold(w->streams, c, true, clock_mono_s());
		}
	}
}

static void free_relay_srcs(struct ev_src *s)
{
	free(s);	/* the array's first */
}

static void hook_alloc_down(void *ctx, struct allocation *a)
{
	struct worker *w = ctx;
	struct relay_src *srcs = a->user;

	/* Its bindings have left the maps (chan_down): their XDP counts are in. */
	acct_end(w->env.acct, a, w->env.cfg->realm, clock_mono_s(), time(NULL));
	journal_end(w->journal, a, turn_allocs(w->turn));
	/* Queued datagrams go out before their socket closes: its fd number
	 * could be reused by a new relay in this same batch. */
	flush_out(w);
	offload_alloc_down(w->env.offload, a);
	/* Backwards: the first, whose release frees the array, goes last. */
	for (unsigned i = a->nrelays; i-- > 0;) {
		udp_relay_close(&w->ports, a->relays[i].fd, &a->relays[i].addr);
		if (srcs)
			ev_retire(w->loop, &srcs[i].ev, i ? NULL : free_relay_srcs);
	}
	if (a->stream) {
		struct stream_conn *c = stream_get(w->streams, a->listener_fd);
		if (c) {
			((struct conn_src *)c->user)->alloc = NULL;
			stream_hold(w->streams, c, false, clock_mono_s());
		}
	}
}

/* Every change of an allocation's state is journalled (whole: a record is
 * the allocation as it now is); one ending records only its end. */
static void journal_change(struct worker *w, const struct allocation *a)
{
	journal_put(w->journal, a, turn_allocs(w->turn));
}

static bool hook_perm_up(void *ctx, struct allocation *a, const struct perm *p)
{
	struct worker *w = ctx;
	bool in_kernel = offload_perm(w->env.offload, a, p, true);

	journal_change(w, a);
	return in_kernel;
}

static void hook_perm_down(void *ctx, struct allocation *a, const struct perm *p)
{
	struct worker *w = ctx;

	offload_perm(w->env.offload, a, p, false);
	journal_change(w, a);
}

static bool hook_chan_up(void *ctx, struct allocation *a, struct chan *c)
{
	struct worker *w = ctx;
	bool in_kernel = offload_chan_up(w->env.offload, a, c);

	journal_change(w, a);
	return in_kernel;
}

static void hook_chan_down(void *ctx, struct allocation *a, struct chan *c)
{
	struct worker *w = ctx;

	offload_chan_down(w->env.offload, a, c);
	journal_change(w, a);
}

static void hook_perm_refreshed(void *ctx, struct allocation *a, const struct perm *p)
{
	struct worker *w = ctx;

	offload_refreshed(w->env.offload, a, p);
	journal_change(w, a);
}

static void hook_alloc_refreshed(void *ctx, struct allocation *a)
{
	struct worker *w = ctx;

	offload_refreshed(w->env.offload, a, NULL);
	journal_change(w, a);
}

/* A journalled allocation, adopted by the relay thread whose listener
 * serves its listener address (SO_REUSEPORT hashes a client to the same
 * thread of a daemon with as many). */
static void adopt(void *ctx, const struct allocation *rec)
{
	struct worker *w = ctx;
	char c[ADDR_STRLEN];
	int fd = -1, err;

	for (unsigned i = 0; i < w->nlisteners && fd < 0; i++) {
		const struct listener *l = w->listeners[i];

		if (l->ev.fn == on_listener && l->local.ss_family == rec->listener.ss_family &&
		    addr_port(&l->local) == addr_port(&rec->listener) &&
		    (addr_is_any(&l->local) || addr_eq(&l->local, &rec->listener)))
			fd = l->ev.fd;
	}
	err = fd < 0 ? -EADDRNOTAVAIL : turn_adopt(w->turn, rec, fd, clock_mono_s());
	if (err && err != -ESTALE)
		log_warn("journal: allocation %016llx of %s from %s not adopted: %s",
			 (unsigned long long)rec->id, rec->username,
			 addr_str(&rec->client, true, c, sizeof(c)), strerror(-err));
}

/* ---- events ------------------------------------------------------------------ */

static void on_listener(struct ev_src *s, uint32_t events)
{
	struct worker *w = s->data;
	struct listener *l = (struct listener *)s;
	struct udp_rx *rx = w->rx;
	time_t now = clock_mono_s();

	(void)events;
	for (int round = 0; round < RX_ROUNDS; round++) {
		int n = udp_recv(rx, s->fd, 0);

		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct sockaddr_storage dst;
			size_t len = rx->msgs[i].msg_len, seg = udp_rx_meta(rx, i, &l->local, &dst);

			if (!seg)
				seg = len;
			/* Once at least: an empty datagram is the codec's to reject. */
			for (size_t off = 0, dlen; off < len || !off; off += dlen) {
				dlen = len - off < seg ? len - off : seg;
				turn_on_client(w->turn, s->fd, &rx->from[i], &dst, rx->bufs[i] + off,
					       dlen, now);
				if (!dlen)
					break;
			}
		}
		flush_out(w);
		if (n < UDP_RX_BATCH)
			return;
	}
}

static void on_relay(struct ev_src *s, uint32_t events)
{
	struct worker *w = s->data;
	struct allocation *a = ((struct relay_src *)s)->alloc;
	struct udp_rx *rx = w->rx;
	time_t now = clock_mono_s();

	(void)events;
	/* s->fd turns -1 when a datagram's handling deleted the allocation. */
	for (int round = 0; round < RX_ROUNDS && s->fd >= 0; round++) {
		int n = udp_recv(rx, s->fd, TURN_PEER_HEADROOM);

		if (n <= 0)
			return;
		for (int i = 0; i < n && s->fd >= 0; i++) {
			size_t len = rx->msgs[i].msg_len, seg = udp_rx_meta(rx, i, NULL, NULL);
			uint8_t *d = rx->bufs[i] + TURN_PEER_HEADROOM;

			if (!seg)
				seg = len;
			/* A datagram's headroom is the tail of the one before,
			 * already sent (sends copy): turn_on_peer may write it. */
			for (size_t off = 0, dlen; (off < len || !off) && s->fd >= 0; off += dlen) {
				dlen = len - off < seg ? len - off : seg;
				turn_on_peer(w->turn, a, &rx->from[i], d + off, dlen, now);
				if (!dlen)
					break;
			}
		}
		flush_out(w);
		if (n < UDP_RX_BATCH)
			return;
	}
}

static void on_conn_msg(void *arg, struct stream_conn *c, const uint8_t *msg, size_t len)
{
	struct worker *w = arg;

	turn_on_stream(w->turn, c->fd, stream_is_tls(c), &c->peer, &c->local, msg, len,
		       clock_mono_s());
}

static void on_conn(struct ev_src *s, uint32_t events)
{
	struct worker *w = s->data;

	(void)events;
	stream_event(w->streams, ((struct conn_src *)s)->conn, on_conn_msg, w);
	flush_out(w);
}

/* A connection the worker serves from now on: its event source, or NULL
 * (then it is closed). */
static struct conn_src *conn_watch(struct worker *w, struct stream_conn *c)
{
	struct conn_src *cs = calloc(1, sizeof(*cs));

	if (cs) {
		ev_src_init(&cs->ev, c->fd, on_conn, w);
		cs->conn = c;
		c->user = cs;
	}
	if (!cs || stream_watch(w->streams, c)) {
		stream_close(w->streams, c);
		free(cs);
		return NULL;
	}
	return cs;
}

static void on_stream_listener(struct ev_src *s, uint32_t events)
{
	struct worker *w = s->data;
	struct listener *l = (struct listener *)s;
	time_t now = clock_mono_s();

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct stream_conn *c;
		int rc = stream_accept(w->streams, s->fd, l->tls ? w->env.tls : NULL, now, &c);

		if (rc == -EDQUOT)
			continue;	/* over max-tcp-connections: closed, counted */
		if (rc == -EAGAIN)
			return;
		if (rc) {
			log_debug("accept: %s", strerror(-rc));
			return;
		}
		conn_watch(w, c);
	}
}

static void on_timer(struct ev_src *s, uint32_t events)
{
	struct worker *w = s->data;
	uint64_t ticks;

	(void)events;
	if (read(s->fd, &ticks, sizeof(ticks)) > 0) {
		turn_tick(w->turn, clock_mono_s());
		stream_expire(w->streams, clock_mono_s());
	}
	flush_out(w);
}

static void on_wake(struct ev_src *s, uint32_t events)
{
	struct worker *w = s->data;
	uint64_t v;

	(void)events;
	if (read(s->fd, &v, sizeof(v)) < 0)
		return;
	if (w->new_auth) {
		turn_replace_auth(w->turn, w->new_auth, w->new_pol);
		w->new_auth = NULL;
		w->new_pol = NULL;
	}
	if (atomic_exchange(&w->tick_now, false)) {
		turn_tick(w->turn, clock_mono_s());
		flush_out(w);
	}
}

/* Closes the doomed connections, deleting their allocations (RFC 8656 §3.1:
 * an allocation over TCP or TLS lives only as long as its connection). */
static void reap_conns(struct worker *w)
{
	struct stream_conn *c;

	while ((c = stream_next_doomed(w->streams))) {
		struct conn_src *cs = c->user;

		if (cs && cs->alloc)
			alloc_delete(turn_allocs(w->turn), cs->alloc, ALLOC_END_CLOSED);	/* clears cs->alloc */
		stream_close(w->streams, c);
		free(cs);
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load_explicit(&w->stopping, memory_order_relaxed)) {
		int n = ev_wait(w->loop, -1);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			log_err("worker %u: epoll_wait: %s", w->id, strerror(-n));
			break;
		}
		pthread_mutex_lock(&w->lock);
		ev_dispatch(w->loop);
		/* After the batch: no event of it can still point at them. */
		reap_conns(w);
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

static void wake(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->wake.fd, &one, sizeof(one)) < 0)
		log_warn("worker %u: wake: %s", w->id, strerror(errno));
}

/* ---- listeners ----------------------------------------------------------------- */

static int open_listener(struct worker *w, const struct sockaddr_storage *ip, int type,
			 bool tls, char *err, size_t errlen)
{
	const struct config *cfg = w->env.cfg;
	const char *proto = tls ? "tls" : type == SOCK_STREAM ? "tcp" : "udp";
	struct listener *l = calloc(1, sizeof(*l));
	char buf[ADDR_STRLEN];
	int fd, rc;

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->local = *ip;
	l->tls = tls;
	addr_set_port(&l->local, tls ? cfg->tls_port : cfg->listen_port);
	fd = handover_listener(w->env.handover, w->id, type, tls, &l->local);
	if (fd < 0)
		fd = type == SOCK_STREAM ? stream_listen(&l->local) : udp_listen(&l->local);
	rc = fd < 0 ? fd : ev_add(w->loop, &l->ev, fd,
				   type == SOCK_STREAM ? on_stream_listener : on_listener, w);
	addr_str(&l->local, true, buf, sizeof(buf));
	if (rc) {
		snprintf(err, errlen, "listen on %s/%s: %s", buf, proto, strerror(-rc));
		if (fd >= 0)
			close(fd);
		free(l);
		return rc;
	}
	w->listeners[w->nlisteners++] = l;
	if (w->id == 0)
		log_info("listening on %s/%s", buf, proto);
	return 0;
}

/* UDP, and TCP and TLS as configured, on one address. */
static int open_listeners(struct worker *w, const struct sockaddr_storage *ip, char *err,
			  size_t errlen)
{
	int rc = w->env.cfg->no_udp ? 0 : open_listener(w, ip, SOCK_DGRAM, false, err, errlen);

	if (!rc && !w->env.cfg->no_tcp)
		rc = open_listener(w, ip, SOCK_STREAM, false, err, errlen);
	if (!rc && w->env.tls)
		rc = open_listener(w, ip, SOCK_STREAM, true, err, errlen);
	return rc;
}

/* ---- lifecycle ----------------------------------------------------------------- */

void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (w->streams) {
		stream_doom_all(w->streams);
		reap_conns(w);
	}
	turn_free(w->turn);	/* deletes allocations: relays and map entries */
	journal_close(w->journal);
	stream_set_free(w->streams);
	for (unsigned i = 0; i < w->nlisteners; i++) {
		close(w->listeners[i]->ev.fd);
		free(w->listeners[i]);
	}
	if (w->timer.fd >= 0)
		close(w->timer.fd);
	if (w->wake.fd >= 0)
		close(w->wake.fd);
	ev_free(w->loop);	/* releases the relay sources turn_free retired */
	auth_free(w->new_auth);
	policy_free(w->new_pol);
	pthread_mutex_destroy(&w->lock);
	udp_rx_free(w->rx);
	outq_free(w->out);
	SSL_CTX_free(w->env.tls);
	free(w);
}

int worker_new(const struct worker_env *env, unsigned id, struct auth *auth,
	       struct policy *pol, struct worker **out, char *err, size_t errlen)
{
	const struct config *cfg = env->cfg;
	struct worker *w = calloc(1, sizeof(*w));
	struct turn_cfg tc = {
		.limits = {
			.user_quota = cfg->user_quota,
			.total_quota = cfg->total_quota,
			.max_perms = cfg->max_perms,
			.max_channels = cfg->max_channels,
			.permission_lifetime = cfg->permission_lifetime,
			.channel_lifetime = cfg->channel_lifetime,
		},
		.max_lifetime = cfg->max_lifetime,
		.default_lifetime = cfg->default_lifetime,
		.host = env->host,
		.software = cfg->software,
		.no_software = cfg->no_software,
		.alternates = env->alternates,
		.nalternates = env->nalternates,
		.tls_alternates = env->tls_alternates,
		.ntls_alternates = env->ntls_alternates,
		.unauth_rate = cfg->unauth_rate,
		.unauth_burst = cfg->unauth_burst,
	};
	struct turn_io io = {
		.ctx = w,
		.relay_open = io_relay_open,
		.relay_close = io_relay_close,
		.send_client = io_send_client,
		.send_peer = io_send_peer,
		.random = io_random,
		.wall_clock = io_wall_clock,
	};
	struct alloc_hooks hooks = {
		.ctx = w,
		.alloc_up = hook_alloc_up,
		.alloc_down = hook_alloc_down,
		.perm_up = hook_perm_up,
		.perm_down = hook_perm_down,
		.chan_up = hook_chan_up,
		.chan_down = hook_chan_down,
		.perm_refreshed = hook_perm_refreshed,
		.alloc_refreshed = hook_alloc_refreshed,
	};
	struct itimerspec its = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };
	struct stream_limits sl = {
		.max_conns = cfg->max_tcp_conns,
		.max_pending_per_ip = cfg->tcp_pending_per_ip,
		.idle_timeout = cfg->tcp_idle_timeout,
		.handshake_timeout = cfg->tls_handshake_timeout,
		.max_sndbuf = STREAM_MAX_SNDBUF,
	};
	int rc = 0, tfd, efd;

	if (!w) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->env = *env;
	w->id = id;
	if (w->env.tls)
		SSL_CTX_up_ref(w->env.tls);	/* its own: worker_replace_tls swaps it */
	pthread_mutex_init(&w->lock, NULL);
	w->timer.fd = w->wake.fd = -1;
	/* Workers walk the port range from different places. */
	w->ports = (struct udp_ports){ cfg, env->host,
				       (uint16_t)(clock_mono_s() * 7919 + id * 4099) };
	w->loop = ev_new();
	w->streams = w->loop ? stream_set_new(&sl, ev_fd(w->loop)) : NULL;
	w->turn = turn_new(&tc, auth, pol, &io, &hooks, env->shared);
	if (!w->turn) {
		auth_free(auth);
		policy_free(pol);
	}
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->rx = udp_rx_new();
	w->out = outq_new();
	if (!w->loop || !w->streams || !w->turn || tfd < 0 || efd < 0 || !w->rx || !w->out ||
	    timerfd_settime(tfd, 0, &its, NULL) || ev_add(w->loop, &w->timer, tfd, on_timer, w) ||
	    ev_add(w->loop, &w->wake, efd, on_wake, w)) {
		snprintf(err, errlen, "worker setup: %s", strerror(errno ? errno : ENOMEM));
		w->timer.fd = tfd;
		w->wake.fd = efd;
		worker_free(w);
		return -ENOMEM;
	}
	if (cfg->nlisten == 0) {
		struct sockaddr_storage any4, any6;
		addr_parse("0.0.0.0", 0, &any4);
		addr_parse("::", 0, &any6);
		rc = open_listeners(w, &any4, err, errlen);
		/* An IPv4-only host still serves IPv4. */
		if (!rc && open_listeners(w, &any6, err, errlen) && id == 0)
			log_warn("%s (IPv6 not served)", err);
	} else {
		for (unsigned i = 0; i < cfg->nlisten && !rc; i++)
			rc = open_listeners(w, &cfg->listen[i], err, errlen);
	}
	if (rc) {
		worker_free(w);
		return rc;
	}
	handover_conns(env->handover, id, adopt_conn, w);
	if (!cfg->no_journal) {
		unsigned before = alloc_count(turn_allocs(w->turn));

		w->journal = journal_open(cfg->journal_dir, id, adopt, w, turn_allocs(w->turn), &rc);
		if (!w->journal)
			log_warn("journal in %s: %s; a restart will not keep this thread's "
				 "allocations", cfg->journal_dir, strerror(-rc));
		else if (alloc_count(turn_allocs(w->turn)) > before)
			log_info("relay thread %u: adopted %u allocations from its journal", id,
				 alloc_count(turn_allocs(w->turn)) - before);
	}
	*out = w;
	return 0;
}

int worker_start(struct worker *w)
{
	return -pthread_create(&w->thread, NULL, worker_run, w);
}

void worker_stop(struct worker *w)
{
	atomic_store_explicit(&w->stopping, true, memory_order_relaxed);
	wake(w);
	pthread_join(w->thread, NULL);
}

void worker_replace_auth(struct worker *w, struct auth *auth, struct policy *pol)
{
	pthread_mutex_lock(&w->lock);
	auth_free(w->new_auth);
	policy_free(w->new_pol);
	w->new_auth = auth;
	w->new_pol = pol;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

void worker_replace_tls(struct worker *w, SSL_CTX *tls)
{
	SSL_CTX *old;

	SSL_CTX_up_ref(tls);
	pthread_mutex_lock(&w->lock);
	old = w->env.tls;
	w->env.tls = tls;
	pthread_mutex_unlock(&w->lock);
	SSL_CTX_free(old);	/* connections accepted with it hold their own */
}

void worker_tick_now(struct worker *w)
{
	atomic_store(&w->tick_now, true);
	wake(w);
}

static void relay_fds(void *ctx, struct allocation *a)
{
	for (unsigned i = 0; i < a->nrelays; i++)
		handover_out_relay(ctx, &a->relays[i].addr, a->relays[i].fd);
}

struct conns_out {
	struct worker *w;
	struct handover_out *o;
};

/* A plain TCP connection with nothing in its buffers passes, with its
 * allocation; the others close when this process exits. */
static void conn_fd(void *ctx, struct stream_conn *c)
{
	struct conns_out *co = ctx;
	struct conn_src *cs = c->user;
	static uint8_t rec[1 << 16];
	size_t n = 0;

	if (!stream_passable(c) || !cs)
		return;
	if (cs->alloc && !(n = snap_encode_alloc(cs->alloc, rec, sizeof(rec))))
		return;
	handover_out_conn(co->o, co->w->id, c->fd, rec, n);
}

void worker_handover_fds(struct worker *w, struct handover_out *o)
{
	for (unsigned i = 0; i < w->nlisteners; i++) {
		const struct listener *l = w->listeners[i];

		handover_out_listener(o, w->id, l->ev.fn == on_listener ? SOCK_DGRAM : SOCK_STREAM,
				      l->tls, &l->local, l->ev.fd);
	}
	alloc_foreach(turn_allocs(w->turn), relay_fds, o);
	stream_foreach(w->streams, conn_fd, &(struct conns_out){ w, o });
}

/* A connection the daemon before us passed, with its allocation if any. */
static void adopt_conn(void *ctx, int fd, const uint8_t *rec, size_t len)
{
	struct worker *w = ctx;
	struct stream_conn *c;
	struct snap_rec r;
	int err;

	if (stream_adopt(w->streams, fd, clock_mono_s(), &c) || !conn_watch(w, c))
		return;
	if (!len || snap_decode(rec, len, &r) <= 0 || r.type != SNAP_ALLOC)
		return;
	if ((err = turn_adopt(w->turn, r.alloc, c->fd, clock_mono_s())))
		log_warn("restart: the allocation of a TCP client (%s) not taken over: %s",
			 r.alloc->username, strerror(-err));
	snap_free(&r);
}

void worker_lock(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
}

void worker_unlock(struct worker *w)
{
	pthread_mutex_unlock(&w->lock);
}

struct turn_server *worker_turn(struct worker *w)
{
	return w->turn;
}

void worker_add_counts(const struct worker *w, struct metrics_snapshot *m)
{
	const struct stream_stats *st = stream_stats(w->streams);

	m->send_drops += outq_drops(w->out);
	m->tcp_connections += stream_count(w->streams);
	m->tcp.accepted += st->accepted;
	m->tcp.rejected += st->rejected;
	m->tcp.bad_framing += st->bad_framing;
	m->tcp.overflow += st->overflow;
	m->tcp.timeouts += st->timeouts;
	m->tcp.tls_failures += st->tls_failures;
}
