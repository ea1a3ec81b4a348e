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
#include "common/metrics.h"

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
