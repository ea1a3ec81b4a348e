/* fastpath.c against the real kernel: a private network namespace with veth
 * pairs, a private mount namespace with bpffs instances of its own. The maps
 * are read back through their pins, as the stats tool reads them. Root. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "common/addr.h"
#include "common/frame.h"
#include "common/log.h"
#include "daemon/fastpath.h"
#include "daemon/offload.h"

static char tmp_dir[] = "/tmp/fp-test-XXXXXX";
static char pin_dir[64];
static const char *const map_names[] = {
	XT_MAP_C2P, XT_MAP_P2C, XT_MAP_RELAYS, XT_MAP_PERMS,
	XT_MAP_STATS, XT_MAP_TX_PORTS, XT_MAP_CFG, XT_MAP_EXPIRY,
};
#define FOREVER UINT64_MAX	/* an end the tests never reach */

static uint64_t chan_end(int c2p, const struct fp_chan *c);
static void set_c2p_counts(int c2p, const struct fp_chan *c, uint64_t packets, uint64_t bytes);
#define NMAPS (sizeof(map_names) / sizeof(map_names[0]))

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static struct sockaddr_storage ss(const char *s)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(s, 0, &a), 0);
	return a;
}

static void mapped(const char *ip6, __be32 out[4])
{
	assert_int_equal(inet_pton(AF_INET6, ip6, out), 1);
}

static int pinned(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	return fd;
}

static bool pin_exists(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return access(path, F_OK) == 0;
}

static unsigned map_len(const char *name)
{
	char key[64], next[64];
	unsigned n = 0;
	int fd = pinned(name);

	for (void *k = NULL; !bpf_map_get_next_key(fd, k, next); k = key, n++)
		memcpy(key, next, sizeof(key));
	close(fd);
	return n;
}

static bool has_key(const char *name, const void *key, void *val)
{
	char buf[256];
	int fd = pinned(name);
	bool found = !bpf_map_lookup_elem(fd, key, val ? val : buf);

	close(fd);
	return found;
}

/* The id of the XDP program on ifname (0: none) and how it is attached. */
static __u32 xdp_prog(const char *ifname, __u8 *mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int ifindex = (int)if_nametoindex(ifname);

	assert_true(ifindex > 0);
	assert_int_equal(bpf_xdp_query(ifindex, 0, &q), 0);
	if (mode)
		*mode = q.attach_mode;
	return q.prog_id;
}

/* The TC program on ifname's ingress. */
static bool tc_attached(const char *ifname)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "tc filter show dev %s ingress 2>/dev/null | grep -q xturn_tc",
		 ifname);
	return system(cmd) == 0;
}

static bool in_tx_ports(const char *ifname)
{
	__u32 ifindex = if_nametoindex(ifname), val = 0;
	bool found = has_key(XT_MAP_TX_PORTS, &ifindex, &val);

	assert_true(!found || val == ifindex);
	return found;
}

/* net.<fam>.conf.<dev>.forwarding; -1 if there is no such file. */
static int forwarding(const char *fam, const char *dev)
{
	char path[128];
	FILE *f;
	int v = -1;

	snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/forwarding", fam, dev);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Does `ip -o -d link show dev` match the extended regex? */
static bool link_matches(const char *dev, const char *ere)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip -o -d link show dev %s 2>/dev/null | grep -Eq '%s'",
		 dev, ere);
	return system(cmd) == 0;
}

#define LOOKUP_KIND " (dummy|ifb) "	/* ifb where the kernel lacks dummy */
#define IS_UP "<([^>]*,)?UP[,>]"

static struct xt_cfg read_cfg(void)
{
	struct xt_cfg cfg;
	__u32 zero = 0;

	assert_true(has_key(XT_MAP_CFG, &zero, &cfg));
	return cfg;
}

/* The lookup device as fp_open leaves it: a dummy (or ifb), up, forwarding
 * on for it and nowhere else, its ifindex in xt_cfg, no XDP on it. */
static void check_lookup_dev(const char *dev)
{
	int ifindex = (int)if_nametoindex(dev);

	assert_int_not_equal(ifindex, 0);
	assert_true(link_matches(dev, LOOKUP_KIND));
	assert_true(link_matches(dev, IS_UP));
	assert_int_equal(forwarding("ipv4", dev), 1);
	assert_int_equal(forwarding("ipv6", dev), 1);
	assert_int_equal(forwarding("ipv4", "a0"), 0);
	assert_int_equal(forwarding("ipv6", "a0"), 0);
	assert_int_equal(forwarding("ipv4", "all"), 0);
	assert_int_equal(forwarding("ipv6", "all"), 0);
	assert_int_equal(read_cfg().fib_ifindex, ifindex);
	assert_int_equal(xdp_prog(dev, NULL), 0);
}

static int open_fp(struct fastpath **fp, const char *addr, const char *mode, bool keep,
		   char *why, size_t whylen)
{
	struct sockaddr_storage a = ss(addr);
	struct fp_opts o = { .pin_dir = pin_dir, .mode = mode, .keep_pins = keep,
			     .addrs = &a, .naddrs = 1 };

	return fp_open(fp, &o, why, whylen);
}

static struct fastpath *open_ok(const char *addr, const char *mode, bool keep)
{
	struct fastpath *fp = NULL;
	char why[256];
	int err = open_fp(&fp, addr, mode, keep, why, sizeof(why));

	if (err)
		fail_msg("fp_open(%s, %s): %s: %s", addr, mode, strerror(-err), why);
	return fp;
}

static void test_open_attach_close(void **state)
{
	struct statfs st;
	struct xt_cfg cfg;
	__u32 zero = 0, id;
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", false);
	int fd;

	/* The test unmounted /sys/fs/bpf; fp_open mounts one for libxdp. */
	assert_int_equal(statfs("/sys/fs/bpf", &st), 0);
	assert_int_equal((unsigned long)st.f_type, BPF_FS_MAGIC);

	id = xdp_prog("a0", NULL);
	assert_int_not_equal(id, 0);
	fd = bpf_prog_get_fd_by_id(id);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	assert_string_equal(info.name, "xturn_xdp");
	/* The address is on a0 only. */
	assert_int_equal(xdp_prog("a1", NULL), 0);
	assert_true(in_tx_ports("a0"));
	assert_false(in_tx_ports("a1"));

	for (unsigned i = 0; i < NMAPS; i++)
		assert_true(pin_exists(map_names[i]));
	assert_true(has_key(XT_MAP_CFG, &zero, &cfg));
	assert_int_equal(cfg.magic, XT_MAGIC);
	assert_int_equal(cfg.abi_version, XT_ABI_VERSION);
	assert_int_equal(cfg.flags, XT_CFG_ENABLED);	/* verify_csum unset */
	check_lookup_dev("xturn0");

	fp_close(fp);
	assert_int_equal(xdp_prog("a0", NULL), 0);
	for (unsigned i = 0; i < NMAPS; i++)
		assert_false(pin_exists(map_names[i]));
	assert_int_equal(access(pin_dir, F_OK), -1);
	assert_int_equal(if_nametoindex("xturn0"), 0);
}

static void test_verify_csum_and_lookup_name(void **state)
{
	struct sockaddr_storage a = ss("10.11.0.1");
	struct fp_opts o = { .pin_dir = pin_dir, .mode = "native", .addrs = &a, .naddrs = 1,
			     .verify_csum = true, .lookup_dev = "xlk1" };
	struct fastpath *fp;
	char why[256];

	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(read_cfg().flags, XT_CFG_ENABLED | XT_CFG_VERIFY_CSUM);
	check_lookup_dev("xlk1");
	assert_int_equal(if_nametoindex("xturn0"), 0);
	fp_close(fp);
	assert_int_equal(if_nametoindex("xlk1"), 0);

	o.lookup_dev = "../all";	/* a /proc/sys path, not a device */
	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), -EINVAL);
	o.lookup_dev = "a-name-too-long-for-a-device";
	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), -ENAMETOOLONG);
	assert_null(fp);
}

/* A lookup device left by a crashed run is taken over, then removed. */
static void test_lookup_dev_leftover(void **state)
{
	struct fastpath *fp;
	char why[256];
	unsigned old;

	sh("ip link add xturn0 type dummy 2>/dev/null || ip link add xturn0 type ifb");
	old = if_nametoindex("xturn0");
	assert_int_equal(forwarding("ipv4", "xturn0"), 0);
	assert_false(link_matches("xturn0", IS_UP));

	assert_int_equal(open_fp(&fp, "10.11.0.1", "native", false, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(if_nametoindex("xturn0"), old);
	check_lookup_dev("xturn0");
	fp_close(fp);
	assert_int_equal(if_nametoindex("xturn0"), 0);
}

/* Someone else's device has the name: left alone, the program looks up with
 * the ingress interface, and fp_open says what that costs. */
static void test_lookup_dev_taken(void **state)
{
	struct fastpath *fp;
	char why[512];
	unsigned ifindex;

	sh("ip link add xturn0 type veth peer name xturn1");
	ifindex = if_nametoindex("xturn0");
	assert_int_equal(open_fp(&fp, "10.11.0.1", "native", false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "xturn0"));
	assert_non_null(strstr(why, "veth"));
	assert_non_null(strstr(why, "net.ipv4.conf.IF.forwarding"));
	assert_non_null(strstr(why, "dummy"));
	assert_int_equal(read_cfg().fib_ifindex, 0);
	assert_int_equal(forwarding("ipv4", "xturn0"), 0);
	assert_int_equal(forwarding("ipv6", "xturn0"), 0);
	fp_close(fp);
	assert_int_equal(if_nametoindex("xturn0"), ifindex);
	sh("ip link del xturn0");
}

/* Deleted under the daemon: lookups fall back to the ingress interface and
 * fp_close leaves a new device of that name alone. */
static void test_lookup_dev_deleted(void **state)
{
	struct fastpath *fp = open_ok("10.11.0.1", "native", false);
	unsigned again;

	check_lookup_dev("xturn0");
	sh("ip link del xturn0");
	fp_netlink_event(fp);
	assert_int_equal(read_cfg().fib_ifindex, 0);
	sh("ip link add xturn0 type veth peer name xturn1");
	again = if_nametoindex("xturn0");
	fp_netlink_event(fp);
	fp_close(fp);
	assert_int_equal(if_nametoindex("xturn0"), again);
	sh("ip link del xturn0");
}

/* A veth whose other end runs no XDP program (a1, here) would lose what
 * XDP sends into it: auto mode takes TC there, and says why. */
static void test_modes(void **state)
{
	static const struct { const char *mode; __u8 attached; bool tc; } t[] = {
		{ "native", XDP_ATTACHED_DRV, false },
		{ "generic", XDP_ATTACHED_SKB, false },
		{ "tc", 0, true },
		{ "auto", 0, true },
	};
	struct fastpath *fp;
	char why[256];
	__u8 mode;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		fp = open_ok("[fd00:11::1]:3478", t[i].mode, false);
		assert_int_equal(xdp_prog("a0", &mode) != 0, !t[i].tc);
		if (!t[i].tc)
			assert_int_equal(mode, t[i].attached);
		assert_int_equal(tc_attached("a0"), t[i].tc);
		assert_true(in_tx_ports("a0"));
		fp_close(fp);
		assert_int_equal(xdp_prog("a0", NULL), 0);
		assert_false(tc_attached("a0"));
	}
	assert_int_equal(open_fp(&fp, "10.11.0.1", "turbo", false, why, sizeof(why)), -EINVAL);
	assert_null(fp);
	assert_non_null(strstr(why, "turbo"));
}

/* The log of an attach, as xturnd routes libbpf's and libxdp's messages:
 * one line per interface naming the mode, none of the libraries' own (the
 * dispatcher's failed load showed as five "libbpf:" lines at info; libxdp
 * tries it once per process, so this test runs first). */
static void test_attach_logged(void **state)
{
	static char buf[8192];
	FILE *f = tmpfile();
	int saved = dup(2);
	struct fastpath *fp;
	size_t n;

	assert_non_null(f);
	fp_route_logs();
	fflush(stderr);
	assert_true(dup2(fileno(f), 2) >= 0);
	fp = open_ok("10.11.0.1:3478", "native", false);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	fp_close(fp);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	if (!strstr(buf, "info  fast path: a0: native XDP") || strstr(buf, "libbpf:") ||
	    strstr(buf, "libxdp:"))
		fail_msg("attach log:\n%s", buf);
}

/* A bridge has no native XDP: "auto" falls back to TC, "native" fails and
 * says so, "generic" takes it. Extra interfaces by name get the program too
 * (a1, a veth whose other end runs no XDP program: TC in auto mode). */
static void test_fallback_and_ifaces(void **state)
{
	struct sockaddr_storage a = ss("10.13.0.1");
	char *const names[] = { "a1" }, *const bad[] = { "nosuch0" };
	struct fp_opts o = { .pin_dir = pin_dir, .mode = "auto", .addrs = &a, .naddrs = 1,
			     .ifaces = names, .nifaces = 1 };
	struct fastpath *fp;
	char why[1024];
	__u8 mode;

	sh("ip link add br0 type bridge && ip addr add 10.13.0.1/24 dev br0 && ip link set br0 up");
	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), 0);
	assert_int_equal(xdp_prog("br0", NULL) + xdp_prog("a1", NULL) + xdp_prog("a0", NULL), 0);
	assert_true(tc_attached("br0") && tc_attached("a1") && !tc_attached("a0"));
	assert_true(in_tx_ports("br0") && in_tx_ports("a1"));
	fp_close(fp);
	assert_false(tc_attached("br0") || tc_attached("a1"));

	o.mode = "generic";
	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), 0);
	assert_int_not_equal(xdp_prog("br0", &mode), 0);
	assert_int_equal(mode, XDP_ATTACHED_SKB);
	fp_close(fp);
	assert_int_equal(xdp_prog("br0", NULL) + xdp_prog("a1", NULL), 0);

	o.mode = "native";
	assert_true(fp_open(&fp, &o, why, sizeof(why)) < 0);
	assert_null(fp);
	assert_non_null(strstr(why, "br0"));
	assert_non_null(strstr(why, "native"));
	assert_null(strstr(why, "generic"));
	/* The kernel's own words say why (its extended ack). */
	if (!strstr(why, "(Underlying driver does not support XDP in native mode)"))
		fail_msg("no reason from the kernel: %s", why);
	assert_int_equal(xdp_prog("a1", NULL), 0);

	o.mode = "auto";
	o.ifaces = bad;
	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), -ENODEV);
	assert_non_null(strstr(why, "nosuch0"));
	assert_int_equal(xdp_prog("br0", NULL), 0);
	sh("ip link del br0");
}

static void test_no_interface(void **state)
{
	struct fastpath *fp;
	char why[256];

	assert_true(open_fp(&fp, "10.99.0.1:3478", "native", false, why, sizeof(why)) < 0);
	assert_null(fp);
	assert_non_null(strstr(why, "10.99.0.1"));
	/* Nothing left behind. */
	assert_int_equal(access(pin_dir, F_OK), -1);

	assert_true(open_fp(&fp, "127.0.0.1:3478", "native", false, why, sizeof(why)) < 0);
	assert_null(fp);
	assert_non_null(strstr(why, "loopback"));
}

static struct fp_chan chan(const char *client, const char *relay, const char *peer,
			   uint16_t channel)
{
	struct fp_chan c = {
		.client = ss(client), .listener = ss("10.11.0.1:3478"),
		.relay = ss(relay), .peer = ss(peer), .channel = channel, .expires_ns = FOREVER,
	};

	return c;
}

static void test_keep_pins_and_counters(void **state)
{
	int ncpus = libbpf_num_possible_cpus();
	struct xt_count *pc = calloc((size_t)ncpus, sizeof(*pc)), sum[XT_CNT_MAX];
	struct fp_chan c = chan("10.11.0.2:5000", "10.11.0.1:49152", "10.11.0.3:6000", 0x4000);
	struct fp_chan d = chan("10.11.0.2:5001", "10.11.0.1:49153", "10.11.0.3:6001", 0x4001);
	struct fp_chan_stats st;
	__u64 want_pkts = 0, want_bytes = 0;
	__u32 key = XT_CNT_P2C;
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", true);
	int fd;

	assert_non_null(pc);
	for (int i = 0; i < ncpus; i++) {
		pc[i] = (struct xt_count){ (__u64)i + 1, 1000 * ((__u64)i + 1) };
		want_pkts += pc[i].packets;
		want_bytes += pc[i].bytes;
	}
	fd = pinned(XT_MAP_STATS);
	assert_int_equal(bpf_map_update_elem(fd, &key, pc, BPF_ANY), 0);
	close(fd);
	assert_int_equal(fp_counters(fp, sum), 0);
	assert_int_equal(sum[XT_CNT_P2C].packets, want_pkts);
	assert_int_equal(sum[XT_CNT_P2C].bytes, want_bytes);
	assert_int_equal(sum[XT_CNT_C2P].packets, 0);
	assert_int_equal(fp_chan_add(fp, &c), 0);
	assert_int_equal(fp_chan_add(fp, &d), 0);
	fd = pinned(XT_MAP_C2P);
	set_c2p_counts(fd, &c, 9, 900);
	close(fd);

	fp_close(fp);
	assert_int_equal(xdp_prog("a0", NULL), 0);
	for (unsigned i = 0; i < NMAPS; i++)
		assert_true(pin_exists(map_names[i]));
	assert_int_equal(map_len(XT_MAP_C2P), 2);

	/* A restart keeps the counters and the bindings: one added again as
	 * it was is adopted, its counters with it; the sweep takes the other. */
	fp = open_ok("10.11.0.1:3478", "native", false);
	assert_int_equal(fp_counters(fp, sum), 0);
	assert_int_equal(sum[XT_CNT_P2C].packets, want_pkts);
	assert_int_equal(sum[XT_CNT_P2C].bytes, want_bytes);
	assert_int_equal(fp_chan_count(fp), 2);
	c.expires_ns = 77000000000ull;
	assert_int_equal(fp_chan_add(fp, &c), 0);
	assert_int_equal(fp_chan_count(fp), 2);
	assert_int_equal(fp_sweep(fp), 1);
	assert_int_equal(map_len(XT_MAP_C2P), 1);
	assert_int_equal(fp_chan_count(fp), 1);
	assert_int_equal(fp_chan_stats(fp, &c, &st), 0);
	assert_int_equal(st.c2p_packets, 9);
	assert_int_equal(st.c2p_bytes, 900);
	fd = pinned(XT_MAP_C2P);
	assert_int_equal(chan_end(fd, &c), 77000000000ull);
	close(fd);
	assert_int_equal(fp_chan_stats(fp, &d, &st), -ENOENT);
	fp_close(fp);
	assert_false(pin_exists(XT_MAP_STATS));
	free(pc);
}

static void test_stale_abi_pins(void **state)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct fastpath *fp;
	struct xt_cfg old = { .magic = XT_MAGIC, .abi_version = XT_ABI_VERSION + 1,
			      .flags = XT_CFG_ENABLED }, cfg;
	char why[256], path[128];
	__u32 zero = 0;
	int fd;

	assert_int_equal(mkdir(pin_dir, 0700), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "xt_stats", 8, 8, 16, NULL);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/%s", pin_dir, XT_MAP_STATS);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	assert_int_equal(open_fp(&fp, "10.11.0.1", "native", false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "ABI"));
	fd = pinned(XT_MAP_STATS);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	assert_int_equal(info.type, BPF_MAP_TYPE_PERCPU_ARRAY);
	assert_int_equal(info.key_size, sizeof(__u32));
	assert_int_equal(info.value_size, sizeof(struct xt_count));
	fp_close(fp);

	/* A clean start says nothing. */
	assert_int_equal(open_fp(&fp, "10.11.0.1", "native", true, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	fp_close(fp);

	/* Right sizes, but a config written by another ABI version. */
	fd = pinned(XT_MAP_CFG);
	assert_int_equal(bpf_map_update_elem(fd, &zero, &old, BPF_ANY), 0);
	close(fd);
	assert_int_equal(open_fp(&fp, "10.11.0.1", "native", false, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "ABI"));
	assert_true(has_key(XT_MAP_CFG, &zero, &cfg));
	assert_int_equal(cfg.abi_version, XT_ABI_VERSION);
	fp_close(fp);
}

/* A daemon that died without fp_close() leaves its program attached. */
static void test_restart_after_crash(void **state)
{
	struct fastpath *fp;
	pid_t pid = fork();
	int status;
	__u32 old, lookup;

	assert_true(pid >= 0);
	if (pid == 0) {
		char why[256];

		_exit(open_fp(&fp, "10.11.0.1", "native", false, why, sizeof(why)) ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	old = xdp_prog("a0", NULL);
	assert_int_not_equal(old, 0);
	lookup = if_nametoindex("xturn0");
	assert_int_not_equal(lookup, 0);

	fp = open_ok("10.11.0.1", "native", false);
	assert_int_not_equal(xdp_prog("a0", NULL), 0);
	assert_int_not_equal(xdp_prog("a0", NULL), old);
	assert_int_equal(if_nametoindex("xturn0"), lookup);
	check_lookup_dev("xturn0");
	fp_close(fp);
	assert_int_equal(xdp_prog("a0", NULL), 0);
	assert_int_equal(if_nametoindex("xturn0"), 0);
}

/* A pin dir belongs to one running daemon: a second is refused, naming it;
 * a crashed one's program, pins and lookup device are removed by a start
 * without XDP (fp_clear_stale), which leaves a running daemon's alone. */
static void test_pin_dir_owner_and_leftovers(void **state)
{
	struct fastpath *fp = open_ok("10.11.0.1", "native", false), *second;
	char why[512], path[128];
	pid_t pid;
	int status;

	assert_int_equal(open_fp(&second, "10.11.0.1", "native", false, why, sizeof(why)), -EBUSY);
	assert_null(second);
	assert_non_null(strstr(why, "in use by another running xturnd"));
	assert_int_equal(fp_clear_stale(pin_dir, "xturn0", why, sizeof(why)), -EBUSY);
	assert_non_null(strstr(why, "running xturnd"));
	assert_int_not_equal(xdp_prog("a0", NULL), 0);	/* left alone */
	fp_close(fp);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)	/* "crashes": exits with everything attached and pinned */
		_exit(open_fp(&fp, "10.11.0.1", "native", false, why, sizeof(why)) ? 1 : 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(path, sizeof(path), "%s/%s", pin_dir, XT_MAP_C2P);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_not_equal(xdp_prog("a0", NULL), 0);
	assert_int_not_equal(if_nametoindex("xturn0"), 0);
	assert_int_equal(fp_clear_stale(pin_dir, "xturn0", why, sizeof(why)), 0);
	assert_int_equal(xdp_prog("a0", NULL), 0);
	assert_int_equal(if_nametoindex("xturn0"), 0);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/xt_prog", pin_dir);
	assert_int_equal(access(path, F_OK), -1);
	/* Nothing left: nothing to do. */
	assert_int_equal(fp_clear_stale(pin_dir, "xturn0", why, sizeof(why)), 0);
}

/* The binding c is in both maps as the XDP program wants it, with its
 * counters at 0 and the given c2p flags. */
static void check_chan(const struct fp_chan *c, const char *client6, const char *relay6,
		       const char *peer6, uint32_t flags)
{
	struct xt_c2p_key k = { 0 };
	struct xt_c2p_val v;
	struct xt_p2c_key pk = { 0 };
	struct xt_p2c_val pv;

	mapped(client6, k.client);
	mapped("::ffff:10.11.0.1", k.listener);
	k.client_port = htons(addr_port(&c->client));
	k.listener_port = htons(3478);
	k.channel = htons(c->channel);
	assert_true(has_key(XT_MAP_C2P, &k, &v));
	mapped(relay6, pk.relay);
	mapped(peer6, pk.peer);
	assert_memory_equal(v.relay, pk.relay, 16);
	assert_memory_equal(v.peer, pk.peer, 16);
	assert_int_equal(v.relay_port, htons(addr_port(&c->relay)));
	assert_int_equal(v.peer_port, htons(addr_port(&c->peer)));
	assert_int_equal(v.flags, flags);
	assert_int_equal(v.packets + v.bytes, 0);

	pk.peer_port = v.peer_port;
	pk.relay_port = v.relay_port;
	assert_true(has_key(XT_MAP_P2C, &pk, &pv));
	assert_memory_equal(pv.client, k.client, 16);
	assert_memory_equal(pv.listener, k.listener, 16);
	assert_int_equal(pv.client_port, k.client_port);
	assert_int_equal(pv.listener_port, k.listener_port);
	assert_int_equal(pv.channel, k.channel);
	assert_int_equal(pv.packets + pv.bytes, 0);
}

/* c2p key of binding c. */
static void c2p_key(const struct fp_chan *c, struct xt_c2p_key *k)
{
	memset(k, 0, sizeof(*k));
	addr_to_mapped(&c->client, k->client);
	addr_to_mapped(&c->listener, k->listener);
	k->client_port = htons(addr_port(&c->client));
	k->listener_port = htons(addr_port(&c->listener));
	k->channel = htons(c->channel);
}

/* The end XDP sees for binding c: its slot's, which its p2c twin names too. */
static uint64_t chan_end(int c2p, const struct fp_chan *c)
{
	struct xt_c2p_key k;
	struct xt_c2p_val v;
	struct xt_p2c_key pk;
	struct xt_p2c_val pv;
	uint64_t end;
	int fd = pinned(XT_MAP_EXPIRY);

	c2p_key(c, &k);
	assert_int_equal(bpf_map_lookup_elem(c2p, &k, &v), 0);
	xt_p2c_key_of(&v, &pk);
	assert_true(has_key(XT_MAP_P2C, &pk, &pv));
	assert_int_equal(pv.exp_slot, v.exp_slot);
	assert_int_equal(bpf_map_lookup_elem(fd, &v.exp_slot, &end), 0);
	close(fd);
	return end;
}

/* Sets what binding c has counted client -> peer, as XDP would. */
static void set_c2p_counts(int c2p, const struct fp_chan *c, uint64_t packets, uint64_t bytes)
{
	struct xt_c2p_key k;
	struct xt_c2p_val v;

	c2p_key(c, &k);
	assert_int_equal(bpf_map_lookup_elem(c2p, &k, &v), 0);
	v.packets = packets;
	v.bytes = bytes;
	assert_int_equal(bpf_map_update_elem(c2p, &k, &v, BPF_EXIST), 0);
}

static void test_chan_add_del(void **state)
{
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", false);
	struct fp_chan c4 = chan("10.11.0.2:5000", "10.11.0.1:49152", "10.11.0.3:6000", 0x4001);
	struct fp_chan c6 = chan("[fd00:11::2]:5001", "[fd00:11::1]:49153", "[fd00:11::3]:6001",
				 0x4fff);
	/* A peer on the relay's IP may be one of our relays (hairpin). */
	struct fp_chan hp = chan("10.11.0.2:5002", "10.11.0.1:49154", "10.11.0.1:49155", 0x4002);
	struct fp_chan moved = c4;
	struct fp_chan_stats st;
	int c2p = pinned(XT_MAP_C2P);

	assert_int_equal(fp_chan_add(fp, &c4), 0);
	assert_int_equal(fp_chan_add(fp, &c6), 0);
	assert_int_equal(fp_chan_add(fp, &hp), 0);
	assert_int_equal(fp_chan_count(fp), 3);
	assert_int_equal(map_len(XT_MAP_C2P), 3);
	assert_int_equal(map_len(XT_MAP_P2C), 3);
	check_chan(&c4, "::ffff:10.11.0.2", "::ffff:10.11.0.1", "::ffff:10.11.0.3", 0);
	check_chan(&c6, "fd00:11::2", "fd00:11::1", "fd00:11::3", 0);
	check_chan(&hp, "::ffff:10.11.0.2", "::ffff:10.11.0.1", "::ffff:10.11.0.1",
		   XT_C2P_PEER_LOCAL);
	fp_chan_del(fp, &hp, NULL);

	/* Rebinding the channel to another peer replaces the p2c entry, and
	 * the counters the old binding had in XDP start again from 0. */
	set_c2p_counts(c2p, &c4, 7, 700);
	moved.peer = ss("10.11.0.4:7000");
	assert_int_equal(fp_chan_add(fp, &moved), 0);
	assert_int_equal(fp_chan_count(fp), 2);
	assert_int_equal(map_len(XT_MAP_P2C), 2);
	check_chan(&moved, "::ffff:10.11.0.2", "::ffff:10.11.0.1", "::ffff:10.11.0.4", 0);

	fp_chan_del(fp, &moved, NULL);
	assert_int_equal(fp_chan_count(fp), 1);
	assert_int_equal(map_len(XT_MAP_C2P), 1);
	assert_int_equal(map_len(XT_MAP_P2C), 1);
	check_chan(&c6, "fd00:11::2", "fd00:11::1", "fd00:11::3", 0);
	fp_chan_del(fp, &moved, NULL);	/* twice: counted once */
	assert_int_equal(fp_chan_count(fp), 1);
	/* What a binding counted in XDP: read live, and once more as it goes
	 * (the accounting record's xdp_packets). */
	assert_int_equal(fp_chan_stats(fp, &moved, &st), -ENOENT);
	set_c2p_counts(c2p, &c6, 3, 333);
	assert_int_equal(fp_chan_stats(fp, &c6, &st), 0);
	assert_int_equal(st.c2p_packets, 3);
	assert_int_equal(st.c2p_bytes, 333);
	assert_int_equal(st.p2c_packets, 0);
	set_c2p_counts(c2p, &c6, 4, 444);
	/* Its end, in the slot both directions name; moved without a touch
	 * to the counters; the slot cleared when the binding goes. */
	assert_int_equal(chan_end(c2p, &c6), FOREVER);
	c6.expires_ns = 123456789000ull;
	assert_int_equal(fp_chan_expire(fp, &c6), 0);
	assert_int_equal(chan_end(c2p, &c6), 123456789000ull);
	assert_int_equal(fp_chan_stats(fp, &c6, &st), 0);
	assert_int_equal(st.c2p_packets, 4);
	assert_int_equal(fp_chan_expire(fp, &moved), -ENOENT);
	memset(&st, 0, sizeof(st));
	fp_chan_del(fp, &c6, &st);
	assert_int_equal(st.c2p_packets, 4);
	assert_int_equal(st.c2p_bytes, 444);
	assert_int_equal(fp_chan_count(fp), 0);
	assert_int_equal(map_len(XT_MAP_C2P) + map_len(XT_MAP_P2C), 0);
	close(c2p);
	fp_close(fp);
}

static void test_relay_perm(void **state)
{
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", false);
	struct sockaddr_storage r1 = ss("10.11.0.1:50000"), r2 = ss("[fd00:11::1]:50002");
	struct sockaddr_storage p1 = ss("10.11.0.7:1"), p2 = ss("10.11.0.8:2"), p6 = ss("[fd00:11::9]");
	struct fp_chan c1 = chan("10.11.0.2:5000", "10.11.0.1:50000", "10.11.0.7:9", 0x4000);
	struct fp_chan c2 = chan("10.11.0.2:5001", "[fd00:11::1]:50002", "[fd00:11::9]:9", 0x4000);
	struct xt_relay_key rk = { 0 };
	struct xt_perm_key pk = { 0 };
	struct xt_perm_val pv;

	assert_int_equal(fp_relay_add(fp, &r1), 0);
	assert_int_equal(fp_relay_add(fp, &r2), 0);
	assert_int_equal(fp_perm_add(fp, &r1, &p1, FOREVER), 0);
	assert_int_equal(fp_perm_add(fp, &r1, &p2, FOREVER), 0);
	assert_int_equal(fp_perm_add(fp, &r1, &p2, FOREVER), 0);	/* refresh */
	assert_int_equal(fp_perm_add(fp, &r2, &p6, FOREVER), 0);
	assert_int_equal(fp_chan_add(fp, &c1), 0);
	assert_int_equal(fp_chan_add(fp, &c2), 0);
	assert_int_equal(map_len(XT_MAP_RELAYS), 2);
	assert_int_equal(map_len(XT_MAP_PERMS), 3);

	mapped("::ffff:10.11.0.1", rk.relay);
	rk.relay_port = htons(50000);
	assert_true(has_key(XT_MAP_RELAYS, &rk, NULL));
	mapped("::ffff:10.11.0.1", pk.relay);
	mapped("::ffff:10.11.0.8", pk.peer);
	pk.relay_port = htons(50000);
	assert_true(has_key(XT_MAP_PERMS, &pk, &pv));
	assert_int_equal(pv.expires_ns, FOREVER);
	/* A refresh moves the permission's end. */
	assert_int_equal(fp_perm_add(fp, &r1, &p2, 5000000000ull), 0);
	assert_true(has_key(XT_MAP_PERMS, &pk, &pv));
	assert_int_equal(pv.expires_ns, 5000000000ull);
	assert_int_equal(map_len(XT_MAP_PERMS), 3);
	/* The peer's port does not matter to a permission. */
	fp_perm_del(fp, &r1, &p2);
	assert_false(has_key(XT_MAP_PERMS, &pk, NULL));
	assert_int_equal(map_len(XT_MAP_PERMS), 2);

	/* Deleting r1 takes its permission and channel, not r2's. */
	fp_relay_del(fp, &r1);
	assert_false(has_key(XT_MAP_RELAYS, &rk, NULL));
	assert_int_equal(map_len(XT_MAP_RELAYS), 1);
	assert_int_equal(map_len(XT_MAP_PERMS), 1);
	assert_int_equal(fp_chan_count(fp), 1);
	assert_int_equal(map_len(XT_MAP_C2P), 1);
	check_chan(&c2, "::ffff:10.11.0.2", "fd00:11::1", "fd00:11::9", 0);
	fp_relay_del(fp, &r2);
	assert_int_equal(map_len(XT_MAP_RELAYS) + map_len(XT_MAP_PERMS), 0);
	assert_int_equal(map_len(XT_MAP_C2P) + map_len(XT_MAP_P2C), 0);
	assert_int_equal(fp_chan_count(fp), 0);
	fp_close(fp);
}

/* A full permission map: the permission is remembered and its relay
 * flagged (XDP then passes that relay's peers up instead of dropping them);
 * a retry once there is room, or the permission's end, clears the flag. */
static void test_perm_full(void **state)
{
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", false);
	struct sockaddr_storage filler = ss("10.11.0.1:10000"), r = ss("10.11.0.1:50000");
	struct sockaddr_storage p = ss("10.11.0.7:1"), q = ss("10.11.0.8:1"), last;
	struct xt_relay_key rk = { 0 };
	struct xt_relay_val rv;
	char buf[64];

	assert_int_equal(fp_relay_add(fp, &r), 0);
	/* 256 a relay, as allocations hold them (a record is searched per add) */
	for (unsigned i = 0; i < XT_DEF_PERMS; i++) {
		addr_set_port(&filler, (uint16_t)(10000 + i / 256));
		if (i % 256 == 0)
			assert_int_equal(fp_relay_add(fp, &filler), 0);
		snprintf(buf, sizeof(buf), "10.%u.%u.%u", 100 + (i >> 16), (i >> 8) & 255, i & 255);
		last = ss(buf);
		assert_int_equal(fp_perm_add(fp, &filler, &last, FOREVER), 0);
	}
	mapped("::ffff:10.11.0.1", rk.relay);
	rk.relay_port = htons(50000);
	assert_int_equal(fp_perm_add(fp, &r, &p, FOREVER), -ENOSPC);
	assert_int_equal(fp_perm_add(fp, &r, &q, FOREVER), -ENOSPC);
	assert_int_equal(fp_perm_add(fp, &r, &q, FOREVER), -ENOSPC);	/* a refresh: once */
	assert_int_equal(fp_perms_missing(fp), 2);
	assert_true(has_key(XT_MAP_RELAYS, &rk, &rv));
	assert_int_equal(rv.flags, XT_RELAY_PERMS_INCOMPLETE);
	/* Room again: p's retry lands, q is still out, the flag stays. */
	fp_perm_del(fp, &filler, &last);
	assert_int_equal(fp_perm_add(fp, &r, &p, FOREVER), 0);
	assert_int_equal(fp_perms_missing(fp), 1);
	assert_true(has_key(XT_MAP_RELAYS, &rk, &rv));
	assert_int_equal(rv.flags, XT_RELAY_PERMS_INCOMPLETE);
	/* q ends without ever fitting: nothing missing, flag cleared. */
	fp_perm_del(fp, &r, &q);
	assert_int_equal(fp_perms_missing(fp), 0);
	assert_true(has_key(XT_MAP_RELAYS, &rk, &rv));
	assert_int_equal(rv.flags, 0);
	/* Missing ones go with their relay too. */
	assert_int_equal(fp_perm_add(fp, &r, &q, FOREVER), -ENOSPC);
	assert_int_equal(fp_perms_missing(fp), 1);
	fp_relay_del(fp, &r);
	assert_int_equal(fp_perms_missing(fp), 0);
	for (unsigned i = 0; i < XT_DEF_PERMS / 256; i++) {
		addr_set_port(&filler, (uint16_t)(10000 + i));
		fp_relay_del(fp, &filler);
	}
	assert_int_equal(map_len(XT_MAP_PERMS), 0);
	fp_close(fp);
}

/* Through the offload, a full map leaves the channel to userspace and is
 * counted; a TCP/TLS client's channel never goes in, full map or not. */
static void offload_full(struct fastpath *fp, const struct fp_chan *extra)
{
	struct offload *o = offload_new(fp);
	struct allocation a;
	struct chan c = { .peer = extra->peer, .number = extra->channel };
	struct metrics_snapshot m = { 0 };

	assert_non_null(o);
	memset(&a, 0, sizeof(a));
	a.client = extra->client;
	a.listener = extra->listener;
	a.relays[0].addr = extra->relay;
	a.nrelays = 1;
	a.stream = true;
	assert_false(offload_chan_up(o, &a, &c));
	offload_snapshot(o, &m);
	assert_int_equal(m.fastpath, 1);
	assert_int_equal(m.fastpath_full, 0);	/* not tried: not a map's to take */
	a.stream = false;
	assert_false(offload_chan_up(o, &a, &c));
	offload_snapshot(o, &m);
	assert_int_equal(m.fastpath_full, 1);
	assert_true(m.xdp);
	assert_int_equal(fp_chan_count(fp), XT_DEF_BINDINGS);
	offload_free(o);
}

static void test_chan_full(void **state)
{
	enum { PER_RELAY = 256 };
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", false);
	struct sockaddr_storage relay;
	struct fp_chan c, extra;
	char buf[64];

	for (unsigned i = 0; i < XT_DEF_BINDINGS; i++) {
		snprintf(buf, sizeof(buf), "10.11.0.1:%u", 10000 + i / PER_RELAY);
		c = chan("10.11.0.2:5000", buf, "10.11.0.3:6000", 0x4000 + i % PER_RELAY);
		addr_set_port(&c.client, (uint16_t)(1024 + i / PER_RELAY));
		addr_set_port(&c.peer, (uint16_t)(1024 + i % PER_RELAY));
		assert_int_equal(fp_chan_add(fp, &c), 0);
	}
	assert_int_equal(fp_chan_count(fp), XT_DEF_BINDINGS);
	extra = chan("10.11.0.9:5000", "10.11.0.1:9999", "10.11.0.3:6000", 0x4000);
	assert_int_equal(fp_chan_add(fp, &extra), -ENOSPC);
	assert_int_equal(fp_chan_count(fp), XT_DEF_BINDINGS);
	offload_full(fp, &extra);

	/* One goes: there is room again. */
	fp_chan_del(fp, &c, NULL);
	assert_int_equal(fp_chan_add(fp, &extra), 0);
	assert_int_equal(fp_chan_count(fp), XT_DEF_BINDINGS);

	for (unsigned r = 0; r < XT_DEF_BINDINGS / PER_RELAY; r++) {
		snprintf(buf, sizeof(buf), "10.11.0.1:%u", 10000 + r);
		relay = ss(buf);
		fp_relay_del(fp, &relay);
	}
	assert_int_equal(fp_chan_count(fp), 1);
	fp_relay_del(fp, &extra.relay);
	assert_int_equal(fp_chan_count(fp), 0);
	assert_int_equal(map_len(XT_MAP_C2P) + map_len(XT_MAP_P2C), 0);
	fp_close(fp);
}

static __u32 max_entries(const char *name)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = pinned(name);

	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info.max_entries;
}

/* Runs the pinned XDP program on a ChannelData frame from c's client: what
 * it counted in XT_CNT_PASS_NO_BINDING, and in all. */
static void run_chandata(struct fastpath *fp, const struct fp_chan *c, uint64_t *no_binding,
			 uint64_t *all)
{
	struct xt_count before[XT_CNT_MAX], after[XT_CNT_MAX];
	uint8_t data[8] = { (uint8_t)(c->channel >> 8), (uint8_t)c->channel, 0, 4, 'x', 't', 'u', 'r' };
	uint8_t frame[128] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .repeat = 1);
	int prog = pinned("xt_prog");

	run.data_size_in = 14 + (__u32)frame_ip_udp(&c->client, &c->listener, data, sizeof(data),
						    frame + 14);
	assert_int_equal(fp_counters(fp, before), 0);
	assert_int_equal(bpf_prog_test_run_opts(prog, &run), 0);
	close(prog);
	assert_int_equal(fp_counters(fp, after), 0);
	*no_binding = after[XT_CNT_PASS_NO_BINDING].packets - before[XT_CNT_PASS_NO_BINDING].packets;
	*all = 0;
	for (int i = 0; i < XT_CNT_MAX; i++)
		*all += after[i].packets - before[i].packets;
}

/* xdp-max-bindings and the others size the maps: a million bindings fit,
 * the last one (its expiry slot far past the default capacity) is live for
 * the XDP program, one more is refused; a later daemon with other sizes
 * replaces the pinned maps. */
static void test_million_bindings(void **state)
{
	enum { N = 1 << 20, PER_RELAY = 64 };
	struct sockaddr_storage a = ss("10.11.0.1");
	struct fp_opts o = { .pin_dir = pin_dir, .mode = "native", .addrs = &a, .naddrs = 1,
			     .keep_pins = true, .max_bindings = N, .max_relays = N / PER_RELAY,
			     .max_perms = 1000 };
	struct fastpath *fp;
	struct fp_chan c = { 0 }, extra;
	struct xt_c2p_key k;
	struct xt_c2p_val v;
	uint64_t no_binding, all;
	char why[256], cl[64], rl[64];
	int c2p;

	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), 0);
	assert_int_equal(max_entries(XT_MAP_C2P), N);
	assert_int_equal(max_entries(XT_MAP_P2C), N);
	assert_int_equal(max_entries(XT_MAP_EXPIRY), N);
	assert_int_equal(max_entries(XT_MAP_RELAYS), N / PER_RELAY);
	assert_int_equal(max_entries(XT_MAP_PERMS), 1000);
	for (unsigned i = 0; i < N; i++) {
		snprintf(cl, sizeof(cl), "10.%u.%u.%u:5000", 20 + (i >> 16), (i >> 8) & 255, i & 255);
		snprintf(rl, sizeof(rl), "10.11.0.1:%u", 10000 + i / PER_RELAY);
		c = chan(cl, rl, "10.11.0.3:1024", (uint16_t)(0x4000 + i % PER_RELAY));
		addr_set_port(&c.peer, (uint16_t)(1024 + i % PER_RELAY));
		assert_int_equal(fp_chan_add(fp, &c), 0);
	}
	assert_int_equal(fp_chan_count(fp), N);
	extra = chan("10.9.0.1:5000", "10.11.0.1:9999", "10.11.0.3:6000", 0x4000);
	assert_int_equal(fp_chan_add(fp, &extra), -ENOSPC);

	c2p = pinned(XT_MAP_C2P);
	c2p_key(&c, &k);
	assert_int_equal(bpf_map_lookup_elem(c2p, &k, &v), 0);
	close(c2p);
	assert_true(v.exp_slot >= XT_DEF_BINDINGS);
	run_chandata(fp, &c, &no_binding, &all);
	assert_int_equal(all, 1);
	assert_int_equal(no_binding, 0);
	run_chandata(fp, &extra, &no_binding, &all);
	assert_int_equal(no_binding, 1);
	fp_close(fp);

	/* The defaults again: the million go, the maps are the default size. */
	o.max_bindings = o.max_relays = o.max_perms = 0;
	o.keep_pins = false;
	assert_int_equal(fp_open(&fp, &o, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "size"));
	assert_int_equal(max_entries(XT_MAP_C2P), XT_DEF_BINDINGS);
	assert_int_equal(max_entries(XT_MAP_PERMS), XT_DEF_PERMS);
	assert_int_equal(map_len(XT_MAP_C2P), 0);
	assert_int_equal(fp_chan_count(fp), 0);
	fp_close(fp);
}

static void test_netlink_follow(void **state)
{
	struct fastpath *fp = open_ok("10.11.0.1:3478", "native", false);
	__u32 b0, epoch;

	assert_true(fp_netlink_fd(fp) >= 0);
	sh("ip link add b0 type veth peer name b1 && ip link set b0 up && ip link set b1 up");
	fp_netlink_event(fp);
	assert_int_equal(xdp_prog("b0", NULL), 0);	/* not ours yet */
	sh("ip addr add 10.11.0.1/32 dev b0");
	fp_netlink_event(fp);
	assert_int_not_equal(xdp_prog("b0", NULL), 0);
	assert_int_equal(xdp_prog("b1", NULL), 0);
	assert_true(in_tx_ports("b0"));
	b0 = if_nametoindex("b0");
	/* A neighbour or route change makes XDP forget cached next hops. */
	epoch = read_cfg().fib_epoch;
	assert_int_not_equal(epoch, 0);
	sh("ip neigh replace 10.11.0.9 lladdr 02:00:00:00:00:09 dev b0 nud permanent");
	fp_netlink_event(fp);
	assert_int_not_equal(read_cfg().fib_epoch, epoch);
	epoch = read_cfg().fib_epoch;
	sh("ip route add 10.12.0.0/16 dev b0");
	fp_netlink_event(fp);
	assert_int_not_equal(read_cfg().fib_epoch, epoch);
	sh("ip link del b0");
	fp_netlink_event(fp);
	assert_false(has_key(XT_MAP_TX_PORTS, &b0, NULL));
	assert_true(in_tx_ports("a0"));
	fp_close(fp);

	/* The any-address follows every new up interface. */
	fp = open_ok("0.0.0.0:3478", "native", false);
	assert_int_not_equal(xdp_prog("a0", NULL), 0);
	assert_int_not_equal(xdp_prog("a1", NULL), 0);
	assert_int_equal(xdp_prog("xturn0", NULL), 0);	/* up, but no traffic */
	sh("ip link add c0 type veth peer name c1 && ip link set c0 up");
	fp_netlink_event(fp);
	assert_int_not_equal(xdp_prog("c0", NULL), 0);
	assert_int_equal(xdp_prog("c1", NULL), 0);	/* down */
	sh("ip link set c1 up");
	fp_netlink_event(fp);
	assert_int_not_equal(xdp_prog("c1", NULL), 0);
	fp_close(fp);
	assert_int_equal(xdp_prog("c0", NULL), 0);
	assert_int_equal(xdp_prog("c1", NULL), 0);
	sh("ip link del c0");
}

/* A private network and mount namespace: everything the tests create goes
 * away with the process; only the temp dir needs removing. */
static int setup(void **state)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		perror("unshare/mount (needs root)");
		return -1;
	}
	/* fp_open must mount its own (the `ip netns exec` case). */
	umount2("/sys/fs/bpf", MNT_DETACH);
	if (!mkdtemp(tmp_dir) || mount("bpf", tmp_dir, "bpf", 0, "mode=0700")) {
		perror("bpffs");
		return -1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "%s/xturn/pins", tmp_dir);
	return system("ip link set lo up && ip link add a0 type veth peer name a1 && "
		      "ip addr add 10.11.0.1/24 dev a0 && "
		      "ip addr add fd00:11::1/64 dev a0 nodad && "
		      "ip link set a0 up && ip link set a1 up") ? -1 : 0;
}

static int teardown(void **state)
{
	umount2(tmp_dir, MNT_DETACH);
	rmdir(tmp_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: libxdp tries its dispatcher once per process. */
		cmocka_unit_test(test_attach_logged),
		cmocka_unit_test(test_open_attach_close),
		cmocka_unit_test(test_verify_csum_and_lookup_name),
		cmocka_unit_test(test_lookup_dev_leftover),
		cmocka_unit_test(test_lookup_dev_taken),
		cmocka_unit_test(test_lookup_dev_deleted),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_fallback_and_ifaces),
		cmocka_unit_test(test_no_interface),
		cmocka_unit_test(test_keep_pins_and_counters),
		cmocka_unit_test(test_stale_abi_pins),
		cmocka_unit_test(test_restart_after_crash),
		cmocka_unit_test(test_pin_dir_owner_and_leftovers),
		cmocka_unit_test(test_chan_add_del),
		cmocka_unit_test(test_relay_perm),
		cmocka_unit_test(test_chan_full),
		cmocka_unit_test(test_perm_full),
		cmocka_unit_test(test_million_bindings),
		cmocka_unit_test(test_netlink_follow),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
