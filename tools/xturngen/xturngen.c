/* xturngen: a TURN-aware packet generator and peer sink.
 *
 * Client: creates allocations (one UDP socket each, set up in pipelined
 * waves: the rates measure the server, not round trips), a permission and a
 * channel per peer, then floods ChannelData over every channel at a target
 * rate from several threads, a batch of one allocation's datagrams in one
 * UDP GSO send (sendmmsg where the kernel refuses GSO), and measures the
 * round trip of
 * anything echoed back. Peer: counts what arrives per flow (loss, reorder,
 * one-way latency) and optionally echoes it.
 *
 * Payload (big endian): u32 flow id, u32 sequence, u64 CLOCK_MONOTONIC ns
 * at send, then zeros. Client and peer run on one host, so one-way latency
 * compares one clock.
 *
 * --live-frames IFNAME: the control plane is the same, but the ChannelData
 * is built by a tiny XDP program (xturngen_inject.bpf.c) that
 * BPF_PROG_RUN runs with BPF_F_TEST_XDP_LIVE_FRAMES, one pinned thread per
 * CPU, each frame leaving through IFNAME (XDP_TX) towards the server: many
 * M pps where sendmmsg gives ~0.5 M per thread.
 *
 * --xdp-sink IFNAME: attaches the same object's counting sink
 * (xturngen_sink) to IFNAME, pins its counters and exits, leaving it
 * attached: a peer that counts and drops UDP at the cost of one XDP run
 * (the bench's peer). --detach removes it. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/addr.h"
#include "common/sock.h"
#include "common/stun.h"
#include "client/turnclient.h"
#include "xturngen_inject.h"
#include "xturngen_inject.skel.h"

#define PAYLOAD_MIN 16
#define PAYLOAD_MAX 8192
#define BATCH 32
#define MAX_PEERS 16
#define MAX_THREADS 64
#define MAX_ALLOCS 10000
#define MAX_FLOWS (1u << 20)
/* Runs stay below the 300 s permission lifetime (RFC 8656 §9), so nothing
 * needs refreshing while the data plane owns the sockets. */
#define MAX_DURATION 290
/* After the last send, echoes still in flight are waited for until all came
 * back or none came for ECHO_QUIET_MS, at most ECHO_GRACE_MS: a loaded
 * server can hold them for hundreds of milliseconds. */
#define ECHO_QUIET_MS 500
#define ECHO_GRACE_MS 5000
#define SOCK_BUF (4 << 20)
#define DEFAULT_PORT 3478
#define REST_TTL 86400

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---- latency histogram: log-linear, 32 sub-buckets per power of two (~3 %) */

#define HIST_SUB 5
#define HIST_BUCKETS ((64 - HIST_SUB + 1) << HIST_SUB)

struct hist {
	uint64_t b[HIST_BUCKETS];
	uint64_t n;
};

static unsigned hist_idx(uint64_t v)
{
	unsigned e;

	if (v < (1u << HIST_SUB))
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	return ((e - HIST_SUB + 1) << HIST_SUB) + (unsigned)((v >> (e - HIST_SUB)) & ((1u << HIST_SUB) - 1));
}

/* Lower bound of a bucket's values. */
static uint64_t hist_val(unsigned idx)
{
	unsigned e = idx >> HIST_SUB, sub = idx & ((1u << HIST_SUB) - 1);

	if (e == 0)
		return sub;
	return (uint64_t)((1u << HIST_SUB) + sub) << (e - 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_idx(v)]++;
	h->n++;
}

/* p-th percentile (0..100) in the same unit as the samples; 0 if empty. */
static uint64_t hist_pct(const struct hist *h, double p)
{
	uint64_t want, seen = 0;

	if (!h->n)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want)
			return hist_val(i);
	}
	return hist_val(HIST_BUCKETS - 1);
}

/* ---- payload and per-flow receive statistics -------------------------- */

static void payload_put(uint8_t *p, uint32_t flow, uint32_t seq, uint64_t ts)
{
	uint32_t f = htobe32(flow), s = htobe32(seq);
	uint64_t t = htobe64(ts);

	memcpy(p, &f, 4);
	memcpy(p + 4, &s, 4);
	memcpy(p + 8, &t, 8);
}

static void payload_get(const uint8_t *p, uint32_t *flow, uint32_t *seq, uint64_t *ts)
{
	uint32_t f, s;
	uint64_t t;

	memcpy(&f, p, 4);
	memcpy(&s, p + 4, 4);
	memcpy(&t, p + 8, 8);
	*flow = be32toh(f);
	*seq = be32toh(s);
	*ts = be64toh(t);
}

struct flow {
	uint64_t rx;
	uint32_t max_seq;
	bool seen;
	uint64_t reorder;	/* arrived after a higher sequence number */
};

struct rx {
	struct flow *flows;
	uint32_t nflows;
	uint64_t pkts;		/* atomic: the progress line reads it */
	uint64_t bytes, bad;
	int64_t first_ns, last_ns;
	struct hist lat;	/* ns */
};

static void rx_add(struct rx *r, const uint8_t *p, size_t len, int64_t now)
{
	uint32_t id, seq;
	uint64_t ts;
	struct flow *f;

	if (len < PAYLOAD_MIN) {
		r->bad++;
		return;
	}
	payload_get(p, &id, &seq, &ts);
	if (id >= MAX_FLOWS) {
		r->bad++;
		return;
	}
	if (id >= r->nflows) {
		uint32_t n = id + 1 > 2 * r->nflows ? id + 1 : 2 * r->nflows;
		struct flow *nf = realloc(r->flows, n * sizeof(*nf));

		if (!nf) {
			r->bad++;
			return;
		}
		memset(nf + r->nflows, 0, (n - r->nflows) * sizeof(*nf));
		r->flows = nf;
		r->nflows = n;
	}
	f = &r->flows[id];
	if (f->seen && seq < f->max_seq)
		f->reorder++;
	if (!f->seen || seq > f->max_seq)
		f->max_seq = seq;
	f->seen = true;
	f->rx++;
	if (!r->first_ns)
		r->first_ns = now;
	r->last_ns = now;
	r->bytes += len;
	if ((int64_t)ts <= now)
		hist_add(&r->lat, (uint64_t)(now - (int64_t)ts));
	__atomic_fetch_add(&r->pkts, 1, __ATOMIC_RELAXED);
}

struct rx_sum {
	uint32_t flows;
	uint64_t expected, lost, reorder;
	double loss_pct;
};

static void rx_summarize(const struct rx *r, struct rx_sum *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < r->nflows; i++) {
		const struct flow *f = &r->flows[i];

		if (!f->seen)
			continue;
		s->flows++;
		s->expected += (uint64_t)f->max_seq + 1;
		/* Loss from gaps; duplicates could make rx exceed it. */
		if (f->rx < (uint64_t)f->max_seq + 1)
			s->lost += (uint64_t)f->max_seq + 1 - f->rx;
		s->reorder += f->reorder;
	}
	s->loss_pct = s->expected ? 100.0 * (double)s->lost / (double)s->expected : 0;
}

#define RX_SLOT (CHANNELDATA_HDR_LEN + PAYLOAD_MAX + 64)

/* Receives a batch on fd into bufs (BATCH slots) and feeds rx; with echo,
 * sends each datagram back to its sender. skip is the header length before
 * the payload (4 for ChannelData on the client). Returns datagrams read or
 * -errno. */
static int rx_batch(int fd, uint8_t (*bufs)[RX_SLOT], struct rx *r, bool echo, size_t skip)
{
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage from[BATCH];
	int64_t now;
	int n;

	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		m[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]),
						.msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	n = recvmmsg(fd, m, BATCH, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	now = clock_mono_ns();
	for (int i = 0; i < n; i++) {
		size_t len = m[i].msg_len;

		iov[i].iov_len = len;
		if (len < skip || (skip && !channeldata_looks_like(bufs[i], len))) {
			r->bad++;
			continue;
		}
		rx_add(r, bufs[i] + skip, len - skip, now);
	}
	if (echo && n > 0 && sendmmsg(fd, m, (unsigned)n, MSG_DONTWAIT) < 0)
		r->bad += (uint64_t)n;	/* echo lost, like the network would */
	return n;
}

/* ---- options ------------------------------------------------------------ */

struct opts {
	bool peer, echo, json, dst_mac_set, detach;
	const char *server, *user, *pass, *secret, *pcap, *live_if, *sink_if, *pin;
	uint8_t dst_mac[ETH_ALEN];
	struct sockaddr_storage peers[MAX_PEERS];
	unsigned npeers;
	unsigned allocs, chans, threads, ports, pcap_count;
	double rate, duration;
	size_t len;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: xturngen -s SERVER[:port] -u USER (-w PASS | -W SECRET) -p PEER:PORT[,...]\n"
"                [-a ALLOCS] [-c CHANNELS] [-r PPS] [-d SECONDS] [-l BYTES] [-t THREADS]\n"
"                [--json] [--pcap FILE [--pcap-count N]] [--live-frames IFNAME [--dst-mac MAC]]\n"
"       xturngen --peer -L ADDR:PORT[,...] [--ports N] [--echo] [-d SECONDS] [--json]\n"
"       xturngen --xdp-sink IFNAME (--pin PATH | --detach [--pin PATH])\n"
"\n"
"client (TURN over UDP):\n"
"  -s SERVER      TURN server, default port %d\n"
"  -u USER        username (with -W: the name part of the REST username)\n"
"  -w PASS        long-term password\n"
"  -W SECRET      TURN REST shared secret (username \"<expiry>:USER\")\n"
"  -a N           allocations, each from its own UDP socket (default 1)\n"
"  -p PEERS       peer addresses; channel j goes to peer j mod P at port + j div P\n"
"  -c N           channels per allocation (default 1, at most %d)\n"
"  -r PPS         total ChannelData rate, 0 = as fast as possible (default 1000)\n"
"  -d SECONDS     data-plane duration (default 5, at most %d: no refreshes needed)\n"
"  -l BYTES       payload length, %d..%d (default 64)\n"
"  -t THREADS     sender threads (default 1); allocations are split among them\n"
"  --pcap FILE    also write the data-plane packets (IP/UDP, LINKTYPE_RAW) to FILE\n"
"  --pcap-count N packets written to the pcap (default 1000); -d 0 writes and exits\n"
"  --live-frames IF  data plane by BPF_PROG_RUN live frames out of IF (the interface\n"
"                 towards the server, which must be on-link): -t pinned threads\n"
"                 (at most one per CPU), -r paced per 10 ms call, 0 = as fast as possible\n"
"  --dst-mac MAC  next-hop MAC for --live-frames (default: the server's neighbour entry)\n"
"peer (sink):\n"
"  --peer         run as the peer: count per flow loss, reorder, one-way latency\n"
"  -L ADDRS       listen addresses\n"
"  --ports N      also listen on port+1 .. port+N-1 of each address (default 1)\n"
"  --echo         send every datagram back to its sender (client measures RTT)\n"
"  -d SECONDS     stop after SECONDS (default: on SIGINT/SIGTERM)\n"
"XDP sink (counts and drops every whole UDP datagram, any port; passes the rest):\n"
"  --xdp-sink IF  attach it natively to IF in this namespace and exit, leaving it\n"
"                 attached; its counters (per-CPU array, key 0: u64 packets,\n"
"                 u64 bytes) are pinned at --pin PATH (on a bpffs)\n"
"  --detach       detach the sink from IF (only if it is the sink); with --pin,\n"
"                 also remove the pin\n"
"both:\n"
"  --json         final summary as one JSON object on stdout\n"
"  -h             this help\n",
		DEFAULT_PORT, CHANNEL_MAX - CHANNEL_MIN + 1, MAX_DURATION, PAYLOAD_MIN, PAYLOAD_MAX);
}

static int parse_addrs(const char *list, struct sockaddr_storage *out, unsigned *n)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_PEERS || addr_parse(tok, 0, &out[*n]) < 0 || !addr_port(&out[*n])) {
			ret = -EINVAL;
			break;
		}
		(*n)++;
	}
	free(copy);
	return ret < 0 || !*n ? -EINVAL : 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end || !(v >= lo && v <= hi))
		return -EINVAL;
	*out = v;
	return 0;
}

enum { O_PEER = 256, O_ECHO, O_JSON, O_PCAP, O_PCAP_COUNT, O_PORTS, O_DURATION, O_LIVE,
       O_DST_MAC, O_SINK, O_PIN, O_DETACH };

static int parse_mac(const char *s, uint8_t mac[ETH_ALEN])
{
	unsigned b[ETH_ALEN];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != ETH_ALEN)
		return -EINVAL;
	for (int i = 0; i < ETH_ALEN; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "peer", no_argument, NULL, O_PEER },
		{ "echo", no_argument, NULL, O_ECHO },
		{ "json", no_argument, NULL, O_JSON },
		{ "pcap", required_argument, NULL, O_PCAP },
		{ "pcap-count", required_argument, NULL, O_PCAP_COUNT },
		{ "ports", required_argument, NULL, O_PORTS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "live-frames", required_argument, NULL, O_LIVE },
		{ "dst-mac", required_argument, NULL, O_DST_MAC },
		{ "xdp-sink", required_argument, NULL, O_SINK },
		{ "pin", required_argument, NULL, O_PIN },
		{ "detach", no_argument, NULL, O_DETACH },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned len = 64;
	int c, bad = 0;

	*o = (struct opts){ .allocs = 1, .chans = 1, .threads = 1, .ports = 1,
			    .pcap_count = 1000, .rate = 1000, .duration = -1 };
	while ((c = getopt_long(argc, argv, "s:u:w:W:a:p:c:r:d:l:t:L:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->server = optarg; break;
		case 'u': o->user = optarg; break;
		case 'w': o->pass = optarg; break;
		case 'W': o->secret = optarg; break;
		case 'a': bad |= parse_uint(optarg, 1, MAX_ALLOCS, &o->allocs); break;
		case 'p': case 'L': bad |= parse_addrs(optarg, o->peers, &o->npeers); break;
		case 'c': bad |= parse_uint(optarg, 1, CHANNEL_MAX - CHANNEL_MIN + 1, &o->chans); break;
		case 'r': bad |= parse_num(optarg, 0, 1e9, &o->rate); break;
		case 'd': case O_DURATION: bad |= parse_num(optarg, 0, 1e6, &o->duration); break;
		case 'l': bad |= parse_uint(optarg, PAYLOAD_MIN, PAYLOAD_MAX, &len); break;
		case 't': bad |= parse_uint(optarg, 1, MAX_THREADS, &o->threads); break;
		case O_PEER: o->peer = true; break;
		case O_ECHO: o->echo = true; break;
		case O_JSON: o->json = true; break;
		case O_PCAP: o->pcap = optarg; break;
		case O_PCAP_COUNT: bad |= parse_uint(optarg, 1, 10000000, &o->pcap_count); break;
		case O_PORTS: bad |= parse_uint(optarg, 1, 1024, &o->ports); break;
		case O_LIVE: o->live_if = optarg; break;
		case O_DST_MAC: bad |= parse_mac(optarg, o->dst_mac); o->dst_mac_set = true; break;
		case O_SINK: o->sink_if = optarg; break;
		case O_PIN: o->pin = optarg; break;
		case O_DETACH: o->detach = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
		if (bad) {
			fprintf(stderr, "xturngen: bad value for -%c: %s\n", c < 256 ? c : '-', optarg);
			return -EINVAL;
		}
	}
	o->len = len;
	if (o->sink_if || o->pin || o->detach) {
		if (optind == argc && o->sink_if && (o->pin || o->detach))
			return 0;
		fprintf(stderr, "xturngen: --xdp-sink IF needs --pin PATH or --detach\n");
		return -EINVAL;
	}
	if (optind != argc || !o->npeers) {
		fprintf(stderr, "xturngen: %s\n", optind != argc ? "unexpected argument" :
			o->peer ? "-L is required" : "-p is required");
		return -EINVAL;
	}
	if (o->peer)
		return o->live_if ? -EINVAL : 0;
	if (o->duration < 0)
		o->duration = 5;
	if (!o->server || !o->user || !o->pass == !o->secret || o->duration > MAX_DURATION) {
		fprintf(stderr, "xturngen: need -s, -u and one of -w/-W; -d at most %d\n",
			MAX_DURATION);
		return -EINVAL;
	}
	return 0;
}

/* ---- peer mode ---------------------------------------------------------- */

static void print_rx_json(const char *mode, const struct rx *r, double secs)
{
	struct rx_sum s;

	rx_summarize(r, &s);
	printf("{\"mode\":\"%s\",\"duration_s\":%.3f,\"flows\":%u,\"received\":%llu,"
	       "\"bytes\":%llu,\"pps\":%.1f,\"expected\":%llu,\"lost\":%llu,\"loss_pct\":%.3f,"
	       "\"reorder\":%llu,\"bad\":%llu,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f}\n",
	       mode, secs, s.flows, (unsigned long long)r->pkts, (unsigned long long)r->bytes,
	       secs > 0 ? (double)r->pkts / secs : 0, (unsigned long long)s.expected,
	       (unsigned long long)s.lost, s.loss_pct, (unsigned long long)s.reorder,
	       (unsigned long long)r->bad, hist_pct(&r->lat, 50) / 1e3,
	       hist_pct(&r->lat, 99) / 1e3);
}

static int run_peer(const struct opts *o)
{
	unsigned nfd = 0;
	struct pollfd *pfd = calloc((size_t)o->npeers * o->ports, sizeof(*pfd));
	uint8_t (*bufs)[RX_SLOT] = calloc(BATCH, RX_SLOT);
	struct rx r = { 0 };
	int64_t start = clock_mono_ns(), next_report = start + 1000000000, end;
	uint64_t last_pkts = 0;
	int ret = 0;

	if (!pfd || !bufs) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < o->npeers; i++) {
		for (unsigned p = 0; p < o->ports; p++) {
			struct sockaddr_storage a = o->peers[i];
			char s[ADDR_STRLEN];
			int fd;

			addr_set_port(&a, (uint16_t)(addr_port(&a) + p));
			fd = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || bind(fd, (struct sockaddr *)&a, addr_len(&a)) < 0) {
				ret = -errno;
				fprintf(stderr, "xturngen: listen %s: %s\n",
					addr_str(&a, true, s, sizeof(s)), strerror(errno));
				if (fd >= 0)
					close(fd);
				goto out;
			}
			sock_buffers(fd, SOCK_BUF);
			pfd[nfd++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
	}
	fprintf(stderr, "xturngen: peer listening on %u socket(s)%s\n", nfd,
		o->echo ? ", echoing" : "");
	end = o->duration > 0 ? start + (int64_t)(o->duration * 1e9) : INT64_MAX;
	while (!g_stop && clock_mono_ns() < end) {
		int n = poll(pfd, nfd, 100);
		int64_t now;

		if (n < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		for (unsigned i = 0; n > 0 && i < nfd; i++) {
			/* A bounded number of batches per wakeup keeps the
			 * progress line and the stop check timely. */
			for (int k = 0; k < 64 && (pfd[i].revents & POLLIN); k++)
				if (rx_batch(pfd[i].fd, bufs, &r, o->echo, 0) < BATCH)
					break;
		}
		now = clock_mono_ns();
		if (now >= next_report) {
			uint64_t p = __atomic_load_n(&r.pkts, __ATOMIC_RELAXED);

			fprintf(stderr, "peer: t=%.0fs rx=%llu pps=%llu lat_p50=%.1fus\n",
				(now - start) / 1e9, (unsigned long long)p,
				(unsigned long long)(p - last_pkts), hist_pct(&r.lat, 50) / 1e3);
			last_pkts = p;
			next_report += 1000000000;
		}
	}
	{
		double secs = r.last_ns > r.first_ns ? (r.last_ns - r.first_ns) / 1e9 : 0;
		struct rx_sum s;

		rx_summarize(&r, &s);
		fprintf(stderr, "peer: received %llu in %u flows, lost %llu (%.3f%%), reorder %llu, "
			"latency p50 %.1f us p99 %.1f us\n", (unsigned long long)r.pkts, s.flows,
			(unsigned long long)s.lost, s.loss_pct, (unsigned long long)s.reorder,
			hist_pct(&r.lat, 50) / 1e3, hist_pct(&r.lat, 99) / 1e3);
		if (o->json)
			print_rx_json("peer", &r, secs);
	}
out:
	for (unsigned i = 0; i < nfd; i++)
		close(pfd[i].fd);
	free(pfd);
	free(bufs);
	free(r.flows);
	return ret;
}

/* ---- client: control plane ---------------------------------------------- */

/* Setup is pipelined: each thread keeps up to PIPE_WINDOW of its
 * allocations' transactions in flight at once (one socket each) and
 * retransmits on RFC 8489 timers, so the setup rates measure the server,
 * not round trips x threads. */
#define PIPE_WINDOW 256
#define PIPE_EVENTS 64
#define PIPE_AUTH_TRIES 3	/* per request: first try, answer 401, answer one 438 */

enum step { ST_ALLOCATE, ST_PERMISSION, ST_BIND, ST_RELEASE };

enum phase {
	PH_ALLOCATE,
	PH_BIND,	/* CreatePermission, then ChannelBind per channel */
	PH_RELEASE,	/* Refresh 0: free the server's state now, not at expiry */
};

struct alloc {
	struct turnc *tc;
	int fd;
	struct sockaddr_storage local, relayed;
	uint32_t *seq;		/* per channel */
	unsigned next_chan;	/* next channel the sender uses */
	int err;
	const char *what;	/* step that failed */
	/* setup: the request in flight */
	enum step step;
	unsigned chan;		/* ST_BIND: the channel being bound */
	unsigned tx;		/* transmissions of req so far */
	unsigned auth_tries;
	bool signed_req;
	bool ended;		/* the phase is over for it (a->err says how) */
	int64_t deadline;	/* of the current transmission */
	uint16_t req_len;
	uint8_t req[STUN_MAX_MSG];
};

struct live;

struct client {
	const struct opts *o;
	struct sockaddr_storage server;
	struct alloc *allocs;
	struct rx rx;		/* echoed packets */
	volatile int rx_stop;
	struct live *live;	/* --live-frames */
};

static uint16_t chan_num(unsigned j)
{
	return (uint16_t)(CHANNEL_MIN + j);
}

static void chan_peer(const struct opts *o, unsigned j, struct sockaddr_storage *out)
{
	*out = o->peers[j % o->npeers];
	addr_set_port(out, (uint16_t)(addr_port(out) + j / o->npeers));
}

struct worker {
	pthread_t th;
	struct client *c;
	unsigned idx;
	enum phase phase;
	int cpu;		/* live frames: the CPU this injector is pinned to */
	double rate;		/* this sender's share; 0 = unpaced */
	int64_t end_ns;
	uint64_t sent;		/* atomic: read by the progress line */
	uint64_t errors;	/* send errors; setup: allocations that failed the phase */
};

/* Builds a's request for its step (a new transaction). */
static int step_build(const struct client *c, struct alloc *a)
{
	const struct opts *o = c->o;
	struct turnc_alloc_opts ao = { 0 };
	struct turnc_peers perm = { o->peers, o->npeers };
	struct sockaddr_storage peer;
	struct turnc_bind bind = { chan_num(a->chan), &peer };
	uint32_t zero = 0;
	int len;

	a->signed_req = turnc_has_key(a->tc);
	switch (a->step) {
	case ST_ALLOCATE:
		a->what = "allocate";
		len = turnc_build(a->tc, TURN_ALLOCATE, turnc_fill_allocate, &ao, true, a->req,
				  sizeof(a->req));
		break;
	case ST_PERMISSION:
		a->what = "create-permission";
		len = turnc_build(a->tc, TURN_CREATE_PERMISSION, turnc_fill_peers, &perm, true,
				  a->req, sizeof(a->req));
		break;
	case ST_BIND:
		a->what = "channel-bind";
		chan_peer(o, a->chan, &peer);
		len = turnc_build(a->tc, TURN_CHANNEL_BIND, turnc_fill_channel_bind, &bind, true,
				  a->req, sizeof(a->req));
		break;
	default:
		a->what = "release";
		len = turnc_build(a->tc, TURN_REFRESH, turnc_fill_lifetime, &zero, true, a->req,
				  sizeof(a->req));
		break;
	}
	if (len < 0)
		return len;
	a->req_len = (uint16_t)len;
	a->tx = 0;
	return 0;
}

/* (Re)transmits a's request; RFC 8489 §6.2.1 timers: the RTO doubles per
 * transmission, the last one waits 16 RTOs. */
static int step_send(struct alloc *a, enum phase ph, int64_t now)
{
	/* 0.5+1+2 s then 8 s: a dead server fails a run in ~12 s; the
	 * release is best effort and short. */
	unsigned rto = ph == PH_RELEASE ? 100 : TURNC_RTO_MS, rc = ph == PH_RELEASE ? 2 : 4;
	unsigned i = a->tx++;

	if (i >= rc)
		return -ETIMEDOUT;
	a->deadline = now + (int64_t)(i + 1 == rc ? 16 * rto : rto << i) * 1000000;
	if (send(a->fd, a->req, a->req_len, 0) < 0 && errno != EAGAIN && errno != ENOBUFS)
		return -errno;	/* a full queue is like loss: the timer resends */
	return 0;
}

/* Takes the response to a's request: 0 when a's phase is done, 1 when a
 * new request was built, or the error. */
static int step_response(const struct client *c, struct alloc *a, const uint8_t *buf, size_t len)
{
	struct turnc_alloc res;
	int r = turnc_take_response(a->tc, buf, len, true, a->signed_req);

	if (r == 1) {	/* a challenge: sign and try again */
		if (++a->auth_tries >= PIPE_AUTH_TRIES)
			return -turnc_error(a->tc)->code;
		r = step_build(c, a);
		return r < 0 ? r : 1;
	}
	if (r < 0)
		return r;
	a->auth_tries = 0;
	switch (a->step) {
	case ST_ALLOCATE:
		r = turnc_alloc_result(a->tc, &res);
		if (r < 0)
			return r;
		a->relayed = res.relayed[0];
		return 0;
	case ST_PERMISSION:
		a->step = ST_BIND;
		a->chan = 0;
		break;
	case ST_BIND:
		if (++a->chan == c->o->chans)
			return 0;
		break;
	default:
		return 0;
	}
	r = step_build(c, a);
	return r < 0 ? r : 1;
}

/* Starts a's phase: 1 when a request is in flight, 0 if there is nothing
 * to do, or the error. */
static int step_start(const struct client *c, struct alloc *a, enum phase ph, int64_t now)
{
	int ret;

	a->err = 0;
	a->ended = false;
	a->auth_tries = 0;
	if (ph == PH_ALLOCATE) {
		a->step = ST_ALLOCATE;
	} else if (ph == PH_BIND) {
		a->step = ST_PERMISSION;
	} else {
		if (!a->tc || !a->relayed.ss_family)
			return 0;
		a->step = ST_RELEASE;
	}
	ret = step_build(c, a);
	if (ret == 0)
		ret = step_send(a, ph, now);
	return ret < 0 ? ret : 1;
}

/* Reads what a's socket has: 0 when a's phase is done, 1 while a request
 * is in flight, or the error. */
static int step_input(const struct client *c, struct alloc *a, enum phase ph)
{
	uint8_t buf[STUN_MAX_MSG];

	for (;;) {
		ssize_t n = recv(a->fd, buf, sizeof(buf), MSG_DONTWAIT);
		int r;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : -errno;
		/* Anything else is a late answer to an earlier transmission. */
		if ((size_t)n < STUN_HDR_LEN || memcmp(buf + 8, a->req + 8, STUN_TID_LEN))
			continue;
		r = step_response(c, a, buf, (size_t)n);
		if (r <= 0)
			return r;
		r = step_send(a, ph, clock_mono_ns());
		if (r < 0)
			return r;
	}
}

/* One thread's share of a phase (allocations idx, idx + threads, ...),
 * PIPE_WINDOW at a time; failures are counted and left in a->err. */
static void *setup_worker(void *arg)
{
	struct worker *w = arg;
	struct client *c = w->c;
	const struct opts *o = c->o;
	unsigned win[PIPE_WINDOW], nwin = 0, next = w->idx;
	struct epoll_event ev[PIPE_EVENTS];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0) {
		int err = -errno;

		for (unsigned i = w->idx; i < o->allocs; i += o->threads) {
			c->allocs[i].err = err;
			w->errors++;
		}
		return NULL;
	}
	/* The release runs even after a signal: it frees the server. */
	while (w->phase == PH_RELEASE || !g_stop) {
		int64_t now = clock_mono_ns();
		int n;

		for (; nwin < PIPE_WINDOW && next < o->allocs; next += o->threads) {
			struct alloc *a = &c->allocs[next];
			struct epoll_event e = { .events = EPOLLIN, .data.u32 = next };
			int r = step_start(c, a, w->phase, now);

			if (r > 0 && epoll_ctl(ep, EPOLL_CTL_ADD, a->fd, &e) < 0)
				r = -errno;
			if (r < 0) {
				a->err = r;
				w->errors++;
			} else if (r > 0) {
				win[nwin++] = next;
			}
		}
		if (!nwin)
			break;
		n = epoll_wait(ep, ev, PIPE_EVENTS, 10);
		now = clock_mono_ns();
		for (int k = 0; k < n; k++) {
			struct alloc *a = &c->allocs[ev[k].data.u32];
			int r = step_input(c, a, w->phase);

			if (r <= 0) {	/* retired below */
				a->err = r;
				a->ended = true;
			}
		}
		/* Retire what ended and retransmit what is due. */
		for (unsigned s = 0; s < nwin;) {
			struct alloc *a = &c->allocs[win[s]];

			if (!a->ended && a->deadline > now) {
				s++;
				continue;
			}
			if (!a->ended) {
				a->err = step_send(a, w->phase, now);
				if (a->err == 0) {
					s++;
					continue;
				}
			}
			if (a->err < 0)
				w->errors++;
			epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
			win[s] = win[--nwin];
		}
	}
	close(ep);
	return NULL;
}

/* Runs phase on every allocation, one thread per -t; returns the first
 * error (and reports it, with the number that failed). */
static int run_phase(struct client *c, struct worker *w, enum phase phase)
{
	const struct opts *o = c->o;
	unsigned n = o->threads < o->allocs ? o->threads : o->allocs;
	uint64_t failed = 0;
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ .c = c, .idx = i, .phase = phase };
		if (pthread_create(&w[i].th, NULL, setup_worker, &w[i]) != 0) {
			n = i;
			ret = -EAGAIN;
			g_stop = 1;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(w[i].th, NULL);
		failed += w[i].errors;
	}
	if (phase == PH_RELEASE)
		return ret;
	for (unsigned i = 0; i < o->allocs; i++) {
		struct alloc *a = &c->allocs[i];

		if (a->err < 0) {
			const struct turnc_error *e = a->tc ? turnc_error(a->tc) : NULL;

			fprintf(stderr, "xturngen: allocation %u: %s: %s\n", i, a->what,
				TURNC_IS_STUN_ERR(a->err) && e ? e->reason : strerror(-a->err));
			if (TURNC_IS_STUN_ERR(a->err))
				fprintf(stderr, "xturngen: server error %d\n", -a->err);
			fprintf(stderr, "xturngen: %llu of %u allocations failed\n",
				(unsigned long long)failed, o->allocs);
			return a->err;
		}
	}
	return g_stop ? -EINTR : ret;
}

/* Opens every allocation's socket before the clock starts: the rates are
 * the server's, not the client kernel's socket setup. */
static int open_allocs(struct client *c)
{
	const struct opts *o = c->o;

	for (unsigned i = 0; i < o->allocs; i++) {
		struct alloc *a = &c->allocs[i];
		int ret = o->secret ? turnc_open_rest(&a->tc, &c->server, NULL, o->user, o->secret,
						      REST_TTL)
				    : turnc_open(&a->tc, &c->server, NULL, o->user, o->pass);

		if (ret < 0) {
			fprintf(stderr, "xturngen: allocation %u: open: %s\n", i, strerror(-ret));
			return ret;
		}
		a->fd = turnc_fd(a->tc);
		turnc_local_addr(a->tc, &a->local);
	}
	return 0;
}

/* ---- client: packets ------------------------------------------------------ */

/* One ChannelData datagram of flow (alloc i, channel j) into buf (4 + len). */
static void build_packet(const struct client *c, unsigned i, unsigned j, uint32_t seq,
			 uint8_t *buf)
{
	size_t len = c->o->len;

	channeldata_put_hdr(buf, chan_num(j), (uint16_t)len);
	payload_put(buf + CHANNELDATA_HDR_LEN, i * c->o->chans + j, seq, (uint64_t)clock_mono_ns());
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/* Wraps a datagram from src to dst in IPv4/IPv6 + UDP headers; returns the
 * packet length. */
static size_t ip_udp_wrap(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
			  const uint8_t *data, size_t dlen, uint8_t *out)
{
	size_t ulen = 8 + dlen, hl;
	uint8_t *udp;
	uint32_t sum;

	if (src->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		hl = 20;
		memset(out, 0, hl);
		out[0] = 0x45;
		out[2] = (uint8_t)((hl + ulen) >> 8);
		out[3] = (uint8_t)(hl + ulen);
		out[6] = 0x40;	/* DF */
		out[8] = 64;
		out[9] = IPPROTO_UDP;
		memcpy(out + 12, &s->sin_addr, 4);
		memcpy(out + 16, &d->sin_addr, 4);
		sum = csum_fold(csum_add(0, out, hl));
		out[10] = (uint8_t)(sum >> 8);
		out[11] = (uint8_t)sum;
		sum = csum_add(0, out + 12, 8);
	} else {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		hl = 40;
		memset(out, 0, hl);
		out[0] = 0x60;
		out[4] = (uint8_t)(ulen >> 8);
		out[5] = (uint8_t)ulen;
		out[6] = IPPROTO_UDP;
		out[7] = 64;
		memcpy(out + 8, &s->sin6_addr, 16);
		memcpy(out + 24, &d->sin6_addr, 16);
		sum = csum_add(0, out + 8, 32);
	}
	udp = out + hl;
	udp[0] = (uint8_t)(addr_port(src) >> 8);
	udp[1] = (uint8_t)addr_port(src);
	udp[2] = (uint8_t)(addr_port(dst) >> 8);
	udp[3] = (uint8_t)addr_port(dst);
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, data, dlen);
	sum += IPPROTO_UDP + (uint32_t)ulen;
	sum = csum_fold(csum_add(sum, udp, ulen));
	if (!sum)
		sum = 0xffff;	/* 0 means "no checksum" in UDP */
	udp[6] = (uint8_t)(sum >> 8);
	udp[7] = (uint8_t)sum;
	return hl + ulen;
}

/* Writes o->pcap_count data-plane packets, flows round robin, sequence
 * numbers from 0 (the data plane starts at 0 too, so a replay and a run
 * look the same to the peer). */
static int write_pcap(const struct client *c)
{
	const struct opts *o = c->o;
	struct { uint32_t magic; uint16_t vmaj, vmin; int32_t tz; uint32_t sigfigs, snap, link; }
		gh = { 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101 /* LINKTYPE_RAW */ };
	uint8_t dgram[CHANNELDATA_HDR_LEN + PAYLOAD_MAX], pkt[48 + sizeof(dgram)];
	unsigned nflows = o->allocs * o->chans;
	FILE *f = fopen(o->pcap, "wb");
	struct timespec rt;
	int ret = 0;

	if (!f)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &rt);
	memset(dgram, 0, sizeof(dgram));
	fwrite(&gh, sizeof(gh), 1, f);
	for (unsigned k = 0; k < o->pcap_count; k++) {
		unsigned flow = k % nflows, i = flow / o->chans, j = flow % o->chans;
		size_t len;
		struct { uint32_t sec, usec, caplen, len; } ph;

		build_packet(c, i, j, k / nflows, dgram);
		len = ip_udp_wrap(&c->allocs[i].local, &c->server, dgram,
				  CHANNELDATA_HDR_LEN + o->len, pkt);
		ph.sec = (uint32_t)rt.tv_sec;
		ph.usec = (uint32_t)(rt.tv_nsec / 1000);
		ph.caplen = ph.len = (uint32_t)len;
		fwrite(&ph, sizeof(ph), 1, f);
		fwrite(pkt, len, 1, f);
	}
	if (ferror(f))
		ret = -EIO;
	if (fclose(f) != 0 && !ret)
		ret = -errno;
	return ret;
}

/* ---- client: data plane ------------------------------------------------- */

/* Sends the n datagrams of iov (all of one size, on a connected socket) as
 * UDP GSO sends, each one trip through the stack however many datagrams it
 * carries (the kernel or device cuts it). Returns how many were sent, or -1
 * if the kernel refuses GSO before any went (*gso is cleared: the caller
 * falls back to sendmmsg from then on). */
static int send_gso(int fd, struct iovec *iov, unsigned n, bool *gso)
{
	size_t len = iov[0].iov_len;
	unsigned per = len ? SOCK_GSO_MAX_BYTES / (unsigned)len : 1, done = 0;

	if (per > SOCK_GSO_MAX_SEGS)
		per = SOCK_GSO_MAX_SEGS;
	while (done < n) {
		unsigned c = n - done < per ? n - done : per;
		union {
			char buf[SOCK_GSO_CMSG_SPACE];
			struct cmsghdr align;
		} ctrl = { 0 };
		struct msghdr mh = { .msg_iov = iov + done, .msg_iovlen = c };

		if (c > 1) {
			mh.msg_control = ctrl.buf;
			mh.msg_controllen = sizeof(ctrl.buf);
			sock_put_gso(ctrl.buf, (uint16_t)len);
		}
		if (sendmsg(fd, &mh, 0) < 0) {
			if (!done && c > 1 && (errno == EINVAL || errno == EIO || errno == ENOPROTOOPT)) {
				*gso = false;
				return -1;
			}
			break;
		}
		done += c;
	}
	return (int)done;
}

static void *sender(void *arg)
{
	struct worker *w = arg;
	const struct client *c = w->c;
	const struct opts *o = c->o;
	size_t plen = CHANNELDATA_HDR_LEN + o->len;
	uint8_t (*bufs)[CHANNELDATA_HDR_LEN + PAYLOAD_MAX] = calloc(BATCH, sizeof(*bufs));
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	unsigned chan_of[BATCH];
	unsigned cur = w->idx;
	int64_t start = clock_mono_ns();
	bool gso = true;

	if (!bufs)
		return NULL;
	while (!g_stop) {
		int64_t now = clock_mono_ns();
		unsigned want = BATCH;
		struct alloc *a = &c->allocs[cur];
		int n;

		if (now >= w->end_ns)
			break;
		if (w->rate > 0) {
			double due = w->rate * (double)(now - start) / 1e9 - (double)w->sent;

			if (due < 1) {
				/* Sleep until the next packet is due, at most 1 ms
				 * so the end time is respected. */
				int64_t wait = (int64_t)((1 - due) / w->rate * 1e9);
				struct timespec ts = { 0, wait < 1000000 ? wait : 1000000 };

				nanosleep(&ts, NULL);
				continue;
			}
			if (due < want)
				want = (unsigned)due;
		}
		for (unsigned k = 0; k < want; k++) {
			unsigned j = a->next_chan;

			a->next_chan = (j + 1) % o->chans;
			chan_of[k] = j;
			build_packet(c, cur, j, a->seq[j]++, bufs[k]);
			iov[k] = (struct iovec){ bufs[k], plen };
			m[k].msg_hdr = (struct msghdr){ .msg_iov = &iov[k], .msg_iovlen = 1 };
		}
		n = gso ? send_gso(a->fd, iov, want, &gso) : -1;
		if (!gso)
			n = sendmmsg(a->fd, m, want, 0);
		if (n < 0) {
			n = 0;
			w->errors++;
		}
		/* Unsent messages give their sequence numbers back, so gaps at
		 * the peer mean loss in the network or the server. */
		for (unsigned k = want; k-- > (unsigned)n;)
			a->seq[chan_of[k]]--;
		if ((unsigned)n < want)
			a->next_chan = chan_of[n];
		__atomic_fetch_add(&w->sent, (uint64_t)n, __ATOMIC_RELAXED);
		/* A batch goes to one allocation (one socket); batches rotate
		 * over this thread's allocations. */
		cur += o->threads;
		if (cur >= o->allocs)
			cur = w->idx;
	}
	free(bufs);
	return NULL;
}

static void *receiver(void *arg)
{
	struct client *c = arg;
	const struct opts *o = c->o;
	struct pollfd *pfd = calloc(o->allocs, sizeof(*pfd));
	uint8_t (*bufs)[RX_SLOT] = calloc(BATCH, RX_SLOT);

	if (!pfd || !bufs)
		goto out;
	for (unsigned i = 0; i < o->allocs; i++)
		pfd[i] = (struct pollfd){ .fd = c->allocs[i].fd, .events = POLLIN };
	while (!__atomic_load_n(&c->rx_stop, __ATOMIC_RELAXED)) {
		int n = poll(pfd, o->allocs, 100);

		for (unsigned i = 0; n > 0 && i < o->allocs; i++)
			for (int k = 0; k < 64 && (pfd[i].revents & POLLIN); k++)
				if (rx_batch(pfd[i].fd, bufs, &c->rx, false, CHANNELDATA_HDR_LEN) < BATCH)
					break;
	}
out:
	free(pfd);
	free(bufs);
	return NULL;
}

static uint64_t total_sent(const struct worker *w, unsigned n, uint64_t *errors)
{
	uint64_t s = 0;

	if (errors)
		*errors = 0;
	for (unsigned i = 0; i < n; i++) {
		s += __atomic_load_n(&w[i].sent, __ATOMIC_RELAXED);
		if (errors)
			*errors += w[i].errors;
	}
	return s;
}

static void sleep_until(int64_t t)
{
	struct timespec ts = { t / 1000000000, t % 1000000000 };

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* ---- client: live-frames data plane ------------------------------------ */

#define LIVE_BATCH 64		/* frames per XDP_TX flush: well within veth's 256-frame ring */
/* Paced: one call per 100 us slot. Frames of a call leave back to back at
 * several Mpps, so a slot is a burst: 10 ms slots made bursts of thousands
 * of frames that no socket server could buffer. */
#define LIVE_SLOT_NS 100000
#define LIVE_CALL_NS 1000000000	/* unpaced: ~1 s per call, since every call ends with a wait */
#define LIVE_PROBE 65536	/* unpaced: the first call, which measures the rate */
#define LIVE_FRAME_MAX (ETH_HLEN + 48 + CHANNELDATA_HDR_LEN + PAYLOAD_MAX)

struct live {
	struct xturngen_inject *skel;
	int prog_fd, ifindex;
	uint8_t frame[LIVE_FRAME_MAX];	/* data_in: flow 0's frame */
	size_t frame_len;
	int cpus[MAX_THREADS];		/* injector i is pinned to cpus[i] */
	unsigned n;			/* injectors */
};

struct neigh_req {
	int ifindex;
	const struct sockaddr_storage *dst;
	uint8_t *mac;
	bool found;
};

static int neigh_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct neigh_req *r = arg;
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	const struct sockaddr_in *d4 = (const void *)r->dst;
	const struct sockaddr_in6 *d6 = (const void *)r->dst;
	const void *want = r->dst->ss_family == AF_INET ? (const void *)&d4->sin_addr
							 : (const void *)&d6->sin6_addr;
	size_t wlen = r->dst->ss_family == AF_INET ? 4 : 16;
	struct nlattr *a, *dst = NULL, *ll = NULL;

	if (nd->ndm_ifindex != r->ifindex || nd->ndm_family != r->dst->ss_family ||
	    (nd->ndm_state & (NUD_INCOMPLETE | NUD_FAILED)))
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*nd)) {
		if (mnl_attr_get_type(a) == NDA_DST)
			dst = a;
		else if (mnl_attr_get_type(a) == NDA_LLADDR)
			ll = a;
	}
	if (dst && ll && mnl_attr_get_payload_len(dst) == wlen &&
	    !memcmp(mnl_attr_get_payload(dst), want, wlen) &&
	    mnl_attr_get_payload_len(ll) == ETH_ALEN) {
		memcpy(r->mac, mnl_attr_get_payload(ll), ETH_ALEN);
		r->found = true;
	}
	return MNL_CB_OK;
}

/* dst's link-layer address from the neighbour table of ifindex. */
static int live_dst_mac(int ifindex, const struct sockaddr_storage *dst, uint8_t mac[ETH_ALEN])
{
	static char buf[16384];
	struct neigh_req r = { ifindex, dst, mac, false };
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned seq = (unsigned)time(NULL), portid;
	struct nlmsghdr *nlh;
	struct ndmsg *nd;
	ssize_t n;
	int ret = -EIO;

	if (!nl)
		return -errno;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = (uint8_t)dst->ss_family;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	portid = mnl_socket_get_portid(nl);
	while ((n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		int cb = mnl_cb_run(buf, (size_t)n, seq, portid, neigh_cb, &r);

		if (cb <= MNL_CB_STOP) {
			ret = cb < 0 ? -EIO : 0;
			break;
		}
	}
out:
	mnl_socket_close(nl);
	return ret < 0 ? ret : r.found ? 0 : -ENOENT;
}

static int live_src_mac(const char *ifname, uint8_t mac[ETH_ALEN])
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		ret = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	close(fd);
	return ret;
}

/* Flow (alloc i, channel j)'s whole frame, sequence and time stamp 0, into
 * out (LIVE_FRAME_MAX); returns its length. */
static size_t live_frame(const struct client *c, const uint8_t *src_mac, const uint8_t *dst_mac,
			 unsigned i, unsigned j, uint8_t *out)
{
	static uint8_t dgram[CHANNELDATA_HDR_LEN + PAYLOAD_MAX];	/* setup is single-threaded */
	size_t len = c->o->len;
	struct ethhdr *eth = (struct ethhdr *)out;

	memcpy(eth->h_dest, dst_mac, ETH_ALEN);
	memcpy(eth->h_source, src_mac, ETH_ALEN);
	eth->h_proto = htons(c->server.ss_family == AF_INET ? ETH_P_IP : ETH_P_IPV6);
	channeldata_put_hdr(dgram, chan_num(j), (uint16_t)len);
	payload_put(dgram + CHANNELDATA_HDR_LEN, i * c->o->chans + j, 0, 0);
	return ETH_HLEN + ip_udp_wrap(&c->allocs[i].local, &c->server, dgram,
				      CHANNELDATA_HDR_LEN + len, out + ETH_HLEN);
}

/* Loads the injector and writes one template per flow and each injector's
 * CPU cursor: injector t owns flows t, t + n, t + 2n, ... so every flow's
 * sequence has one writer. Reports its own errors. */
static int live_setup(struct client *c)
{
	const struct opts *o = c->o;
	unsigned nflows = o->allocs * o->chans, hl;
	uint8_t src_mac[ETH_ALEN], dst_mac[ETH_ALEN];
	struct live *l = calloc(1, sizeof(*l));
	cpu_set_t set;
	int ret, fd;

	if (!l)
		return -ENOMEM;
	c->live = l;
	l->ifindex = (int)if_nametoindex(o->live_if);
	if (!l->ifindex || (ret = live_src_mac(o->live_if, src_mac)) < 0) {
		fprintf(stderr, "xturngen: --live-frames %s: no such interface\n", o->live_if);
		return -ENODEV;
	}
	if (o->dst_mac_set) {
		memcpy(dst_mac, o->dst_mac, ETH_ALEN);
	} else if ((ret = live_dst_mac(l->ifindex, &c->server, dst_mac)) < 0) {
		fprintf(stderr, "xturngen: no neighbour entry for %s on %s (%s); use --dst-mac\n",
			o->server, o->live_if, strerror(-ret));
		return ret;
	}
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	for (int cpu = 0; cpu < CPU_SETSIZE && l->n < o->threads && l->n < nflows; cpu++)
		if (CPU_ISSET(cpu, &set))
			l->cpus[l->n++] = cpu;

	l->skel = xturngen_inject__open();
	if (!l->skel)
		return -errno;
	bpf_program__set_autoload(l->skel->progs.xturngen_sink, false);
	l->skel->rodata->xg_cfg.v6 = c->server.ss_family == AF_INET6;
	hl = l->skel->rodata->xg_cfg.v6 ? XG_HDR_V6 : XG_HDR_V4;
	bpf_map__set_max_entries(l->skel->maps.xg_flows, nflows);
	bpf_map__set_max_entries(l->skel->maps.xg_cpus, (uint32_t)libbpf_num_possible_cpus());
	ret = xturngen_inject__load(l->skel);
	if (ret < 0) {
		fprintf(stderr, "xturngen: loading the injector: %s\n", strerror(-ret));
		return ret;
	}
	l->prog_fd = bpf_program__fd(l->skel->progs.xturngen_inject);
	fd = bpf_map__fd(l->skel->maps.xg_flows);
	for (uint32_t f = nflows; f-- > 0;) {	/* down to 0: frame ends as flow 0's */
		struct xg_flow v = { .flow = htobe32(f) };
		uint16_t check;

		l->frame_len = live_frame(c, src_mac, dst_mac, f / o->chans, f % o->chans, l->frame);
		memcpy(v.hdr, l->frame, hl);
		/* The stored checksum is ~sum in the program's byte order
		 * (words loaded as they lie in memory; RFC 1071 §2(B)). */
		memcpy(&check, l->frame + hl - XG_UDP_CHECK_OFF, sizeof(check));
		v.csum = (uint16_t)~check;
		if (bpf_map_update_elem(fd, &f, &v, 0) < 0)
			return -errno;
	}
	fd = bpf_map__fd(l->skel->maps.xg_cpus);
	for (uint32_t t = 0; t < l->n; t++) {
		struct xg_cpu v = { .next = t, .first = t, .stride = l->n, .nflows = nflows };
		uint32_t cpu = (uint32_t)l->cpus[t];

		if (bpf_map_update_elem(fd, &cpu, &v, 0) < 0)
			return -errno;
	}
	return 0;
}

static void live_free(struct live *l)
{
	if (l)
		xturngen_inject__destroy(l->skel);
	free(l);
}

/* One injector: pinned to its CPU (the program picks flows by CPU id), it
 * runs the injector in calls of ~1 s of packets, or with a rate, one call
 * per LIVE_SLOT_NS carrying what is due by the slot's end. */
static void *injector(void *arg)
{
	struct worker *w = arg;
	const struct live *l = w->c->live;
	struct xdp_md ctx = { .data_end = (uint32_t)l->frame_len,
			      .ingress_ifindex = (uint32_t)l->ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = l->frame,
		    .data_size_in = (uint32_t)l->frame_len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		    .batch_size = LIVE_BATCH);
	int64_t start = clock_mono_ns(), slot_end = start;
	double pps = 0;		/* measured, unpaced */
	cpu_set_t set;
	int err;

	prctl(PR_SET_TIMERSLACK, 1UL);	/* slots of 100 us, not 100 us + 50 us slack */
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err) {
		fprintf(stderr, "xturngen: pinning to CPU %d: %s\n", w->cpu, strerror(err));
		w->errors++;
		return NULL;
	}
	while (!g_stop) {
		int64_t t0 = clock_mono_ns(), left = w->end_ns - t0;
		uint64_t want;

		if (left <= 0)
			break;
		if (w->rate > 0) {
			/* What is due by the end of a slot from now: a call that
			 * took longer than a slot is caught up by the next. */
			slot_end = t0 + LIVE_SLOT_NS < w->end_ns ? t0 + LIVE_SLOT_NS : w->end_ns;
			want = (uint64_t)(w->rate * (double)(slot_end - start) / 1e9) - w->sent;
		} else {
			want = pps > 0 ? (uint64_t)(pps * (double)(left < LIVE_CALL_NS ? left
									  : LIVE_CALL_NS) / 1e9)
				       : LIVE_PROBE;
		}
		if (want > UINT32_MAX)
			want = UINT32_MAX;
		if (want) {
			opts.repeat = (uint32_t)want;
			/* A signal cuts a call short with EINTR and an unknown
			 * count: that call is not counted. */
			if (bpf_prog_test_run_opts(l->prog_fd, &opts) < 0) {
				if (errno != EINTR)
					fprintf(stderr, "xturngen: BPF_PROG_RUN: %s\n", strerror(errno));
				w->errors++;
				break;
			}
			__atomic_fetch_add(&w->sent, want, __ATOMIC_RELAXED);
		}
		if (w->rate > 0)
			sleep_until(slot_end);	/* now, if the call overran the slot */
		else
			pps = (double)want * 1e9 / (double)(clock_mono_ns() - t0 + 1);
	}
	return NULL;
}

static int run_data_plane(struct client *c, struct worker *w, double alloc_s, double setup_s)
{
	const struct opts *o = c->o;
	unsigned n = c->live ? c->live->n : o->threads < o->allocs ? o->threads : o->allocs;
	int64_t start = clock_mono_ns(), end = start + (int64_t)(o->duration * 1e9), actual_end;
	uint64_t last = 0, sent, errors;
	pthread_t rth;
	struct rx_sum s;
	double secs, bind_s = setup_s - alloc_s;

	for (unsigned i = 0; i < o->allocs; i++) {
		sock_buffers(c->allocs[i].fd, SOCK_BUF);
		c->allocs[i].seq = calloc(o->chans, sizeof(uint32_t));
		if (!c->allocs[i].seq)
			return -ENOMEM;
	}
	if (pthread_create(&rth, NULL, receiver, c) != 0)
		return -EAGAIN;
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ .c = c, .idx = i, .end_ns = end, .rate = o->rate / n,
					.cpu = c->live ? c->live->cpus[i] : -1 };
		if (pthread_create(&w[i].th, NULL, c->live ? injector : sender, &w[i]) != 0) {
			g_stop = 1;
			n = i;
			break;
		}
	}
	for (int sec = 1; !g_stop && start + (int64_t)sec * 1000000000 <= end; sec++) {
		sleep_until(start + (int64_t)sec * 1000000000);
		if (g_stop)
			break;
		sent = total_sent(w, n, NULL);
		fprintf(stderr, "client: t=%ds sent=%llu pps=%llu echo_rx=%llu\n", sec,
			(unsigned long long)sent, (unsigned long long)(sent - last),
			(unsigned long long)__atomic_load_n(&c->rx.pkts, __ATOMIC_RELAXED));
		last = sent;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(w[i].th, NULL);
	actual_end = clock_mono_ns();
	sent = total_sent(w, n, &errors);
	for (int64_t t = actual_end, last = t, seen = -1;
	     t < actual_end + (int64_t)ECHO_GRACE_MS * 1000000; t = clock_mono_ns()) {
		int64_t got = (int64_t)__atomic_load_n(&c->rx.pkts, __ATOMIC_RELAXED);

		if (got >= (int64_t)sent || (got == seen && t - last > ECHO_QUIET_MS * 1000000LL))
			break;
		if (got != seen)
			seen = got, last = t;
		sleep_until(t + 20 * 1000000);
	}
	__atomic_store_n(&c->rx_stop, 1, __ATOMIC_RELAXED);
	pthread_join(rth, NULL);

	secs = (actual_end - start) / 1e9;
	rx_summarize(&c->rx, &s);
	fprintf(stderr, "client: %u allocations in %.3f s (%.1f/s), permission + %u channel(s) "
		"each in %.3f s (%.1f/s); sent %llu in "
		"%.3f s (%.1f pps, asked %.0f), %llu send errors; echoed %llu, lost %llu (%.3f%%), "
		"rtt p50 %.1f us p99 %.1f us\n", o->allocs, alloc_s, o->allocs / alloc_s, o->chans,
		bind_s, o->allocs / bind_s,
		(unsigned long long)sent, secs, secs > 0 ? sent / secs : 0, o->rate,
		(unsigned long long)errors, (unsigned long long)c->rx.pkts,
		(unsigned long long)s.lost, s.loss_pct, hist_pct(&c->rx.lat, 50) / 1e3,
		hist_pct(&c->rx.lat, 99) / 1e3);
	if (o->json)
		printf("{\"mode\":\"client\",\"allocs\":%u,\"channels\":%u,\"threads\":%u,"
		       "\"payload\":%zu,\"alloc_s\":%.3f,\"allocs_per_s\":%.1f,\"setup_s\":%.3f,"
		       "\"bind_s\":%.3f,\"binds_per_s\":%.1f,"
		       "\"duration_s\":%.3f,\"rate_pps\":%.0f,\"sent\":%llu,\"offered_pps\":%.1f,"
		       "\"send_errors\":%llu,\"echo_received\":%llu,\"echo_pps\":%.1f,"
		       "\"echo_lost\":%llu,\"loss_pct\":%.3f,\"reorder\":%llu,"
		       "\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f}\n",
		       o->allocs, o->allocs * o->chans, n, o->len, alloc_s, o->allocs / alloc_s,
		       setup_s, bind_s, o->allocs / bind_s, secs, o->rate, (unsigned long long)sent,
		       secs > 0 ? sent / secs : 0,
		       (unsigned long long)errors, (unsigned long long)c->rx.pkts,
		       secs > 0 ? c->rx.pkts / secs : 0, (unsigned long long)s.lost, s.loss_pct,
		       (unsigned long long)s.reorder, hist_pct(&c->rx.lat, 50) / 1e3,
		       hist_pct(&c->rx.lat, 99) / 1e3);
	return 0;
}

static int run_client(const struct opts *o)
{
	struct client c = { .o = o };
	struct worker *w = calloc(o->threads, sizeof(*w));
	int64_t t0, t1, t2;
	int ret;

	c.allocs = calloc(o->allocs, sizeof(*c.allocs));
	if (!w || !c.allocs) {
		ret = -ENOMEM;
		goto out;
	}
	ret = addr_parse(o->server, DEFAULT_PORT, &c.server);
	if (ret < 0) {
		fprintf(stderr, "xturngen: bad server address %s\n", o->server);
		goto out;
	}
	/* One socket per allocation, and epoll, peers, stdio, BPF. */
	sock_raise_nofile((rlim_t)o->allocs + 64);
	ret = open_allocs(&c);
	if (ret < 0)
		goto out;
	t0 = clock_mono_ns();
	ret = run_phase(&c, w, PH_ALLOCATE);
	t1 = clock_mono_ns();
	if (ret == 0)
		ret = run_phase(&c, w, PH_BIND);
	t2 = clock_mono_ns();
	if (ret < 0)
		goto out;
	fprintf(stderr, "xturngen: %u allocations x %u channels ready\n", o->allocs, o->chans);
	if (o->pcap) {
		ret = write_pcap(&c);
		if (ret < 0) {
			fprintf(stderr, "xturngen: %s: %s\n", o->pcap, strerror(-ret));
			goto out;
		}
	}
	if (o->duration > 0 && o->live_if)
		ret = live_setup(&c);
	if (o->duration > 0 && ret == 0)
		ret = run_data_plane(&c, w, (t1 - t0) / 1e9, (t2 - t0) / 1e9);
out:
	if (c.allocs)
		run_phase(&c, w, PH_RELEASE);
	for (unsigned i = 0; c.allocs && i < o->allocs; i++) {
		struct alloc *a = &c.allocs[i];

		turnc_close(a->tc);
		free(a->seq);
	}
	free(c.allocs);
	free(c.rx.flows);
	live_free(c.live);
	free(w);
	return ret;
}

/* ---- XDP sink ----------------------------------------------------------- */

/* The sink's program if it is what is attached natively to ifindex: its fd
 * (caller closes), -ENOENT if nothing is, -EBUSY if something else is. */
static int sink_attached(int ifindex)
{
	struct bpf_prog_info info = { 0 };
	__u32 id = 0, len = sizeof(info);
	int fd, ret;

	ret = bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);
	if (ret < 0)
		return ret;
	if (!id)
		return -ENOENT;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (ret < 0 || strcmp(info.name, "xturngen_sink")) {
		close(fd);
		return ret < 0 ? -errno : -EBUSY;
	}
	return fd;
}

static int sink_detach(const struct opts *o, int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, xo);
	int fd = sink_attached(ifindex), ret = 0;

	if (fd >= 0) {
		/* old_prog_fd: fails rather than detach what replaced it meanwhile. */
		xo.old_prog_fd = fd;
		ret = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, &xo);
		close(fd);
	} else if (fd != -ENOENT) {
		ret = fd;
	}
	if (ret < 0)
		fprintf(stderr, "xturngen: detaching the sink from %s: %s\n", o->sink_if,
			strerror(-ret));
	if (o->pin && unlink(o->pin) < 0 && errno != ENOENT) {
		fprintf(stderr, "xturngen: %s: %s\n", o->pin, strerror(errno));
		ret = ret ?: -errno;
	}
	return ret;
}

static int run_sink(const struct opts *o)
{
	int ifindex = (int)if_nametoindex(o->sink_if), ret;
	struct xturngen_inject *skel;

	if (!ifindex) {
		fprintf(stderr, "xturngen: %s: %s\n", o->sink_if, strerror(errno));
		return -ENODEV;
	}
	if (o->detach)
		return sink_detach(o, ifindex);
	skel = xturngen_inject__open();
	if (!skel)
		return -errno;
	bpf_program__set_autoload(skel->progs.xturngen_inject, false);
	ret = xturngen_inject__load(skel);
	if (!ret)
		ret = bpf_map__pin(skel->maps.xg_sink, o->pin);
	if (!ret) {
		/* NOEXIST: never replace another program (the relay's, a stale sink). */
		ret = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.xturngen_sink),
				     XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (ret < 0)
			bpf_map__unpin(skel->maps.xg_sink, o->pin);
	}
	if (ret < 0)
		fprintf(stderr, "xturngen: attaching the sink to %s (pin %s): %s\n", o->sink_if,
			o->pin, strerror(-ret));
	/* The attachment keeps the program, the pin its map, after we exit. */
	xturngen_inject__destroy(skel);
	return ret;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct opts o;
	int ret;

	if (parse_opts(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	/* No SA_RESTART: poll and sleeps return early on a signal. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = o.sink_if ? run_sink(&o) : o.peer ? run_peer(&o) : run_client(&o);
	fflush(stdout);
	return ret < 0 ? 1 : 0;
}
