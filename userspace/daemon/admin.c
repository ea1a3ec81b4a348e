#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/addr.h"
#include "common/sock.h"
#include "turn/turn.h"
#include "daemon/acct.h"
#include "daemon/admin.h"
#include "daemon/offload.h"
#include "daemon/worker.h"

struct list_ctx {
	struct offload *o;
	const char *realm;
	bool json;
	FILE *out;
	unsigned n;
	time_t now, wall;
};

static void list_one(void *arg, struct allocation *a)
{
	struct list_ctx *l = arg;
	struct alloc_traffic c2p, p2c;
	char buf[(STUN_MAX_USERNAME + 256) * 6 + 1024], addr[ADDR_STRLEN];

	offload_traffic(l->o, a, &c2p, &p2c);
	if (l->json) {
		if (acct_json(buf, sizeof(buf), a, l->realm, &c2p, &p2c, l->now, l->wall))
			fprintf(l->out, "%s\n  %s", l->n ? "," : "", buf);
	} else {
		fprintf(l->out, "%016" PRIx64 " %-20.20s %-40s %-4s %7ld %5u %5u %10" PRIu64
			" %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", a->id, a->username,
			addr_str(&a->client, true, addr, sizeof(addr)),
			alloc_transport_name((enum alloc_transport)a->transport),
			(long)(l->now - a->created), a->nperms, a->nchans,
			c2p.packets + c2p.xdp_packets, c2p.xdp_packets,
			p2c.packets + p2c.xdp_packets, p2c.xdp_packets);
	}
	l->n++;
}

void admin_sessions(struct worker *const *w, unsigned n, struct offload *o, const char *realm,
		    bool json, FILE *out)
{
	struct list_ctx l = { o, realm, json, out, 0, clock_mono_s(), time(NULL) };

	if (json)
		fprintf(out, "[");
	else
		fprintf(out, "%-16s %-20s %-40s %-4s %7s %5s %5s %10s %10s %10s %10s\n", "ID",
			"USER", "CLIENT", "TP", "AGE_S", "PERMS", "CHANS", "C2P_PKTS", "C2P_XDP",
			"P2C_PKTS", "P2C_XDP");
	for (unsigned i = 0; i < n; i++) {
		worker_lock(w[i]);
		alloc_foreach(turn_allocs(worker_turn(w[i])), list_one, &l);
		worker_unlock(w[i]);
	}
	if (json)
		fprintf(out, "%s]\n", l.n ? "\n" : "");
}

struct end_ctx {
	uint64_t id;
	const char *user;
	bool all;
	enum alloc_end why;
	unsigned n;
};

static void end_one(void *arg, struct allocation *a)
{
	struct end_ctx *e = arg;

	if (a->end)
		return;	/* ending already */
	if (e->all || (e->user ? !strcmp(a->username, e->user) : a->id == e->id)) {
		alloc_end_at_next_expiry(a, e->why);
		e->n++;
	}
}

unsigned admin_end(struct worker *const *w, unsigned n, const char *id, const char *user,
		   enum alloc_end why)
{
	struct end_ctx e = { .user = user, .all = !id && !user, .why = why };
	unsigned total = 0;

	if (id) {
		char *end;
		if (strlen(id) != 16 || strspn(id, "0123456789abcdefABCDEF") != 16)
			return 0;
		e.id = strtoull(id, &end, 16);
	}
	for (unsigned i = 0; i < n; i++) {
		e.n = 0;
		worker_lock(w[i]);
		alloc_foreach(turn_allocs(worker_turn(w[i])), end_one, &e);
		worker_unlock(w[i]);
		if (e.n)
			worker_tick_now(w[i]);
		total += e.n;
	}
	return total;
}
