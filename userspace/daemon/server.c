#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <linux/rtnetlink.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/netlink.h"
#include "common/sock.h"
#include "turn/auth.h"
#include "turn/hostaddr.h"
#include "turn/policy.h"
#include "turn/turn.h"
#include "daemon/offload.h"
#include "daemon/outq.h"
#include "daemon/server.h"
#include "daemon/stats.h"
#include "daemon/stream.h"

#define BATCH 32
#define RX_SLOT 65536		/* a UDP GRO train: <= 64 KiB */
/* Socket buffers: a listener takes every client of its worker and must
 * ride out the worker's pauses at full rate; a relay socket carries what
 * one allocation's peers send. */
#define LISTENER_BUF (32 << 20)
#define RELAY_BUF (4 << 20)
#define MAX_EVENTS 64

#define MAX_WORKERS 64
#define STREAM_MAX_SNDBUF (256 * 1024)	/* per TCP/TLS client that does not read */
#define ACCEPT_BATCH 64

enum src_kind { SRC_LISTENER, SRC_RELAY, SRC_SIGNAL, SRC_TIMER, SRC_NETLINK, SRC_METRICS,
		SRC_WAKE, SRC_STREAM_LISTENER, SRC_CONN, SRC_HOSTADDR };

/* What an epoll event points at. Relay sources die with their allocation,
 * possibly in the middle of an epoll batch: they are marked dead and freed
 * after the batch, so a later event of the same batch sees fd == -1 instead
 * of freed memory (the stale-event problem nginx guards against). */
struct src {
	enum src_kind kind;
	int fd;
	struct allocation *alloc;	/* relays; connections: theirs, or NULL */
	struct sockaddr_storage local;	/* listeners: bound address */
	struct src *next_dead;
	bool tls;			/* stream listeners */
	struct stream_conn *conn;	/* connections (freed only between batches) */
};

/* One relay thread. Each has its own listener sockets on the same
 * addresses (SO_REUSEPORT: the kernel hashes a client's 5-tuple to one of
 * them, so all of a client's traffic meets the same worker), its own TURN
 * state and relay sockets. Shared between workers: the configuration, the
 * quota counts and reservations (struct turn_shared), the fast path
 * (through struct offload). */
struct worker {
	struct server *srv;
	unsigned id;
	pthread_t thread;
	/* Held while the worker handles events: the metrics endpoint takes it
	 * to read this worker's state between two batches. */
	pthread_mutex_t lock;
	int epfd;
	struct turn_server *turn;
	struct src *listeners[CONFIG_MAX_ADDRS * 2 * 3];	/* UDP, TCP, TLS */
	unsigned nlisteners;
	struct stream_set *streams;	/* TCP and TLS client connections */
	struct src timer, wake;
	struct src *dead;
	uint16_t port_cursor;
	/* SIGHUP: new credentials and policy, handed over under lock */
	struct auth *new_auth;
	struct policy *new_pol;
	/* recvmmsg state, reused for every batch. A slot holds one datagram,
	 * or with UDP GRO a train of them (up to 64 KiB; pages the kernel
	 * never fills are never touched). */
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct sockaddr_storage from[BATCH];
	uint8_t (*bufs)[RX_SLOT];
	uint8_t ctrl[BATCH][96];
	struct outq *out;		/* what a batch sends */
};

struct server {
	const struct config *cfg;
	SSL_CTX *tls;			/* NULL: no TLS listeners */
	struct offload *offload;	/* TURN state -> the fast path (or nothing) */
	struct turn_shared *shared;
	struct hostaddr *host;		/* this host's addresses, our relay ports */
	struct mnl_socket *addr_nl;	/* address changes, for host */
	struct worker *workers[MAX_WORKERS];
	unsigned nworkers;
	atomic_bool stopping;		/* set by the main thread, read by workers */
	/* the main thread's loop: signals, netlink, metrics */
	int epfd;
	struct src sig, netlink, metrics_src, hostaddr_src;
	struct stats *metrics;
	server_reload_fn reload;
};

static int epoll_add(int epfd, struct src *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) ? -errno : 0;
}

/* Socket buffers, and UDP GRO: a flow's datagrams that arrive together
 * come up as one train (one trip through the receive path and one slot of
 * recvmmsg for up to 64); no-op where the kernel or device has no GRO. */
static void sock_setup(int fd, int sz)
{
	int one = 1;

	setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	sock_buffers(fd, sz);
}

/* ---- turn_io ----------------------------------------------------------------- */

static const struct sockaddr_storage *relay_local(const struct server *srv, int family)
{
	for (unsigned i = 0; i < srv->cfg->nrelay; i++)
		if (srv->cfg->relay[i].ss_family == family)
			return &srv->cfg->relay[i];
	return NULL;
}

/* external-ip: "public" alone maps every relay; "public/private" maps one. */
static void advertised(const struct server *srv, const struct sockaddr_storage *local,
		       struct sockaddr_storage *adv)
{
	*adv = *local;
	for (unsigned i = 0; i < srv->cfg->next; i++) {
		const struct sockaddr_storage *priv = &srv->cfg->ext_private[i];
		const struct sockaddr_storage *pub = &srv->cfg->ext_public[i];
		if (pub->ss_family != local->ss_family)
			continue;
		if (priv->ss_family == AF_UNSPEC || addr_ip_eq(priv, local)) {
			*adv = *pub;
			addr_set_port(adv, addr_port(local));
			return;
		}
	}
}

static int try_bind(int family, const struct sockaddr_storage *ip, uint16_t port, bool df,
		    struct sockaddr_storage *addr)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	*addr = *ip;
	addr_set_port(addr, port);
	if (bind(fd, (struct sockaddr *)addr, addr_len(addr))) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (df && family == AF_INET) {
		int v = IP_PMTUDISC_DO;
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
	}
	sock_setup(fd, RELAY_BUF);
	return fd;
}

static int io_relay_open(void *ctx, int family, uint16_t port, bool even, bool df,
			 struct sockaddr_storage *addr, struct sockaddr_storage *adv)
{
	struct worker *w = ctx;
	struct server *srv = w->srv;
	const struct sockaddr_storage *ip = relay_local(srv, family);
	unsigned lo = srv->cfg->min_port, hi = srv->cfg->max_port, span = hi - lo + 1;
	int fd = -EADDRINUSE;

	if (!ip)
		return -EAFNOSUPPORT;
	if (port) {
		if (port < lo || port > hi)
			return -EADDRINUSE;
		fd = try_bind(family, ip, port, df, addr);
	} else {
		/* Walk the range from a moving cursor: ports are handed out
		 * round-robin, so a freed port is not reused at once. */
		for (unsigned i = 0; i < span; i++) {
			uint16_t p = (uint16_t)(lo + (w->port_cursor++ % span));
			if (even && (p & 1))
				continue;
			fd = try_bind(family, ip, p, df, addr);
			if (fd >= 0 || fd != -EADDRINUSE)
				break;
		}
	}
	if (fd >= 0) {
		advertised(srv, addr, adv);
		hostaddr_relay_bound(srv->host, addr);
	}
	return fd;
}

/* Closes a relay socket, which no longer holds its port for relay to relay. */
static void relay_fd_close(struct server *srv, int fd, const struct sockaddr_storage *addr)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	if (!addr && !getsockname(fd, (struct sockaddr *)&a, &len)) {
		addr_canon(&a);
		addr = &a;
	}
	if (addr)
		hostaddr_relay_closed(srv->host, addr);
	close(fd);
}

static void io_relay_close(void *ctx, int fd)
{
	struct worker *w = ctx;

	outq_flush(w->out);
	relay_fd_close(w->srv, fd, NULL);
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

/* ---- alloc_hooks: relay sockets and the fast path follow TURN state ---------- */

static void hook_alloc_up(void *ctx, struct allocation *a)
{
	struct worker *w = ctx;
	struct server *srv = w->srv;
	struct src *srcs = calloc(a->nrelays, sizeof(*srcs));

	a->user = srcs;
	for (unsigned i = 0; i < a->nrelays; i++) {
		if (srcs) {
			srcs[i].kind = SRC_RELAY;
			srcs[i].fd = a->relays[i].fd;
			srcs[i].alloc = a;
			if (epoll_add(w->epfd, &srcs[i]))
				log_warn("epoll add relay: %s", strerror(errno));
		}
	}
	offload_alloc_up(srv->offload, a);
	if (!srcs)
		log_err("out of memory: allocation's relay gets no events");
	if (a->stream) {
		/* The allocation lives and dies with its connection. */
		struct stream_conn *c = stream_get(w->streams, a->listener_fd);
		if (c) {
			((struct src *)c->user)->alloc = a;
			stream_hold(w->streams, c, true, clock_mono_s());
		}
	}
}

static void hook_alloc_down(void *ctx, struct allocation *a)
{
	struct worker *w = ctx;
	struct server *srv = w->srv;
	struct src *srcs = a->user;

	/* Queued datagrams go out before their socket closes: its fd number
	 * could be reused by a new relay in this same batch. */
	outq_flush(w->out);
	offload_alloc_down(srv->offload, a);
	for (unsigned i = 0; i < a->nrelays; i++) {
		relay_fd_close(srv, a->relays[i].fd, &a->relays[i].addr);	/* leaves epoll too */
		if (srcs)
			srcs[i].fd = -1;
	}
	if (srcs) {
		srcs[0].next_dead = w->dead;
		w->dead = srcs;
	}
	if (a->stream) {
		struct stream_conn *c = stream_get(w->streams, a->listener_fd);
		if (c) {
			((struct src *)c->user)->alloc = NULL;
			stream_hold(w->streams, c, false, clock_mono_s());
		}
	}
}

static bool hook_perm_up(void *ctx, struct allocation *a, const struct perm *p)
{
	return offload_perm(((struct worker *)ctx)->srv->offload, a, p, true);
}

static void hook_perm_down(void *ctx, struct allocation *a, const struct perm *p)
{
	offload_perm(((struct worker *)ctx)->srv->offload, a, p, false);
}

static bool hook_chan_up(void *ctx, struct allocation *a, struct chan *c)
{
	return offload_chan_up(((struct worker *)ctx)->srv->offload, a, c);
}

static void hook_chan_down(void *ctx, struct allocation *a, struct chan *c)
{
	offload_chan_down(((struct worker *)ctx)->srv->offload, a, c);
}

/* ---- sockets ----------------------------------------------------------------------- */

static int open_listener(struct worker *w, const struct sockaddr_storage *ip, char *err,
			 size_t errlen)
{
	struct sockaddr_storage a = *ip;
	char buf[ADDR_STRLEN];
	int one = 1, fd, rc;
	struct src *s = calloc(1, sizeof(*s));

	addr_set_port(&a, w->srv->cfg->listen_port);
	fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!s || fd < 0)
		goto fail;
	/* Every worker binds the same address: the kernel spreads clients. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (a.ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)))
		goto fail;
	sock_setup(fd, LISTENER_BUF);
	s->kind = SRC_LISTENER;
	s->fd = fd;
	s->local = a;
	if (epoll_add(w->epfd, s))
		goto fail;
	w->listeners[w->nlisteners++] = s;
	if (w->id == 0)
		log_info("listening on %s/udp", addr_str(&a, true, buf, sizeof(buf)));
	return 0;
fail:
	rc = -errno;
	snprintf(err, errlen, "listen on %s: %s", addr_str(&a, true, buf, sizeof(buf)),
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	free(s);
	return rc;
}

static int open_stream_listener(struct worker *w, const struct sockaddr_storage *ip, bool tls,
				char *err, size_t errlen)
{
	struct sockaddr_storage a = *ip;
	char buf[ADDR_STRLEN];
	const char *proto = tls ? "tls" : "tcp";
	struct src *s = calloc(1, sizeof(*s));
	int fd, rc;

	addr_set_port(&a, tls ? w->srv->cfg->tls_port : w->srv->cfg->listen_port);
	fd = s ? stream_listen(&a) : -ENOMEM;
	rc = fd < 0 ? fd : 0;
	if (!rc) {
		s->kind = SRC_STREAM_LISTENER;
		s->fd = fd;
		s->local = a;
		s->tls = tls;
		rc = epoll_add(w->epfd, s);
	}
	if (rc) {
		snprintf(err, errlen, "listen on %s/%s: %s", addr_str(&a, true, buf, sizeof(buf)),
			 proto, strerror(-rc));
		if (fd >= 0)
			close(fd);
		free(s);
		return rc;
	}
	w->listeners[w->nlisteners++] = s;
	if (w->id == 0)
		log_info("listening on %s/%s", addr_str(&a, true, buf, sizeof(buf)), proto);
	return 0;
}

/* UDP, and TCP and TLS as configured, on one address. */
static int open_listeners(struct worker *w, const struct sockaddr_storage *ip, char *err,
			  size_t errlen)
{
	int rc = open_listener(w, ip, err, errlen);

	if (!rc && !w->srv->cfg->no_tcp)
		rc = open_stream_listener(w, ip, false, err, errlen);
	if (!rc && w->srv->tls)
		rc = open_stream_listener(w, ip, true, err, errlen);
	return rc;
}

/* Closes the doomed connections, deleting their allocations (RFC 8656 §3.1:
 * an allocation over TCP or TLS lives only as long as its connection). */
static void reap_conns(struct worker *w)
{
	struct stream_conn *c;

	while ((c = stream_next_doomed(w->streams))) {
		struct src *s = c->user;

		if (s && s->alloc)
			alloc_delete(turn_allocs(w->turn), s->alloc);	/* clears s->alloc */
		stream_close(w->streams, c);
		free(s);
	}
}

static void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (w->streams) {
		stream_doom_all(w->streams);
		reap_conns(w);
	}
	turn_free(w->turn);	/* deletes allocations: relays and map entries */
	while (w->dead) {
		struct src *d = w->dead;
		w->dead = d->next_dead;
		free(d);
	}
	for (unsigned i = 0; i < w->nlisteners; i++) {
		close(w->listeners[i]->fd);
		free(w->listeners[i]);
	}
	stream_set_free(w->streams);
	if (w->timer.fd > 0)
		close(w->timer.fd);
	if (w->wake.fd > 0)
		close(w->wake.fd);
	if (w->epfd >= 0)
		close(w->epfd);
	auth_free(w->new_auth);
	policy_free(w->new_pol);
	pthread_mutex_destroy(&w->lock);
	free(w->bufs);
	outq_free(w->out);
	free(w);
}

static int worker_new(struct server *srv, unsigned id, struct auth *auth, struct policy *pol,
		      struct worker **out, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
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
		.host = srv->host,
		.software = cfg->software,
		.unauth_rate = cfg->unauth_rate,
		.unauth_burst = cfg->unauth_burst,
	};
	struct turn_io io = {
		.relay_open = io_relay_open,
		.relay_close = io_relay_close,
		.send_client = io_send_client,
		.send_peer = io_send_peer,
	};
	struct alloc_hooks hooks = {
		.alloc_up = hook_alloc_up,
		.alloc_down = hook_alloc_down,
		.perm_up = hook_perm_up,
		.perm_down = hook_perm_down,
		.chan_up = hook_chan_up,
		.chan_down = hook_chan_down,
	};
	struct itimerspec its = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };
	struct stream_limits sl = {
		.max_conns = cfg->max_tcp_conns,
		.max_pending_per_ip = cfg->tcp_pending_per_ip,
		.idle_timeout = cfg->tcp_idle_timeout,
		.handshake_timeout = cfg->tls_handshake_timeout,
		.max_sndbuf = STREAM_MAX_SNDBUF,
	};
	int rc = 0;

	if (!w) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->srv = srv;
	w->id = id;
	pthread_mutex_init(&w->lock, NULL);
	/* Workers walk the port range from different places. */
	w->port_cursor = (uint16_t)(clock_mono_s() * 7919 + id * 4099);
	io.ctx = w;
	hooks.ctx = w;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->streams = w->epfd >= 0 ? stream_set_new(&sl, w->epfd) : NULL;
	w->turn = turn_new(&tc, auth, pol, &io, &hooks, srv->shared);
	if (!w->turn) {
		auth_free(auth);
		policy_free(pol);
	}
	w->timer.kind = SRC_TIMER;
	w->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	w->wake.kind = SRC_WAKE;
	w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->bufs = calloc(BATCH, sizeof(*w->bufs));
	w->out = outq_new();
	if (w->epfd < 0 || !w->streams || !w->turn || w->timer.fd < 0 || w->wake.fd < 0 ||
	    !w->bufs || !w->out || timerfd_settime(w->timer.fd, 0, &its, NULL) || epoll_add(w->epfd, &w->timer) ||
	    epoll_add(w->epfd, &w->wake)) {
		snprintf(err, errlen, "worker setup: %s", strerror(errno ? errno : ENOMEM));
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
	*out = w;
	return 0;
}

static void collect(void *ctx, struct metrics_snapshot *m)
{
	struct server *srv = ctx;
	struct turn_server *turns[MAX_WORKERS];

	/* Every worker is held between two batches while its state is read. */
	for (unsigned i = 0; i < srv->nworkers; i++) {
		pthread_mutex_lock(&srv->workers[i]->lock);
		turns[i] = srv->workers[i]->turn;
	}
	stats_collect(m, turns, srv->nworkers);
	offload_snapshot(srv->offload, m);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		const struct worker *w = srv->workers[i];
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
	for (unsigned i = srv->nworkers; i-- > 0;)
		pthread_mutex_unlock(&srv->workers[i]->lock);
}

static unsigned worker_count(const struct config *cfg)
{
	unsigned n = cfg->workers ? cfg->workers : (unsigned)get_nprocs();

	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
}

/* Every TCP/TLS client and every relay is a file descriptor: the soft
 * limit (often 1024) goes up to the hard one. */
/* Binds port/type on ip alone (no SO_REUSEPORT, which would let us join
 * another process's listeners): -EADDRINUSE if someone holds it. */
static int probe_port(const struct sockaddr_storage *ip, uint16_t port, int type)
{
	struct sockaddr_storage a = *ip;
	int one = 1, rc = 0;
	int fd = socket(a.ss_family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;	/* no such family here: open_listeners says so */
	addr_set_port(&a, port);
	if (type == SOCK_STREAM)	/* TIME_WAIT of our own last run is no owner */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)) && errno == EADDRINUSE)
		rc = -EADDRINUSE;
	close(fd);
	return rc;
}

int server_check_ports(const struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ips[CONFIG_MAX_ADDRS];
	unsigned n = cfg->nlisten;
	char buf[ADDR_STRLEN];

	memcpy(ips, cfg->listen, n * sizeof(ips[0]));
	if (!n) {
		addr_parse("0.0.0.0", 0, &ips[n++]);
		addr_parse("::", 0, &ips[n++]);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct { uint16_t port; int type; const char *name; bool on; } l[] = {
			{ cfg->listen_port, SOCK_DGRAM, "udp", true },
			{ cfg->listen_port, SOCK_STREAM, "tcp", !cfg->no_tcp },
			{ cfg->tls_port, SOCK_STREAM, "tls", cfg->cert[0] && !cfg->no_tls },
		};
		for (unsigned k = 0; k < sizeof(l) / sizeof(l[0]); k++) {
			if (!l[k].on || !probe_port(&ips[i], l[k].port, l[k].type))
				continue;
			addr_set_port(&ips[i], l[k].port);
			snprintf(err, errlen, "%s/%s is in use by another process (another xturnd, "
				 "or a TURN server such as coturn's service?)",
				 addr_str(&ips[i], true, buf, sizeof(buf)), l[k].name);
			return -EADDRINUSE;
		}
	}
	return 0;
}

/* This host's addresses: the configured ones (relay, listening, external:
 * a public address behind 1:1 NAT leads back here) and whatever the kernel
 * delivers locally (nl_dump_local). On a dump failure the configured ones
 * still count. Called at start and on every change. */
static void host_refresh(struct server *srv)
{
	const struct config *c = srv->cfg;
	struct hostaddr_net *v;
	struct nl_prefix *loc = NULL;
	size_t nloc = 0;
	unsigned n = 0;
	int err;

	err = nl_dump_local(&loc, &nloc);
	if (err)
		log_warn("this host's addresses: rtnetlink dump failed (%s); only the "
			 "configured ones are kept from peers", strerror(-err));
	v = calloc(CONFIG_MAX_ADDRS * 4 + nloc, sizeof(*v));
	if (!v) {
		free(loc);
		log_warn("this host's addresses: out of memory; the old set stays");
		return;
	}
#define ONE(a) (v[n++] = (struct hostaddr_net){ (a), (a).ss_family == AF_INET ? 32 : 128 })
	for (unsigned i = 0; i < c->nrelay; i++)
		ONE(c->relay[i]);
	for (unsigned i = 0; i < c->nlisten; i++)
		ONE(c->listen[i]);
	for (unsigned i = 0; i < c->next; i++) {
		ONE(c->ext_public[i]);
		if (c->ext_private[i].ss_family != AF_UNSPEC)
			ONE(c->ext_private[i]);
	}
#undef ONE
	for (size_t i = 0; i < nloc; i++)
		v[n++] = (struct hostaddr_net){ loc[i].addr, loc[i].plen };
	free(loc);
	if (hostaddr_set(srv->host, v, n))
		log_warn("this host's addresses: out of memory; the old set stays");
	free(v);
}

static int host_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_prefix p;

	if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR ||
	    nl_parse_local(nlh, &p))
		*(bool *)data = true;
	return MNL_CB_OK;
}

/* Address and route events: the local table is read again when it may have
 * changed (a route of another table, a BGP feed's churn, is no reason). An
 * overrun (ENOBUFS) may have hidden one, so it counts as a change. */
static void host_event(struct server *srv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	bool changed = false;
	ssize_t len;

	for (;;) {
		len = mnl_socket_recvfrom(srv->addr_nl, buf, sizeof(buf));
		if (len < 0 && errno == ENOBUFS) {
			changed = true;
			continue;
		}
		if (len <= 0)
			break;
		mnl_cb_run(buf, (size_t)len, 0, 0, host_msg_cb, &changed);
	}
	if (changed)
		host_refresh(srv);
}

int server_new(struct server **out, const struct config *cfg, struct auth *auth,
	       struct policy *pol, struct fastpath *fp, server_reload_fn reload, char *err,
	       size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));
	unsigned n = worker_count(cfg);
	sigset_t sigs;
	int rc;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	srv->cfg = cfg;
	srv->reload = reload;
	srv->offload = offload_new(fp);
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->sig.fd = srv->netlink.fd = -1;
	srv->shared = turn_shared_new();
	srv->host = hostaddr_new(cfg->relay, cfg->nrelay);
	/* A client's peer may be another client's relayed address as we
	 * advertise it (external-ip): the same relay ports. */
	for (unsigned i = 0; srv->host && i < cfg->nrelay; i++) {
		struct sockaddr_storage adv;

		advertised(srv, &cfg->relay[i], &adv);
		if (!addr_ip_eq(&adv, &cfg->relay[i]) &&
		    hostaddr_alias(srv->host, &adv, &cfg->relay[i]) == -ENOMEM)
			log_warn("external-ip: out of memory");
	}
	if (cfg->cert[0] && !cfg->no_tls &&
	    (rc = stream_tls_new(&srv->tls, cfg->cert, cfg->pkey,
				 cfg->cipher_list[0] ? cfg->cipher_list : NULL, err, errlen))) {
		auth_free(auth);
		policy_free(pol);
		server_free(srv);
		return rc;
	}
	sock_raise_nofile(0);
	if (srv->epfd < 0 || !srv->shared || !srv->host || !srv->offload) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return -ENOMEM;
	}
	/* Subscribed before the dump: no change falls between the two. */
	srv->addr_nl = nl_subscribe(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
				    RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	if (!srv->addr_nl)
		log_warn("this host's addresses: no rtnetlink events (%s); the set is not "
			 "followed", strerror(errno));
	host_refresh(srv);
	/* Worker 0 takes the credentials built by the caller; the others get
	 * their own copies (each worker owns and may replace its own). */
	for (unsigned i = 0; i < n; i++) {
		struct auth *a = auth;
		struct policy *p = pol;
		if (i > 0 && (rc = reload(false, &a, &p))) {
			snprintf(err, errlen, "credentials for worker %u: %s", i, strerror(-rc));
			server_free(srv);
			return rc;
		}
		rc = worker_new(srv, i, a, p, &srv->workers[i], err, errlen);
		if (rc) {
			if (i == 0)
				auth = NULL;
			server_free(srv);
			return rc;
		}
		srv->nworkers++;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	/* Blocked before the threads start, so they inherit the mask and only
	 * the main thread's signalfd sees the signals. */
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	srv->sig.kind = SRC_SIGNAL;
	srv->sig.fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sig.fd < 0 || epoll_add(srv->epfd, &srv->sig)) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		server_free(srv);
		return -errno;
	}
	if (offload_netlink_fd(srv->offload) >= 0) {
		srv->netlink.kind = SRC_NETLINK;
		srv->netlink.fd = offload_netlink_fd(srv->offload);
		epoll_add(srv->epfd, &srv->netlink);
	}
	if (srv->addr_nl) {
		srv->hostaddr_src.kind = SRC_HOSTADDR;
		srv->hostaddr_src.fd = mnl_socket_get_fd(srv->addr_nl);
		epoll_add(srv->epfd, &srv->hostaddr_src);
	}
	rc = stats_open(&srv->metrics, cfg, collect, srv, err, errlen);
	if (rc) {
		server_free(srv);
		return rc;
	}
	if (err[0])
		log_warn("%s", err);
	srv->metrics_src.kind = SRC_METRICS;
	srv->metrics_src.fd = stats_fd(srv->metrics);
	epoll_add(srv->epfd, &srv->metrics_src);
	log_info("%u relay thread%s", n, n > 1 ? "s" : "");
	*out = srv;
	return 0;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_free(srv->workers[i]);
	turn_shared_free(srv->shared);
	hostaddr_free(srv->host);
	if (srv->addr_nl)
		mnl_socket_close(srv->addr_nl);
	SSL_CTX_free(srv->tls);
	stats_close(srv->metrics);
	if (srv->sig.fd >= 0)
		close(srv->sig.fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	offload_free(srv->offload);
	free(srv);
}

/* ---- a worker's loop ------------------------------------------------------------------ */

static int recv_batch(struct worker *w, int fd, size_t headroom)
{
	for (int i = 0; i < BATCH; i++) {
		w->iovs[i].iov_base = w->bufs[i] + headroom;
		w->iovs[i].iov_len = RX_SLOT - headroom;
		memset(&w->msgs[i].msg_hdr, 0, sizeof(w->msgs[i].msg_hdr));
		w->msgs[i].msg_hdr.msg_name = &w->from[i];
		w->msgs[i].msg_hdr.msg_namelen = sizeof(w->from[i]);
		w->msgs[i].msg_hdr.msg_iov = &w->iovs[i];
		w->msgs[i].msg_hdr.msg_iovlen = 1;
		w->msgs[i].msg_hdr.msg_control = w->ctrl[i];
		w->msgs[i].msg_hdr.msg_controllen = sizeof(w->ctrl[i]);
	}
	return recvmmsg(fd, w->msgs, BATCH, MSG_DONTWAIT, NULL);
}

/* What the control messages of a received slot say: the local address it
 * was sent to (IP(V6)_PKTINFO, listeners) and, with UDP GRO, the size of
 * each datagram of the train (0: the slot is one datagram). */
static size_t rx_meta(const struct msghdr *mh, const struct src *l, struct sockaddr_storage *dst)
{
	size_t seg = 0;

	if (dst)
		*dst = l->local;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			seg = v > 0 ? (size_t)v : 0;
		} else if (!dst) {
			continue;
		} else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in *)dst)->sin_addr = pi.ipi_addr;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in6 *)dst)->sin6_addr = pi.ipi6_addr;
		}
	}
	return seg;
}

static void on_listener(struct worker *w, struct src *l)
{
	time_t now = clock_mono_s();
	int n;

	/* Bounded: a flood on one socket cannot starve the others. */
	for (int round = 0; round < 8; round++) {
		n = recv_batch(w, l->fd, 0);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct sockaddr_storage dst;
			size_t len = w->msgs[i].msg_len, seg = rx_meta(&w->msgs[i].msg_hdr, l, &dst);

			addr_canon(&w->from[i]);
			if (!seg)
				seg = len;
			/* Once at least: an empty datagram is the codec's to reject. */
			for (size_t off = 0, dlen; off < len || !off; off += dlen) {
				dlen = len - off < seg ? len - off : seg;
				turn_on_client(w->turn, l->fd, &w->from[i], &dst, w->bufs[i] + off,
					       dlen, now);
				if (!dlen)
					break;
			}
		}
		outq_flush(w->out);
		if (n < BATCH)
			return;
	}
}

static void on_relay(struct worker *w, struct src *r)
{
	time_t now = clock_mono_s();
	int n;

	for (int round = 0; round < 8 && r->fd >= 0; round++) {
		n = recv_batch(w, r->fd, TURN_PEER_HEADROOM);
		if (n <= 0)
			return;
		for (int i = 0; i < n && r->fd >= 0; i++) {
			size_t len = w->msgs[i].msg_len, seg = rx_meta(&w->msgs[i].msg_hdr, r, NULL);
			uint8_t *d = w->bufs[i] + TURN_PEER_HEADROOM;

			addr_canon(&w->from[i]);
			if (!seg)
				seg = len;
			/* A datagram's headroom is the tail of the one before,
			 * already sent (sends copy): turn_on_peer may write it. */
			for (size_t off = 0, dlen; (off < len || !off) && r->fd >= 0; off += dlen) {
				dlen = len - off < seg ? len - off : seg;
				turn_on_peer(w->turn, r->alloc, &w->from[i], d + off, dlen, now);
				if (!dlen)
					break;
			}
		}
		outq_flush(w->out);
		if (n < BATCH)
			return;
	}
}

static void on_conn_msg(void *arg, struct stream_conn *c, const uint8_t *msg, size_t len)
{
	struct worker *w = arg;

	turn_on_stream(w->turn, c->fd, &c->peer, &c->local, msg, len, clock_mono_s());
}

static void on_stream_listener(struct worker *w, struct src *l)
{
	time_t now = clock_mono_s();

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct stream_conn *c;
		struct src *s;
		int rc = stream_accept(w->streams, l->fd, l->tls ? w->srv->tls : NULL, now, &c);

		if (rc == -EDQUOT)
			continue;	/* over max-tcp-connections: closed, counted */
		if (rc == -EAGAIN)
			return;
		if (rc) {
			log_debug("accept: %s", strerror(-rc));
			return;
		}
		s = calloc(1, sizeof(*s));
		if (s) {
			s->kind = SRC_CONN;
			s->fd = c->fd;
			s->conn = c;
			c->user = s;
		}
		if (!s || stream_watch(w->streams, c)) {
			stream_close(w->streams, c);
			free(s);
		}
	}
}

static void on_wake(struct worker *w)
{
	uint64_t v;

	if (read(w->wake.fd, &v, sizeof(v)) < 0)
		return;
	if (w->new_auth) {
		turn_replace_auth(w->turn, w->new_auth, w->new_pol);
		w->new_auth = NULL;
		w->new_pol = NULL;
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];

	while (!atomic_load_explicit(&w->srv->stopping, memory_order_relaxed)) {
		int n = epoll_wait(w->epfd, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("worker %u: epoll_wait: %s", w->id, strerror(errno));
			break;
		}
		pthread_mutex_lock(&w->lock);
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;
			uint64_t ticks;
			switch (s->kind) {
			case SRC_LISTENER:
				on_listener(w, s);
				break;
			case SRC_RELAY:
				if (s->fd >= 0)
					on_relay(w, s);
				break;
			case SRC_STREAM_LISTENER:
				on_stream_listener(w, s);
				break;
			case SRC_CONN:
				stream_event(w->streams, s->conn, on_conn_msg, w);
				outq_flush(w->out);
				break;
			case SRC_TIMER:
				if (read(s->fd, &ticks, sizeof(ticks)) > 0) {
					turn_tick(w->turn, clock_mono_s());
					stream_expire(w->streams, clock_mono_s());
				}
				outq_flush(w->out);
				break;
			case SRC_WAKE:
				on_wake(w);
				break;
			default:
				break;
			}
		}
		/* After the batch: no event of it can still point at them. */
		reap_conns(w);
		while (w->dead) {
			struct src *d = w->dead;
			w->dead = d->next_dead;
			free(d);
		}
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

/* ---- the main thread: signals, netlink, metrics ---------------------------------------- */

static void reload_all(struct server *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = srv->workers[i];
		struct auth *auth;
		struct policy *pol;

		/* Re-read once; the other workers get copies of the same. */
		if (srv->reload(i == 0, &auth, &pol))
			return;	/* the callee logged why; everything stays as it was */
		pthread_mutex_lock(&w->lock);
		auth_free(w->new_auth);
		policy_free(w->new_pol);
		w->new_auth = auth;
		w->new_pol = pol;
		pthread_mutex_unlock(&w->lock);
		wake(w);
	}
	log_info("reloaded users, secrets and peer policy");
}

static bool on_signal(struct server *srv)
{
	struct signalfd_siginfo si;

	while (read(srv->sig.fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload_all(srv);
			continue;
		}
		log_info("%s: shutting down", strsignal((int)si.ssi_signo));
		return false;
	}
	return true;
}

int server_run(struct server *srv)
{
	struct epoll_event evs[8];
	bool running = true;
	unsigned started = 0;
	int rc = 0;

	for (; started < srv->nworkers; started++) {
		if ((rc = pthread_create(&srv->workers[started]->thread, NULL, worker_run,
					 srv->workers[started]))) {
			log_err("relay thread: %s", strerror(rc));
			rc = -rc;
			running = false;
			break;
		}
	}
	while (running) {
		int n = epoll_wait(srv->epfd, evs, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			rc = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;
			switch (s->kind) {
			case SRC_SIGNAL:
				running = on_signal(srv);
				break;
			case SRC_NETLINK:
				offload_netlink_event(srv->offload);
				break;
			case SRC_METRICS:
				stats_event(srv->metrics);
				break;
			case SRC_HOSTADDR:
				host_event(srv);
				break;
			default:
				break;
			}
		}
	}
	atomic_store_explicit(&srv->stopping, true, memory_order_relaxed);
	for (unsigned i = 0; i < started; i++) {
		wake(srv->workers[i]);
		pthread_join(srv->workers[i]->thread, NULL);
	}
	return rc;
}
