/* xturnstat: xturn's counters from the pinned XDP maps (no daemon needed)
 * and from the daemon's stats socket (when it runs). A table, a live view
 * with rates, JSON, Prometheus text (the same names as the daemon's
 * endpoint: both render through metrics.c), or the per-channel counters. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/addr.h"
#include "common/metrics.h"
#include "common/pins.h"
#include "common/version.h"

#define SNAPSHOT_MAX 65536
#define WHY_LEN 1280

struct opts {
	const char *pin_dir, *socket;
	enum { OUT_TABLE, OUT_JSON, OUT_PROM, OUT_CHANNELS } out;
	bool watch;
	long count;		/* --watch refreshes, 0 = until Ctrl-C */
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---- sources -------------------------------------------------------------- */

/* A pinned map of the expected layout: fd, or -errno with why filled in. */
static int map_open(const char *dir, const char *name, unsigned key_size, unsigned value_size,
		    char *why, size_t whylen)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[1024];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			snprintf(why, whylen, "no pinned maps in %s: is xturnd running with XDP?",
				 dir);
		else
			snprintf(why, whylen, "%s: %s", path, strerror(-err));
		return err;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.key_size != key_size ||
	    info.value_size != value_size) {
		snprintf(why, whylen, "%s: not the layout this xturnstat knows "
			 "(another xturn version?)", path);
		close(fd);
		return -EPROTO;
	}
	return fd;
}

/* Global XDP counters summed over CPUs. */
static int read_maps(const char *dir, struct metrics_snapshot *m, char *why, size_t whylen)
{
	int fd = map_open(dir, XT_MAP_STATS, sizeof(__u32), sizeof(struct xt_count), why, whylen);
	int err;

	if (fd < 0)
		return fd;
	err = pins_read_counters(fd, m->xdp_cnt);
	if (err)
		snprintf(why, whylen, "%s/%s: %s", dir, XT_MAP_STATS, strerror(-err));
	close(fd);
	m->xdp = !err;
	return err;
}

/* The daemon's JSON snapshot. Fills the daemon's half (and the XDP half if
 * the daemon has one: the maps, when readable, override it). */
static int read_daemon(const char *path, struct metrics_snapshot *m, char *why, size_t whylen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 2 };
	struct metrics_snapshot d;
	char *buf = malloc(SNAPSHOT_MAX);
	size_t got = 0;
	ssize_t n;
	int fd, err;

	if (!buf)
		return -ENOMEM;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		free(buf);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		snprintf(why, whylen, "no daemon on %s (%s): is xturnd running? (--socket)", path,
			 strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < SNAPSHOT_MAX - 1 && (n = read(fd, buf + got, SNAPSHOT_MAX - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	err = metrics_json_parse(buf, &d);
	if (err || !d.daemon) {
		err = -EPROTO;
		snprintf(why, whylen, "%s: not an xturnd snapshot", path);
		goto out;
	}
	if (m->xdp)
		memcpy(d.xdp_cnt, m->xdp_cnt, sizeof(d.xdp_cnt));
	d.xdp = d.xdp || m->xdp;
	*m = d;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

/* Both sources; fails only when neither answers (and then says why both). */
static int collect(const struct opts *o, struct metrics_snapshot *m, bool quiet)
{
	char why_maps[WHY_LEN], why_daemon[WHY_LEN];
	int em, ed;

	memset(m, 0, sizeof(*m));
	em = read_maps(o->pin_dir, m, why_maps, sizeof(why_maps));
	ed = read_daemon(o->socket, m, why_daemon, sizeof(why_daemon));
	if (em && ed) {
		fprintf(stderr, "xturnstat: %s\nxturnstat: %s\n", why_maps, why_daemon);
		return em;
	}
	if (!quiet && (em || ed))
		fprintf(stderr, "xturnstat: %s\n", em ? why_maps : why_daemon);
	return 0;
}

/* ---- output -------------------------------------------------------------- */

static double rate(uint64_t now, uint64_t before, double dt)
{
	return dt > 0 && now >= before ? (double)(now - before) / dt : 0;
}

static void print_rates(uint64_t pk, uint64_t pk0, uint64_t by, uint64_t by0, double dt)
{
	if (dt > 0)
		printf(" %12.0f %12.3f", rate(pk, pk0, dt), rate(by, by0, dt) * 8 / 1e6);
	printf("\n");
}

/* prev and dt > 0: with per-second rates (pkt/s, Mbit/s). */
static void print_table(const struct metrics_snapshot *m, const struct metrics_snapshot *prev,
			double dt)
{
	const struct turn_stats *t = &m->turn, *t0 = &prev->turn;

	if (m->daemon) {
		printf("daemon: fast path %s; %llu allocations, %llu permissions, %llu channels "
		       "(%llu in XDP, %llu refused by a full map), %llu users\n",
		       m->fastpath ? "on" : "off", (unsigned long long)m->allocations,
		       (unsigned long long)m->permissions, (unsigned long long)m->channels,
		       (unsigned long long)m->channels_in_kernel,
		       (unsigned long long)m->fastpath_full, (unsigned long long)m->users);
		printf("        %llu requests, %llu allocations created, %llu auth failures, "
		       "%llu challenges, %llu errors, %llu malformed, %llu peers denied, "
		       "%llu revoked\n",
		       (unsigned long long)t->requests, (unsigned long long)t->allocations_created,
		       (unsigned long long)t->auth_failures, (unsigned long long)t->auth_challenges,
		       (unsigned long long)t->error_responses, (unsigned long long)t->malformed,
		       (unsigned long long)t->peer_denied, (unsigned long long)t->revoked);
	} else {
		printf("daemon: not reachable (XDP counters only)\n");
	}
	printf("\n%-32s %14s %16s", "", "packets", "bytes");
	if (dt > 0)
		printf(" %12s %12s", "pkt/s", "Mbit/s");
	printf("\n");
	if (m->daemon) {
		static const char *const tp[XT_TRANSPORTS] = { "udp", "tcp", "tls" };

		for (int d = 0; d < 2; d++)
			for (int k = 0; k < XT_TRANSPORTS; k++) {
				const uint64_t *p = d ? t->p2c_packets : t->c2p_packets;
				const uint64_t *b = d ? t->p2c_bytes : t->c2p_bytes;
				const uint64_t *p0 = d ? t0->p2c_packets : t0->c2p_packets;
				const uint64_t *b0 = d ? t0->p2c_bytes : t0->c2p_bytes;
				char name[64];

				snprintf(name, sizeof(name), "userspace relayed %s %s",
					 d ? "p2c" : "c2p", tp[k]);
				printf("%-32s %14llu %16llu", name, (unsigned long long)p[k],
				       (unsigned long long)b[k]);
				print_rates(p[k], p0[k], b[k], b0[k], dt);
			}
		printf("%-32s %14llu %16s\n", "userspace dropped no_permission",
		       (unsigned long long)t->dropped_no_perm, "-");
		printf("%-32s %14llu %16s\n", "userspace dropped no_allocation",
		       (unsigned long long)t->dropped_no_alloc, "-");
	}
	if (!m->xdp) {
		printf("XDP: no counters (fast path off)\n");
		return;
	}
	for (int c = 0; c < XT_CNT_MAX; c++) {
		const struct xt_count *x = &m->xdp_cnt[c], *x0 = &prev->xdp_cnt[c];
		char name[64];
		snprintf(name, sizeof(name), "XDP %s %s", metrics_xdp[c].verdict,
			 metrics_xdp[c].value);
		printf("%-32s %14llu %16llu", name, (unsigned long long)x->packets,
		       (unsigned long long)x->bytes);
		print_rates(x->packets, x0->packets, x->bytes, x0->bytes, dt);
	}
}

static int print_rendered(const struct metrics_snapshot *m, bool prom)
{
	static char buf[65536];
	int n = prom ? metrics_prometheus(m, buf, sizeof(buf)) : metrics_json(m, buf, sizeof(buf));

	if (n < 0)
		return n;
	fwrite(buf, 1, (size_t)n, stdout);
	return 0;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int watch(const struct opts *o)
{
	struct metrics_snapshot prev, cur;
	bool tty = isatty(STDOUT_FILENO);
	double t0 = mono(), t1;
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART: sleeps end */

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A source that goes away (a daemon restart) is reported and waited
	 * for, as top would. */
	collect(o, &prev, false);
	for (long i = 0; !g_stop && (!o->count || i < o->count); i++) {
		struct timespec one = { .tv_sec = 1 };
		nanosleep(&one, NULL);
		if (g_stop)
			break;
		t1 = mono();
		if (collect(o, &cur, true))
			continue;
		if (tty)
			printf("\033[H\033[2J");
		else if (i)
			printf("\n");
		/* No rates across a source coming or going. */
		print_table(&cur, &prev, cur.daemon == prev.daemon && cur.xdp == prev.xdp ? t1 - t0 : 0);
		fflush(stdout);
		prev = cur;
		t0 = t1;
	}
	return 0;
}

/* A 16-byte map address (IPv4-mapped for IPv4) and a port, as text. */
static const char *map_addr(const __be32 ip[4], __be16 port, char *buf, size_t len)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	s6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, ip, 16);
	s6->sin6_port = port;
	addr_canon(&ss);
	return addr_str(&ss, true, buf, len);
}

/* Every binding of xt_c2p with its counters, the peer -> client ones from
 * its xt_p2c twin. */
static int channels(const struct opts *o)
{
	char why[WHY_LEN], cl[ADDR_STRLEN], rl[ADDR_STRLEN], pr[ADDR_STRLEN];
	struct xt_c2p_key key, next;
	struct xt_c2p_val val;
	struct xt_p2c_key pk;
	struct xt_p2c_val pv;
	int c2p, p2c;
	struct bpf_map_info info = { 0 };
	__u32 ilen = sizeof(info);
	unsigned n = 0;

	c2p = map_open(o->pin_dir, XT_MAP_C2P, sizeof(key), sizeof(val), why, sizeof(why));
	p2c = c2p < 0 ? c2p : map_open(o->pin_dir, XT_MAP_P2C, sizeof(pk), sizeof(pv), why,
				       sizeof(why));
	if (c2p < 0 || p2c < 0) {
		fprintf(stderr, "xturnstat: %s\n", why);
		if (c2p >= 0)
			close(c2p);
		return 1;
	}
	printf("%-24s %-7s %-24s %-24s %12s %14s %12s %14s\n", "client", "channel", "relay", "peer",
	       "c2p pkts", "c2p bytes", "p2c pkts", "p2c bytes");
	/* Bounded by the map's capacity even if bindings churn under us. */
	if (bpf_obj_get_info_by_fd(c2p, &info, &ilen))
		info.max_entries = XT_DEF_BINDINGS;
	for (const void *prev = NULL; n < info.max_entries; prev = &key, n++) {
		if (bpf_map_get_next_key(c2p, prev, &next))
			break;
		key = next;
		if (bpf_map_lookup_elem(c2p, &key, &val))
			continue;	/* deleted since */
		xt_p2c_key_of(&val, &pk);
		if (bpf_map_lookup_elem(p2c, &pk, &pv))
			pv.packets = pv.bytes = 0;
		printf("%-24s 0x%04x  %-24s %-24s %12llu %14llu %12llu %14llu\n",
		       map_addr(key.client, key.client_port, cl, sizeof(cl)), ntohs(key.channel),
		       map_addr(val.relay, val.relay_port, rl, sizeof(rl)),
		       map_addr(val.peer, val.peer_port, pr, sizeof(pr)),
		       (unsigned long long)val.packets, (unsigned long long)val.bytes,
		       (unsigned long long)pv.packets, (unsigned long long)pv.bytes);
	}
	close(c2p);
	close(p2c);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: xturnstat [--pin-dir DIR] [--socket PATH] [--json | --prometheus | --channels]\n"
"       xturnstat --watch [--count N]\n"
"Counters of xturn: the XDP fast path's from its pinned maps (no daemon needed)\n"
"and the daemon's from its stats socket.\n"
"  --pin-dir DIR   pinned maps (default " PINS_DEFAULT_DIR ")\n"
"  --socket PATH   xturnd's stats socket (default " METRICS_DEFAULT_SOCKET ")\n"
"  --watch         refresh every second with per-second rates; Ctrl-C stops\n"
"  --count N       with --watch: stop after N refreshes\n"
"  --json          one JSON object (the daemon's keys, plus xdp_*)\n"
"  --prometheus    Prometheus text format, as xturnd's /metrics\n"
"  --channels      every channel binding in the maps with its counters\n"
"  -h, --help      this help\n"
"  --version       the version\n");
}

int main(int argc, char **argv)
{
	enum { O_PIN = 256, O_SOCK, O_WATCH, O_COUNT, O_JSON, O_PROM, O_CHAN, O_VERSION };
	static const struct option lo[] = {
		{ "pin-dir", required_argument, NULL, O_PIN },
		{ "socket", required_argument, NULL, O_SOCK },
		{ "watch", no_argument, NULL, O_WATCH },
		{ "count", required_argument, NULL, O_COUNT },
		{ "json", no_argument, NULL, O_JSON },
		{ "prometheus", no_argument, NULL, O_PROM },
		{ "channels", no_argument, NULL, O_CHAN },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ 0 },
	};
	struct opts o = { .pin_dir = PINS_DEFAULT_DIR, .socket = METRICS_DEFAULT_SOCKET };
	struct metrics_snapshot m, zero = { 0 };
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_PIN: o.pin_dir = optarg; break;
		case O_SOCK: o.socket = optarg; break;
		case O_WATCH: o.watch = true; break;
		case O_COUNT:
			o.count = strtol(optarg, &end, 10);
			if (*end || o.count <= 0) {
				fprintf(stderr, "xturnstat: --count: expected a positive number\n");
				return 2;
			}
			break;
		case O_JSON: o.out = OUT_JSON; break;
		case O_PROM: o.out = OUT_PROM; break;
		case O_CHAN: o.out = OUT_CHANNELS; break;
		case 'h': usage(stdout); return 0;
		case O_VERSION: printf("xturnstat %s\n", xt_version()); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || (o.watch && o.out != OUT_TABLE) || (o.count && !o.watch)) {
		usage(stderr);
		return 2;
	}
	if (o.out == OUT_CHANNELS)
		return channels(&o);
	if (o.watch)
		return watch(&o);
	if (collect(&o, &m, false))
		return 1;
	if (o.out == OUT_TABLE) {
		print_table(&m, &zero, 0);
		return 0;
	}
	return print_rendered(&m, o.out == OUT_PROM) ? 1 : 0;
}
