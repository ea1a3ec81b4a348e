/* --live-frames: ChannelData built by the injector XDP program and sent
 * with BPF_PROG_RUN live frames, one pinned thread per CPU. */
#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <linux/neighbour.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/frame.h"
#include "common/netlink.h"
#include "xturngen.h"
#include "xturngen_inject.h"
#include "xturngen_inject.skel.h"

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

/* dst's link-layer address from the neighbour table of ifindex. */
static int live_dst_mac(int ifindex, const struct sockaddr_storage *dst, uint8_t mac[ETH_ALEN])
{
	struct nl_neigh *nb;
	size_t n;
	int err = nl_dump_neighs(&nb, &n);

	if (err)
		return err;
	err = -ENOENT;
	for (size_t i = 0; i < n && err; i++) {
		if (nb[i].ifindex == ifindex && addr_ip_eq(&nb[i].addr, dst) &&
		    !(nb[i].state & (NUD_INCOMPLETE | NUD_FAILED))) {
			memcpy(mac, nb[i].lladdr, ETH_ALEN);
			err = 0;
		}
	}
	free(nb);
	return err;
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
	return ETH_HLEN + frame_ip_udp(&c->allocs[i].local, &c->server, dgram,
				      CHANNELDATA_HDR_LEN + len, out + ETH_HLEN);
}

/* Whether the kernel runs live frames at all (some refuse BPF_PROG_RUN's
 * live mode: EPERM): one frame into a program that drops it, so nothing is
 * sent. 0 or -errno. */
static int live_probe(int ifindex)
{
	const struct bpf_insn drop[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_DROP },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	uint8_t frame[64] = { 0 };
	struct xdp_md ctx = { .data_end = sizeof(frame), .ingress_ifindex = (uint32_t)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof(frame),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xg_probe", "GPL", drop, 2, NULL), err = 0;

	if (fd < 0)
		return -errno;
	if (bpf_prog_test_run_opts(fd, &o) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Loads the injector and writes one template per flow and each injector's
 * CPU cursor: injector t owns flows t, t + n, t + 2n, ... so every flow's
 * sequence has one writer. Reports its own errors. */
int live_setup(struct client *c)
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
	if ((ret = live_probe(l->ifindex)) < 0) {
		fprintf(stderr, "xturngen: --live-frames: the kernel refuses BPF_PROG_RUN live "
			"frames: %s\n", strerror(-ret));
		return ret;
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

void live_free(struct live *l)
{
	if (l)
		xturngen_inject__destroy(l->skel);
	free(l);
}

/* One injector: pinned to its CPU (the program picks flows by CPU id), it
 * runs the injector in calls of ~1 s of packets, or with a rate, one call
 * per LIVE_SLOT_NS carrying what is due by the slot's end. */
void *injector(void *arg)
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

unsigned live_threads(const struct live *l)
{
	return l->n;
}

int live_cpu(const struct live *l, unsigned i)
{
	return l->cpus[i];
}
