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
#include <getopt.h>

#include "common/version.h"
#include "xturngen.h"

volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---- options ------------------------------------------------------------ */


static void usage(FILE *f)
{
	fprintf(f,
"usage: xturngen -s SERVER[:port] -u USER (-w PASS | -W SECRET) -p PEER:PORT[,...]\n"
"                [-a ALLOCS] [-S SOURCES] [-c CHANNELS] [-r PPS] [-d SECONDS] [-l BYTES]\n"
"                [-t THREADS] [--json] [--pcap FILE [--pcap-count N]]\n"
"                [--live-frames IFNAME [--dst-mac MAC]] [--transport udp|tcp|tls]\n"
"       xturngen --peer -L ADDR:PORT[,...] [--ports N] [--echo] [-d SECONDS] [--json]\n"
"       xturngen --xdp-sink IFNAME (--pin PATH | --detach [--pin PATH])\n"
"       xturngen --xdp-pass IFNAME\n"
"\n"
"client (TURN over UDP):\n"
"  -s SERVER      TURN server, default port %d\n"
"  -u USER        username (with -W: the name part of the REST username)\n"
"  -w PASS        long-term password\n"
"  -W SECRET      TURN REST shared secret (username \"<expiry>:USER\")\n"
"  -a N           allocations, each from its own UDP socket (default 1, at most %d)\n"
"  -S ADDRS       source addresses (no ports) for those sockets, in turn: one\n"
"                 address has ports for some 28 000 (default: the kernel's choice)\n"
"  -p PEERS       peer addresses; channel j goes to peer j mod P at port + j div P\n"
"  -c N           channels per allocation (default 1, at most %d)\n"
"  -r PPS         total ChannelData rate, 0 = as fast as possible (default 1000)\n"
"  -d SECONDS     data-plane duration (default 5, at most %d: no refreshes needed)\n"
"  -l BYTES       payload length, %d..%d (default 64)\n"
"  -t THREADS     sender threads (default 1); allocations are split among them\n"
"  --transport T  udp (default), tcp or tls to the server: one connection per\n"
"                 allocation, set up one request at a time, each ChannelData\n"
"                 message (padded to 4 bytes) its own write over TCP, its own\n"
"                 record over TLS (a batch's records in one write); echoes\n"
"                 are read by the sender between its batches\n"
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
"  --xdp-pass IF  attach a program that passes everything natively to IF and exit:\n"
"                 a veth then delivers what is redirected into it (its NAPI is on)\n"
"  --detach       detach the sink from IF (only if it is the sink); with --pin,\n"
"                 also remove the pin\n"
"both:\n"
"  --json         final summary as one JSON object on stdout\n"
"  -h             this help\n"
"  --version      the version\n",
		DEFAULT_PORT, MAX_ALLOCS, CHANNEL_MAX - CHANNEL_MIN + 1, MAX_DURATION, PAYLOAD_MIN, PAYLOAD_MAX);
}

/* A comma-separated list of up to max addresses, with ports if port. */
static int parse_addrs(const char *list, struct sockaddr_storage *out, unsigned max, bool port,
		       unsigned *n)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == max || addr_parse(tok, 0, &out[*n]) < 0 || !addr_port(&out[*n]) != !port) {
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
       O_DST_MAC, O_SINK, O_PIN, O_DETACH, O_VERSION, O_PASS, O_TRANSPORT };

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
		{ "xdp-pass", required_argument, NULL, O_PASS },
		{ "pin", required_argument, NULL, O_PIN },
		{ "detach", no_argument, NULL, O_DETACH },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ 0 }
	};
	unsigned len = 64;
	int c, bad = 0;

	*o = (struct opts){ .allocs = 1, .chans = 1, .threads = 1, .ports = 1,
			    .pcap_count = 1000, .rate = 1000, .duration = -1 };
	while ((c = getopt_long(argc, argv, "s:u:w:W:a:p:c:r:d:l:t:L:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->server = optarg; break;
		case 'u': o->user = optarg; break;
		case 'w': o->pass = optarg; break;
		case 'W': o->secret = optarg; break;
		case 'a': bad |= parse_uint(optarg, 1, MAX_ALLOCS, &o->allocs); break;
		case 'p': case 'L':
			bad |= parse_addrs(optarg, o->peers, MAX_PEERS, true, &o->npeers);
			break;
		case 'S':
			bad |= parse_addrs(optarg, o->sources, MAX_SOURCES, false, &o->nsources);
			break;
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
		case O_PASS: o->pass_if = optarg; break;
		case O_PIN: o->pin = optarg; break;
		case O_DETACH: o->detach = true; break;
		case 'h': usage(stdout); exit(0);
		case O_VERSION: printf("xturngen %s\n", xt_version()); exit(0);
		case O_TRANSPORT:
			if (!strcmp(optarg, "udp") || !strcmp(optarg, "tcp") || !strcmp(optarg, "tls"))
				o->tp = optarg[1] == 'd' ? TURNC_UDP : optarg[1] == 'c' ? TURNC_TCP
											: TURNC_TLS;
			else
				bad = 1;
			break;
		default: return -EINVAL;
		}
		if (bad) {
			fprintf(stderr, "xturngen: bad value for -%c: %s\n", c < 256 ? c : '-', optarg);
			return -EINVAL;
		}
	}
	o->len = len;
	if (o->pass_if) {
		if (optind == argc && !o->sink_if && !o->pin && !o->detach)
			return 0;
		fprintf(stderr, "xturngen: --xdp-pass IF takes nothing else\n");
		return -EINVAL;
	}
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
	if (o->tp != TURNC_UDP && (o->secret || o->live_if || o->pcap)) {
		fprintf(stderr, "xturngen: --transport tcp/tls takes -w, not -W, --live-frames "
			"or --pcap\n");
		return -EINVAL;
	}
	if (!o->server || !o->user || !o->pass == !o->secret || o->duration > MAX_DURATION) {
		fprintf(stderr, "xturngen: need -s, -u and one of -w/-W; -d at most %d\n",
			MAX_DURATION);
		return -EINVAL;
	}
	return 0;
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
	ret = o.pass_if ? run_pass(&o) : o.sink_if ? run_sink(&o) : o.peer ? run_peer(&o) : run_client(&o);
	fflush(stdout);
	return ret < 0 ? 1 : 0;
}
