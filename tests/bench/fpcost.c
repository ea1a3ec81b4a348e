/* fpcost: what the XDP program costs per packet as the bindings grow, for
 * `make bench`. In a private network and mount namespace (veths a0/b0, the
 * maps in a bpffs of its own) it opens the fast path as xturnd does, adds
 * bindings through fp_chan_add up to each count asked, and at each count
 * runs the pinned program by BPF_PROG_TEST_RUN on K ChannelData frames
 * (client -> peer, and peer -> client): all for one binding ("one"), and
 * each for a random one of the N ("spread", every binding's next hop
 * cached by its previous packet: the map entries' memory is what grows). The ceiling program (ceiling.bpf.c, the least a relay
 * does) is run the same way at each count, so the ratio is of one run.
 * Every run must return XDP_REDIRECT and be counted as relayed, or fpcost
 * fails: a cost is only reported for packets actually forwarded.
 *
 * Time is the kernel's own duration of each run (repeat 1: each frame is
 * fresh; the program strips its header in place), so syscalls are not in
 * it; the clock reads around the run are, the same for both programs.
 *
 * Usage: fpcost [-k K] [-n N1,N2,...] CEILING_OBJ   (root)
 * Prints one TSV line per measurement:
 *   prog bindings dir pattern mean_ns p50_ns
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/mount.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/addr.h"
#include "common/frame.h"
#include "common/log.h"
#include "daemon/fastpath.h"

enum { PER_RELAY = 64, MAX_COUNTS = 8 };

static char bpffs[] = "/tmp/fpcost-XXXXXX";
static char pin_dir[64];

static void die(const char *what)
{
	fprintf(stderr, "fpcost: %s\n", what);
	exit(1);
}

static struct sockaddr_storage ss(const char *s)
{
	struct sockaddr_storage a;

	if (addr_parse(s, 0, &a))
		die("bad address");
	return a;
}

/* Binding i: its own client address, 64 bindings per relayed port, 64
 * peer ports on one peer host. */
static struct fp_chan binding(unsigned i, uint64_t expires)
{
	char cl[64], rl[64], pr[64];
	struct fp_chan c = { .listener = ss("10.11.0.1:3478"), .expires_ns = expires };

	snprintf(cl, sizeof(cl), "10.%u.%u.%u:5000", 20 + (i >> 16), (i >> 8) & 255, i & 255);
	snprintf(rl, sizeof(rl), "10.12.0.1:%u", 10000 + i / PER_RELAY);
	snprintf(pr, sizeof(pr), "10.12.0.3:%u", 1024 + i % PER_RELAY);
	c.client = ss(cl);
	c.relay = ss(rl);
	c.peer = ss(pr);
	c.channel = (uint16_t)(0x4000 + i % PER_RELAY);
	return c;
}

/* An Ethernet frame of 200 bytes of data: ChannelData from the client
 * (c2p) or plain UDP from the peer. Returns its length. */
static uint32_t frame(const struct fp_chan *c, bool c2p, uint8_t *f)
{
	uint8_t data[4 + 200] = { (uint8_t)(c->channel >> 8), (uint8_t)c->channel, 0, 200 };
	static const uint8_t eth[14] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 };

	memcpy(f, eth, sizeof(eth));
	if (c2p)
		return 14 + (uint32_t)frame_ip_udp(&c->client, &c->listener, data, sizeof(data),
						   f + 14);
	return 14 + (uint32_t)frame_ip_udp(&c->peer, &c->relay, data + 4, sizeof(data) - 4,
					   f + 14);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t relayed(struct fastpath *fp)
{
	struct xt_count c[XT_CNT_MAX];

	if (fp_counters(fp, c))
		die("counters");
	return c[XT_CNT_C2P].packets + c[XT_CNT_P2C].packets;
}

/* Runs prog once on binding i's frame: the kernel's duration, ns. */
static uint32_t run_once(int prog, const char *name, unsigned i, bool c2p, uint64_t expires)
{
	static uint8_t f[256];
	struct fp_chan c = binding(i, expires);
	struct xdp_md ctx = { .ingress_ifindex = if_nametoindex(c2p ? "a0" : "b0") };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = f, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	run.data_size_in = frame(&c, c2p, f);
	ctx.data_end = run.data_size_in;
	if (!ctx.ingress_ifindex || bpf_prog_test_run_opts(prog, &run))
		die("BPF_PROG_TEST_RUN failed");
	if (run.retval != XDP_REDIRECT) {
		fprintf(stderr, "fpcost: %s returned %u, not XDP_REDIRECT\n", name, run.retval);
		exit(1);
	}
	return run.duration;
}

/* K runs of prog: binding n-1 each time, or (spread) a random one of n.
 * Spread runs the same K bindings twice and times the second pass, when
 * each has sent in the last few ms, as a live media flow has. Prints the
 * TSV line. */
static void measure(struct fastpath *fp, int prog, const char *name, unsigned n, bool c2p,
		    bool spread, unsigned k, uint64_t expires)
{
	uint32_t *ns = calloc(k, sizeof(*ns));
	uint64_t seed, sum = 0, before = fp ? relayed(fp) : 0;

	if (!ns)
		die("out of memory");
	for (int pass = spread ? 2 : 1; pass > 0; pass--) {
		seed = 0x9e3779b97f4a7c15ULL ^ n;
		for (unsigned j = 0; j < k; j++)
			ns[j] = run_once(prog, name, spread ? (unsigned)(xorshift(&seed) % n) : n - 1,
					 c2p, expires);
	}
	if (fp && relayed(fp) - before != (spread ? 2ull : 1ull) * k)
		die("the program did not count every frame as relayed");
	for (unsigned j = 0; j < k; j++)
		sum += ns[j];
	qsort(ns, k, sizeof(*ns), cmp_u32);
	printf("%s\t%u\t%s\t%s\t%.1f\t%u\n", name, n, c2p ? "c2p" : "p2c",
	       spread ? "spread" : "one", (double)sum / k, ns[k / 2]);
	fflush(stdout);
	free(ns);
}

/* The ceiling program, redirecting to b0. */
static int ceiling_open(const char *path, struct bpf_object **obj)
{
	struct bpf_program *p;
	struct bpf_map *rodata;
	__u32 ifindex = if_nametoindex("b0");

	*obj = bpf_object__open_file(path, NULL);
	if (!*obj)
		die("cannot open the ceiling object");
	rodata = bpf_object__find_map_by_name(*obj, ".rodata");
	if (!rodata || bpf_map__set_initial_value(rodata, &ifindex, sizeof(ifindex)) ||
	    bpf_object__load(*obj))
		die("cannot load the ceiling program");
	p = bpf_object__find_program_by_name(*obj, "ceiling_strip");
	return p ? bpf_program__fd(p) : -1;
}

/* Private namespaces: the veths, routes and bpffs go when fpcost exits. */
static void sandbox(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("unshare/mount (needs root)");
	umount2("/sys/fs/bpf", MNT_DETACH);
	if (!mkdtemp(bpffs) || mount("bpf", bpffs, "bpf", 0, "mode=0700"))
		die("bpffs");
	snprintf(pin_dir, sizeof(pin_dir), "%s/pins", bpffs);
	if (system("ip link set lo up && "
		   "ip link add a0 type veth peer name a1 && ip link add b0 type veth peer name b1 && "
		   "ip addr add 10.11.0.1/24 dev a0 && ip addr add 10.12.0.1/24 dev b0 && "
		   "for d in a0 a1 b0 b1; do ip link set $d up; done && "
		   "ip neigh replace 10.11.0.2 lladdr 02:00:00:00:00:0b dev a0 nud permanent && "
		   "ip neigh replace 10.12.0.3 lladdr 02:00:00:00:00:0c dev b0 nud permanent && "
		   "ip route add 10.0.0.0/8 via 10.11.0.2 dev a0"))
		die("network setup");
}

int main(int argc, char **argv)
{
	unsigned counts[MAX_COUNTS] = { 1, 10000, 100000, 1000000 }, ncounts = 4, k = 50000;
	struct sockaddr_storage addrs[2] = { ss("10.11.0.1"), ss("10.12.0.1") };
	struct fastpath *fp;
	struct bpf_object *ceiling;
	struct timespec now;
	uint64_t expires;
	char why[256], *s;
	int opt, prog, cprog;

	while ((opt = getopt(argc, argv, "k:n:")) != -1) {
		switch (opt) {
		case 'k':
			k = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			ncounts = 0;
			for (s = strtok(optarg, ","); s && ncounts < MAX_COUNTS; s = strtok(NULL, ","))
				counts[ncounts++] = (unsigned)strtoul(s, NULL, 10);
			break;
		default:
			die("usage: fpcost [-k K] [-n N1,N2,...] CEILING_OBJ");
		}
	}
	if (optind != argc - 1 || !k || !ncounts)
		die("usage: fpcost [-k K] [-n N1,N2,...] CEILING_OBJ");
	for (unsigned i = 0; i < ncounts; i++)
		if (!counts[i] || (i && counts[i] <= counts[i - 1]) || counts[i] > 1u << 24)
			die("counts must grow, from 1 to 16 M");

	sandbox();
	log_level = LOG_WARN;
	fp_route_logs();
	unsigned max = counts[ncounts - 1];
	struct fp_opts o = { .pin_dir = pin_dir, .mode = "native", .addrs = addrs, .naddrs = 2,
			     .max_bindings = max, .max_relays = max / PER_RELAY + 1,
			     .max_perms = max / PER_RELAY + 1 };

	if (fp_open(&fp, &o, why, sizeof(why)))
		die(why);
	cprog = ceiling_open(argv[optind], &ceiling);
	snprintf(why, sizeof(why), "%s/xt_prog", pin_dir);
	prog = bpf_obj_get(why);
	if (prog < 0 || cprog < 0)
		die("no program");
	clock_gettime(CLOCK_MONOTONIC, &now);
	expires = (uint64_t)now.tv_sec * 1000000000ULL + 3600ULL * 1000000000ULL;

	printf("prog\tbindings\tdir\tpattern\tmean_ns\tp50_ns\n");
	unsigned have = 0;
	for (unsigned i = 0; i < ncounts; i++) {
		for (; have < counts[i]; have++) {
			struct fp_chan c = binding(have, expires);

			if (have % PER_RELAY == 0 &&
			    (fp_relay_add(fp, &c.relay) ||
			     fp_perm_add(fp, &c.relay, &c.peer, expires)))
				die("relay or permission refused");
			if (fp_chan_add(fp, &c))
				die("binding refused");
		}
		fprintf(stderr, "fpcost: %u bindings\n", have);
		for (int c2p = 1; c2p >= 0; c2p--)
			for (int spread = 0; spread <= 1; spread++) {
				measure(fp, prog, "xturn", have, c2p, spread, k, expires);
				if (c2p && !spread)
					measure(NULL, cprog, "ceiling", have, true, false, k, expires);
			}
	}
	close(prog);
	bpf_object__close(ceiling);
	fp_close(fp);
	umount2(bpffs, MNT_DETACH);
	rmdir(bpffs);
	return 0;
}
