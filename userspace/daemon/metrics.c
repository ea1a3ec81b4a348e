#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/addr.h"
#include "turn/alloc.h"
#include "daemon/config.h"
#include "daemon/fastpath.h"
#include "daemon/metrics.h"

const struct metrics_xdp_desc metrics_xdp[XT_CNT_MAX] = {
	[XT_CNT_C2P] = { "forwarded", "direction", "c2p" },
	[XT_CNT_P2C] = { "forwarded", "direction", "p2c" },
	[XT_CNT_HAIRPIN] = { "forwarded", "direction", "hairpin" },
	[XT_CNT_PASS_NOT_OURS] = { "passed", "reason", "not_ours" },
	[XT_CNT_PASS_NO_BINDING] = { "passed", "reason", "no_binding" },
	[XT_CNT_PASS_UNUSUAL] = { "passed", "reason", "unusual" },
	[XT_CNT_PASS_FIB] = { "passed", "reason", "fib" },
	[XT_CNT_DROP_NO_PERM] = { "dropped", "reason", "no_permission" },
	[XT_CNT_DROP_BAD_LEN] = { "dropped", "reason", "bad_length" },
	[XT_CNT_DROP_BAD_CSUM] = { "dropped", "reason", "bad_checksum" },
	[XT_CNT_DROP_ERROR] = { "dropped", "reason", "error" },
};

/* One sample: its JSON key, its Prometheus family (after "xturn_") and
 * label, and where its uint64_t lives in the snapshot. Samples of a family
 * are adjacent, so HELP and TYPE are written once per family. */
struct row {
	char json[48];
	char name[48];
	char label[48];		/* `key="value"` or empty */
	char help[96];		/* empty: same family as the row before */
	const char *type;
	size_t off;
	bool xdp;		/* which half of the snapshot */
};

#define S(f) offsetof(struct metrics_snapshot, f)
#define G "gauge"
#define C "counter"
static const struct daemon_field {
	const char *json, *name, *label, *type, *help;
	size_t off;
} daemon_fields[] = {
	{ "fastpath", "fastpath_enabled", "", G, "1 if the XDP fast path is on", S(fastpath) },
	{ "allocations", "allocations", "", G, "Live allocations", S(allocations) },
	{ "permissions", "permissions", "", G, "Live permissions", S(permissions) },
	{ "channels", "channels", "", G, "Live channel bindings", S(channels) },
	{ "channels_in_kernel", "channels_in_kernel", "", G,
	  "Channel bindings the XDP fast path carries", S(channels_in_kernel) },
	{ "users", "users", "", G, "Distinct users holding allocations", S(users) },
	{ "fastpath_full", "fastpath_full_total", "", C,
	  "Channels left to userspace relaying because a fast path map was full",
	  S(fastpath_full) },
	{ "fastpath_perms_missing", "fastpath_permissions_missing", "", G,
	  "Permissions not in the fast path's full map (their relays' peers pass to the daemon)",
	  S(fastpath_perms_missing) },
	{ "send_drops", "send_dropped_total", "", C,
	  "Datagrams not sent (socket buffer full, refused, or over 2 KiB)", S(send_drops) },
	{ "tcp_connections", "tcp_connections", "", G, "Open TCP/TLS client connections",
	  S(tcp_connections) },
	{ "tcp_accepted", "tcp_accepted_total", "", C, "TCP/TLS connections accepted",
	  S(tcp.accepted) },
	{ "tcp_rejected", "tcp_closed_total", "reason=\"limit\"", C,
	  "TCP/TLS connections closed by the server", S(tcp.rejected) },
	{ "tcp_bad_framing", "tcp_closed_total", "reason=\"bad_framing\"", C, NULL,
	  S(tcp.bad_framing) },
	{ "tcp_overflow", "tcp_closed_total", "reason=\"send_overflow\"", C, NULL,
	  S(tcp.overflow) },
	{ "tcp_timeouts", "tcp_closed_total", "reason=\"timeout\"", C, NULL, S(tcp.timeouts) },
	{ "tls_failures", "tcp_closed_total", "reason=\"tls_failure\"", C, NULL,
	  S(tcp.tls_failures) },
	{ "requests", "stun_requests_total", "", C, "STUN requests handled", S(turn.requests) },
	{ "binding", "binding_requests_total", "", C, "Binding requests", S(turn.binding) },
	{ "allocations_created", "allocations_created_total", "", C, "Allocations created",
	  S(turn.allocations_created) },
	{ "auth_challenges", "auth_challenges_total", "", C,
	  "401 answers to requests without credentials", S(turn.auth_challenges) },
	{ "auth_failures", "auth_failures_total", "", C,
	  "Wrong credentials, stale or bad nonces", S(turn.auth_failures) },
	{ "error_responses", "error_responses_total", "", C, "Error responses sent",
	  S(turn.error_responses) },
	{ "malformed", "malformed_total", "", C, "Datagrams dropped as malformed",
	  S(turn.malformed) },
	{ "peer_denied", "peer_denied_total", "", C,
	  "Requests refused (403) and data dropped by the peer policy", S(turn.peer_denied) },
	{ "unauth_limited", "unauthenticated_limited_total", "", C,
	  "Unauthenticated error responses not sent: over unauth-rate-limit for their source",
	  S(turn.unauth_limited) },
	{ "revoked", "revoked_total", "", C,
	  "Permissions, channels and allocations revoked by a reload or a new host address",
	  S(turn.revoked) },
	{ "c2p_packets", "userspace_relayed_packets_total", "direction=\"c2p\"", C,
	  "Packets relayed by the daemon", S(turn.c2p_packets) },
	{ "p2c_packets", "userspace_relayed_packets_total", "direction=\"p2c\"", C, NULL,
	  S(turn.p2c_packets) },
	{ "c2p_bytes", "userspace_relayed_bytes_total", "direction=\"c2p\"", C,
	  "Payload bytes relayed by the daemon", S(turn.c2p_bytes) },
	{ "p2c_bytes", "userspace_relayed_bytes_total", "direction=\"p2c\"", C, NULL,
	  S(turn.p2c_bytes) },
	{ "dropped_no_perm", "userspace_dropped_packets_total", "reason=\"no_permission\"", C,
	  "Packets dropped by the daemon", S(turn.dropped_no_perm) },
	{ "dropped_no_alloc", "userspace_dropped_packets_total", "reason=\"no_allocation\"", C,
	  NULL, S(turn.dropped_no_alloc) },
};
#undef G
#undef C

#define MAX_ROWS (sizeof(daemon_fields) / sizeof(daemon_fields[0]) + 2 * XT_CNT_MAX)

/* Every sample of both halves, in rendering order. */
static unsigned rows_build(struct row *r)
{
	static const char *const verdicts[] = { "forwarded", "passed", "dropped" };
	static const char *const units[] = { "packets", "bytes" };
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(daemon_fields) / sizeof(daemon_fields[0]); i++, n++) {
		const struct daemon_field *f = &daemon_fields[i];
		snprintf(r[n].json, sizeof(r[n].json), "%s", f->json);
		snprintf(r[n].name, sizeof(r[n].name), "%s", f->name);
		snprintf(r[n].label, sizeof(r[n].label), "%s", f->label);
		snprintf(r[n].help, sizeof(r[n].help), "%s", f->help ? f->help : "");
		r[n].type = f->type;
		r[n].off = f->off;
		r[n].xdp = false;
	}
	for (unsigned v = 0; v < 3; v++)
		for (unsigned u = 0; u < 2; u++)
			for (unsigned c = 0; c < XT_CNT_MAX; c++, n++) {
				const struct metrics_xdp_desc *d = &metrics_xdp[c];
				if (strcmp(d->verdict, verdicts[v])) {
					n--;
					continue;
				}
				snprintf(r[n].json, sizeof(r[n].json), "xdp_%s_%s_%s", d->verdict,
					 d->value, units[u]);
				snprintf(r[n].name, sizeof(r[n].name), "xdp_%s_%s_total", d->verdict,
					 units[u]);
				snprintf(r[n].label, sizeof(r[n].label), "%s=\"%s\"", d->label,
					 d->value);
				snprintf(r[n].help, sizeof(r[n].help), "%s %s in XDP, by %s",
					 u ? "Bytes" : "Packets", d->verdict, d->label);
				r[n].type = "counter";
				r[n].off = S(xdp_cnt) + c * sizeof(struct xt_count) +
					   (u ? offsetof(struct xt_count, bytes) :
						offsetof(struct xt_count, packets));
				r[n].xdp = true;
			}
	return n;
}

static uint64_t row_val(const struct metrics_snapshot *m, const struct row *r)
{
	uint64_t v;

	memcpy(&v, (const char *)m + r->off, sizeof(v));
	return v;
}

static bool row_wanted(const struct metrics_snapshot *m, const struct row *r)
{
	return r->xdp ? m->xdp : m->daemon;
}

struct out {
	char *buf;
	size_t len, pos;
	bool full;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->pos)
		o->full = true;
	else
		o->pos += (size_t)n;
}

static int out_end(struct out *o)
{
	return o->full ? -ENOSPC : (int)o->pos;
}

int metrics_prometheus(const struct metrics_snapshot *m, char *buf, size_t len)
{
	struct row r[MAX_ROWS];
	unsigned n = rows_build(r);
	struct out o = { buf, len, 0, len == 0 };
	const char *family = "";

	if (len)
		buf[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!row_wanted(m, &r[i]))
			continue;
		if (strcmp(family, r[i].name)) {
			family = r[i].name;
			put(&o, "# HELP xturn_%s %s\n", family, r[i].help);
			put(&o, "# TYPE xturn_%s %s\n", family, r[i].type);
		}
		if (r[i].label[0])
			put(&o, "xturn_%s{%s} %llu\n", family, r[i].label,
			    (unsigned long long)row_val(m, &r[i]));
		else
			put(&o, "xturn_%s %llu\n", family, (unsigned long long)row_val(m, &r[i]));
	}
	return out_end(&o);
}

int metrics_json(const struct metrics_snapshot *m, char *buf, size_t len)
{
	struct row r[MAX_ROWS];
	unsigned n = rows_build(r);
	struct out o = { buf, len, 0, len == 0 };
	const char *sep = "";

	put(&o, "{");
	for (unsigned i = 0; i < n; i++) {
		if (!row_wanted(m, &r[i]))
			continue;
		put(&o, "%s\"%s\":%llu", sep, r[i].json, (unsigned long long)row_val(m, &r[i]));
		sep = ",";
	}
	put(&o, "}\n");
	return out_end(&o);
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

/* A flat object of "key": unsigned integer, which is all metrics_json
 * writes; anything else is refused rather than half-read. */
int metrics_json_parse(const char *s, struct metrics_snapshot *m)
{
	struct row r[MAX_ROWS];
	unsigned n = rows_build(r);

	memset(m, 0, sizeof(*m));
	s = skip_ws(s);
	if (*s++ != '{')
		return -EINVAL;
	s = skip_ws(s);
	if (*s == '}')
		return *skip_ws(s + 1) ? -EINVAL : 0;
	for (;;) {
		const char *key, *end;
		unsigned long long v;
		char *num_end;

		if (*s++ != '"')
			return -EINVAL;
		key = s;
		end = strchr(key, '"');
		if (!end || memchr(key, '\\', (size_t)(end - key)))
			return -EINVAL;
		s = skip_ws(end + 1);
		if (*s++ != ':')
			return -EINVAL;
		s = skip_ws(s);
		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		v = strtoull(s, &num_end, 10);
		if (errno)
			return -EINVAL;
		s = skip_ws(num_end);
		for (unsigned i = 0; i < n; i++) {
			if (strlen(r[i].json) != (size_t)(end - key) ||
			    memcmp(r[i].json, key, (size_t)(end - key)))
				continue;
			uint64_t v64 = v;
			memcpy((char *)m + r[i].off, &v64, sizeof(v64));
			if (r[i].xdp)
				m->xdp = true;
			else
				m->daemon = true;
			break;
		}
		if (*s == '}')
			return *skip_ws(s + 1) ? -EINVAL : 0;
		if (*s++ != ',')
			return -EINVAL;
		s = skip_ws(s);
	}
}

void metrics_collect(struct metrics_snapshot *m, struct turn_server *const *t, unsigned n,
		     struct fastpath *fp, uint64_t fastpath_full)
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
	m->fastpath = fp != NULL;
	m->fastpath_full = fastpath_full;
	m->fastpath_perms_missing = fp ? fp_perms_missing(fp) : 0;
	m->xdp = fp && !fp_counters(fp, m->xdp_cnt);
}

/* ---- the endpoints ------------------------------------------------------------ */

/* An HTTP client that sent nothing for this long loses its slot to a new one. */
#define CLIENT_IDLE_S 5
#define ACCEPTS_PER_EVENT 16

struct metrics {
	int epfd, unix_fd, http_fd;
	ino_t sock_ino;			/* the socket file we made, removed at close */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	metrics_collect_fn collect;
	void *ctx;
	struct {
		int fd;
		time_t since;
	} clients[METRICS_MAX_CLIENTS];
	char out[32768];
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int ep_add(struct metrics *ms, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ms->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Binds the Unix socket. A socket file nobody answers on is stale (a crash)
 * and is replaced; one a live daemon answers on is left alone: *note says so
 * and this daemon serves no socket. */
static int unix_open(struct metrics *ms, const char *path, char *note, size_t notelen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)];
	struct stat st;
	int fd, probe;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(note, notelen, "stats-socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	memcpy(dir, path, strlen(path) + 1);
	if (mkdir(dirname(dir), 0755) && errno != EEXIST) {
		snprintf(note, notelen, "stats-socket %s: %s", path, strerror(errno));
		return -errno;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
		close(probe);
		snprintf(note, notelen, "stats-socket %s is served by another running xturnd; "
			 "not serving it", path);
		return 0;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 16) ||
	    stat(path, &st)) {
		int err = -errno;
		snprintf(note, notelen, "stats-socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	ms->unix_fd = fd;
	ms->sock_ino = st.st_ino;
	memcpy(ms->sock_path, path, strlen(path) + 1);
	return ep_add(ms, fd);
}

static int http_open(struct metrics *ms, const struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage a;
	char b[ADDR_STRLEN];
	int one = 1, fd;

	if (addr_parse(cfg->prometheus_ip, cfg->prometheus_port, &a)) {
		snprintf(err, errlen, "prometheus-ip %s: not an IP address", cfg->prometheus_ip);
		return -EINVAL;
	}
	fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, addr_len(&a)) || listen(fd, 64)) {
		int rc = -errno;
		snprintf(err, errlen, "prometheus on %s/tcp: %s", addr_str(&a, true, b, sizeof(b)),
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	ms->http_fd = fd;
	return ep_add(ms, fd);
}

int metrics_open(struct metrics **out, const struct config *cfg, metrics_collect_fn collect,
		 void *ctx, char *err, size_t errlen)
{
	struct metrics *ms = calloc(1, sizeof(*ms));
	int rc;

	err[0] = 0;
	if (!ms) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ms->unix_fd = ms->http_fd = -1;
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++)
		ms->clients[i].fd = -1;
	ms->collect = collect;
	ms->ctx = ctx;
	ms->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ms->epfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto fail;
	}
	if (cfg->prometheus && (rc = http_open(ms, cfg, err, errlen)))
		goto fail;
	if ((rc = unix_open(ms, cfg->stats_socket, err, errlen)))
		goto fail;
	*out = ms;
	return 0;
fail:
	metrics_close(ms);
	return rc;
}

int metrics_fd(const struct metrics *ms)
{
	return ms->epfd;
}

/* Renders the answer for one request into ms->out; its length or -errno. */
static int render(struct metrics *ms, bool prometheus)
{
	struct metrics_snapshot m;

	ms->collect(ms->ctx, &m);
	return prometheus ? metrics_prometheus(&m, ms->out, sizeof(ms->out)) :
			    metrics_json(&m, ms->out, sizeof(ms->out));
}

static void on_unix(struct metrics *ms)
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

static void client_drop(struct metrics *ms, unsigned slot)
{
	close(ms->clients[slot].fd);	/* also leaves the epoll set */
	ms->clients[slot].fd = -1;
}

static void on_accept(struct metrics *ms)
{
	time_t now = mono_s();

	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int c = accept4(ms->http_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned slot = METRICS_MAX_CLIENTS;
		if (c < 0)
			return;
		for (unsigned k = 0; k < METRICS_MAX_CLIENTS; k++) {
			if (ms->clients[k].fd >= 0 && now - ms->clients[k].since > CLIENT_IDLE_S)
				client_drop(ms, k);
			if (ms->clients[k].fd < 0 && slot == METRICS_MAX_CLIENTS)
				slot = k;
		}
		if (slot == METRICS_MAX_CLIENTS || ep_add(ms, c)) {
			close(c);	/* busy: the scraper retries */
			continue;
		}
		ms->clients[slot].fd = c;
		ms->clients[slot].since = now;
	}
}

static void http_answer(struct metrics *ms, int fd, const char *req)
{
	static const char ctype[] = "text/plain; version=0.0.4; charset=utf-8";
	const char *status = "404 Not Found";
	char head[256];
	int blen = 0, hlen;
	struct iovec iov[2];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (strncmp(req, "GET ", 4)) {
		status = "405 Method Not Allowed";
	} else if (!strncmp(req + 4, "/metrics", 8) && req[12] && strchr(" ?\r\n", req[12])) {
		blen = render(ms, true);
		status = blen >= 0 ? "200 OK" : "500 Internal Server Error";
		if (blen < 0)
			blen = 0;
	}
	hlen = snprintf(head, sizeof(head),
			"HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
			"Connection: close\r\n\r\n", status, ctype, blen);
	iov[0] = (struct iovec){ head, (size_t)hlen };
	iov[1] = (struct iovec){ ms->out, (size_t)blen };
	sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static void on_client(struct metrics *ms, int fd)
{
	char req[METRICS_MAX_REQUEST];
	unsigned slot;
	ssize_t n;

	for (slot = 0; slot < METRICS_MAX_CLIENTS && ms->clients[slot].fd != fd; slot++)
		;
	if (slot == METRICS_MAX_CLIENTS)
		return;
	n = recv(fd, req, sizeof(req) - 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;	/* a stale event of a reused fd number */
	if (n > 0) {
		/* One read: scrapers send the whole request in one segment,
		 * and a client that does not gets a 404 rather than state. */
		req[n] = 0;
		http_answer(ms, fd, req);
	}
	client_drop(ms, slot);
}

void metrics_event(struct metrics *ms)
{
	struct epoll_event evs[METRICS_MAX_CLIENTS + 2];
	int n = epoll_wait(ms->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);

	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd == ms->unix_fd)
			on_unix(ms);
		else if (fd == ms->http_fd)
			on_accept(ms);
		else
			on_client(ms, fd);
	}
}

void metrics_close(struct metrics *ms)
{
	struct stat st;

	if (!ms)
		return;
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (ms->clients[i].fd >= 0)
			close(ms->clients[i].fd);
	if (ms->http_fd >= 0)
		close(ms->http_fd);
	if (ms->unix_fd >= 0) {
		close(ms->unix_fd);
		/* Only our own file: another daemon may have replaced it. */
		if (!stat(ms->sock_path, &st) && st.st_ino == ms->sock_ino)
			unlink(ms->sock_path);
	}
	if (ms->epfd >= 0)
		close(ms->epfd);
	free(ms);
}
