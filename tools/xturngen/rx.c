/* What arrives: per-flow counts, loss, reordering and latency (a log-linear
 * histogram) of xturngen payloads, for the peer and the client's echoes. */
#include <endian.h>

#include "xturngen.h"

/* ---- latency histogram: log-linear, 32 sub-buckets per power of two (~3 %) */



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
uint64_t hist_pct(const struct hist *h, double p)
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

void payload_put(uint8_t *p, uint32_t flow, uint32_t seq, uint64_t ts)
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

void rx_record(struct rx *r, const uint8_t *p, size_t len)
{
	rx_add(r, p, len, clock_mono_ns());
}

void rx_summarize(const struct rx *r, struct rx_sum *s)
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


int rx_batch(int fd, uint8_t (*bufs)[RX_SLOT], struct rx *r, bool echo, size_t skip)
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
