/* Inside the fast path (daemon/fastpath.h is its interface): the state its
 * four files share. maps.c keeps the binding maps equal to TURN state,
 * lookup.c the device bpf_fib_lookup asks and the next-hop epoch, attach.c
 * the interfaces that carry the program (and netlink following them),
 * load.c pins, loading, open and close. */
#ifndef XT_FP_H
#define XT_FP_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <net/if.h>
#include <xdp/libxdp.h>

#include "daemon/fastpath.h"
#include "xturn.skel.h"

#define FP_PROG_NAME "xturn_xdp"
/* The attached programs, pinned beside the maps: a later daemon finds them
 * by id on the interfaces they were left on (stale.c). */
#define XT_PIN_PROG "xt_prog"

enum fp_mode { FP_AUTO, FP_NATIVE, FP_GENERIC, FP_TC };

/* The TC filter's place on an interface's clsact ingress: replacing the one
 * there (BPF_TC_F_REPLACE) takes a stopped daemon's place in one step. */
#define FP_TC_HANDLE 0x7874	/* "xt" */
#define FP_TC_PRIO 0x7874
#define XT_PIN_PROG_TC "xt_prog_tc"
enum fp_prog { FP_PROG_XDP, FP_PROG_TC, FP_NPROGS };
/* Their pin names, by enum fp_prog. */
extern const char *const fp_prog_pins[FP_NPROGS];

struct fp_iface {
	int ifindex;
	enum xdp_attach_mode mode;
	bool tc;		/* the TC program on clsact ingress, not XDP */
};

/* One map entry written on behalf of a relayed address, remembered so that
 * fp_relay_del() removes exactly that relay's permissions and channels
 * without walking maps of millions of entries. */
struct fp_entry {
	bool is_chan;
	union {
		struct xt_perm_key perm;
		struct xt_c2p_key chan;
	};
};

struct fp_relay {
	struct fp_relay *next;
	struct xt_relay_key key;
	struct fp_entry *entries;
	size_t n, cap;
	/* Permissions that did not fit xt_perms: while there are any, the
	 * relay is flagged XT_RELAY_PERMS_INCOMPLETE (peers pass to us). */
	struct xt_perm_key *missing;
	size_t nmissing, capmissing;
};

struct fastpath {
	struct xturn_bpf *skel;
	struct xdp_program *prog;
	enum fp_mode mode;
	bool keep_pins;
	char pin_dir[PATH_MAX - 64];	/* room for "/<map name>" */
	struct xt_cfg cfg;		/* as written to xt_cfg */
	char lookup_dev[IF_NAMESIZE];
	int lookup_ifindex;		/* the lookup device, ours to delete; 0: none */
	struct sockaddr_storage *addrs;
	unsigned naddrs;
	char (*ifaces)[IF_NAMESIZE];
	unsigned nifaces;
	struct fp_iface attached[XT_MAX_IFACES];
	unsigned nattached;
	struct mnl_socket *nl;
	unsigned nchans;		/* bindings in the maps */
	int lock_fd;			/* the pin dir, flock'ed while we run */
	/* A stopped daemon's programs (enum fp_prog), replaced in place; -1. */
	int stale_fds[FP_NPROGS];
	__u32 old_ports[XT_MAX_IFACES];	/* its xt_tx_ports, while we take over */
	unsigned nold_ports;
	uint32_t *free_slots;		/* xt_expiry slots no binding has */
	unsigned nfree;
	unsigned perms_missing;		/* permissions not in xt_perms, all relays */
	/* The relay records, hashed: 2^relay_bits buckets, about one for
	 * every two relays the maps can hold. */
	struct fp_relay **relays;
	unsigned relay_bits;
	/* The maps' capacities, as loaded. */
	unsigned max_bindings, max_relays, max_perms;
};

/* Writes a one-line reason into why (nothing when len is 0). */
static inline __attribute__((format(printf, 3, 4))) void fp_say(char *why, size_t len,
								 const char *fmt, ...)
{
	va_list ap;

	if (!len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* maps.c: the relay records' table for max_relays relays: 0 or -ENOMEM. */
int fp_relays_init(struct fastpath *fp);
/* Frees the relay records. */
void fp_relays_free(struct fastpath *fp);

/* lookup.c */
int fp_cfg_write(struct fastpath *fp);
/* maps.c: every expiry slot free (the binding maps start empty). */
int fp_slots_init(struct fastpath *fp);
/* stale.c: the pin dir locked (flock) for as long as the fd stays open:
 * the fd, -EBUSY if a running daemon has it, or -errno. */
int fp_pin_dir_lock(const char *dir);
/* The programs a stopped daemon pinned in pin_dir, taken off the interfaces
 * they were left on, and their pins removed. */
void fp_stale_program(const char *pin_dir);
/* The XDP mode flag (XDP_FLAGS_DRV_MODE...) in which ifindex carries the
 * program prog_fd alone, or 0. */
__u32 fp_prog_mode(int ifindex, int prog_fd);
/* Takes prog_fd's program (XDP, or TC at FP_TC_HANDLE) off every interface
 * of this namespace: how many. */
unsigned fp_detach_prog(int prog_fd);
/* The id of the TC program at FP_TC_HANDLE on ifindex's ingress, or 0. */
__u32 fp_tc_prog_id(int ifindex);
int fp_tc_detach(int ifindex);
/* Creates the lookup device, or takes over the one a crashed run left, and
 * turns forwarding on for it. 0, or -errno with why saying what failed. */
int fp_lookup_open(struct fastpath *fp, char *why, size_t whylen);
void fp_lookup_close(struct fastpath *fp);
/* Next hops the XDP program cached in bindings are good for one epoch. */
void fp_flush_next_hops(struct fastpath *fp);
/* The lookup device was deleted under us. */
void fp_lookup_gone(struct fastpath *fp);

/* attach.c: attaches to every interface that should have the program and
 * lacks it. strict (fp_open): an address on no interface, an unknown
 * interface name, an attach failure or nothing to attach to is an error
 * explained in why; otherwise (following netlink) such things are skipped. */
int fp_scan(struct fastpath *fp, bool strict, char *why, size_t whylen);
/* Takes ifindex out of xt_tx_ports and the next hops the program cached
 * through it with it (a cached next hop is not checked against the map). */
void fp_tx_port_del(struct fastpath *fp, __u32 ifindex);

/* load.c: libbpf's and libxdp's warnings go to debug level while on (calls
 * nest: on, on, off is still on). */
void fp_libs_quiet(bool on);
/* What the kernel said of the last refusal while quiet ("" if nothing). */
const char *fp_libs_kernel_msg(void);
void fp_detach_all(struct fastpath *fp);

#endif
