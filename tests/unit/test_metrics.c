/* Metrics: the Prometheus text parsed back line by line (TYPE before every
 * sample, valid names, counters ending in _total, every value equal to its
 * snapshot field under the documented name), JSON through Python's parser
 * and our own, the totals the daemon reports, and the HTTP and Unix socket
 * endpoints on loopback. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "common/addr.h"
#include "common/version.h"
#include "turn/alloc.h"
#include "turn/auth.h"
#include "turn/policy.h"
#include "turn/turn.h"
#include "daemon/config.h"
#include "daemon/stats.h"
#include "daemon/web.h"
#include "testalloc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Every uint64_t of the snapshot gets its own value, so a sample rendered
 * from the wrong field shows. */
static void fill(struct metrics_snapshot *m)
{
	uint64_t v = 1000;

	memset(m, 0, sizeof(*m));
	for (size_t off = offsetof(struct metrics_snapshot, fastpath); off < sizeof(*m); off += 8) {
		v += 7919;
		memcpy((char *)m + off, &v, sizeof(v));
	}
	m->fastpath = 1;
	m->daemon = m->xdp = true;
	/* Packets passed or dropped in XDP relay no bytes: not rendered. */
	for (unsigned c = XT_CNT_HAIRPIN + 1; c < XT_CNT_MAX; c++)
		m->xdp_cnt[c].bytes = 0;
}

/* The published names: what dashboards are written against. */
struct expect {
	const char *name, *labels;
	const void *val;	/* a uint64_t or a __u64 */
	bool xdp;
	unsigned seen;
};

static unsigned expectations(const struct metrics_snapshot *m, struct expect *e)
{
	static const char *const xdp_labels[XT_CNT_MAX] = {
		[XT_CNT_C2P] = "path=\"xdp\",direction=\"c2p\",transport=\"udp\"",
		[XT_CNT_P2C] = "path=\"xdp\",direction=\"p2c\",transport=\"udp\"",
		[XT_CNT_HAIRPIN] = "path=\"xdp\",direction=\"hairpin\",transport=\"udp\"",
		[XT_CNT_PASS_NOT_OURS] = "reason=\"not_ours\"",
		[XT_CNT_PASS_NO_BINDING] = "reason=\"no_binding\"",
		[XT_CNT_PASS_UNUSUAL] = "reason=\"unusual\"",
		[XT_CNT_PASS_FIB] = "reason=\"fib\"",
		[XT_CNT_DROP_NO_PERM] = "path=\"xdp\",reason=\"no_permission\"",
		[XT_CNT_DROP_BAD_LEN] = "path=\"xdp\",reason=\"bad_length\"",
		[XT_CNT_DROP_BAD_CSUM] = "path=\"xdp\",reason=\"bad_checksum\"",
		[XT_CNT_DROP_ERROR] = "path=\"xdp\",reason=\"error\"",
	};
	static const char *const tp[] = { "udp", "tcp", "tls" };
	static char labels[2][2][3][96], version[96];
	static const uint64_t one = 1;
	const struct turn_stats *t = &m->turn;
	struct expect d[] = {
		{ "process_start_time_seconds", "", &m->start_time, false, 0 },
		{ "xturn_build_info", version, &one, false, 0 },
		{ "xturn_fastpath_enabled", "", &m->fastpath, false, 0 },
		{ "xturn_allocations", "", &m->allocations, false, 0 },
		{ "xturn_permissions", "", &m->permissions, false, 0 },
		{ "xturn_channels", "", &m->channels, false, 0 },
		{ "xturn_xdp_channels", "", &m->channels_in_kernel, false, 0 },
		{ "xturn_users", "", &m->users, false, 0 },
		{ "xturn_xdp_refused_channels_total", "", &m->fastpath_full, false, 0 },
		{ "xturn_xdp_missing_permissions", "", &m->fastpath_perms_missing, false, 0 },
		{ "xturn_tcp_connections", "", &m->tcp_connections, false, 0 },
		{ "xturn_tcp_connections_accepted_total", "", &m->tcp.accepted, false, 0 },
		{ "xturn_tcp_connections_closed_total", "reason=\"limit\"", &m->tcp.rejected, false, 0 },
		{ "xturn_tcp_connections_closed_total", "reason=\"bad_framing\"", &m->tcp.bad_framing,
		  false, 0 },
		{ "xturn_tcp_connections_closed_total", "reason=\"send_overflow\"", &m->tcp.overflow,
		  false, 0 },
		{ "xturn_tcp_connections_closed_total", "reason=\"timeout\"", &m->tcp.timeouts, false,
		  0 },
		{ "xturn_tcp_connections_closed_total", "reason=\"tls_failure\"", &m->tcp.tls_failures,
		  false, 0 },
		{ "xturn_stun_requests_total", "", &t->requests, false, 0 },
		{ "xturn_binding_requests_total", "", &t->binding, false, 0 },
		{ "xturn_allocations_created_total", "", &t->allocations_created, false, 0 },
		{ "xturn_auth_challenges_total", "", &t->auth_challenges, false, 0 },
		{ "xturn_auth_failures_total", "", &t->auth_failures, false, 0 },
		{ "xturn_error_responses_total", "", &t->error_responses, false, 0 },
		{ "xturn_peer_denials_total", "", &t->peer_denied, false, 0 },
		{ "xturn_revocations_total", "", &t->revoked, false, 0 },
		{ "xturn_unauthenticated_responses_limited_total", "", &t->unauth_limited, false, 0 },
		{ "xturn_dropped_packets_total", "path=\"userspace\",reason=\"malformed\"", &t->malformed,
		  false, 0 },
		{ "xturn_dropped_packets_total", "path=\"userspace\",reason=\"no_permission\"",
		  &t->dropped_no_perm, false, 0 },
		{ "xturn_dropped_packets_total", "path=\"userspace\",reason=\"no_allocation\"",
		  &t->dropped_no_alloc, false, 0 },
		{ "xturn_dropped_packets_total", "path=\"userspace\",reason=\"send_failed\"",
		  &m->send_drops, false, 0 },
	};
	unsigned n = N(d);

	snprintf(version, sizeof(version), "version=\"%s\"", xt_version());
	memcpy(e, d, sizeof(d));
	/* Userspace relaying: packets and bytes by direction and transport. */
	for (unsigned u = 0; u < 2; u++)
		for (unsigned dir = 0; dir < 2; dir++)
			for (unsigned k = 0; k < 3; k++, n++) {
				const uint64_t *v = dir ? (u ? t->p2c_bytes : t->p2c_packets)
							: (u ? t->c2p_bytes : t->c2p_packets);
				snprintf(labels[u][dir][k], sizeof(labels[u][dir][k]),
					 "path=\"userspace\",direction=\"%s\",transport=\"%s\"",
					 dir ? "p2c" : "c2p", tp[k]);
				e[n] = (struct expect){ u ? "xturn_relayed_bytes_total" :
							"xturn_relayed_packets_total",
							labels[u][dir][k], &v[k], false, 0 };
			}
	/* XDP: forwarded ones in the relayed families (bytes too), passed and
	 * dropped ones in packets. */
	for (unsigned c = 0; c < XT_CNT_MAX; c++) {
		const char *name = c <= XT_CNT_HAIRPIN ? "xturn_relayed_packets_total" :
				   c >= XT_CNT_DROP_NO_PERM ? "xturn_dropped_packets_total" :
				   "xturn_xdp_passed_packets_total";
		e[n++] = (struct expect){ name, xdp_labels[c], &m->xdp_cnt[c].packets, true, 0 };
		if (c <= XT_CNT_HAIRPIN)
			e[n++] = (struct expect){ "xturn_relayed_bytes_total", xdp_labels[c],
						  &m->xdp_cnt[c].bytes, true, 0 };
	}
	return n;
}

static bool valid_name(const char *s, size_t len)
{
	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

/* Parses an exposition: checks the grammar and marks each sample's
 * expectation as seen (failing on an unknown sample or a wrong value). */
static void check_exposition(char *text, struct expect *e, unsigned ne)
{
	char type_of[64] = "";	/* family of the last TYPE line */
	char type_kind[16] = "";
	char *save, *line;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], labels[128] = "";
		unsigned long long v;
		size_t nl;
		char *rest;

		if (!strncmp(line, "# HELP ", 7)) {
			rest = line + 7;
			nl = strcspn(rest, " ");
			assert_true(valid_name(rest, nl));
			assert_true(strlen(rest + nl) > 1);	/* some help text */
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_int_equal(sscanf(line + 7, "%63s %15s", type_of, type_kind), 2);
			assert_true(!strcmp(type_kind, "counter") || !strcmp(type_kind, "gauge"));
			continue;
		}
		assert_true(line[0] != '#' && line[0] != ' ');
		nl = strcspn(line, "{ ");
		assert_true(valid_name(line, nl) && nl < sizeof(name));
		memcpy(name, line, nl);
		name[nl] = 0;
		rest = line + nl;
		if (*rest == '{') {
			char *close = strchr(rest, '}');
			assert_non_null(close);
			/* labels: key="value"[,key="value"]... (values have no quotes) */
			assert_true((size_t)(close - rest - 1) < sizeof(labels));
			memcpy(labels, rest + 1, (size_t)(close - rest - 1));
			labels[close - rest - 1] = 0;
			for (const char *l = labels; *l;) {
				const char *eq = strchr(l, '='), *q;
				assert_non_null(eq);
				assert_true(valid_name(l, (size_t)(eq - l)));
				assert_true(eq[1] == '"');
				q = strchr(eq + 2, '"');
				assert_non_null(q);
				l = q[1] == ',' ? q + 2 : q + 1;
				assert_true(q[1] == ',' || !q[1]);
			}
			rest = close + 1;
		}
		assert_true(*rest == ' ');
		assert_int_equal(sscanf(rest, " %llu", &v), 1);
		/* every sample follows the TYPE of its family */
		assert_string_equal(name, type_of);
		assert_int_equal(!strcmp(type_kind, "counter"),
				 strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
		unsigned i;
		for (i = 0; i < ne; i++)
			if (!strcmp(e[i].name, name) && !strcmp(e[i].labels, labels))
				break;
		if (i == ne)
			fail_msg("unexpected sample %s{%s}", name, labels);
		uint64_t want;
		memcpy(&want, e[i].val, sizeof(want));
		assert_int_equal(v, want);
		e[i].seen++;
	}
}

static void test_prometheus_full(void **st)
{
	static char buf[32768];
	struct metrics_snapshot m;
	struct expect e[96];
	unsigned ne;
	int len;

	fill(&m);
	ne = expectations(&m, e);
	len = metrics_prometheus(&m, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(strlen(buf), len);
	assert_int_equal(buf[len - 1], '\n');
	check_exposition(buf, e, ne);
	for (unsigned i = 0; i < ne; i++)
		if (e[i].seen != 1)
			fail_msg("%s{%s} seen %u times", e[i].name, e[i].labels, e[i].seen);
}

/* The halves of the snapshot render only when valid. */
static void test_prometheus_halves(void **st)
{
	static char buf[32768];
	struct metrics_snapshot m;
	struct expect e[96];
	unsigned ne;

	for (int half = 0; half < 2; half++) {
		fill(&m);
		m.xdp = half;
		m.daemon = !half;
		ne = expectations(&m, e);
		assert_true(metrics_prometheus(&m, buf, sizeof(buf)) > 0);
		check_exposition(buf, e, ne);
		for (unsigned i = 0; i < ne; i++)
			assert_int_equal(e[i].seen, e[i].xdp == (bool)half);
	}
}

static void test_render_no_space(void **st)
{
	struct metrics_snapshot m;
	char buf[256];

	fill(&m);
	assert_int_equal(metrics_prometheus(&m, buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(metrics_json(&m, buf, sizeof(buf)), -ENOSPC);
}

static void test_json_roundtrip(void **st)
{
	static char buf[16384];
	struct metrics_snapshot m, back;

	fill(&m);
	assert_true(metrics_json(&m, buf, sizeof(buf)) > 0);
	assert_int_equal(metrics_json_parse(buf, &back), 0);
	assert_memory_equal(&m, &back, sizeof(m));

	/* Without the XDP half: no xdp_ keys, and parsing says so. */
	m.xdp = false;
	assert_true(metrics_json(&m, buf, sizeof(buf)) > 0);
	assert_null(strstr(buf, "xdp_"));
	assert_int_equal(metrics_json_parse(buf, &back), 0);
	assert_true(back.daemon);
	assert_false(back.xdp);
	assert_memory_equal(back.turn.c2p_bytes, m.turn.c2p_bytes, sizeof(m.turn.c2p_bytes));
}

/* Python's json module reads it: every key once, the values ours. */
static void test_json_python(void **st)
{
	static char buf[16384];
	char path[] = "/tmp/test_metrics.XXXXXX", cmd[512], line[256];
	struct metrics_snapshot m;
	unsigned long long nkeys, allocs, xdp_err_bytes;
	FILE *f, *p;
	int fd;

	fill(&m);
	assert_true(metrics_json(&m, buf, sizeof(buf)) > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(buf, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys\n"
		 "pairs = json.load(open(sys.argv[1]), object_pairs_hook=lambda p: p)\n"
		 "d = dict(pairs)\n"
		 "assert len(d) == len(pairs) and all(type(v) is int for v in d.values())\n"
		 "print(len(d), d[\"allocations\"], d[\"xdp_forwarded_hairpin_bytes\"])' %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	unlink(path);
	assert_int_equal(sscanf(line, "%llu %llu %llu", &nkeys, &allocs, &xdp_err_bytes), 3);
	struct expect e[96];
	/* Every sample but xturn_build_info (a constant) has its key. */
	assert_int_equal(nkeys, expectations(&m, e) - 1);
	assert_int_equal(allocs, m.allocations);
	assert_int_equal(xdp_err_bytes, m.xdp_cnt[XT_CNT_HAIRPIN].bytes);
}

static void test_json_parse_rejects(void **st)
{
	static const char *const bad[] = {
		"", "[]", "{", "{\"allocations\":}", "{\"allocations\":-1}",
		"{\"allocations\":1,}", "{\"allocations\":1} x", "{\"a\\\"b\":1}",
		"{\"allocations\":\"1\"}", "{allocations:1}", "{\"allocations\":99999999999999999999}",
	};
	struct metrics_snapshot m;

	for (size_t i = 0; i < N(bad); i++)
		if (metrics_json_parse(bad[i], &m) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
	/* unknown keys are skipped (a newer daemon), known ones read */
	assert_int_equal(metrics_json_parse(" { \"future\" : 5 , \"users\": 3 }\n", &m), 0);
	assert_int_equal(m.users, 3);
	assert_true(m.daemon);
	assert_int_equal(metrics_json_parse("{}", &m), 0);
	assert_false(m.daemon || m.xdp);
}

/* ---- alloc_totals and the daemon's collection ---------------------------------- */

static bool in_kernel_every_other(void *ctx, struct allocation *a, struct chan *c)
{
	unsigned *n = ctx;
	return (*n)++ % 2 == 0;
}

static void test_alloc_totals(void **st)
{
	struct alloc_limits lim = { .max_perms = 8, .max_channels = 8, .permission_lifetime = 300,
				    .channel_lifetime = 600 };
	unsigned calls = 0;
	struct alloc_hooks h = { .ctx = &calls, .chan_up = in_kernel_every_other };
	struct alloc_table *t = alloc_table_new(&lim, &h, NULL);
	struct allocation *a1 = mk("198.51.100.1:1", "alice", 1000);
	struct allocation *a2 = mk("198.51.100.1:2", "alice", 1000);
	struct allocation *a3 = mk("198.51.100.1:3", "bob", 1000);
	struct sockaddr_storage p1 = A("203.0.113.1:5000"), p2 = A("203.0.113.2:5000");
	struct sockaddr_storage p3 = A("203.0.113.3:0");
	struct alloc_totals tot;

	alloc_totals(t, &tot);
	assert_int_equal(tot.perms + tot.chans + tot.chans_in_kernel + tot.users, 0);
	assert_int_equal(alloc_insert(t, a1), 0);
	assert_int_equal(alloc_insert(t, a2), 0);
	assert_int_equal(alloc_insert(t, a3), 0);
	assert_int_equal(alloc_chan_bind(t, a1, 0x4000, &p1, 10), 0);
	assert_int_equal(alloc_chan_bind(t, a1, 0x4001, &p2, 10), 0);
	assert_int_equal(alloc_chan_bind(t, a3, 0x4000, &p1, 10), 0);
	assert_int_equal(alloc_perm_add(t, a2, &p3, 10), 0);
	alloc_totals(t, &tot);
	assert_int_equal(tot.perms, 4);	/* a1: p1, p2; a2: p3; a3: p1 */
	assert_int_equal(tot.chans, 3);
	assert_int_equal(tot.chans_in_kernel, 2);	/* calls 0 and 2 */
	assert_int_equal(tot.users, 2);
	alloc_delete(t, a3, ALLOC_END_DELETED);
	alloc_totals(t, &tot);
	assert_int_equal(tot.users, 1);
	assert_int_equal(tot.chans, 2);
	alloc_table_free(t);
}

/* ---- the endpoints ------------------------------------------------------------ */

struct ep {
	struct config cfg;
	struct auth *auth;
	struct policy *pol;
	struct turn_server *turn;
	struct stats *ms;
	uint64_t full;
	char dir[64];
};

static void ep_collect(void *ctx, struct metrics_snapshot *m)
{
	struct ep *e = ctx;

	stats_collect(m, &e->turn, 1);
	m->fastpath_full = e->full;	/* what the offload's part would say */
}

static int zero_random(void *ctx, void *buf, size_t len)
{
	memset(buf, 0, len);
	return 0;
}

static time_t no_clock(void *ctx)
{
	return 0;
}

static int ep_setup(void **st)
{
	struct ep *e = calloc(1, sizeof(*e));
	struct turn_cfg tc = { .limits = { .max_perms = 4, .max_channels = 4 },
			       .max_lifetime = 600, .default_lifetime = 600 };
	/* No client: nothing is sent, no relay opened. */
	struct turn_io io = { .random = zero_random, .wall_clock = no_clock };
	char err[256];
	int rc = -EADDRINUSE;

	config_init(&e->cfg);
	e->auth = auth_new("test", 600);
	e->pol = policy_new();
	e->turn = turn_new(&tc, e->auth, e->pol, &io, NULL, NULL);
	assert_non_null(e->turn);
	strcpy(e->dir, "/tmp/test_metrics.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	/* a subdirectory: stats_open creates it */
	snprintf(e->cfg.stats_socket, sizeof(e->cfg.stats_socket), "%s/run/x.sock", e->dir);
	e->cfg.prometheus = true;
	e->full = 42;
	for (int i = 0; i < 50 && rc == -EADDRINUSE; i++) {
		e->cfg.prometheus_port = (uint16_t)(20000 + (getpid() * 31 + i * 997) % 40000);
		rc = stats_open(&e->ms, &e->cfg, ep_collect, e, NULL, err, sizeof(err));
	}
	if (rc)
		fail_msg("stats_open: %s", err);
	assert_string_equal(err, "");
	*st = e;
	return 0;
}

static int ep_teardown(void **st)
{
	struct ep *e = *st;
	char path[128];

	stats_close(e->ms);
	/* the socket file went with it: rmdir fails on a non-empty directory */
	snprintf(path, sizeof(path), "%s/run", e->dir);
	assert_int_equal(rmdir(path), 0);
	rmdir(e->dir);
	turn_free(e->turn);
	config_free(&e->cfg);
	free(e);
	return 0;
}

/* Runs the endpoint until fd has something to read (or is closed). */
static void pump(struct ep *e, int fd)
{
	for (int i = 0; i < 50; i++) {
		struct pollfd p[2] = { { stats_fd(e->ms), POLLIN, 0 }, { fd, POLLIN, 0 } };
		assert_true(poll(p, 2, 100) >= 0);
		if (p[0].revents)
			stats_event(e->ms);
		if (p[1].revents)
			return;
	}
	fail_msg("no answer");
}

/* Runs the endpoint for whatever is pending. */
static void spin(struct ep *e)
{
	for (int k = 0; k < 5; k++) {
		struct pollfd p = { stats_fd(e->ms), POLLIN, 0 };
		if (poll(&p, 1, 20) > 0)
			stats_event(e->ms);
	}
}

static size_t read_all(struct ep *e, int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	pump(e, fd);
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	return got;
}

static int http_connect(struct ep *e)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(e->cfg.prometheus_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void http_get(struct ep *e, const char *req, char *buf, size_t len)
{
	int fd = http_connect(e);

	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	read_all(e, fd, buf, len);
	close(fd);
}

static void test_http(void **st)
{
	struct ep *e = *st;
	static char buf[32768];
	struct metrics_snapshot m;
	char *body;

	http_get(e, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 200 OK\r\n", 17);
	assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4"));
	body = strstr(buf, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	assert_non_null(strstr(buf, "Content-Length: "));
	assert_int_equal(atoi(strstr(buf, "Content-Length: ") + 16), strlen(body));
	/* the daemon's live values: fast path off, the full-map count we gave */
	assert_non_null(strstr(body, "\nxturn_xdp_refused_channels_total 42\n"));
	assert_non_null(strstr(body, "\nxturn_allocations 0\n"));
	/* no sample of the XDP half: no fast path, no counters */
	assert_null(strstr(body, "path=\"xdp\""));
	assert_null(strstr(body, "xturn_xdp_passed"));
	stats_collect(&m, &e->turn, 1);
	m.fastpath_full = e->full;
	struct expect ex[96];
	unsigned ne = expectations(&m, ex);
	check_exposition(body, ex, ne);

	http_get(e, "GET /other HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 404 ", 13);
	http_get(e, "GET /metricsfoo HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 404 ", 13);
	http_get(e, "POST /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 405 ", 13);
}

/* Idle connections hold at most STATS_MAX_CLIENTS slots; one more is
 * closed at once, and a slot freed serves again. */
/* The check page may share the metrics' listener (web-ip:web-port the same
 * as prometheus-ip:port): the page, its credentials and /metrics, one port. */
static void test_web_on_metrics_port(void **st)
{
	struct ep *e = *st;
	static char buf[32768];
	struct web *web;
	char err[256];

	e->cfg.web_port = e->cfg.prometheus_port;
	snprintf(e->cfg.web_ip, sizeof(e->cfg.web_ip), "%s", e->cfg.prometheus_ip);
	web = web_new(&e->cfg, "check-secret");
	assert_non_null(web);
	stats_close(e->ms);
	assert_int_equal(stats_open(&e->ms, &e->cfg, ep_collect, e, web, err, sizeof(err)), 0);
	http_get(e, "GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 200 OK\r\n", 17);
	assert_non_null(strstr(buf, "Content-Type: text/html"));
	assert_non_null(strstr(buf, "<title>xturn check</title>"));
	http_get(e, "GET /check/credentials HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 200 OK\r\n", 17);
	assert_non_null(strstr(buf, "Cache-Control: no-store"));
	assert_non_null(strstr(buf, ":xturn-check-"));
	http_get(e, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 200 OK\r\n", 17);
	assert_non_null(strstr(buf, "xturn_allocations"));
	/* Back to what the teardown expects: the endpoint without the page. */
	stats_close(e->ms);
	assert_int_equal(stats_open(&e->ms, &e->cfg, ep_collect, e, NULL, err, sizeof(err)), 0);
	web_free(web);
}

static void test_http_bounded(void **st)
{
	struct ep *e = *st;
	int idle[STATS_MAX_CLIENTS], extra;
	char buf[4096];

	for (int i = 0; i < STATS_MAX_CLIENTS; i++) {
		idle[i] = http_connect(e);
		spin(e);	/* the endpoint accepts it */
	}
	extra = http_connect(e);
	assert_int_equal(read_all(e, extra, buf, sizeof(buf)), 0);	/* closed: EOF */
	close(extra);
	close(idle[0]);
	spin(e);	/* the endpoint sees the close */
	http_get(e, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.0 200 OK\r\n", 17);
	for (int i = 1; i < STATS_MAX_CLIENTS; i++)
		close(idle[i]);
}

static void test_unix(void **st)
{
	struct ep *e = *st;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static char buf[16384];
	struct metrics_snapshot m;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->cfg.stats_socket);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(read_all(e, fd, buf, sizeof(buf)) > 0);
	close(fd);
	assert_int_equal(metrics_json_parse(buf, &m), 0);
	assert_true(m.daemon);
	assert_false(m.xdp);
	assert_int_equal(m.fastpath_full, 42);
	assert_int_equal(m.fastpath, 0);
}

/* A second daemon on the same socket leaves the live one alone. */
static void test_unix_in_use(void **st)
{
	struct ep *e = *st;
	struct config c = e->cfg;
	struct stats *second;
	char err[256];

	c.prometheus = false;
	assert_int_equal(stats_open(&second, &c, ep_collect, e, NULL, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "another running xturnd"));
	stats_close(second);
	assert_int_equal(access(e->cfg.stats_socket, F_OK), 0);	/* still the first's */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_full),
		cmocka_unit_test(test_prometheus_halves),
		cmocka_unit_test(test_render_no_space),
		cmocka_unit_test(test_json_roundtrip),
		cmocka_unit_test(test_json_python),
		cmocka_unit_test(test_json_parse_rejects),
		cmocka_unit_test(test_alloc_totals),
		cmocka_unit_test_setup_teardown(test_http, ep_setup, ep_teardown),
		cmocka_unit_test_setup_teardown(test_http_bounded, ep_setup, ep_teardown),
		cmocka_unit_test_setup_teardown(test_web_on_metrics_port, ep_setup, ep_teardown),
		cmocka_unit_test_setup_teardown(test_unix, ep_setup, ep_teardown),
		cmocka_unit_test_setup_teardown(test_unix_in_use, ep_setup, ep_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
