/* The client's control plane: allocations, permissions and channels set up
 * in pipelined waves over one socket per allocation, and their release. */
#include <poll.h>
#include <sys/epoll.h>

#include "xturngen.h"

/* Setup is pipelined: each thread keeps up to PIPE_WINDOW of its
 * allocations' transactions in flight at once (one socket each) and
 * retransmits on RFC 8489 timers, so the setup rates measure the server,
 * not round trips x threads. */
#define PIPE_WINDOW 256
#define PIPE_EVENTS 64
#define PIPE_AUTH_TRIES 3	/* per request: first try, answer 401, answer one 438 */



struct live;





/* Builds a's request for its step (a new transaction). */
static int step_build(const struct client *c, struct alloc *a)
{
	const struct opts *o = c->o;
	struct turnc_alloc_opts ao = { 0 };
	struct turnc_peers perm = { o->peers, o->npeers };
	struct sockaddr_storage peer;
	struct turnc_bind bind = { chan_num(a->chan), &peer };
	uint32_t zero = 0;
	int len;

	a->signed_req = turnc_has_key(a->tc);
	switch (a->step) {
	case ST_ALLOCATE:
		a->what = "allocate";
		len = turnc_build(a->tc, TURN_ALLOCATE, turnc_fill_allocate, &ao, true, a->req,
				  sizeof(a->req));
		break;
	case ST_PERMISSION:
		a->what = "create-permission";
		len = turnc_build(a->tc, TURN_CREATE_PERMISSION, turnc_fill_peers, &perm, true,
				  a->req, sizeof(a->req));
		break;
	case ST_BIND:
		a->what = "channel-bind";
		chan_peer(o, a->chan, &peer);
		len = turnc_build(a->tc, TURN_CHANNEL_BIND, turnc_fill_channel_bind, &bind, true,
				  a->req, sizeof(a->req));
		break;
	default:
		a->what = "release";
		len = turnc_build(a->tc, TURN_REFRESH, turnc_fill_lifetime, &zero, true, a->req,
				  sizeof(a->req));
		break;
	}
	if (len < 0)
		return len;
	a->req_len = (uint16_t)len;
	a->tx = 0;
	return 0;
}

/* (Re)transmits a's request; RFC 8489 §6.2.1 timers: the RTO doubles per
 * transmission, the last one waits 16 RTOs. */
static int step_send(struct alloc *a, enum phase ph, int64_t now)
{
	/* 0.5+1+2 s then 8 s: a dead server fails a run in ~12 s; the
	 * release is best effort and short. */
	unsigned rto = ph == PH_RELEASE ? 100 : TURNC_RTO_MS, rc = ph == PH_RELEASE ? 2 : 4;
	unsigned i = a->tx++;

	if (i >= rc)
		return -ETIMEDOUT;
	a->deadline = now + (int64_t)(i + 1 == rc ? 16 * rto : rto << i) * 1000000;
	if (send(a->fd, a->req, a->req_len, 0) < 0 && errno != EAGAIN && errno != ENOBUFS)
		return -errno;	/* a full queue is like loss: the timer resends */
	return 0;
}

/* Takes the response to a's request: 0 when a's phase is done, 1 when a
 * new request was built, or the error. */
static int step_response(const struct client *c, struct alloc *a, const uint8_t *buf, size_t len)
{
	struct turnc_alloc res;
	int r = turnc_take_response(a->tc, buf, len, true, a->signed_req);

	if (r == 1) {	/* a challenge: sign and try again */
		if (++a->auth_tries >= PIPE_AUTH_TRIES)
			return -turnc_error(a->tc)->code;
		r = step_build(c, a);
		return r < 0 ? r : 1;
	}
	if (r < 0)
		return r;
	a->auth_tries = 0;
	switch (a->step) {
	case ST_ALLOCATE:
		r = turnc_alloc_result(a->tc, &res);
		if (r < 0)
			return r;
		a->relayed = res.relayed[0];
		return 0;
	case ST_PERMISSION:
		a->step = ST_BIND;
		a->chan = 0;
		break;
	case ST_BIND:
		if (++a->chan == c->o->chans)
			return 0;
		break;
	default:
		return 0;
	}
	r = step_build(c, a);
	return r < 0 ? r : 1;
}

/* Starts a's phase: 1 when a request is in flight, 0 if there is nothing
 * to do, or the error. */
static int step_start(const struct client *c, struct alloc *a, enum phase ph, int64_t now)
{
	int ret;

	a->err = 0;
	a->ended = false;
	a->auth_tries = 0;
	if (ph == PH_ALLOCATE) {
		a->step = ST_ALLOCATE;
	} else if (ph == PH_BIND) {
		a->step = ST_PERMISSION;
	} else {
		if (!a->tc || !a->relayed.ss_family)
			return 0;
		a->step = ST_RELEASE;
	}
	ret = step_build(c, a);
	if (ret == 0)
		ret = step_send(a, ph, now);
	return ret < 0 ? ret : 1;
}

/* Reads what a's socket has: 0 when a's phase is done, 1 while a request
 * is in flight, or the error. */
static int step_input(const struct client *c, struct alloc *a, enum phase ph)
{
	uint8_t buf[STUN_MAX_MSG];

	for (;;) {
		ssize_t n = recv(a->fd, buf, sizeof(buf), MSG_DONTWAIT);
		int r;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : -errno;
		/* Anything else is a late answer to an earlier transmission. */
		if ((size_t)n < STUN_HDR_LEN || memcmp(buf + 8, a->req + 8, STUN_TID_LEN))
			continue;
		r = step_response(c, a, buf, (size_t)n);
		if (r <= 0)
			return r;
		r = step_send(a, ph, clock_mono_ns());
		if (r < 0)
			return r;
	}
}

/* A phase over TCP/TLS: one request at a time per allocation with the
 * blocking client (a TLS stream cannot be read or written past it). */
static void setup_stream(struct worker *w)
{
	const struct opts *o = w->c->o;

	for (unsigned i = w->idx; i < o->allocs && (w->phase == PH_RELEASE || !g_stop);
	     i += o->threads) {
		struct alloc *a = &w->c->allocs[i];
		struct turnc_alloc res;
		struct sockaddr_storage peer;
		int r = 0;

		if (w->phase == PH_ALLOCATE) {
			a->what = "allocate";
			r = turnc_allocate(a->tc, NULL, &res);
			if (!r)
				a->relayed = res.relayed[0];
		} else if (w->phase == PH_BIND) {
			a->what = "create-permission";
			r = turnc_create_permission(a->tc, o->peers, o->npeers);
			for (unsigned j = 0; !r && j < o->chans; j++) {
				a->what = "channel-bind";
				chan_peer(o, j, &peer);
				r = turnc_channel_bind(a->tc, chan_num(j), &peer);
			}
		} else if (a->relayed.ss_family) {
			turnc_refresh(a->tc, 0, NULL);	/* best effort */
		}
		a->err = r;
		w->errors += r < 0;
	}
}

/* One thread's share of a phase (allocations idx, idx + threads, ...),
 * PIPE_WINDOW at a time; failures are counted and left in a->err. */
static void *setup_worker(void *arg)
{
	struct worker *w = arg;
	struct client *c = w->c;
	const struct opts *o = c->o;
	unsigned win[PIPE_WINDOW], nwin = 0, next = w->idx;
	struct epoll_event ev[PIPE_EVENTS];
	int ep;

	if (o->tp != TURNC_UDP) {
		setup_stream(w);
		return NULL;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0) {
		int err = -errno;

		for (unsigned i = w->idx; i < o->allocs; i += o->threads) {
			c->allocs[i].err = err;
			w->errors++;
		}
		return NULL;
	}
	/* The release runs even after a signal: it frees the server. */
	while (w->phase == PH_RELEASE || !g_stop) {
		int64_t now = clock_mono_ns();
		int n;

		for (; nwin < PIPE_WINDOW && next < o->allocs; next += o->threads) {
			struct alloc *a = &c->allocs[next];
			struct epoll_event e = { .events = EPOLLIN, .data.u32 = next };
			int r = step_start(c, a, w->phase, now);

			if (r > 0 && epoll_ctl(ep, EPOLL_CTL_ADD, a->fd, &e) < 0)
				r = -errno;
			if (r < 0) {
				a->err = r;
				w->errors++;
			} else if (r > 0) {
				win[nwin++] = next;
			}
		}
		if (!nwin)
			break;
		n = epoll_wait(ep, ev, PIPE_EVENTS, 10);
		now = clock_mono_ns();
		for (int k = 0; k < n; k++) {
			struct alloc *a = &c->allocs[ev[k].data.u32];
			int r = step_input(c, a, w->phase);

			if (r <= 0) {	/* retired below */
				a->err = r;
				a->ended = true;
			}
		}
		/* Retire what ended and retransmit what is due. */
		for (unsigned s = 0; s < nwin;) {
			struct alloc *a = &c->allocs[win[s]];

			if (!a->ended && a->deadline > now) {
				s++;
				continue;
			}
			if (!a->ended) {
				a->err = step_send(a, w->phase, now);
				if (a->err == 0) {
					s++;
					continue;
				}
			}
			if (a->err < 0)
				w->errors++;
			epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
			win[s] = win[--nwin];
		}
	}
	close(ep);
	return NULL;
}

/* Runs phase on every allocation, one thread per -t; returns the first
 * error (and reports it, with the number that failed). */
int run_phase(struct client *c, struct worker *w, enum phase phase)
{
	const struct opts *o = c->o;
	unsigned n = o->threads < o->allocs ? o->threads : o->allocs;
	uint64_t failed = 0;
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ .c = c, .idx = i, .phase = phase };
		if (pthread_create(&w[i].th, NULL, setup_worker, &w[i]) != 0) {
			n = i;
			ret = -EAGAIN;
			g_stop = 1;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(w[i].th, NULL);
		failed += w[i].errors;
	}
	if (phase == PH_RELEASE)
		return ret;
	for (unsigned i = 0; i < o->allocs; i++) {
		struct alloc *a = &c->allocs[i];

		if (a->err < 0) {
			const struct turnc_error *e = a->tc ? turnc_error(a->tc) : NULL;

			fprintf(stderr, "xturngen: allocation %u: %s: %s\n", i, a->what,
				TURNC_IS_STUN_ERR(a->err) && e ? e->reason : strerror(-a->err));
			if (TURNC_IS_STUN_ERR(a->err))
				fprintf(stderr, "xturngen: server error %d\n", -a->err);
			fprintf(stderr, "xturngen: %llu of %u allocations failed\n",
				(unsigned long long)failed, o->allocs);
			return a->err;
		}
	}
	return g_stop ? -EINTR : ret;
}

/* Opens every allocation's socket before the clock starts: the rates are
 * the server's, not the client kernel's socket setup. */
int open_allocs(struct client *c)
{
	const struct opts *o = c->o;

	for (unsigned i = 0; i < o->allocs; i++) {
		struct alloc *a = &c->allocs[i];
		const struct sockaddr_storage *src = o->nsources ? &o->sources[i % o->nsources] : NULL;
		int ret = o->secret ? turnc_open_rest(&a->tc, &c->server, src, o->user, o->secret,
						      REST_TTL)
				    : turnc_open_tp(&a->tc, &c->server, src, o->user, o->pass, o->tp);

		if (ret < 0) {
			fprintf(stderr, "xturngen: allocation %u: open: %s\n", i, strerror(-ret));
			return ret;
		}
		a->fd = turnc_fd(a->tc);
		turnc_local_addr(a->tc, &a->local);
	}
	return 0;
}
