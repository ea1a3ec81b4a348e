/* What the parts of xturngen share: the options, the measurement of what
 * arrives (rx.c), the client's allocations and threads (control.c, data.c,
 * live.c). One file per job: main.c (options), rx.c, peer.c, control.c
 * (allocations, permissions, channels: pipelined), data.c (the socket data
 * plane, pcap), live.c (BPF_PROG_RUN live frames), sink.c (the XDP sink). */
#ifndef XT_XTURNGEN_H
#define XT_XTURNGEN_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/sock.h"
#include "common/stun.h"
#include "client/turnclient.h"

#define PAYLOAD_MIN 16
#define PAYLOAD_MAX 8192
#define BATCH 32
#define MAX_PEERS 16
#define MAX_THREADS 64
#define MAX_ALLOCS 200000
#define MAX_SOURCES 64
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
#define HIST_SUB 5
#define HIST_BUCKETS ((64 - HIST_SUB + 1) << HIST_SUB)
#define RX_SLOT (CHANNELDATA_HDR_LEN + PAYLOAD_MAX + 64)

extern volatile sig_atomic_t g_stop;

struct hist {
	uint64_t b[HIST_BUCKETS];
	uint64_t n;
};

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

struct rx_sum {
	uint32_t flows;
	uint64_t expected, lost, reorder;
	double loss_pct;
};

struct opts {
	bool peer, echo, json, dst_mac_set, detach;
	const char *server, *user, *pass, *secret, *pcap, *live_if, *sink_if, *pass_if, *pin;
	uint8_t dst_mac[ETH_ALEN];
	struct sockaddr_storage peers[MAX_PEERS];
	unsigned npeers;
	/* -S: allocation i's socket is bound to sources[i % nsources] (one
	 * address has some 28 000 ephemeral ports); none: the kernel picks. */
	struct sockaddr_storage sources[MAX_SOURCES];
	unsigned nsources;
	unsigned allocs, chans, threads, ports, pcap_count;
	/* --transport: UDP (pipelined setup, batched sends) or a TCP/TLS
	 * connection per allocation (blocking setup, one write per message,
	 * as a client behind a firewall that only lets TLS out sends media). */
	enum turnc_transport tp;
	double rate, duration;
	size_t len;
};

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
	pthread_mutex_t rx_lock;	/* TCP/TLS: every sender thread records its echoes */
	volatile int rx_stop;
	struct live *live;	/* --live-frames */
};

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


static inline uint16_t chan_num(unsigned j)
{
	return (uint16_t)(CHANNEL_MIN + j);
}

static inline void chan_peer(const struct opts *o, unsigned j, struct sockaddr_storage *out)
{
	*out = o->peers[j % o->npeers];
	addr_set_port(out, (uint16_t)(addr_port(out) + j / o->npeers));
}

/* control.c */
int open_allocs(struct client *c);
int run_phase(struct client *c, struct worker *w, enum phase phase);
/* data.c */
int run_client(const struct opts *o);
void *sender(void *arg);
void sleep_until(int64_t t);
/* live.c */
int live_setup(struct client *c);
void *injector(void *arg);
void live_free(struct live *l);
/* Its injector threads, and the CPU thread i is pinned to. */
unsigned live_threads(const struct live *l);
int live_cpu(const struct live *l, unsigned i);
/* peer.c */
int run_peer(const struct opts *o);
/* rx.c */
uint64_t hist_pct(const struct hist *h, double p);
void payload_put(uint8_t *p, uint32_t flow, uint32_t seq, uint64_t ts);
void rx_summarize(const struct rx *r, struct rx_sum *s);
/* One echoed payload (what follows the ChannelData header) into r. */
void rx_record(struct rx *r, const uint8_t *p, size_t len);
/* Receives a batch on fd into bufs (BATCH slots) and feeds r; with echo,
 * sends each datagram back to its sender. skip is the header length before
 * the payload (4 for ChannelData on the client). Datagrams read, or -errno. */
int rx_batch(int fd, uint8_t (*bufs)[RX_SLOT], struct rx *r, bool echo, size_t skip);
/* sink.c */
int run_sink(const struct opts *o);
int run_pass(const struct opts *o);

#endif
