#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "addr.h"
#include "fastpath.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "turn.h"

#define BATCH 32
#define PKT_BUF 2048
#define SOCK_BUF (4 << 20)
#define MAX_EVENTS 64

enum src_kind { SRC_LISTENER, SRC_RELAY, SRC_SIGNAL, SRC_TIMER, SRC_NETLINK, SRC_METRICS };

/* What an epoll event points at. Relay sources die with their allocation,
 * possibly in the middle of an epoll batch: they are marked dead and freed
 * after the batch, so a later event of the same batch sees fd == -1 instead
 * of freed memory (the stale-event problem nginx guards against). */
struct src {
	enum src_kind kind;
	int fd;
	struct allocation *alloc;
	struct sockaddr_storage local;	/* listeners: bound address */
	struct src *next_dead;
};

/* Outgoing datagrams of one recv batch, sent with one sendmmsg per run of
 * consecutive datagrams on the same socket. Payloads are copied: callers
 * build responses on their stacks. */
struct outq {
	int fd;				/* socket of the queued datagrams */
	unsigned n;
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct sockaddr_storage to[BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctrl[BATCH];
	uint8_t bufs[BATCH][PKT_BUF];
};

struct server {
	const struct config *cfg;
	struct fastpath *fp;
	struct turn_server *turn;
	int epfd;
	struct src *listeners[CONFIG_MAX_ADDRS * 2];
	unsigned nlisteners;
	struct src sig, timer, netlink, metrics_src;
	struct metrics *metrics;
	struct src *dead;
	uint16_t port_cursor;
	/* recvmmsg state, reused for every batch */
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct sockaddr_storage from[BATCH];
	uint8_t bufs[BATCH][PKT_BUF];
	uint8_t ctrl[BATCH][64];
	uint64_t fp_full;		/* channels left to userspace: map full */
	uint64_t send_drops;		/* datagrams the kernel would not take */
	struct outq out;
};

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int epoll_add(struct server *srv, struct src *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, s->fd, &ev) ? -errno : 0;
}

static void sock_bufs(int fd)
{
	int sz = SOCK_BUF;

	/* FORCE needs CAP_NET_ADMIN; the plain call is the fallback. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
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
	sock_bufs(fd);
	return fd;
}

static int io_relay_open(void *ctx, int family, uint16_t port, bool even, bool df,
			 struct sockaddr_storage *addr, struct sockaddr_storage *adv)
{
	struct server *srv = ctx;
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
			uint16_t p = (uint16_t)(lo + (srv->port_cursor++ % span));
			if (even && (p & 1))
				continue;
			fd = try_bind(family, ip, p, df, addr);
			if (fd >= 0 || fd != -EADDRINUSE)
				break;
		}
	}
	if (fd >= 0)
		advertised(srv, addr, adv);
	return fd;
}

static void outq_flush(struct server *srv);

static void io_relay_close(void *ctx, int fd)
{
	outq_flush(ctx);
	close(fd);
}

static void outq_flush(struct server *srv)
{
	struct outq *q = &srv->out;
	unsigned done = 0;

	while (done < q->n) {
		int n = sendmmsg(q->fd, q->msgs + done, q->n - done, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && errno == EAGAIN) {
			/* Socket buffer full: UDP's answer is to drop, and count. */
			srv->send_drops += q->n - done;
			break;
		}
		if (n <= 0) {
			/* This one datagram was refused (no route, too big...). */
			srv->send_drops++;
			done++;
			continue;
		}
		done += (unsigned)n;
	}
	q->n = 0;
}

/* Queues one datagram; src (may be NULL) sets its source address. */
static int outq_push(struct server *srv, int fd, const struct sockaddr_storage *to,
		     const struct sockaddr_storage *src, const struct iovec *iov, int iovcnt)
{
	struct outq *q = &srv->out;
	struct msghdr *mh;
	size_t len = 0;

	if (q->n && (q->fd != fd || q->n == BATCH))
		outq_flush(srv);
	for (int i = 0; i < iovcnt; i++) {
		if (len + iov[i].iov_len > PKT_BUF)
			return -EMSGSIZE;
		memcpy(q->bufs[q->n] + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	q->fd = fd;
	q->to[q->n] = *to;
	q->iovs[q->n].iov_base = q->bufs[q->n];
	q->iovs[q->n].iov_len = len;
	mh = &q->msgs[q->n].msg_hdr;
	memset(mh, 0, sizeof(*mh));
	mh->msg_name = &q->to[q->n];
	mh->msg_namelen = addr_len(to);
	mh->msg_iov = &q->iovs[q->n];
	mh->msg_iovlen = 1;
	if (src) {
		/* Answer from the address the client talked to (listeners may be
		 * bound to the any-address on a multi-homed host). */
		struct cmsghdr *cm = &q->ctrl[q->n].align;
		memset(&q->ctrl[q->n], 0, sizeof(q->ctrl[q->n]));
		mh->msg_control = q->ctrl[q->n].buf;
		if (src->ss_family == AF_INET) {
			struct in_pktinfo pi = {
				.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr };
			mh->msg_controllen = CMSG_SPACE(sizeof(pi));
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		} else {
			struct in6_pktinfo pi = {
				.ipi6_addr = ((const struct sockaddr_in6 *)src)->sin6_addr };
			mh->msg_controllen = CMSG_SPACE(sizeof(pi));
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		}
	}
	q->n++;
	return 0;
}

static int io_send_client(void *ctx, int listener_fd, const struct sockaddr_storage *listener,
			  const struct sockaddr_storage *client, const struct iovec *iov, int iovcnt)
{
	return outq_push(ctx, listener_fd, client, listener, iov, iovcnt);
}

static int io_send_peer(void *ctx, int relay_fd, const struct sockaddr_storage *peer,
			const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return outq_push(ctx, relay_fd, peer, NULL, &iov, 1);
}

/* ---- alloc_hooks: relay sockets and the fast path follow TURN state ---------- */

static void hook_alloc_up(void *ctx, struct allocation *a)
{
	struct server *srv = ctx;
	struct src *srcs = calloc(a->nrelays, sizeof(*srcs));

	a->user = srcs;
	for (unsigned i = 0; i < a->nrelays; i++) {
		if (srcs) {
			srcs[i].kind = SRC_RELAY;
			srcs[i].fd = a->relays[i].fd;
			srcs[i].alloc = a;
			if (epoll_add(srv, &srcs[i]))
				log_warn("epoll add relay: %s", strerror(errno));
		}
		if (srv->fp)
			fp_relay_add(srv->fp, &a->relays[i].addr);
	}
	if (!srcs)
		log_err("out of memory: allocation's relay gets no events");
}

static void hook_alloc_down(void *ctx, struct allocation *a)
{
	struct server *srv = ctx;
	struct src *srcs = a->user;

	/* Queued datagrams go out before their socket closes: its fd number
	 * could be reused by a new relay in this same batch. */
	outq_flush(srv);
	for (unsigned i = 0; i < a->nrelays; i++) {
		if (srv->fp)
			fp_relay_del(srv->fp, &a->relays[i].addr);
		close(a->relays[i].fd);	/* also leaves the epoll set */
		if (srcs)
			srcs[i].fd = -1;
	}
	if (srcs) {
		srcs[0].next_dead = srv->dead;
		srv->dead = srcs;
	}
}

static void hook_perm_up(void *ctx, struct allocation *a, const struct perm *p)
{
	struct server *srv = ctx;
	struct relay *r = alloc_relay_for(a, p->peer.ss_family);

	if (srv->fp && r)
		fp_perm_add(srv->fp, &r->addr, &p->peer);
}

static void hook_perm_down(void *ctx, struct allocation *a, const struct perm *p)
{
	struct server *srv = ctx;
	struct relay *r = alloc_relay_for(a, p->peer.ss_family);

	if (srv->fp && r)
		fp_perm_del(srv->fp, &r->addr, &p->peer);
}

static void chan_to_fp(const struct allocation *a, const struct chan *c, struct fp_chan *fc)
{
	const struct relay *r = alloc_relay_for((struct allocation *)a, c->peer.ss_family);

	memset(fc, 0, sizeof(*fc));
	fc->client = a->client;
	fc->listener = a->listener;
	fc->relay = r->addr;
	fc->peer = c->peer;
	fc->channel = c->number;
	fc->slot = c->slot;
}

static bool hook_chan_up(void *ctx, struct allocation *a, struct chan *c)
{
	struct server *srv = ctx;
	struct fp_chan fc;
	int err;

	if (!srv->fp || !alloc_relay_for(a, c->peer.ss_family))
		return false;
	chan_to_fp(a, c, &fc);
	err = fp_chan_add(srv->fp, &fc);
	if (err) {
		/* Userspace relays this channel; never an error to the client. */
		srv->fp_full++;
		log_warn("channel 0x%04x stays in userspace: %s", c->number, strerror(-err));
		return false;
	}
	c->slot = fc.slot;
	return true;
}

static void hook_chan_down(void *ctx, struct allocation *a, struct chan *c)
{
	struct server *srv = ctx;
	struct fp_chan fc;

	if (!srv->fp || !c->in_kernel)
		return;
	chan_to_fp(a, c, &fc);
	fp_chan_del(srv->fp, &fc);
}

/* ---- sockets ----------------------------------------------------------------------- */

static int open_listener(struct server *srv, const struct sockaddr_storage *ip, char *err,
			 size_t errlen)
{
	struct sockaddr_storage a = *ip;
	char buf[ADDR_STRLEN];
	int one = 1, fd;
	struct src *s;

	addr_set_port(&a, srv->cfg->listen_port);
	fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a.ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)))
		goto fail;
	sock_bufs(fd);
	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		goto fail;
	}
	s->kind = SRC_LISTENER;
	s->fd = fd;
	s->local = a;
	srv->listeners[srv->nlisteners++] = s;
	if (epoll_add(srv, s))
		goto fail;
	log_info("listening on %s/udp", addr_str(&a, true, buf, sizeof(buf)));
	return 0;
fail:
	snprintf(err, errlen, "listen on %s: %s", addr_str(&a, true, buf, sizeof(buf)),
		 strerror(errno));
	if (fd >= 0 && !(srv->nlisteners && srv->listeners[srv->nlisteners - 1]->fd == fd))
		close(fd);
	return -errno;
}

int server_new(struct server **out, const struct config *cfg, struct auth *auth,
	       struct policy *pol, struct fastpath *fp, char *err, size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));
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
	sigset_t sigs;
	int rc;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	srv->cfg = cfg;
	srv->fp = fp;
	srv->port_cursor = (uint16_t)(now_s() * 7919);
	io.ctx = srv;
	hooks.ctx = srv;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->turn = turn_new(&tc, auth, pol, &io, &hooks);
	if (srv->epfd < 0 || !srv->turn) {
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return -ENOMEM;
	}
	if (cfg->nlisten == 0) {
		struct sockaddr_storage any4, any6;
		addr_parse("0.0.0.0", 0, &any4);
		addr_parse("::", 0, &any6);
		rc = open_listener(srv, &any4, err, errlen);
		/* An IPv4-only host still serves IPv4. */
		if (!rc && open_listener(srv, &any6, err, errlen))
			log_warn("%s (IPv6 not served)", err);
	} else {
		rc = 0;
		for (unsigned i = 0; i < cfg->nlisten && !rc; i++)
			rc = open_listener(srv, &cfg->listen[i], err, errlen);
	}
	if (rc) {
		server_free(srv);
		return rc;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	srv->sig.kind = SRC_SIGNAL;
	srv->sig.fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	srv->timer.kind = SRC_TIMER;
	srv->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (srv->sig.fd < 0 || srv->timer.fd < 0 || timerfd_settime(srv->timer.fd, 0, &its, NULL) ||
	    epoll_add(srv, &srv->sig) || epoll_add(srv, &srv->timer)) {
		snprintf(err, errlen, "signalfd/timerfd: %s", strerror(errno));
		server_free(srv);
		return -errno;
	}
	rc = metrics_open(&srv->metrics, cfg, srv->turn, fp, &srv->fp_full, err, errlen);
	if (rc) {
		server_free(srv);
		return rc;
	}
	if (err[0])
		log_warn("%s", err);
	srv->metrics_src.kind = SRC_METRICS;
	srv->metrics_src.fd = metrics_fd(srv->metrics);
	epoll_add(srv, &srv->metrics_src);
	srv->netlink.fd = -1;
	if (fp && fp_netlink_fd(fp) >= 0) {
		srv->netlink.kind = SRC_NETLINK;
		srv->netlink.fd = fp_netlink_fd(fp);
		epoll_add(srv, &srv->netlink);
	}
	*out = srv;
	return 0;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	metrics_close(srv->metrics);
	turn_free(srv->turn);	/* deletes allocations: relays and map entries */
	while (srv->dead) {
		struct src *d = srv->dead;
		srv->dead = d->next_dead;
		free(d);
	}
	for (unsigned i = 0; i < srv->nlisteners; i++) {
		close(srv->listeners[i]->fd);
		free(srv->listeners[i]);
	}
	if (srv->sig.fd > 0)
		close(srv->sig.fd);
	if (srv->timer.fd > 0)
		close(srv->timer.fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	free(srv);
}

/* ---- the loop ------------------------------------------------------------------------ */

static int recv_batch(struct server *srv, int fd, size_t headroom, bool want_ctrl)
{
	for (int i = 0; i < BATCH; i++) {
		srv->iovs[i].iov_base = srv->bufs[i] + headroom;
		srv->iovs[i].iov_len = PKT_BUF - headroom;
		memset(&srv->msgs[i].msg_hdr, 0, sizeof(srv->msgs[i].msg_hdr));
		srv->msgs[i].msg_hdr.msg_name = &srv->from[i];
		srv->msgs[i].msg_hdr.msg_namelen = sizeof(srv->from[i]);
		srv->msgs[i].msg_hdr.msg_iov = &srv->iovs[i];
		srv->msgs[i].msg_hdr.msg_iovlen = 1;
		if (want_ctrl) {
			srv->msgs[i].msg_hdr.msg_control = srv->ctrl[i];
			srv->msgs[i].msg_hdr.msg_controllen = sizeof(srv->ctrl[i]);
		}
	}
	return recvmmsg(fd, srv->msgs, BATCH, MSG_DONTWAIT, NULL);
}

/* The local address a datagram was sent to, from IP(V6)_PKTINFO. */
static void dst_addr(const struct msghdr *mh, const struct src *l, struct sockaddr_storage *dst)
{
	*dst = l->local;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in *)dst)->sin_addr = pi.ipi_addr;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in6 *)dst)->sin6_addr = pi.ipi6_addr;
		}
	}
}

static void on_listener(struct server *srv, struct src *l)
{
	time_t now = now_s();
	int n;

	/* Bounded: a flood on one socket cannot starve the others. */
	for (int round = 0; round < 8; round++) {
		n = recv_batch(srv, l->fd, 0, true);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct sockaddr_storage dst;
			dst_addr(&srv->msgs[i].msg_hdr, l, &dst);
			addr_canon(&srv->from[i]);
			turn_on_client(srv->turn, l->fd, &srv->from[i], &dst, srv->bufs[i],
				       srv->msgs[i].msg_len, now);
		}
		outq_flush(srv);
		if (n < BATCH)
			return;
	}
}

static void on_relay(struct server *srv, struct src *r)
{
	time_t now = now_s();
	int n;

	for (int round = 0; round < 8 && r->fd >= 0; round++) {
		n = recv_batch(srv, r->fd, TURN_PEER_HEADROOM, false);
		if (n <= 0)
			return;
		for (int i = 0; i < n && r->fd >= 0; i++) {
			addr_canon(&srv->from[i]);
			turn_on_peer(srv->turn, r->alloc, &srv->from[i],
				     srv->bufs[i] + TURN_PEER_HEADROOM, srv->msgs[i].msg_len, now);
		}
		outq_flush(srv);
		if (n < BATCH)
			return;
	}
}

static bool on_signal(struct server *srv, server_reload_fn reload)
{
	struct signalfd_siginfo si;

	while (read(srv->sig.fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			struct auth *auth;
			struct policy *pol;
			if (reload && !reload(&auth, &pol)) {
				turn_replace_auth(srv->turn, auth, pol);
				log_info("reloaded users, secrets and peer policy");
			}
			continue;
		}
		log_info("%s: shutting down", strsignal((int)si.ssi_signo));
		return false;
	}
	return true;
}

int server_run(struct server *srv, server_reload_fn reload)
{
	struct epoll_event evs[MAX_EVENTS];
	bool running = true;

	while (running) {
		int n = epoll_wait(srv->epfd, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;
			uint64_t ticks;
			switch (s->kind) {
			case SRC_LISTENER:
				on_listener(srv, s);
				break;
			case SRC_RELAY:
				if (s->fd >= 0)
					on_relay(srv, s);
				break;
			case SRC_TIMER:
				if (read(s->fd, &ticks, sizeof(ticks)) > 0)
					turn_tick(srv->turn, now_s());
				outq_flush(srv);
				break;
			case SRC_SIGNAL:
				running = on_signal(srv, reload);
				break;
			case SRC_NETLINK:
				fp_netlink_event(srv->fp);
				break;
			case SRC_METRICS:
				metrics_event(srv->metrics);
				break;
			}
		}
		while (srv->dead) {
			struct src *d = srv->dead;
			srv->dead = d->next_dead;
			free(d);
		}
	}
	return 0;
}
