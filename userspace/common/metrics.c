#include <errno.h>
#include <libgen.h>
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
#include "common/outbuf.h"
#include "common/version.h"

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

/* One sample: its JSON key, its Prometheus family and labels, and where
 * its uint64_t lives in the snapshot. rows_build() orders the rows by
 * family (stably), so HELP and TYPE are written once per family. */
struct row {
	char json[48];
	char name[48];
	char label[96];		/* `key="value",...` or empty */
	char help[128];		/* empty: the family's is on another row */
	const char *type;
	size_t off;
	bool xdp;		/* which half of the snapshot */
	bool one;		/* the value is 1 (build_info) */
};

#define S(f) offsetof(struct metrics_snapshot, f)
#define G "gauge"
#define C "counter"
/* Bytes are application data (no headers) wherever they are counted. */
static const struct daemon_field {
	const char *json, *name, *label, *type, *help;
	size_t off;
} daemon_fields[] = {
	{ "start_time_seconds", "process_start_time_seconds", "", G,
	  "Start time of the process since the Unix epoch, seconds", S(start_time) },
	{ "fastpath", "xturn_fastpath_enabled", "", G, "1 if the XDP fast path is on",
	  S(fastpath) },
	{ "allocations", "xturn_allocations", "", G, "Live allocations", S(allocations) },
	{ "permissions", "xturn_permissions", "", G, "Live permissions", S(permissions) },
	{ "channels", "xturn_channels", "", G, "Live channel bindings", S(channels) },
	{ "channels_in_kernel", "xturn_xdp_channels", "", G,
	  "Channel bindings the XDP fast path carries", S(channels_in_kernel) },
	{ "users", "xturn_users", "", G, "Distinct users holding allocations", S(users) },
	{ "fastpath_full", "xturn_xdp_refused_channels_total", "", C,
	  "Channels left to userspace relaying because a fast path map was full",
	  S(fastpath_full) },
	{ "fastpath_perms_missing", "xturn_xdp_missing_permissions", "", G,
	  "Permissions not in the fast path's full map (their relays' peers pass to the daemon)",
	  S(fastpath_perms_missing) },
	{ "tcp_connections", "xturn_tcp_connections", "", G, "Open TCP/TLS client connections",
	  S(tcp_connections) },
	{ "tcp_accepted", "xturn_tcp_connections_accepted_total", "", C,
	  "TCP/TLS connections accepted", S(tcp.accepted) },
	{ "tcp_rejected", "xturn_tcp_connections_closed_total", "reason=\"limit\"", C,
	  "TCP/TLS connections closed by the server, by reason", S(tcp.rejected) },
	{ "tcp_bad_framing", "xturn_tcp_connections_closed_total", "reason=\"bad_framing\"", C,
	  NULL, S(tcp.bad_framing) },
	{ "tcp_overflow", "xturn_tcp_connections_closed_total", "reason=\"send_overflow\"", C,
	  NULL, S(tcp.overflow) },
	{ "tcp_timeouts", "xturn_tcp_connections_closed_total", "reason=\"timeout\"", C, NULL,
	  S(tcp.timeouts) },
	{ "tls_failures", "xturn_tcp_connections_closed_total", "reason=\"tls_failure\"", C,
	  NULL, S(tcp.tls_failures) },
	{ "requests", "xturn_stun_requests_total", "", C, "STUN requests handled",
	  S(turn.requests) },
	{ "binding", "xturn_binding_requests_total", "", C, "Binding requests", S(turn.binding) },
	{ "allocations_created", "xturn_allocations_created_total", "", C,
	  "Allocations created", S(turn.allocations_created) },
	{ "auth_challenges", "xturn_auth_challenges_total", "", C,
	  "401 answers to requests without credentials", S(turn.auth_challenges) },
	{ "auth_failures", "xturn_auth_failures_total", "", C,
	  "Wrong credentials, stale or bad nonces", S(turn.auth_failures) },
	{ "error_responses", "xturn_error_responses_total", "", C, "Error responses sent",
	  S(turn.error_responses) },
	{ "peer_denied", "xturn_peer_denials_total", "", C,
	  "Requests refused (403) and data dropped by the peer policy", S(turn.peer_denied) },
	{ "unauth_limited", "xturn_unauthenticated_responses_limited_total", "", C,
	  "Unauthenticated error responses not sent: over unauth-rate-limit for their source",
	  S(turn.unauth_limited) },
	{ "revoked", "xturn_revocations_total", "", C,
	  "Permissions, channels and allocations revoked by a reload or a new host address",
	  S(turn.revoked) },
	{ "malformed", "xturn_dropped_packets_total", "path=\"userspace\",reason=\"malformed\"", C,
	  "Packets dropped, by path (xdp, userspace) and reason", S(turn.malformed) },
	{ "dropped_no_perm", "xturn_dropped_packets_total",
	  "path=\"userspace\",reason=\"no_permission\"", C, NULL, S(turn.dropped_no_perm) },
	{ "dropped_no_alloc", "xturn_dropped_packets_total",
	  "path=\"userspace\",reason=\"no_allocation\"", C, NULL, S(turn.dropped_no_alloc) },
	{ "send_drops", "xturn_dropped_packets_total", "path=\"userspace\",reason=\"send_failed\"",
	  C, NULL, S(send_drops) },
};
#undef G
#undef C

static const char *const transports[XT_TRANSPORTS] = { "udp", "tcp", "tls" };

#define NDAEMON (sizeof(daemon_fields) / sizeof(daemon_fields[0]))
#define MAX_ROWS (NDAEMON + 4 * XT_TRANSPORTS + 2 * XT_CNT_MAX + 1)

static void row_set(struct row *r, const char *json, const char *name, const char *label,
		    const char *help, const char *type, size_t off, bool xdp)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->json, sizeof(r->json), "%s", json);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->label, sizeof(r->label), "%s", label);
	snprintf(r->help, sizeof(r->help), "%s", help ? help : "");
	r->type = type;
	r->off = off;
	r->xdp = xdp;
}

/* Insertion sort by family, stable: a family's rows stay in table order. */
static void rows_sort(struct row *r, unsigned n)
{
	static struct row tmp;

	for (unsigned i = 1; i < n; i++) {
		unsigned j = i;
		tmp = r[i];
		while (j > 0 && strcmp(r[j - 1].name, tmp.name) > 0) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = tmp;
	}
}

/* Every sample of both halves, grouped by family. */
static unsigned rows_build(struct row *r)
{
	static const char *const dirs[] = { "c2p", "p2c" };
	char json[48], label[96];
	unsigned n = 0;

	for (size_t i = 0; i < NDAEMON; i++, n++) {
		const struct daemon_field *f = &daemon_fields[i];
		row_set(&r[n], f->json, f->name, f->label, f->help, f->type, f->off, false);
	}
	row_set(&r[n], "", "xturn_build_info", "", "", "gauge", 0, false);
	snprintf(r[n].label, sizeof(r[n].label), "version=\"%s\"", xt_version());
	snprintf(r[n].help, sizeof(r[n].help), "The build serving these metrics (always 1)");
	r[n++].one = true;
	/* Userspace relaying, by direction and transport: packets and bytes. */
	for (unsigned u = 0; u < 2; u++)
		for (unsigned d = 0; d < 2; d++)
			for (unsigned t = 0; t < XT_TRANSPORTS; t++, n++) {
				size_t off = d ? (u ? S(turn.p2c_bytes) : S(turn.p2c_packets))
					       : (u ? S(turn.c2p_bytes) : S(turn.c2p_packets));
				snprintf(json, sizeof(json), "%s_%s_%s", dirs[d], transports[t],
					 u ? "bytes" : "packets");
				snprintf(label, sizeof(label),
					 "path=\"userspace\",direction=\"%s\",transport=\"%s\"",
					 dirs[d], transports[t]);
				row_set(&r[n], json, u ? "xturn_relayed_bytes_total" :
					"xturn_relayed_packets_total", label,
					u ? "Application data bytes relayed, by path (xdp, userspace), "
					    "direction and the client's transport"
					  : "Packets relayed, by path (xdp, userspace), direction and "
					    "the client's transport", "counter",
					off + t * sizeof(uint64_t), false);
			}
	/* XDP: forwarded ones are relayed packets (their clients are UDP);
	 * passed and dropped ones relay no bytes: packets only. */
	for (unsigned u = 0; u < 2; u++)
		for (unsigned c = 0; c < XT_CNT_MAX; c++) {
			const struct metrics_xdp_desc *d = &metrics_xdp[c];
			bool fwd = !strcmp(d->verdict, "forwarded");
			size_t off = S(xdp_cnt) + c * sizeof(struct xt_count) +
				     (u ? offsetof(struct xt_count, bytes) :
					  offsetof(struct xt_count, packets));

			if (u && !fwd)
				continue;
			snprintf(json, sizeof(json), "xdp_%s_%s_%s", d->verdict, d->value,
				 u ? "bytes" : "packets");
			if (fwd) {
				snprintf(label, sizeof(label),
					 "path=\"xdp\",direction=\"%s\",transport=\"udp\"", d->value);
				row_set(&r[n++], json, u ? "xturn_relayed_bytes_total" :
					"xturn_relayed_packets_total", label, NULL, "counter", off,
					true);
			} else if (!strcmp(d->verdict, "dropped")) {
				snprintf(label, sizeof(label), "path=\"xdp\",reason=\"%s\"", d->value);
				row_set(&r[n++], json, "xturn_dropped_packets_total", label, NULL,
					"counter", off, true);
			} else {
				snprintf(label, sizeof(label), "reason=\"%s\"", d->value);
				row_set(&r[n++], json, "xturn_xdp_passed_packets_total", label,
					"Packets XDP passed to the kernel's stack, by reason",
					"counter", off, true);
			}
		}
	rows_sort(r, n);
	return n;
}

static uint64_t row_val(const struct metrics_snapshot *m, const struct row *r)
{
	uint64_t v = 1;

	if (!r->one)
		memcpy(&v, (const char *)m + r->off, sizeof(v));
	return v;
}

static bool row_wanted(const struct metrics_snapshot *m, const struct row *r)
{
	return r->xdp ? m->xdp : m->daemon;
}

static int out_end(struct outbuf *o)
{
	return o->full ? -ENOSPC : (int)o->pos;
}

/* A family's HELP: its first row's that has one (that row's half of the
 * snapshot may be the one left out). */
static const char *family_help(const struct row *r, unsigned n, const char *family)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(r[i].name, family) && r[i].help[0])
			return r[i].help;
	return "";
}

int metrics_prometheus(const struct metrics_snapshot *m, char *buf, size_t len)
{
	struct row r[MAX_ROWS];
	unsigned n = rows_build(r);
	struct outbuf o = outbuf_init(buf, len);
	const char *family = "";

	for (unsigned i = 0; i < n; i++) {
		if (!row_wanted(m, &r[i]))
			continue;
		if (strcmp(family, r[i].name)) {
			family = r[i].name;
			outbuf_put(&o, "# HELP %s %s\n", family, family_help(r, n, family));
			outbuf_put(&o, "# TYPE %s %s\n", family, r[i].type);
		}
		if (r[i].label[0])
			outbuf_put(&o, "%s{%s} %llu\n", family, r[i].label,
			    (unsigned long long)row_val(m, &r[i]));
		else
			outbuf_put(&o, "%s %llu\n", family, (unsigned long long)row_val(m, &r[i]));
	}
	return out_end(&o);
}

int metrics_json(const struct metrics_snapshot *m, char *buf, size_t len)
{
	struct row r[MAX_ROWS];
	unsigned n = rows_build(r);
	struct outbuf o = outbuf_init(buf, len);
	const char *sep = "";

	outbuf_put(&o, "{");
	for (unsigned i = 0; i < n; i++) {
		if (!row_wanted(m, &r[i]) || !r[i].json[0])
			continue;
		outbuf_put(&o, "%s\"%s\":%llu", sep, r[i].json, (unsigned long long)row_val(m, &r[i]));
		sep = ",";
	}
	outbuf_put(&o, "}\n");
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
