#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/addr.h"
#include "common/sock.h"
#include "turn/alloc.h"
#include "turn/turn.h"
#include "daemon/config.h"
#include "daemon/stats.h"
#include "daemon/web.h"

void stats_collect(struct metrics_snapshot *m, struct turn_server *const *t, unsigned n)
{
	/* struct turn_stats is all uint64_t counters: summed as an array. */
	_Static_assert(sizeof(struct turn_stats) % sizeof(uint64_t) == 0, "turn_stats");
	uint64_t *sum = (uint64_t *)&m->turn;

	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < n; i++) {
		struct alloc_table *at = turn_allocs(t[i]);
		const uint64_t *st = (const uint64_t *)turn_stats(t[i]);
		struct alloc_totals tot;

		alloc_totals(at, &tot);
		m->allocations += alloc_count(at);
		m->permissions += tot.perms;
		m->channels += tot.chans;
		m->channels_in_kernel += tot.chans_in_kernel;
		m->users = tot.users;	/* the same shared quota in every table */
		for (size_t k = 0; k < sizeof(struct turn_stats) / sizeof(uint64_t); k++)
			sum[k] += st[k];
	}
	m->daemon = true;
}

/* ---- the endpoints ------------------------------------------------------------ */

/* An HTTP client that sent nothing for this long loses its slot to a new one. */
#define CLIENT_IDLE_S 5
#define ACCEPTS_PER_EVENT 16

struct stats {
	int epfd, unix_fd, http_fd;
	int web_fd;			/* the check page's listener; -1: none or http_fd's */
	bool web_on_http;		/* web-ip:web-port is prometheus-ip:port */
	struct web *web;
	ino_t sock_ino;			/* the socket file we made, removed at close */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	stats_collect_fn collect;
	void *ctx;
	struct {
		int fd;
		time_t since;
		bool web;	/* came in on the check page's listener */
	} clients[STATS_MAX_CLIENTS];
	char out[32768];
};

static int ep_add(struct stats *ms, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ms->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* The Unix socket; one a live daemon answers on is left alone: *note says
 * so and this daemon serves no socket. Anyone on the host may read the
 * counters (0666), as anyone may run xturnstat. */
static int unix_open(struct stats *ms, const char *path, char *note, size_t notelen)
{
	int fd = sock_unix_listen(path, 0666, &ms->sock_ino);

	if (fd == -EADDRINUSE) {
		snprintf(note, notelen, "stats-socket %s is served by another running xturnd; "
			 "not serving it", path);
		return 0;
	}
	if (fd < 0) {
		snprintf(note, notelen, "stats-socket %s: %s", path, strerror(-fd));
		return fd;
	}
	ms->unix_fd = fd;
	memcpy(ms->sock_path, path, strlen(path) + 1);
	return ep_add(ms, fd);
}

/* An HTTP listener on ip:port (what names it: "prometheus", "web"). */
static int http_open(struct stats *ms, const char *what, const char *ip, uint16_t port,
		     int *out, char *err, size_t errlen)
{
	struct sockaddr_storage a;
	char b[ADDR_STRLEN];
	int one = 1, fd;

	if (addr_parse(ip, port, &a)) {
		snprintf(err, errlen, "%s-ip %s: not an IP address", what, ip);
		return -EINVAL;
	}
	fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, addr_len(&a)) || listen(fd, 64)) {
		int rc = -errno;
		snprintf(err, errlen, "%s on %s/tcp: %s", what, addr_str(&a, true, b, sizeof(b)),
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*out = fd;
	return ep_add(ms, fd);
}

int stats_open(struct stats **out, const struct config *cfg, stats_collect_fn collect,
	       void *ctx, struct web *web, char *err, size_t errlen)
{
	struct stats *ms = calloc(1, sizeof(*ms));
	int rc;

	err[0] = 0;
	if (!ms) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ms->unix_fd = ms->http_fd = ms->web_fd = -1;
	ms->web = web;
	for (unsigned i = 0; i < STATS_MAX_CLIENTS; i++)
		ms->clients[i].fd = -1;
	ms->collect = collect;
	ms->ctx = ctx;
	ms->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ms->epfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto fail;
	}
	if (cfg->prometheus && (rc = http_open(ms, "prometheus", cfg->prometheus_ip,
					       cfg->prometheus_port, &ms->http_fd, err, errlen)))
		goto fail;
	ms->web_on_http = web && cfg->prometheus && cfg->web_port == cfg->prometheus_port &&
			  !strcmp(cfg->web_ip, cfg->prometheus_ip);
	/* Without its port (another program has it) the page is off, said in
	 * err; the metrics are served all the same. */
	if (web && !ms->web_on_http &&
	    http_open(ms, "web", cfg->web_ip, cfg->web_port, &ms->web_fd, err, errlen))
		ms->web = NULL;
	if ((rc = unix_open(ms, cfg->stats_socket, err, errlen)))
		goto fail;
	*out = ms;
	return 0;
fail:
	stats_close(ms);
	return rc;
}

int stats_fd(const struct stats *ms)
{
	return ms->epfd;
}

/* Renders the answer for one request into ms->out; its length or -errno. */
static int render(struct stats *ms, bool prometheus)
{
	struct metrics_snapshot m;

	ms->collect(ms->ctx, &m);
	return prometheus ? metrics_prometheus(&m, ms->out, sizeof(ms->out)) :
			    metrics_json(&m, ms->out, sizeof(ms->out));
}

static void on_unix(struct stats *ms)
{
	int len = -1;

	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int c = accept4(ms->unix_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return;
		if (len < 0)
			len = render(ms, false);
		/* A Unix socket buffer holds the whole snapshot: one send. */
		if (len > 0)
			send(c, ms->out, (size_t)len, MSG_NOSIGNAL);
		close(c);
	}
}

static void client_drop(struct stats *ms, unsigned slot)
{
	close(ms->clients[slot].fd);	/* also leaves the epoll set */
	ms->clients[slot].fd = -1;
}

static void on_accept(struct stats *ms, int lfd)
{
	time_t now = clock_mono_s();

	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned slot = STATS_MAX_CLIENTS;
		if (c < 0)
			return;
		for (unsigned k = 0; k < STATS_MAX_CLIENTS; k++) {
			if (ms->clients[k].fd >= 0 && now - ms->clients[k].since > CLIENT_IDLE_S)
				client_drop(ms, k);
			if (ms->clients[k].fd < 0 && slot == STATS_MAX_CLIENTS)
				slot = k;
		}
		if (slot == STATS_MAX_CLIENTS || ep_add(ms, c)) {
			close(c);	/* busy: the scraper retries */
			continue;
		}
		ms->clients[slot].fd = c;
		ms->clients[slot].since = now;
		ms->clients[slot].web = lfd == ms->web_fd || ms->web_on_http;
	}
}

/* The check page's routes, for a client of its listener. */
static const char *web_route(struct stats *ms, int fd, const char *path, const char **ctype,
			     int *blen)
{
	struct sockaddr_storage peer, local;
	socklen_t pl = sizeof(peer), ll = sizeof(local);
	size_t n;
	const char *status;

	if (getpeername(fd, (struct sockaddr *)&peer, &pl) ||
	    getsockname(fd, (struct sockaddr *)&local, &ll))
		return NULL;
	addr_canon(&peer);
	addr_canon(&local);
	status = web_answer(ms->web, path, &peer, &local, clock_mono_s(), ctype, ms->out,
			    sizeof(ms->out), &n);
	*blen = (int)n;
	return status;
}

static void http_answer(struct stats *ms, int fd, const char *req, bool web)
{
	const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
	const char *status = "404 Not Found", *routed;
	char head[320];
	int blen = 0, hlen;
	struct iovec iov[2];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (strncmp(req, "GET ", 4)) {
		status = "405 Method Not Allowed";
	} else if (web && (routed = web_route(ms, fd, req + 4, &ctype, &blen))) {
		status = routed;
	} else if (!strncmp(req + 4, "/metrics", 8) && req[12] && strchr(" ?\r\n", req[12]) &&
		   (!web || ms->web_on_http)) {
		blen = render(ms, true);
		status = blen >= 0 ? "200 OK" : "500 Internal Server Error";
		if (blen < 0)
			blen = 0;
	}
	hlen = snprintf(head, sizeof(head),
			"HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
			"Cache-Control: no-store\r\nConnection: close\r\n\r\n", status, ctype, blen);
	iov[0] = (struct iovec){ head, (size_t)hlen };
	iov[1] = (struct iovec){ ms->out, (size_t)blen };
	sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static void on_client(struct stats *ms, int fd)
{
	char req[STATS_MAX_REQUEST];
	unsigned slot;
	ssize_t n;

	for (slot = 0; slot < STATS_MAX_CLIENTS && ms->clients[slot].fd != fd; slot++)
		;
	if (slot == STATS_MAX_CLIENTS)
		return;
	n = recv(fd, req, sizeof(req) - 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;	/* a stale event of a reused fd number */
	if (n > 0) {
		/* One read: scrapers send the whole request in one segment,
		 * and a client that does not gets a 404 rather than state. */
		req[n] = 0;
		http_answer(ms, fd, req, ms->clients[slot].web);
	}
	client_drop(ms, slot);
}

void stats_event(struct stats *ms)
{
	struct epoll_event evs[STATS_MAX_CLIENTS + 2];
	int n = epoll_wait(ms->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);

	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd == ms->unix_fd)
			on_unix(ms);
		else if (fd == ms->http_fd || fd == ms->web_fd)
			on_accept(ms, fd);
		else
			on_client(ms, fd);
	}
}

void stats_close(struct stats *ms)
{

	if (!ms)
		return;
	for (unsigned i = 0; i < STATS_MAX_CLIENTS; i++)
		if (ms->clients[i].fd >= 0)
			close(ms->clients[i].fd);
	if (ms->http_fd >= 0)
		close(ms->http_fd);
	if (ms->web_fd >= 0)
		close(ms->web_fd);
	if (ms->unix_fd >= 0) {
		close(ms->unix_fd);
		sock_unix_unlink(ms->sock_path, ms->sock_ino);
	}
	if (ms->epfd >= 0)
		close(ms->epfd);
	free(ms);
}
