/* Hairpin through the real daemon with XDP: two clients of one server, each
 * with a channel to the other's relayed address (both WebRTC peers on the
 * same TURN server, the common case). Their ChannelData must go client ->
 * client in one pass in the kernel: it arrives intact on the right channel,
 * and the XDP hairpin counter, not the daemon, carried it.
 *
 * Topology, made and removed here: namespace C (clients, c0 10.72.1.2) and
 * namespace R (xturnd, r0 10.72.1.1), one veth. The test process moves its
 * own network namespace with setns(): the daemon is started from R, the
 * clients' sockets are made in C. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <cmocka.h>

#include "common/addr.h"
#include "client/turnclient.h"
#include "testd.h"
#include "xturn_kern_user.h"

#define LISTEN_IP "10.72.1.1"
#define CLIENT_IP "10.72.1.2"

static char ns_c[32], ns_r[32], pin_dir[64], pin_flag[80], sock_flag[80];
static int fd_c = -1, fd_r = -1;

static void enter(int nsfd)
{
	assert_int_equal(setns(nsfd, CLONE_NEWNET), 0);
}

static bool pick_ports(struct testd *d, int attempt)
{
	d->port = (uint16_t)(3478 + attempt);	/* the namespace is ours alone */
	d->min_port = 50000;
	d->max_port = 50999;
	return true;
}

/* A Binding answers, asked from the clients' namespace. */
static bool ready(const struct testd *d)
{
	struct sockaddr_storage srv, m;
	struct turnc *t = NULL;
	bool ok;

	enter(fd_c);
	ok = !addr_parse(LISTEN_IP, d->port, &srv) && !turnc_open(&t, &srv, NULL, "", "");
	if (ok) {
		turnc_set_timers(t, 50, 2);
		ok = turnc_binding(t, &m) == 0;
	}
	turnc_close(t);
	enter(fd_r);
	return ok;
}

static const char *const flags[] = {
	"--listening-ip=" LISTEN_IP,
	"--relay-ip=" LISTEN_IP,
	"--realm=xturn",
	"--user=alice:secret",
	/* the peers are our own relayed addresses, a private range */
	"--allowed-peer-ip=" LISTEN_IP,
	"--xdp-mode=native",
	NULL,
};
static const struct testd_kind kind = { .flags = flags, .pick_ports = pick_ports,
					.ready = ready, .ready_tries = 60 };
static struct testd d = { .kind = &kind, .name = "hairpin", .extra = { pin_flag, sock_flag } };

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* veth hands frames another veth sent with XDP_TX to its peer's XDP ring,
 * but wakes the peer only if the peer runs an XDP program itself (the
 * kernel's veth_xdp_flush()): without one, the frame waits for the next
 * packet to come along. A program that passes everything on c0 stands for
 * the NIC a real client is behind. */
static int attach_pass(const char *ifname)
{
	struct bpf_insn pass[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pass", "GPL", pass, 2, NULL);

	if (fd < 0)
		return -1;
	/* The attachment holds the program: the fd may close. */
	if (bpf_xdp_attach((int)if_nametoindex(ifname), fd, XDP_FLAGS_DRV_MODE, NULL)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int setup(void **state)
{
	char path[64];
	int pid = (int)getpid();

	snprintf(ns_c, sizeof(ns_c), "xthp-%d-c", pid);
	snprintf(ns_r, sizeof(ns_r), "xthp-%d-r", pid);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/xthp-%d", pid);
	snprintf(pin_flag, sizeof(pin_flag), "--bpf-pin-dir=%s", pin_dir);
	snprintf(d.log, sizeof(d.log), "/tmp/xturn-hairpin-%d.log", pid);
	snprintf(sock_flag, sizeof(sock_flag), "--stats-socket=/tmp/xturn-hairpin-%d.sock", pid);
	if (sh("ip netns add %s && ip netns add %s", ns_c, ns_r) ||
	    sh("ip -n %s link add c0 address 02:72:01:00:00:02 type veth peer name r0 "
	       "address 02:72:01:00:00:01 netns %s", ns_c, ns_r) ||
	    sh("ip -n %s addr add " CLIENT_IP "/24 dev c0 && ip -n %s link set c0 up && "
	       "ip -n %s link set lo up", ns_c, ns_c, ns_c) ||
	    sh("ip -n %s addr add " LISTEN_IP "/24 dev r0 && ip -n %s link set r0 up && "
	       "ip -n %s link set lo up", ns_r, ns_r, ns_r) ||
	    /* static neighbours: XDP never waits on ARP */
	    sh("ip -n %s neigh replace " LISTEN_IP " lladdr 02:72:01:00:00:01 dev c0 nud permanent",
	       ns_c) ||
	    sh("ip -n %s neigh replace " CLIENT_IP " lladdr 02:72:01:00:00:02 dev r0 nud permanent",
	       ns_r) ||
	    sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=0", ns_r))
		return -1;
	snprintf(path, sizeof(path), "/run/netns/%s", ns_c);
	fd_c = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", ns_r);
	fd_r = open(path, O_RDONLY | O_CLOEXEC);
	if (fd_c < 0 || fd_r < 0)
		return -1;
	enter(fd_c);
	if (attach_pass("c0"))
		return -1;
	enter(fd_r);	/* the daemon is born in R */
	if (testd_start(&d)) {
		testd_dump_log(&d);
		return -1;
	}
	enter(fd_c);	/* and the clients in C */
	*state = &d;
	return 0;
}

/* cmocka 1.1.5 exits 0 when a group teardown fails: the daemon's exit
 * check is kept here and main adds it. */
static int stop_failed;

static int teardown(void **state)
{
	int rc = testd_stop(&d);

	stop_failed = rc != 0;
	if (rc)
		testd_dump_log(&d);
	else
		unlink(d.log);
	close(fd_c);
	close(fd_r);
	sh("ip netns del %s; ip netns del %s", ns_c, ns_r);
	return 0;
}

/* Packets of the XDP hairpin counter, summed over CPUs, from the pins. */
static uint64_t hairpin_packets(void)
{
	char path[128];
	int ncpu = libbpf_num_possible_cpus(), fd;
	struct xt_count v[256];
	uint32_t key = XT_CNT_HAIRPIN;
	uint64_t sum = 0;

	snprintf(path, sizeof(path), "%s/" XT_MAP_STATS, pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_true(ncpu > 0 && ncpu <= 256);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, v), 0);
	close(fd);
	for (int i = 0; i < ncpu; i++)
		sum += v[i].packets;
	return sum;
}

static struct turnc *client(struct turnc_alloc *res)
{
	struct sockaddr_storage srv;
	struct turnc *t;

	assert_int_equal(addr_parse(LISTEN_IP, d.port, &srv), 0);
	assert_int_equal(turnc_open(&t, &srv, NULL, "alice", "secret"), 0);
	turnc_set_timers(t, 100, 4);
	assert_int_equal(turnc_allocate(t, NULL, res), 0);
	return t;
}

static void test_hairpin(void **state)
{
	static const char ab[] = "from A to B, never through userspace";
	static const char ba[] = "and back from B to A";
	struct turnc_alloc ra, rb;
	struct turnc *a = client(&ra), *b = client(&rb);
	struct sockaddr_storage from;
	char buf[256];
	uint16_t ch = 0;
	uint64_t before;
	int n;

	/* each binds a channel to the other's relayed address */
	assert_int_equal(turnc_channel_bind(a, 0x4001, &rb.relayed[0]), 0);
	assert_int_equal(turnc_channel_bind(b, 0x4002, &ra.relayed[0]), 0);
	before = hairpin_packets();

	assert_int_equal(turnc_send_channel(a, 0x4001, ab, sizeof(ab)), 0);
	n = turnc_recv(b, 1000, &from, &ch, buf, sizeof(buf));
	assert_int_equal(n, sizeof(ab));
	assert_memory_equal(buf, ab, sizeof(ab));
	assert_int_equal(ch, 0x4002);
	assert_true(addr_eq(&from, &ra.relayed[0]));

	assert_int_equal(turnc_send_channel(b, 0x4002, ba, sizeof(ba)), 0);
	n = turnc_recv(a, 1000, &from, &ch, buf, sizeof(buf));
	assert_int_equal(n, sizeof(ba));
	assert_memory_equal(buf, ba, sizeof(ba));
	assert_int_equal(ch, 0x4001);
	assert_true(addr_eq(&from, &rb.relayed[0]));

	/* both went client -> client in XDP */
	assert_int_equal(hairpin_packets() - before, 2);
	turnc_refresh(a, 0, NULL);
	turnc_refresh(b, 0, NULL);
	turnc_close(a);
	turnc_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hairpin),
	};

	int failed = cmocka_run_group_tests_name("hairpin", tests, setup, teardown);

	return failed + stop_failed;
}
