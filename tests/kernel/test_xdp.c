/* Packet tests of the XDP program (bpf/xturn.bpf.c): crafted frames run
 * through bpf_prog_test_run_opts, each case an input frame, the expected
 * verdict, the expected output frame and the counter it must bump.
 *
 * Runs as root in a network namespace of its own (unshare at start, gone
 * at exit) with two veth devices, addresses and permanent neighbours, so
 * bpf_fib_lookup gives known results. Forwarding is off on the veths and on
 * on a lookup device (xf), as xturnd sets things up. Maps are not pinned.
 *
 * `make fuzz` builds this file a second time with -DXT_FUZZ: the XDP fuzz
 * target, the same namespace and bindings, libFuzzer's frames in, every
 * output checked (fuzz_check at the end); its seeds are the cases below
 * (XDP_SEEDS=DIR writes them). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "common/addr.h"
#include "common/frame.h"
#include "xturn.skel.h"
#include "xturn_kern_user.h"

static struct xturn_bpf *skel;
static int if_a, if_c;	/* xa: clients' side, xc: peers' side */
static int if_f;	/* xf: the lookup device (xt_cfg.fib_ifindex) */

static const uint8_t MAC_XA[6] = { 2, 0, 0, 0, 0x0a, 1 };
static const uint8_t MAC_XC[6] = { 2, 0, 0, 0, 0x0c, 1 };
static const uint8_t MAC_C[6] = { 2, 0, 0, 0, 1, 2 };	/* 10.0.1.2, fd00:1::2 */
static const uint8_t MAC_T[6] = { 2, 0, 0, 0, 1, 4 };	/* 10.0.1.4 */
static const uint8_t MAC_P[6] = { 2, 0, 0, 0, 2, 2 };	/* 10.0.2.2, fd00:2::2 */

static const char *const netns_setup[] = {
	"ip link set lo up",
	"ip link add xa address 02:00:00:00:0a:01 type veth peer name xap",
	"ip link add xc address 02:00:00:00:0c:01 type veth peer name xcp",
	"ip link set xa up && ip link set xap up && ip link set xc up && ip link set xcp up",
	"ip addr add 10.0.1.1/24 dev xa && ip addr add 10.0.2.1/24 dev xc",
	"ip -6 addr add fd00:1::1/64 dev xa nodad && ip -6 addr add fd00:2::1/64 dev xc nodad",
	/* bpf_fib_lookup wants forwarding on the device it is given: the
	 * lookup device, as xturnd's (dummy, or ifb where the kernel lacks it). */
	"ip link add xf type dummy 2>/dev/null || ip link add xf type ifb",
	"ip link set xf up",
	"sysctl -qw net.ipv4.conf.xf.forwarding=1 net.ipv6.conf.xf.forwarding=1",
	"ip neigh replace 10.0.1.2 lladdr 02:00:00:00:01:02 dev xa nud permanent",
	"ip neigh replace 10.0.1.4 lladdr 02:00:00:00:01:04 dev xa nud permanent",
	"ip neigh replace 10.0.2.2 lladdr 02:00:00:00:02:02 dev xc nud permanent",
	"ip -6 neigh replace fd00:1::2 lladdr 02:00:00:00:01:02 dev xa nud permanent",
	"ip -6 neigh replace fd00:2::2 lladdr 02:00:00:00:02:02 dev xc nud permanent",
	/* 10.0.1.3 has no neighbour entry: NO_NEIGH. */
};

#define L4 "10.0.1.1:3478"
#define L6 "[fd00:1::1]:3478"
#define C4 "10.0.1.2:40000"
#define C6 "[fd00:1::2]:40000"
#define R4 "10.0.2.1:50000"
#define R6 "[fd00:2::1]:50000"
#define P4 "10.0.2.2:60000"
#define P6 "[fd00:2::2]:60000"
#define R6X "[fd00:2::1]:50001"	/* v4 client, v6 peer */
#define R4X "10.0.2.1:50001"	/* v6 client, v4 peer */
#define R4T "10.0.2.1:50002"	/* peer on the ingress link: XDP_TX */
#define PT "10.0.1.4:60001"
#define R4N "10.0.2.1:50003"	/* peer with no neighbour entry */
#define PN "10.0.1.3:60002"
#define RA "10.0.2.1:50010"	/* hairpin: client A's relay */
#define RB "10.0.2.1:50011"	/*   client B's relay */
#define CB "10.0.2.2:40001"	/*   client B */
#define LB "10.0.2.1:3478"	/*   B's listener */
#define RH "10.0.2.1:50012"	/* hairpin to a relay with no binding */
#define RH2 "10.0.2.1:50013"
#define R4H "10.0.2.1:50020"	/* RFC 5766 channel number (0x5000-0x7FFF) */
#define RI "10.0.2.1:50040"	/* a relay whose permissions did not all fit */
#define R1O "10.0.1.1:50030"	/* a relay on another IP of ours: its peer RA is
				 * a relay, but not flagged XT_C2P_PEER_LOCAL */

/* Test cases name a binding by its number here (1-based, 0: none). */
struct binding {
	const char *client, *listener, *relay, *peer;
	uint16_t channel;
};

static const struct binding bindings[] = {
	{ C4, L4, R4, P4, 0x4000 },
	{ C6, L6, R6, P6, 0x4001 },
	{ C4, L4, R6X, P6, 0x4002 },
	{ C6, L6, R4X, P4, 0x4003 },
	{ C4, L4, R4T, PT, 0x4004 },
	{ C4, L4, R4N, PN, 0x4005 },
	{ C4, L4, RA, RB, 0x4006 },
	{ CB, LB, RB, RA, 0x4007 },
	{ C4, L4, RH, RH2, 0x4008 },
	{ C4, L4, R4H, P4, 0x6dc4 },
	{ C4, L4, R1O, RA, 0x4009 },
};
#define NBIND (sizeof(bindings) / sizeof(bindings[0]))

/* ---- frames ---------------------------------------------------------- */

struct payload {
	uint16_t chan;		/* ChannelData channel; 0: raw data */
	uint16_t len;		/* data bytes */
	int lendelta;		/* added to the ChannelData length field */
	uint8_t pad;		/* padding bytes after the data */
	uint8_t seed;		/* data pattern */
	bool stun;		/* a STUN Binding request instead */
	bool has_tail;		/* the data's last two bytes are tail */
	uint16_t tail;
};

enum csum_mode { CS_FULL, CS_PARTIAL, CS_ZERO, CS_BAD };

struct frame {
	const char *src, *dst;	/* transport addresses */
	const uint8_t *smac, *dmac;
	int vlans;		/* 0, 1 or 2 (802.1ad + 802.1Q) tags */
	enum csum_mode cs;
	bool out;		/* header fields as xturn writes them */
	bool frag, ipopt, v6ext;
	bool ipbad;		/* IPv4 header checksum off by one */
	int trailer;		/* Ethernet padding after the IP packet */
	struct payload pl;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static size_t put_payload(uint8_t *b, const struct payload *p)
{
	static const uint8_t stun[20] = { 0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42,
					  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	size_t n = 0;

	if (p->stun) {
		memcpy(b, stun, sizeof(stun));
		return sizeof(stun);
	}
	if (p->chan) {
		put16(b, p->chan);
		put16(b + 2, (uint16_t)(p->len + p->lendelta));
		n = 4;
	}
	for (unsigned i = 0; i < p->len; i++)
		b[n++] = (uint8_t)(p->seed + i * 31);
	if (p->has_tail)
		put16(b + n - 2, p->tail);
	for (unsigned i = 0; i < p->pad; i++)
		b[n++] = (uint8_t)(0xa5 + i);	/* nonzero: the checksum sees it */
	return n;
}

static void parse_ep(const char *s, struct sockaddr_storage *a, uint8_t ip[16], uint16_t *port)
{
	assert_int_equal(addr_parse(s, 0, a), 0);
	addr_canon(a);
	if (a->ss_family == AF_INET)
		memcpy(ip, &((struct sockaddr_in *)a)->sin_addr, 4);
	else
		memcpy(ip, &((struct sockaddr_in6 *)a)->sin6_addr, 16);
	*port = addr_port(a);
}

static size_t build(const struct frame *f, uint8_t *b)
{
	struct sockaddr_storage s, d;
	uint8_t sip[16], dip[16], pay[2048];
	uint16_t sport, dport, full;
	size_t o = 12, plen, ulen, alen;
	uint32_t pseudo;
	bool v4;

	parse_ep(f->src, &s, sip, &sport);
	parse_ep(f->dst, &d, dip, &dport);
	assert_int_equal(s.ss_family, d.ss_family);
	v4 = s.ss_family == AF_INET;
	alen = v4 ? 4 : 16;
	memcpy(b, f->dmac ? f->dmac : MAC_XA, 6);
	memcpy(b + 6, f->smac ? f->smac : MAC_C, 6);
	if (f->vlans == 2) {
		put16(b + o, 0x88a8);
		put16(b + o + 2, 100);
		o += 4;
	}
	if (f->vlans >= 1) {
		put16(b + o, 0x8100);
		put16(b + o + 2, 200);
		o += 4;
	}
	put16(b + o, v4 ? 0x0800 : 0x86dd);
	o += 2;

	plen = put_payload(pay, &f->pl);
	ulen = 8 + plen;
	if (v4) {
		size_t ihl = f->ipopt ? 24 : 20;

		memset(b + o, 0, ihl);
		b[o] = 0x40 | (uint8_t)(ihl / 4);
		put16(b + o + 2, (uint16_t)(ihl + ulen));
		put16(b + o + 4, f->out ? 0 : 0x1234);
		put16(b + o + 6, f->out ? 0x4000 : f->frag ? 0x2000 : 0);
		b[o + 8] = f->out ? 64 : 61;
		b[o + 9] = 17;
		memcpy(b + o + 12, sip, 4);
		memcpy(b + o + 16, dip, 4);
		if (f->ipopt)
			memset(b + o + 20, 1, 4);	/* NOPs */
		put16(b + o + 10, (uint16_t)(~frame_fold(frame_sum16(b + o, ihl, 0)) + f->ipbad));
		o += ihl;
	} else {
		memset(b + o, 0, 40);
		b[o] = 0x60;
		if (!f->out) {	/* a flow label the output must not keep */
			b[o + 1] = 0x01;
			b[o + 2] = 0x23;
		}
		put16(b + o + 4, (uint16_t)(ulen + (f->v6ext ? 8 : 0)));
		b[o + 6] = f->v6ext ? 0 : 17;
		b[o + 7] = f->out ? 64 : 61;
		memcpy(b + o + 8, sip, 16);
		memcpy(b + o + 24, dip, 16);
		o += 40;
		if (f->v6ext) {	/* hop-by-hop, PadN */
			memset(b + o, 0, 8);
			b[o] = 17;
			b[o + 2] = 1;
			b[o + 3] = 4;
			o += 8;
		}
	}
	put16(b + o, sport);
	put16(b + o + 2, dport);
	put16(b + o + 4, (uint16_t)ulen);
	put16(b + o + 6, 0);
	memcpy(b + o + 8, pay, plen);
	pseudo = frame_sum16(sip, alen, frame_sum16(dip, alen, 17 + (uint32_t)ulen));
	full = (uint16_t)~frame_fold(frame_sum16(b + o, ulen, pseudo));
	if (!full)
		full = 0xffff;
	switch (f->cs) {
	case CS_FULL: put16(b + o + 6, full); break;
	case CS_PARTIAL: put16(b + o + 6, frame_fold(pseudo)); break;
	case CS_ZERO: break;
	case CS_BAD: put16(b + o + 6, full ^ 0x5a5a); break;
	}
	o += ulen;
	memset(b + o, 0, (size_t)f->trailer);
	return o + (size_t)f->trailer;
}

/* A frame taken apart without trusting it: where its addresses and UDP
 * header are. */
struct parsed {
	const uint8_t *src, *dst;	/* IP addresses, alen bytes */
	size_t alen, udp, ulen;		/* UDP header offset, UDP length */
	uint16_t residual;		/* folded sum over pseudo-header and datagram */
};

/* Independent check of a frame: IPv4 header checksum and lengths that fill
 * the frame (at most trailer bytes after the IP packet), IPv4 or IPv6 with
 * UDP. 0, or -1 if it is not such a frame. */
static int udp_parse(const uint8_t *b, size_t n, size_t trailer, struct parsed *p)
{
	size_t o = 12, ihl, iplen;
	uint16_t type;

	for (int tags = 0; o + 2 <= n && tags < 3 &&
	     (get16(b + o) == 0x8100 || get16(b + o) == 0x88a8); tags++)
		o += 4;
	if (o + 2 > n)
		return -1;
	type = get16(b + o);
	o += 2;
	if (type == 0x0800) {
		if (o + 20 > n || b[o] >> 4 != 4)
			return -1;
		ihl = (size_t)(b[o] & 0xf) * 4;
		iplen = get16(b + o + 2);
		if (ihl < 20 || o + ihl > n || frame_fold(frame_sum16(b + o, ihl, 0)) != 0xffff ||
		    b[o + 9] != 17 || iplen < ihl)
			return -1;
		p->src = b + o + 12, p->dst = b + o + 16, p->alen = 4;
	} else if (type == 0x86dd) {
		if (o + 40 > n || b[o] >> 4 != 6 || b[o + 6] != 17)
			return -1;
		ihl = 40;
		iplen = 40 + get16(b + o + 4);
		p->src = b + o + 8, p->dst = b + o + 24, p->alen = 16;
	} else {
		return -1;
	}
	if (o + iplen > n || n - (o + iplen) > trailer || iplen < ihl + 8)
		return -1;
	p->udp = o + ihl;
	p->ulen = get16(b + p->udp + 4);
	if (p->ulen != iplen - ihl)
		return -1;
	p->residual = frame_fold(frame_sum16(b + p->udp, p->ulen,
				 frame_sum16(p->src, 2 * p->alen, 17 + (uint32_t)p->ulen)));
	return 0;
}

/* The same for a frame the test built or the program wrote: it must be one
 * (no trailer). Returns the residual (0xffff: the checksum is right) and
 * where the checksum field is. */
static uint16_t udp_residual(const uint8_t *b, size_t n, size_t *check_off)
{
	struct parsed p = { 0 };

	assert_int_equal(udp_parse(b, n, 0, &p), 0);
	assert_int_not_equal(get16(b + p.udp + 6), 0);
	*check_off = p.udp + 6;
	return p.residual;
}

static void check_sums(const uint8_t *b, size_t n)
{
	size_t off;

	assert_int_equal(udp_residual(b, n, &off), 0xffff);
}

/* ---- maps ---------------------------------------------------------- */

static void mapped(const char *s, __be32 ip[4], __be16 *port)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(s, 0, &a), 0);
	addr_to_mapped(&a, ip);
	*port = htons(addr_port(&a));
}

static void update(struct bpf_map *m, const void *k, const void *v)
{
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(m), k, v, BPF_ANY), 0);
}

static void add_relay_flags(const char *relay, uint32_t flags)
{
	struct xt_relay_key k = { 0 };
	struct xt_relay_val v = { .flags = flags };

	mapped(relay, k.relay, &k.relay_port);
	update(skel->maps.xt_relays, &k, &v);
}

static void add_relay(const char *relay)
{
	add_relay_flags(relay, 0);
}

/* A permission that ends at end_ns (CLOCK_MONOTONIC). */
static void set_perm(const char *relay, const char *peer, uint64_t end_ns)
{
	struct xt_perm_key k = { 0 };
	struct xt_perm_val v = { .expires_ns = end_ns };
	__be16 port;

	mapped(relay, k.relay, &k.relay_port);
	mapped(peer, k.peer, &port);
	update(skel->maps.xt_perms, &k, &v);
}

static void add_perm(const char *relay, const char *peer)
{
	set_perm(relay, peer, UINT64_MAX);
}

/* Binding b's end: its expiry slot is its index in bindings[]. */
static void set_binding_end(const struct binding *b, uint64_t end_ns)
{
	uint32_t slot = (uint32_t)(b - bindings);

	update(skel->maps.xt_expiry, &slot, &end_ns);
}

static void binding_keys(const struct binding *b, struct xt_c2p_key *ck, struct xt_p2c_key *pk)
{
	__be32 relay[4];
	__be16 relay_port;

	memset(ck, 0, sizeof(*ck));
	memset(pk, 0, sizeof(*pk));
	mapped(b->client, ck->client, &ck->client_port);
	mapped(b->listener, ck->listener, &ck->listener_port);
	ck->channel = htons(b->channel);
	mapped(b->relay, relay, &relay_port);
	mapped(b->peer, pk->peer, &pk->peer_port);
	memcpy(pk->relay, relay, 16);
	pk->relay_port = relay_port;
}

/* As xturnd writes a binding (fastpath.c), with the same flag rule. */
static void add_binding(const struct binding *b)
{
	struct xt_c2p_key ck;
	struct xt_c2p_val cv = { 0 };
	struct xt_p2c_key pk;
	struct xt_p2c_val pv = { 0 };

	binding_keys(b, &ck, &pk);
	mapped(b->relay, cv.relay, &cv.relay_port);
	mapped(b->peer, cv.peer, &cv.peer_port);
	if (!memcmp(cv.relay, cv.peer, 16))
		cv.flags = XT_C2P_PEER_LOCAL;
	cv.exp_slot = pv.exp_slot = (uint32_t)(b - bindings);
	set_binding_end(b, UINT64_MAX);
	update(skel->maps.xt_c2p, &ck, &cv);

	memcpy(pv.client, ck.client, 16);
	memcpy(pv.listener, ck.listener, 16);
	pv.client_port = ck.client_port;
	pv.listener_port = ck.listener_port;
	pv.channel = ck.channel;
	update(skel->maps.xt_p2c, &pk, &pv);

	add_relay(b->relay);
	add_perm(b->relay, b->peer);
}

/* Each call a new fib_epoch: next hops cached by earlier cases (with other
 * forwarding settings) do not carry over. */
static void set_cfg(uint32_t flags, int fib_ifindex)
{
	static uint32_t epoch;
	struct xt_cfg c = { .magic = XT_MAGIC, .abi_version = XT_ABI_VERSION, .flags = flags,
			    .fib_ifindex = (uint32_t)fib_ifindex, .fib_epoch = ++epoch };
	uint32_t zero = 0;

	update(skel->maps.xt_cfg, &zero, &c);
}

/* net.ipv4/ipv6.conf.DEV.forwarding */
static void set_forwarding(const char *dev, bool on)
{
	static const char *const fams[] = { "ipv4", "ipv6" };
	char path[96];
	FILE *f;

	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/forwarding", fams[i], dev);
		f = fopen(path, "w");
		assert_non_null(f);
		assert_true(fputs(on ? "1" : "0", f) >= 0);
		assert_int_equal(fclose(f), 0);
	}
}

static void read_stats(struct xt_count out[XT_CNT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct xt_count v[ncpu];

	for (uint32_t i = 0; i < XT_CNT_MAX; i++) {
		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.xt_stats), &i, v), 0);
		out[i] = (struct xt_count){ 0 };
		for (int c = 0; c < ncpu; c++) {
			out[i].packets += v[c].packets;
			out[i].bytes += v[c].bytes;
		}
	}
}

/* The counters in both values of every binding. */
struct chan_count {
	uint64_t c2p_packets, c2p_bytes, p2c_packets, p2c_bytes;
};

static void read_chans(struct chan_count out[NBIND])
{
	for (size_t i = 0; i < NBIND; i++) {
		struct xt_c2p_key ck;
		struct xt_p2c_key pk;
		struct xt_c2p_val cv;
		struct xt_p2c_val pv;

		binding_keys(&bindings[i], &ck, &pk);
		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.xt_c2p), &ck, &cv), 0);
		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.xt_p2c), &pk, &pv), 0);
		out[i] = (struct chan_count){ cv.packets, cv.bytes, pv.packets, pv.bytes };
	}
}

/* ---- cases ----------------------------------------------------------- */

enum { IN_A = 0, IN_C };

/* Which device bpf_fib_lookup is given, and forwarding on the veths. */
enum fib_dev {
	FIB_LOOKUP_DEV = 0,	/* xf (forwarding on); forwarding off on xa, xc */
	FIB_INGRESS_FWD,	/* fib_ifindex 0: the ingress; forwarding on xa, xc */
	FIB_INGRESS_NOFWD,	/* fib_ifindex 0, forwarding off on xa, xc */
};

struct tcase {
	const char *name;
	int ingress;		/* IN_A (default) or IN_C */
	enum fib_dev fib;
	bool disabled;		/* xt_cfg without XT_CFG_ENABLED */
	uint32_t flags;		/* extra xt_cfg flags */
	struct frame in;
	size_t truncate;	/* cut the input frame to this size */
	int verdict;
	int counter;
	struct frame out;	/* for XDP_TX / XDP_REDIRECT */
	uint32_t c2p_bind, p2c_bind;	/* per-channel counters bumped */
	/* For this case only, binding N (1-based) has ended, or its
	 * permission has (the kernel's own lifetimes). */
	uint32_t bind_ended, perm_ended;
};

#define VERIFY XT_CFG_VERIFY_CSUM
#define CD(ch, n, ...) { .chan = ch, .len = n, __VA_ARGS__ }
#define RAW(n, ...) { .len = n, __VA_ARGS__ }
/* Output frame templates: to a peer (raw) or to a client (ChannelData). */
#define TO(s, d, sm, dm, ...) { .src = s, .dst = d, .smac = sm, .dmac = dm, .out = true, __VA_ARGS__ }

static const struct tcase cases[] = {
	{ "c2p_v4", .in = { C4, L4, .pl = CD(0x4000, 100, .seed = 1) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(100, .seed = 1)) },
	{ "c2p_v4_odd_padded", .in = { C4, L4, .pl = CD(0x4000, 37, .pad = 3, .seed = 2) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(37, .seed = 2)) },
	{ "c2p_v4_pad2_verify", .flags = VERIFY,
	  .in = { C4, L4, .pl = CD(0x4000, 10, .pad = 2, .seed = 3) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(10, .seed = 3)) },
	{ "c2p_v4_odd_pad_verify_full", .flags = VERIFY,
	  .in = { C4, L4, .pl = CD(0x4000, 37, .pad = 3, .seed = 4) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(37, .seed = 4)) },
	{ "c2p_v4_partial_csum_verify", .flags = VERIFY,
	  .in = { C4, L4, .cs = CS_PARTIAL, .pl = CD(0x4000, 37, .pad = 3, .seed = 5) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(37, .seed = 5)) },
	{ "c2p_v4_partial_csum", .in = { C4, L4, .cs = CS_PARTIAL, .pl = CD(0x4000, 64, .seed = 6) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(64, .seed = 6)) },
	{ "c2p_v4_zero_csum_verify", .flags = VERIFY,
	  .in = { C4, L4, .cs = CS_ZERO, .pl = CD(0x4000, 20, .seed = 7) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(20, .seed = 7)) },
	{ "c2p_v4_bad_csum_verify", .flags = VERIFY,
	  .in = { C4, L4, .cs = CS_BAD, .pl = CD(0x4000, 20, .seed = 8) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_BAD_CSUM },
	{ "c2p_v4_bad_pad_csum_verify", .flags = VERIFY,	/* padding is covered */
	  .in = { C4, L4, .cs = CS_BAD, .pl = CD(0x4000, 21, .pad = 3, .seed = 8) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_BAD_CSUM },
	{ "c2p_v4_bad_csum_no_verify", .in = { C4, L4, .cs = CS_BAD, .pl = CD(0x4000, 20, .seed = 9) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(20, .seed = 9)) },
	{ "c2p_v4_empty_data", .in = { C4, L4, .pl = CD(0x4000, 0) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(0)) },
	{ "c2p_v4_ethernet_trailer", .in = { C4, L4, .trailer = 14, .pl = CD(0x4000, 2, .pad = 2, .seed = 10) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(2, .seed = 10)) },
	{ "c2p_v4_len_too_long", .in = { C4, L4, .pl = CD(0x4000, 100, .lendelta = 1) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_BAD_LEN },
	{ "c2p_v4_pad_too_long", .in = { C4, L4, .pl = CD(0x4000, 100, .pad = 4) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_BAD_LEN },
	{ "c2p_unknown_channel", .in = { C4, L4, .pl = CD(0x4fff, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "c2p_unknown_client", .in = { "10.0.1.2:40009", L4, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "c2p_v6", .in = { C6, L6, .pl = CD(0x4001, 200, .seed = 11) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 2,
	  .out = TO(R6, P6, MAC_XC, MAC_P, .pl = RAW(200, .seed = 11)) },
	{ "c2p_v6_big_verify", .flags = VERIFY, .in = { C6, L6, .pl = CD(0x4001, 1401, .pad = 3, .seed = 12) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 2,
	  .out = TO(R6, P6, MAC_XC, MAC_P, .pl = RAW(1401, .seed = 12)) },
	{ "c2p_v6_partial_csum_verify", .flags = VERIFY,
	  .in = { C6, L6, .cs = CS_PARTIAL, .pl = CD(0x4001, 333, .pad = 3, .seed = 13) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 2,
	  .out = TO(R6, P6, MAC_XC, MAC_P, .pl = RAW(333, .seed = 13)) },
	{ "p2c_v4", .ingress = IN_C, .in = { P4, R4, .pl = RAW(100, .seed = 14) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 1,
	  .out = TO(L4, C4, MAC_XA, MAC_C, .pl = CD(0x4000, 100, .seed = 14)) },
	/* A peer's data may start like ChannelData (first byte 0x40-0x7f): it
	 * is still peer data, and its checksum verifies as such. */
	{ "p2c_v4_looks_like_channeldata_verify", .ingress = IN_C, .flags = VERIFY,
	  .in = { P4, R4, .pl = RAW(100, .seed = 0x41) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 1,
	  .out = TO(L4, C4, MAC_XA, MAC_C, .pl = CD(0x4000, 100, .seed = 0x41)) },
	{ "p2c_v4_odd", .ingress = IN_C, .in = { P4, R4, .pl = RAW(37, .seed = 15) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 1,
	  .out = TO(L4, C4, MAC_XA, MAC_C, .pl = CD(0x4000, 37, .seed = 15)) },
	{ "p2c_v4_big_partial_verify", .ingress = IN_C, .flags = VERIFY,
	  .in = { P4, R4, .cs = CS_PARTIAL, .pl = RAW(1400, .seed = 16) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 1,
	  .out = TO(L4, C4, MAC_XA, MAC_C, .pl = CD(0x4000, 1400, .seed = 16)) },
	{ "p2c_v4_over_mtu", .ingress = IN_C, .in = { P4, R4, .pl = RAW(1472, .seed = 17) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_FIB },
	{ "p2c_v6", .ingress = IN_C, .in = { P6, R6, .pl = RAW(201, .seed = 18) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 2,
	  .out = TO(L6, C6, MAC_XA, MAC_C, .pl = CD(0x4001, 201, .seed = 18)) },
	{ "p2c_v6_bad_csum_no_verify", .ingress = IN_C,
	  .in = { P6, R6, .cs = CS_BAD, .pl = RAW(201, .seed = 29) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 2,
	  .out = TO(L6, C6, MAC_XA, MAC_C, .pl = CD(0x4001, 201, .seed = 29)) },
	{ "p2c_v6_zero_csum_verify", .ingress = IN_C, .flags = VERIFY,
	  .in = { P6, R6, .cs = CS_ZERO, .pl = RAW(20) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_BAD_CSUM },
	{ "c2p_v4_client_v6_peer", .in = { C4, L4, .pl = CD(0x4002, 55, .pad = 1, .seed = 19) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 3,
	  .out = TO(R6X, P6, MAC_XC, MAC_P, .pl = RAW(55, .seed = 19)) },
	{ "c2p_v4_client_v6_peer_bad_csum_padded",
	  .in = { C4, L4, .cs = CS_BAD, .pl = CD(0x4002, 55, .pad = 1, .seed = 30) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 3,
	  .out = TO(R6X, P6, MAC_XC, MAC_P, .pl = RAW(55, .seed = 30)) },
	{ "p2c_v6_peer_v4_client", .ingress = IN_C, .in = { P6, R6X, .pl = RAW(55, .seed = 20) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 3,
	  .out = TO(L4, C4, MAC_XA, MAC_C, .pl = CD(0x4002, 55, .seed = 20)) },
	{ "c2p_v6_client_v4_peer", .in = { C6, L6, .pl = CD(0x4003, 80, .seed = 21) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 4,
	  .out = TO(R4X, P4, MAC_XC, MAC_P, .pl = RAW(80, .seed = 21)) },
	{ "p2c_v4_peer_v6_client", .ingress = IN_C, .in = { P4, R4X, .pl = RAW(81, .seed = 22) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 4,
	  .out = TO(L6, C6, MAC_XA, MAC_C, .pl = CD(0x4003, 81, .seed = 22)) },
	{ "c2p_tx_same_link", .in = { C4, L4, .pl = CD(0x4004, 90, .seed = 23) },
	  .verdict = XDP_TX, .counter = XT_CNT_C2P, .c2p_bind = 5,
	  .out = TO(R4T, PT, MAC_XA, MAC_T, .pl = RAW(90, .seed = 23)) },
	{ "c2p_vlan_tx", .in = { C4, L4, .vlans = 1, .pl = CD(0x4004, 91, .pad = 1, .seed = 24) },
	  .verdict = XDP_TX, .counter = XT_CNT_C2P, .c2p_bind = 5,
	  .out = TO(R4T, PT, MAC_XA, MAC_T, .vlans = 1, .pl = RAW(91, .seed = 24)) },
	{ "c2p_qinq_tx", .in = { C4, L4, .vlans = 2, .pl = CD(0x4004, 92, .seed = 25) },
	  .verdict = XDP_TX, .counter = XT_CNT_C2P, .c2p_bind = 5,
	  .out = TO(R4T, PT, MAC_XA, MAC_T, .vlans = 2, .pl = RAW(92, .seed = 25)) },
	{ "c2p_vlan_other_device", .in = { C4, L4, .vlans = 1, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "c2p_no_neighbour", .in = { C4, L4, .pl = CD(0x4005, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_FIB },
	{ "hairpin", .in = { C4, L4, .pl = CD(0x4006, 77, .pad = 3, .seed = 26) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_HAIRPIN, .c2p_bind = 7, .p2c_bind = 8,
	  .out = TO(LB, CB, MAC_XC, MAC_P, .pl = CD(0x4007, 77, .seed = 26)) },
	{ "hairpin_no_target_binding", .in = { C4, L4, .pl = CD(0x4008, 77) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	/* Not flagged as a possible relay: routed, and the route is local,
	 * so the kernel takes it (and the daemon relays it). */
	{ "c2p_to_relay_not_flagged", .in = { C4, L4, .pl = CD(0x4009, 60) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_FIB },
	/* Ended lifetimes, with no daemon to delete them: an ended binding
	 * is none (its data passes up), an ended permission is none (drop). */
	{ "c2p_binding_ended", .bind_ended = 1, .in = { C4, L4, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "p2c_binding_ended_permission_live", .bind_ended = 1, .ingress = IN_C,
	  .in = { P4, R4, .pl = RAW(100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "p2c_binding_and_permission_ended", .bind_ended = 1, .perm_ended = 1, .ingress = IN_C,
	  .in = { P4, R4, .pl = RAW(100) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_NO_PERM },
	{ "hairpin_target_binding_ended", .bind_ended = 8,
	  .in = { C4, L4, .pl = CD(0x4006, 77) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "hairpin_target_permission_ended", .perm_ended = 8,
	  .in = { C4, L4, .pl = CD(0x4006, 77) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "p2c_permitted_no_binding", .ingress = IN_C, .in = { "10.0.2.9:1234", R4, .pl = RAW(50) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "p2c_not_permitted", .ingress = IN_C, .in = { "10.0.2.10:1234", R4, .pl = RAW(50) },
	  .verdict = XDP_DROP, .counter = XT_CNT_DROP_NO_PERM },
	/* Not in the map is not "none" there: the daemon decides. */
	{ "p2c_perms_incomplete", .ingress = IN_C, .in = { "10.0.2.10:1234", RI, .pl = RAW(50) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NO_BINDING },
	{ "not_turn_udp", .in = { C4, "10.0.1.1:53", .pl = RAW(30) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_NOT_OURS },
	{ "stun_to_listener", .in = { C4, L4, .pl = { .stun = true } },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "ipv4_fragment", .in = { C4, L4, .frag = true, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "ipv4_options", .in = { C4, L4, .ipopt = true, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	/* fuzz_xdp: it was forwarded with a fresh header checksum */
	{ "ipv4_bad_header_checksum", .in = { C4, L4, .ipbad = true, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "p2c_ipv4_bad_header_checksum", .ingress = IN_C,
	  .in = { P4, R4, .ipbad = true, .pl = RAW(64) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "ipv6_extension_header", .in = { C6, L6, .v6ext = true, .pl = CD(0x4001, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "truncated_ip", .in = { C4, L4, .pl = CD(0x4000, 100) }, .truncate = 30,
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "truncated_udp", .in = { C4, L4, .pl = CD(0x4000, 100) }, .truncate = 40,
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "truncated_payload", .in = { C4, L4, .pl = CD(0x4000, 100) }, .truncate = 60,
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "truncated_ipv6", .in = { C6, L6, .pl = CD(0x4001, 100) }, .truncate = 50,
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL },
	{ "disabled", .disabled = true, .in = { C4, L4, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS },
	{ "c2p_v4_rfc5766_channel", .in = { C4, L4, .pl = CD(0x6dc4, 60, .seed = 27) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 10,
	  .out = TO(R4H, P4, MAC_XC, MAC_P, .pl = RAW(60, .seed = 27)) },
	{ "p2c_v4_rfc5766_channel", .ingress = IN_C, .in = { P4, R4H, .pl = RAW(61, .seed = 28) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 10,
	  .out = TO(L4, C4, MAC_XA, MAC_C, .pl = CD(0x6dc4, 61, .seed = 28)) },
	/* No lookup device: the ingress's forwarding switch decides. */
	{ "c2p_v4_ingress_forwarding", .fib = FIB_INGRESS_FWD,
	  .in = { C4, L4, .pl = CD(0x4000, 100, .seed = 29) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_C2P, .c2p_bind = 1,
	  .out = TO(R4, P4, MAC_XC, MAC_P, .pl = RAW(100, .seed = 29)) },
	{ "p2c_v6_ingress_forwarding", .fib = FIB_INGRESS_FWD, .ingress = IN_C,
	  .in = { P6, R6, .pl = RAW(70, .seed = 30) },
	  .verdict = XDP_REDIRECT, .counter = XT_CNT_P2C, .p2c_bind = 2,
	  .out = TO(L6, C6, MAC_XA, MAC_C, .pl = CD(0x4001, 70, .seed = 30)) },
	{ "c2p_tx_ingress_forwarding", .fib = FIB_INGRESS_FWD,
	  .in = { C4, L4, .pl = CD(0x4004, 90, .seed = 31) },
	  .verdict = XDP_TX, .counter = XT_CNT_C2P, .c2p_bind = 5,
	  .out = TO(R4T, PT, MAC_XA, MAC_T, .pl = RAW(90, .seed = 31)) },
	{ "c2p_v4_ingress_no_forwarding", .fib = FIB_INGRESS_NOFWD,
	  .in = { C4, L4, .pl = CD(0x4000, 100) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_FIB },
	{ "p2c_v6_ingress_no_forwarding", .fib = FIB_INGRESS_NOFWD, .ingress = IN_C,
	  .in = { P6, R6, .pl = RAW(70) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_FIB },
	{ "c2p_tx_ingress_no_forwarding", .fib = FIB_INGRESS_NOFWD,
	  .in = { C4, L4, .pl = CD(0x4004, 90) },
	  .verdict = XDP_PASS, .counter = XT_CNT_PASS_FIB },
};

/* Which program runs the frames: xturn_xdp, or (the second group)
 * xturn_tc, the same forwarding as a TC ingress program. */
static bool tc_mode;

/* The verdict in XDP's terms: TC's redirect is XDP_REDIRECT, whichever
 * device it is to (the output frame's source MAC says which). */
static int run_prog(const uint8_t *in, size_t n, int ifindex, uint8_t *out, size_t *outlen)
{
	struct xdp_md ctx = { .data_end = (uint32_t)n, .ingress_ifindex = (uint32_t)ifindex };
	struct __sk_buff skb = { .ifindex = (uint32_t)ifindex,
				 .ingress_ifindex = (uint32_t)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)n,
		    .data_out = out, .data_size_out = (uint32_t)*outlen,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (tc_mode) {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
	}
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(tc_mode ? skel->progs.xturn_tc :
							       skel->progs.xturn_xdp), &o), 0);
	*outlen = o.data_size_out;
	if (!tc_mode)
		return (int)o.retval;
	switch ((int)o.retval) {
	case TC_ACT_OK: return XDP_PASS;
	case TC_ACT_SHOT: return XDP_DROP;
	case TC_ACT_REDIRECT: return XDP_REDIRECT;
	default: fail_msg("TC verdict %d", (int)o.retval);
	}
	return -1;
}

/* What a case expects of the program under test. */
static int want_verdict(int xdp_verdict)
{
	return tc_mode && xdp_verdict == XDP_TX ? XDP_REDIRECT : xdp_verdict;
}

/* The case's configuration and forwarding switches. */
static void case_env(const struct tcase *t)
{
	set_cfg(t->disabled ? 0 : XT_CFG_ENABLED | t->flags, t->fib == FIB_LOOKUP_DEV ? if_f : 0);
	set_forwarding("xa", t->fib == FIB_INGRESS_FWD);
	set_forwarding("xc", t->fib == FIB_INGRESS_FWD);
}

static void run_case(void **state)
{
	const struct tcase *t = *state;
	static struct tcase tct;
	static uint8_t in[4096], out[4096], exp[4096];
	struct xt_count before[XT_CNT_MAX], after[XT_CNT_MAX];
	struct chan_count cb[NBIND], ca[NBIND];
	size_t n, outlen = sizeof(out), m;
	int verdict;

	/* TC leaves to the kernel what it cannot rewrite (forward.h): a
	 * tagged frame, and a CHECKSUM_PARTIAL datagram (in a test run, one
	 * whose checksum field is the pseudo-header sum). */
	if (tc_mode && (t->in.vlans || t->in.cs == CS_PARTIAL) &&
	    (t->verdict == XDP_TX || t->verdict == XDP_REDIRECT ||
	     t->counter == XT_CNT_DROP_BAD_CSUM)) {
		tct = (struct tcase){ .name = t->name, .ingress = t->ingress, .fib = t->fib,
				      .flags = t->flags, .in = t->in, .truncate = t->truncate,
				      .verdict = XDP_PASS, .counter = XT_CNT_PASS_UNUSUAL };
		t = &tct;
	}
	n = build(&t->in, in);
	if (t->truncate)
		n = t->truncate;
	/* BPF_PROG_TEST_RUN gives a TC program no frame whose IP header is
	 * cut short (EINVAL); the stack's receive path drops those. */
	if (tc_mode && n < 14 + (get16(in + 12) == 0x86dd ? 40u : 20u))
		skip();
	case_env(t);
	read_stats(before);
	read_chans(cb);
	/* 1 ns after boot: long past. */
	if (t->bind_ended)
		set_binding_end(&bindings[t->bind_ended - 1], 1);
	if (t->perm_ended)
		set_perm(bindings[t->perm_ended - 1].relay, bindings[t->perm_ended - 1].peer, 1);

	verdict = run_prog(in, n, t->ingress == IN_C ? if_c : if_a, out, &outlen);
	if (t->bind_ended)
		set_binding_end(&bindings[t->bind_ended - 1], UINT64_MAX);
	if (t->perm_ended)
		add_perm(bindings[t->perm_ended - 1].relay, bindings[t->perm_ended - 1].peer);
	assert_int_equal(verdict, want_verdict(t->verdict));
	if (verdict == XDP_PASS) {	/* untouched */
		assert_int_equal(outlen, n);
		assert_memory_equal(out, in, n);
	} else if ((verdict == XDP_TX || verdict == XDP_REDIRECT) && t->in.cs == CS_BAD) {
		/* Relayed without verification: the data's corruption must
		 * leave with it, by the same error in the sum. */
		size_t off_in, off_out;
		uint16_t r = udp_residual(out, outlen, &off_out);

		assert_int_not_equal(r, 0xffff);
		assert_int_equal(r, udp_residual(in, n, &off_in));
		m = build(&t->out, exp);
		assert_int_equal(outlen, m);
		memcpy(exp + off_out, out + off_out, 2);
		assert_memory_equal(out, exp, m);
	} else if (verdict == XDP_TX || verdict == XDP_REDIRECT) {
		m = build(&t->out, exp);
		check_sums(out, outlen);
		assert_int_equal(outlen, m);
		assert_memory_equal(out, exp, m);
	}

	/* Bytes are the application data relayed: none for a packet passed
	 * or dropped. */
	read_stats(after);
	for (int i = 0; i < XT_CNT_MAX; i++) {
		bool hit = !t->disabled && i == t->counter;
		uint64_t bytes = t->counter <= XT_CNT_HAIRPIN ? t->out.pl.len : 0;

		assert_int_equal(after[i].packets - before[i].packets, hit ? 1 : 0);
		if (after[i].bytes - before[i].bytes != (hit ? bytes : 0))
			fail_msg("%s: counter %d counted %llu bytes, want %llu", t->name, i,
				 (unsigned long long)(after[i].bytes - before[i].bytes),
				 (unsigned long long)(hit ? bytes : 0));
	}
	/* The named bindings' counters move by this datagram, no others. */
	read_chans(ca);
	for (size_t i = 0; i < NBIND; i++) {
		bool c2p = t->c2p_bind == i + 1, p2c = t->p2c_bind == i + 1;

		assert_int_equal(ca[i].c2p_packets - cb[i].c2p_packets, c2p ? 1 : 0);
		assert_int_equal(ca[i].c2p_bytes - cb[i].c2p_bytes, c2p ? t->out.pl.len : 0);
		assert_int_equal(ca[i].p2c_packets - cb[i].p2c_packets, p2c ? 1 : 0);
		assert_int_equal(ca[i].p2c_bytes - cb[i].p2c_bytes, p2c ? t->out.pl.len : 0);
	}
}

/* A UDP checksum that computes to 0 goes out as 0xffff: for IPv6 a 0 is
 * invalid and the receiver drops the packet (this once lost about one
 * packet in 65536). The data's last word is chosen to make it happen. */
static void zero_checksum(void **state)
{
	static const char *const names[] = { "c2p_v4", "c2p_v6" };
	static uint8_t in[4096], out[4096], exp[4096];

	for (unsigned k = 0; k < 2; k++) {
		struct tcase t;
		size_t n, m, outlen = sizeof(out), o;
		uint32_t s;

		for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (!strcmp(cases[i].name, names[k]))
				t = cases[i];
		t.in.pl.has_tail = t.out.pl.has_tail = true;
		t.in.pl.tail = t.out.pl.tail = 0;
		/* The expected frame with tail 0: its UDP sum S, then tail =
		 * 0xffff - S makes the sum 0xffff and the checksum 0. */
		m = build(&t.out, exp);
		o = m - t.out.pl.len - 8;	/* UDP header */
		s = k ? frame_sum16(exp + o - 32, 32, 17 + (uint32_t)(m - o)) :
			frame_sum16(exp + o - 8, 8, 17 + (uint32_t)(m - o));
		put16(exp + o + 6, 0);
		s = frame_fold(frame_sum16(exp + o, m - o, s));
		t.in.pl.tail = t.out.pl.tail = (uint16_t)(0xffff - s);
		n = build(&t.in, in);
		m = build(&t.out, exp);
		set_cfg(XT_CFG_ENABLED, if_f);
		assert_int_equal(run_prog(in, n, if_a, out, &outlen), want_verdict(t.verdict));
		assert_int_equal(outlen, m);
		assert_int_equal(get16(out + o + 6), 0xffff);
		check_sums(out, outlen);
		assert_memory_equal(out, exp, m);
	}
}

/* A packet must pass when no or a foreign configuration is present. */
static void cfg_guard(void **state)
{
	static uint8_t in[256], out[256];
	struct frame f = { C4, L4, .pl = CD(0x4000, 100) };
	struct xt_cfg c = { .magic = XT_MAGIC, .abi_version = XT_ABI_VERSION + 1,
			    .flags = XT_CFG_ENABLED };
	uint32_t zero = 0;
	size_t n = build(&f, in), outlen = sizeof(out);

	(void)state;
	update(skel->maps.xt_cfg, &zero, &c);
	assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_PASS);
	c.abi_version = XT_ABI_VERSION;
	c.magic = 0;
	update(skel->maps.xt_cfg, &zero, &c);
	assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_PASS);
	set_cfg(XT_CFG_ENABLED, if_f);
	outlen = sizeof(out);
	assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_REDIRECT);
}

/* The clock of bpf_ktime_get_coarse_ns(). */
static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The next hop a lookup found is cached in the binding and reused while it
 * is fresh: same epoch, younger than XT_NH_TTL_NS, same ingress, a frame no
 * longer than the one looked up. A planted MAC shows which was used. */
static void next_hop_cache(void **state)
{
	static const uint8_t PLANTED[6] = { 2, 0, 0, 0, 0x77, 0x77 };
	static uint8_t in[2048], big[2048], out[2048];
	struct frame f = { C4, L4, .pl = CD(0x4000, 100) }, fb = { C4, L4, .pl = CD(0x4000, 300) };
	size_t n = build(&f, in), nb = build(&fb, big), outlen;
	struct xt_c2p_key ck;
	struct xt_p2c_key pk;
	struct xt_c2p_val v;
	int fd = bpf_map__fd(skel->maps.xt_c2p);

	(void)state;
	binding_keys(&bindings[0], &ck, &pk);
	set_cfg(XT_CFG_ENABLED, if_f);
	outlen = sizeof(out);
	assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_REDIRECT);
	assert_memory_equal(out, MAC_P, 6);
	assert_int_equal(bpf_map_lookup_elem(fd, &ck, &v), 0);
	assert_int_not_equal(v.nh.stamp, 0);
	assert_int_equal(v.nh.ifindex, if_c);
	assert_int_equal(v.nh.in_ifindex, if_a);
	assert_int_equal(v.nh.max_len, n - 14 - 4);	/* the output's IP length */
	assert_memory_equal(v.nh.dmac, MAC_P, 6);
	assert_memory_equal(v.nh.smac, MAC_XC, 6);

	/* Fresh: used. */
	memcpy(v.nh.dmac, PLANTED, 6);
	v.nh.stamp = coarse_ns();
	assert_int_equal(bpf_map_update_elem(fd, &ck, &v, BPF_EXIST), 0);
	outlen = sizeof(out);
	assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_REDIRECT);
	assert_memory_equal(out, PLANTED, 6);
	check_sums(out, outlen);

	/* A longer frame, another ingress, a new epoch, an old stamp: each
	 * looks up again (and the lookup's MAC replaces the planted one). */
	outlen = sizeof(out);
	assert_int_equal(run_prog(big, nb, if_a, out, &outlen), XDP_REDIRECT);
	assert_memory_equal(out, MAC_P, 6);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(bpf_map_lookup_elem(fd, &ck, &v), 0);
		memcpy(v.nh.dmac, PLANTED, 6);
		v.nh.stamp = coarse_ns();
		if (k == 0)
			v.nh.in_ifindex = (uint32_t)if_c;
		else if (k == 2)
			v.nh.stamp -= 2 * XT_NH_TTL_NS;
		assert_int_equal(bpf_map_update_elem(fd, &ck, &v, BPF_EXIST), 0);
		if (k == 1)
			set_cfg(XT_CFG_ENABLED, if_f);
		outlen = sizeof(out);
		assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_REDIRECT);
		assert_memory_equal(out, MAC_P, 6);
	}
}

/* The next hop is on a device the program may not redirect to: the
 * original frame goes to the kernel. */
static void tx_port_missing(void **state)
{
	static uint8_t in[256], out[256];
	struct frame f = { C4, L4, .pl = CD(0x4000, 100) };
	struct xt_count before[XT_CNT_MAX], after[XT_CNT_MAX];
	size_t n = build(&f, in), outlen = sizeof(out);

	(void)state;
	set_cfg(XT_CFG_ENABLED, if_f);
	read_stats(before);
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(skel->maps.xt_tx_ports), &if_c), 0);
	assert_int_equal(run_prog(in, n, if_a, out, &outlen), XDP_PASS);
	update(skel->maps.xt_tx_ports, &if_c, &if_c);
	assert_int_equal(outlen, n);
	assert_memory_equal(out, in, n);
	read_stats(after);
	assert_int_equal(after[XT_CNT_PASS_FIB].packets - before[XT_CNT_PASS_FIB].packets, 1);
	assert_int_equal(after[XT_CNT_C2P].packets - before[XT_CNT_C2P].packets, 0);
}

static int setup(void **state)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);
	struct bpf_map *m;

	(void)state;
	for (size_t i = 0; i < sizeof(netns_setup) / sizeof(netns_setup[0]); i++) {
		if (system(netns_setup[i]) != 0) {
			fprintf(stderr, "setup failed: %s\n", netns_setup[i]);
			return -1;
		}
	}
	if_a = (int)if_nametoindex("xa");
	if_c = (int)if_nametoindex("xc");
	if_f = (int)if_nametoindex("xf");
	if (!if_a || !if_c || !if_f)
		return -1;

	skel = xturn_bpf__open();
	if (!skel)
		return -1;
	bpf_object__for_each_map(m, skel->obj)
		if (bpf_map__set_pin_path(m, NULL))	/* no pins left behind */
			return -1;
	if (xturn_bpf__load(skel)) {
		fprintf(stderr, "load failed: %s\n", strerror(errno));
		return -1;
	}
	if (bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.xturn_xdp), &info, &len) == 0)
		printf("xturn_xdp: %u instructions, verifier processed %u\n",
		       info.xlated_prog_len / 8, info.verified_insns);

	for (size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++)
		add_binding(&bindings[i]);
	add_relay(RH2);			/* a relay with no binding to it */
	add_relay_flags(RI, XT_RELAY_PERMS_INCOMPLETE);
	add_perm(R4, "10.0.2.9:0");	/* a permitted peer with no channel */
	update(skel->maps.xt_tx_ports, &if_a, &if_a);
	update(skel->maps.xt_tx_ports, &if_c, &if_c);
	return 0;
}

static int setup_tc(void **state)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);

	(void)state;
	tc_mode = true;
	if (bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.xturn_tc), &info, &len) == 0)
		printf("xturn_tc: %u instructions, verifier processed %u\n",
		       info.xlated_prog_len / 8, info.verified_insns);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	xturn_bpf__destroy(skel);
	return 0;
}

/* XDP_COST=N (by hand, when working on the program): its mean run time in
 * ns (kernel.bpf_stats) per forwarding case over N runs. Not a test: nothing
 * is asserted. One run per call: with repeat > 1 the kernel would run the
 * program again on the frame it already rewrote. */
static int cost(int runs)
{
	static uint8_t in[4096], out[4096];
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);	/* on while fd is open */
	int prog = bpf_program__fd(skel->progs.xturn_xdp);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];
		struct bpf_prog_info a = { 0 }, b = { 0 };
		uint32_t len = sizeof(a);
		size_t n = build(&t->in, in), outlen;

		if (t->verdict != XDP_TX && t->verdict != XDP_REDIRECT)
			continue;
		case_env(t);
		bpf_obj_get_info_by_fd(prog, &a, &len);
		for (int r = 0; r < runs; r++) {
			outlen = sizeof(out);
			run_prog(in, n, t->ingress == IN_C ? if_c : if_a, out, &outlen);
		}
		len = sizeof(b);
		bpf_obj_get_info_by_fd(prog, &b, &len);
		printf("%-40s %5zu bytes %6.0f ns\n", t->name, n,
		       b.run_cnt > a.run_cnt ? (double)(b.run_time_ns - a.run_time_ns) /
						(double)(b.run_cnt - a.run_cnt) : -1.0);
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* ---- make fuzz: the same program, maps and namespace under libFuzzer ---- */

/* A fuzz input: one byte whose low bit picks the ingress (clients' or
 * peers' side), then the frame. XDP_SEEDS=DIR writes every case's frame so,
 * as the seed corpus (tests/fuzz/seeds-xdp). */
static int write_seeds(const char *dir)
{
	static uint8_t in[4097];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[512];
		FILE *f;
		size_t n = build(&cases[i].in, in + 1);

		if (cases[i].truncate)
			n = cases[i].truncate;
		in[0] = cases[i].ingress == IN_C;
		snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
		f = fopen(path, "wb");
		if (!f || fwrite(in, 1, n + 1, f) != n + 1 || fclose(f))
			return 1;
	}
	return 0;
}

#ifdef XT_FUZZ
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bindings' four transport addresses, for matching outputs. */
struct fuzz_addr {
	uint8_t ip[16];
	uint16_t port;		/* host order */
};
static struct { struct fuzz_addr client, listener, relay, peer; } baddr[NBIND];

static void ip16(const char *s, struct fuzz_addr *out)
{
	__be32 ip[4];
	__be16 port;

	mapped(s, ip, &port);
	memcpy(out->ip, ip, 16);
	out->port = ntohs(port);
}

static void fuzz_fail(const char *why)
{
	fprintf(stderr, "invariant broken: %s\n", why);
	abort();
}

/* Is the output's source (or destination) transport address a? */
static bool addr_is(const uint8_t *frame, const struct parsed *p, const struct fuzz_addr *a,
		    bool dst)
{
	static const uint8_t v4m[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *x = dst ? p->dst : p->src;

	if (get16(frame + p->udp + (dst ? 2 : 0)) != a->port)
		return false;
	return p->alen == 16 ? !memcmp(x, a->ip, 16) :
			       !memcmp(a->ip, v4m, 12) && !memcmp(x, a->ip + 12, 4);
}

/* What the program may do with a frame it was not told about:
 *  - pass or drop it untouched;
 *  - forward it (TX, redirect) only as a well-formed IPv4/IPv6 UDP frame
 *    between two addresses of one binding, relay -> peer with the
 *    ChannelData's data, or listener -> client with a ChannelData header of
 *    that binding's channel in front of the data; its UDP checksum right
 *    whenever the input's was. */
static void fuzz_check(const uint8_t *in, size_t n, const uint8_t *out, size_t outlen,
		       int verdict)
{
	struct parsed pi, po;
	const uint8_t *di, *dout;
	size_t li, lo;
	bool in_ok;

	if (verdict == XDP_PASS || verdict == XDP_DROP) {
		if (verdict == XDP_PASS && (outlen != n || memcmp(in, out, n)))
			fuzz_fail("a passed frame was modified");
		return;
	}
	if (verdict != XDP_TX && verdict != XDP_REDIRECT)
		fuzz_fail("unknown verdict");
	if (udp_parse(out, outlen, 0, &po))
		fuzz_fail("forwarded frame malformed (lengths, IPv4 header checksum)");
	if (udp_parse(in, n, SIZE_MAX, &pi))
		fuzz_fail("forwarded a frame that is not IP/UDP");
	in_ok = pi.residual == 0xffff && get16(in + pi.udp + 6) != 0;
	if (in_ok && po.residual != 0xffff)
		fuzz_fail("a right UDP checksum went out wrong");
	if (get16(out + po.udp + 6) == 0)
		fuzz_fail("UDP checksum 0 on output");
	di = in + pi.udp + 8, li = pi.ulen - 8;
	dout = out + po.udp + 8, lo = po.ulen - 8;
	for (size_t i = 0; i < NBIND; i++) {
		const struct fuzz_addr *c = &baddr[i].client, *l = &baddr[i].listener;
		const struct fuzz_addr *r = &baddr[i].relay, *pe = &baddr[i].peer;
		/* binding i's ChannelData in: its data, as the program takes it */
		bool cd_in = addr_is(in, &pi, c, false) && addr_is(in, &pi, l, true) && li >= 4 &&
			     get16(di) == bindings[i].channel && get16(di + 2) + 4 <= li &&
			     li - 4 - get16(di + 2) <= 3;

		if (addr_is(out, &po, r, false) && addr_is(out, &po, pe, true)) {
			if (!cd_in || get16(di + 2) != lo || memcmp(di + 4, dout, lo))
				fuzz_fail("c2p out of no binding's ChannelData, or other data");
			return;
		}
		/* Several bindings share a client and listener: the input says
		 * which (from its peer to its relay, or a hairpin to it). */
		if (!addr_is(out, &po, l, false) || !addr_is(out, &po, c, true))
			continue;
		if (addr_is(in, &pi, pe, false) && addr_is(in, &pi, r, true)) {
			if (lo < 4 || get16(dout) != bindings[i].channel || li != lo - 4 ||
			    get16(dout + 2) != li || memcmp(di, dout + 4, li))
				fuzz_fail("p2c is not the binding's ChannelData of the datagram");
			return;
		}
		/* hairpin: binding j's client to binding i's relay, as its peer */
		for (size_t j = 0; j < NBIND; j++) {
			if (!addr_is(in, &pi, &baddr[j].client, false) ||
			    !addr_is(in, &pi, &baddr[j].listener, true) || li < 4 ||
			    get16(di) != bindings[j].channel ||
			    memcmp(&baddr[j].relay, pe, sizeof(*pe)) ||
			    memcmp(&baddr[j].peer, r, sizeof(*r)))
				continue;
			if (lo < 4 || get16(dout) != bindings[i].channel ||
			    get16(di + 2) != lo - 4 || get16(dout + 2) != lo - 4 ||
			    memcmp(di + 4, dout + 4, lo - 4))
				fuzz_fail("hairpin is not the binding's ChannelData of the data");
			return;
		}
	}
	fuzz_fail("forwarded between addresses of no binding");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (unshare(CLONE_NEWNET) || setup(NULL)) {
		perror("fuzz_xdp setup (needs root)");
		exit(1);
	}
	set_cfg(XT_CFG_ENABLED, if_f);
	for (size_t i = 0; i < NBIND; i++) {
		ip16(bindings[i].client, &baddr[i].client);
		ip16(bindings[i].listener, &baddr[i].listener);
		ip16(bindings[i].relay, &baddr[i].relay);
		ip16(bindings[i].peer, &baddr[i].peer);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t in[4096], out[4096 + 256];
	size_t n, outlen = sizeof(out);
	int verdict;

	/* BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header
	 * (no driver hands XDP one) */
	if (size < 1 + 14 || size - 1 > sizeof(in))
		return 0;
	n = size - 1;
	memcpy(in, data + 1, n);
	verdict = run_prog(in, n, data[0] & 1 ? if_c : if_a, out, &outlen);
	fuzz_check(data + 1, n, out, outlen, verdict);
	return 0;
}
#else
int main(void)
{
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct CMUnitTest tests[N + 4];
	const char *repeat = getenv("XDP_COST");

	/* A private network namespace: devices, addresses and neighbours of
	 * this test vanish with the process. */
	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET) (needs root)");
		return 1;
	}
	if (repeat || getenv("XDP_SEEDS")) {
		int rc = setup(NULL) ? 1 : repeat ? cost(atoi(repeat)) :
			 write_seeds(getenv("XDP_SEEDS"));

		teardown(NULL);
		return rc;
	}
	for (int i = 0; i < N; i++)
		tests[i] = (struct CMUnitTest){ cases[i].name, run_case, NULL, NULL,
						(void *)&cases[i] };
	tests[N] = (struct CMUnitTest){ "cfg_guard", cfg_guard, NULL, NULL, NULL };
	tests[N + 1] = (struct CMUnitTest){ "tx_port_missing", tx_port_missing, NULL, NULL, NULL };
	tests[N + 2] = (struct CMUnitTest){ "zero_checksum", zero_checksum, NULL, NULL, NULL };
	tests[N + 3] = (struct CMUnitTest){ "next_hop_cache", next_hop_cache, NULL, NULL, NULL };
	/* Both groups in one namespace and one set of maps. */
	if (_cmocka_run_group_tests("xdp", tests, N + 4, setup, NULL))
		return 1;
	return _cmocka_run_group_tests("tc", tests, N + 4, setup_tc, teardown);
}
#endif
