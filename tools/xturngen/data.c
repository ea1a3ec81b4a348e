/* The client's socket data plane: ChannelData floods (UDP GSO, sendmmsg
 * where refused), the echo receiver, the pcap writer, and the run itself. */
#include <poll.h>
#include <netinet/udp.h>

#include "common/frame.h"
#include "xturngen.h"

/* One ChannelData datagram of flow (alloc i, channel j) into buf (4 + len). */
static void build_packet(const struct client *c, unsigned i, unsigned j, uint32_t seq,
			 uint8_t *buf)
{
	size_t len = c->o->len;

	channeldata_put_hdr(buf, chan_num(j), (uint16_t)len);
	payload_put(buf + CHANNELDATA_HDR_LEN, i * c->o->chans + j, seq, (uint64_t)clock_mono_ns());
}

/* Writes o->pcap_count data-plane packets, flows round robin, sequence
 * numbers from 0 (the data plane starts at 0 too, so a replay and a run
 * look the same to the peer). */
static int write_pcap(const struct client *c)
{
	const struct opts *o = c->o;
	struct { uint32_t magic; uint16_t vmaj, vmin; int32_t tz; uint32_t sigfigs, snap, link; }
		gh = { 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101 /* LINKTYPE_RAW */ };
	uint8_t dgram[CHANNELDATA_HDR_LEN + PAYLOAD_MAX], pkt[48 + sizeof(dgram)];
	unsigned nflows = o->allocs * o->chans;
	FILE *f = fopen(o->pcap, "wb");
	struct timespec rt;
	int ret = 0;

	if (!f)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &rt);
	memset(dgram, 0, sizeof(dgram));
	fwrite(&gh, sizeof(gh), 1, f);
	for (unsigned k = 0; k < o->pcap_count; k++) {
		unsigned flow = k % nflows, i = flow / o->chans, j = flow % o->chans;
		size_t len;
		struct { uint32_t sec, usec, caplen, len; } ph;

		build_packet(c, i, j, k / nflows, dgram);
		len = frame_ip_udp(&c->allocs[i].local, &c->server, dgram,
				  CHANNELDATA_HDR_LEN + o->len, pkt);
		ph.sec = (uint32_t)rt.tv_sec;
		ph.usec = (uint32_t)(rt.tv_nsec / 1000);
		ph.caplen = ph.len = (uint32_t)len;
		fwrite(&ph, sizeof(ph), 1, f);
		fwrite(pkt, len, 1, f);
	}
	if (ferror(f))
		ret = -EIO;
	if (fclose(f) != 0 && !ret)
		ret = -errno;
	return ret;
}

/* ---- client: data plane ------------------------------------------------- */

/* Sends the n datagrams of iov (all of one size, on a connected socket) as
 * UDP GSO sends, each one trip through the stack however many datagrams it
 * carries (the kernel or device cuts it). Returns how many were sent, or -1
 * if the kernel refuses GSO before any went (*gso is cleared: the caller
 * falls back to sendmmsg from then on). */
static int send_gso(int fd, struct iovec *iov, unsigned n, bool *gso)
{
	size_t len = iov[0].iov_len;
	unsigned per = len ? SOCK_GSO_MAX_BYTES / (unsigned)len : 1, done = 0;

	if (per > SOCK_GSO_MAX_SEGS)
		per = SOCK_GSO_MAX_SEGS;
	while (done < n) {
		unsigned c = n - done < per ? n - done : per;
		union {
			char buf[SOCK_GSO_CMSG_SPACE];
			struct cmsghdr align;
		} ctrl = { 0 };
		struct msghdr mh = { .msg_iov = iov + done, .msg_iovlen = c };

		if (c > 1) {
			mh.msg_control = ctrl.buf;
			mh.msg_controllen = sizeof(ctrl.buf);
			sock_put_gso(ctrl.buf, (uint16_t)len);
		}
		if (sendmsg(fd, &mh, 0) < 0) {
			if (!done && c > 1 && (errno == EINVAL || errno == EIO || errno == ENOPROTOOPT)) {
				*gso = false;
				return -1;
			}
			break;
		}
		done += c;
	}
	return (int)done;
}

/* TCP/TLS: the echoes waiting on a's connection, read by the thread that
 * writes it (a TLS stream takes one thread at a time). */
static void stream_drain(struct client *c, struct alloc *a)
{
	uint8_t buf[CHANNELDATA_HDR_LEN + PAYLOAD_MAX];
	struct sockaddr_storage peer;
	uint16_t ch;
	int n;

	for (int k = 0; k < BATCH && (n = turnc_recv(a->tc, 0, &peer, &ch, buf, sizeof(buf))) > 0;
	     k++) {
		pthread_mutex_lock(&c->rx_lock);
		rx_record(&c->rx, buf, (size_t)n);
		pthread_mutex_unlock(&c->rx_lock);
	}
}

/* TCP/TLS: each message its own record over TLS, as a media client
 * writes them; a batch of them in one write (the generator's syscalls
 * would otherwise set the rate on a machine it shares with the relay). */
static int send_stream(struct alloc *a, const struct iovec *iov, unsigned n)
{
	int k = turnc_send_batch(a->tc, iov, n);

	return k < 0 ? -1 : k;
}

void *sender(void *arg)
{
	struct worker *w = arg;
	const struct client *c = w->c;
	const struct opts *o = c->o;
	/* Over a stream a message is padded to 4 bytes (RFC 8656 §12.5). */
	size_t plen = CHANNELDATA_HDR_LEN + (o->tp == TURNC_UDP ? o->len : (o->len + 3) & ~(size_t)3);
	uint8_t (*bufs)[CHANNELDATA_HDR_LEN + PAYLOAD_MAX] = calloc(BATCH, sizeof(*bufs));
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	unsigned chan_of[BATCH];
	unsigned cur = w->idx;
	int64_t start = clock_mono_ns();
	bool gso = true;

	if (!bufs)
		return NULL;
	while (!g_stop) {
		int64_t now = clock_mono_ns();
		unsigned want = BATCH;
		struct alloc *a = &c->allocs[cur];
		int n;

		if (now >= w->end_ns)
			break;
		if (w->rate > 0) {
			double due = w->rate * (double)(now - start) / 1e9 - (double)w->sent;

			if (due < 1) {
				/* Sleep until the next packet is due, at most 1 ms
				 * so the end time is respected. */
				int64_t wait = (int64_t)((1 - due) / w->rate * 1e9);
				struct timespec ts = { 0, wait < 1000000 ? wait : 1000000 };

				nanosleep(&ts, NULL);
				continue;
			}
			if (due < want)
				want = (unsigned)due;
		}
		for (unsigned k = 0; k < want; k++) {
			unsigned j = a->next_chan;

			a->next_chan = (j + 1) % o->chans;
			chan_of[k] = j;
			build_packet(c, cur, j, a->seq[j]++, bufs[k]);
			iov[k] = (struct iovec){ bufs[k], plen };
			m[k].msg_hdr = (struct msghdr){ .msg_iov = &iov[k], .msg_iovlen = 1 };
		}
		if (o->tp != TURNC_UDP) {
			n = send_stream(a, iov, want);
			stream_drain(w->c, a);
		} else {
			n = gso ? send_gso(a->fd, iov, want, &gso) : -1;
			if (!gso)
				n = sendmmsg(a->fd, m, want, 0);
		}
		if (n < 0) {
			n = 0;
			w->errors++;
		}
		/* Unsent messages give their sequence numbers back, so gaps at
		 * the peer mean loss in the network or the server. */
		for (unsigned k = want; k-- > (unsigned)n;)
			a->seq[chan_of[k]]--;
		if ((unsigned)n < want)
			a->next_chan = chan_of[n];
		__atomic_fetch_add(&w->sent, (uint64_t)n, __ATOMIC_RELAXED);
		/* A batch goes to one allocation (one socket); batches rotate
		 * over this thread's allocations. */
		cur += o->threads;
		if (cur >= o->allocs)
			cur = w->idx;
	}
	free(bufs);
	return NULL;
}

static void *receiver(void *arg)
{
	struct client *c = arg;
	const struct opts *o = c->o;
	struct pollfd *pfd = calloc(o->allocs, sizeof(*pfd));
	uint8_t (*bufs)[RX_SLOT] = calloc(BATCH, RX_SLOT);

	if (!pfd || !bufs)
		goto out;
	for (unsigned i = 0; i < o->allocs; i++)
		pfd[i] = (struct pollfd){ .fd = c->allocs[i].fd, .events = POLLIN };
	while (!__atomic_load_n(&c->rx_stop, __ATOMIC_RELAXED)) {
		int n = poll(pfd, o->allocs, 100);

		for (unsigned i = 0; n > 0 && i < o->allocs; i++)
			for (int k = 0; k < 64 && (pfd[i].revents & POLLIN); k++)
				if (rx_batch(pfd[i].fd, bufs, &c->rx, false, CHANNELDATA_HDR_LEN) < BATCH)
					break;
	}
out:
	free(pfd);
	free(bufs);
	return NULL;
}

static uint64_t total_sent(const struct worker *w, unsigned n, uint64_t *errors)
{
	uint64_t s = 0;

	if (errors)
		*errors = 0;
	for (unsigned i = 0; i < n; i++) {
		s += __atomic_load_n(&w[i].sent, __ATOMIC_RELAXED);
		if (errors)
			*errors += w[i].errors;
	}
	return s;
}

void sleep_until(int64_t t)
{
	struct timespec ts = { t / 1000000000, t % 1000000000 };

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int run_data_plane(struct client *c, struct worker *w, double alloc_s, double setup_s)
{
	const struct opts *o = c->o;
	unsigned n = c->live ? live_threads(c->live) : o->threads < o->allocs ? o->threads : o->allocs;
	int64_t start = clock_mono_ns(), end = start + (int64_t)(o->duration * 1e9), actual_end;
	uint64_t last = 0, sent, errors;
	pthread_t rth;
	struct rx_sum s;
	double secs, bind_s = setup_s - alloc_s;

	for (unsigned i = 0; i < o->allocs; i++) {
		sock_buffers(c->allocs[i].fd, SOCK_BUF);
		c->allocs[i].seq = calloc(o->chans, sizeof(uint32_t));
		if (!c->allocs[i].seq)
			return -ENOMEM;
	}
	/* Echoes over TCP/TLS are read by the senders (stream_drain). */
	if (o->tp == TURNC_UDP && pthread_create(&rth, NULL, receiver, c) != 0)
		return -EAGAIN;
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){ .c = c, .idx = i, .end_ns = end, .rate = o->rate / n,
					
					.cpu = c->live ? live_cpu(c->live, i) : -1 };
		if (pthread_create(&w[i].th, NULL, c->live ? injector : sender, &w[i]) != 0) {
			g_stop = 1;
			n = i;
			break;
		}
	}
	for (int sec = 1; !g_stop && start + (int64_t)sec * 1000000000 <= end; sec++) {
		sleep_until(start + (int64_t)sec * 1000000000);
		if (g_stop)
			break;
		sent = total_sent(w, n, NULL);
		fprintf(stderr, "client: t=%ds sent=%llu pps=%llu echo_rx=%llu\n", sec,
			(unsigned long long)sent, (unsigned long long)(sent - last),
			(unsigned long long)__atomic_load_n(&c->rx.pkts, __ATOMIC_RELAXED));
		last = sent;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(w[i].th, NULL);
	actual_end = clock_mono_ns();
	sent = total_sent(w, n, &errors);
	for (int64_t t = actual_end, last = t, seen = -1;
	     t < actual_end + (int64_t)ECHO_GRACE_MS * 1000000; t = clock_mono_ns()) {
		int64_t got = (int64_t)__atomic_load_n(&c->rx.pkts, __ATOMIC_RELAXED);

		if (got >= (int64_t)sent || (got == seen && t - last > ECHO_QUIET_MS * 1000000LL))
			break;
		if (got != seen)
			seen = got, last = t;
		sleep_until(t + 20 * 1000000);
	}
	__atomic_store_n(&c->rx_stop, 1, __ATOMIC_RELAXED);
	if (o->tp == TURNC_UDP)
		pthread_join(rth, NULL);

	secs = (actual_end - start) / 1e9;
	rx_summarize(&c->rx, &s);
	fprintf(stderr, "client: %u allocations in %.3f s (%.1f/s), permission + %u channel(s) "
		"each in %.3f s (%.1f/s); sent %llu in "
		"%.3f s (%.1f pps, asked %.0f), %llu send errors; echoed %llu, lost %llu (%.3f%%), "
		"rtt p50 %.1f us p99 %.1f us\n", o->allocs, alloc_s, o->allocs / alloc_s, o->chans,
		bind_s, o->allocs / bind_s,
		(unsigned long long)sent, secs, secs > 0 ? sent / secs : 0, o->rate,
		(unsigned long long)errors, (unsigned long long)c->rx.pkts,
		(unsigned long long)s.lost, s.loss_pct, hist_pct(&c->rx.lat, 50) / 1e3,
		hist_pct(&c->rx.lat, 99) / 1e3);
	if (o->json)
		printf("{\"mode\":\"client\",\"allocs\":%u,\"channels\":%u,\"threads\":%u,"
		       "\"payload\":%zu,\"alloc_s\":%.3f,\"allocs_per_s\":%.1f,\"setup_s\":%.3f,"
		       "\"bind_s\":%.3f,\"binds_per_s\":%.1f,"
		       "\"duration_s\":%.3f,\"rate_pps\":%.0f,\"sent\":%llu,\"offered_pps\":%.1f,"
		       "\"send_errors\":%llu,\"echo_received\":%llu,\"echo_pps\":%.1f,"
		       "\"echo_lost\":%llu,\"loss_pct\":%.3f,\"reorder\":%llu,"
		       "\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f}\n",
		       o->allocs, o->allocs * o->chans, n, o->len, alloc_s, o->allocs / alloc_s,
		       setup_s, bind_s, o->allocs / bind_s, secs, o->rate, (unsigned long long)sent,
		       secs > 0 ? sent / secs : 0,
		       (unsigned long long)errors, (unsigned long long)c->rx.pkts,
		       secs > 0 ? c->rx.pkts / secs : 0, (unsigned long long)s.lost, s.loss_pct,
		       (unsigned long long)s.reorder, hist_pct(&c->rx.lat, 50) / 1e3,
		       hist_pct(&c->rx.lat, 99) / 1e3);
	return 0;
}

int run_client(const struct opts *o)
{
	struct client c = { .o = o, .rx_lock = PTHREAD_MUTEX_INITIALIZER };
	struct worker *w = calloc(o->threads, sizeof(*w));
	int64_t t0, t1, t2;
	int ret;

	c.allocs = calloc(o->allocs, sizeof(*c.allocs));
	if (!w || !c.allocs) {
		ret = -ENOMEM;
		goto out;
	}
	ret = addr_parse(o->server, DEFAULT_PORT, &c.server);
	if (ret < 0) {
		fprintf(stderr, "xturngen: bad server address %s\n", o->server);
		goto out;
	}
	/* One socket per allocation, and epoll, peers, stdio, BPF. */
	sock_raise_nofile((rlim_t)o->allocs + 64);
	ret = open_allocs(&c);
	if (ret < 0)
		goto out;
	t0 = clock_mono_ns();
	ret = run_phase(&c, w, PH_ALLOCATE);
	t1 = clock_mono_ns();
	if (ret == 0)
		ret = run_phase(&c, w, PH_BIND);
	t2 = clock_mono_ns();
	if (ret < 0)
		goto out;
	fprintf(stderr, "xturngen: %u allocations x %u channels ready\n", o->allocs, o->chans);
	if (o->pcap) {
		ret = write_pcap(&c);
		if (ret < 0) {
			fprintf(stderr, "xturngen: %s: %s\n", o->pcap, strerror(-ret));
			goto out;
		}
	}
	if (o->duration > 0 && o->live_if)
		ret = live_setup(&c);
	if (o->duration > 0 && ret == 0)
		ret = run_data_plane(&c, w, (t1 - t0) / 1e9, (t2 - t0) / 1e9);
out:
	if (c.allocs)
		run_phase(&c, w, PH_RELEASE);
	for (unsigned i = 0; c.allocs && i < o->allocs; i++) {
		struct alloc *a = &c.allocs[i];

		turnc_close(a->tc);
		free(a->seq);
	}
	free(c.allocs);
	free(c.rx.flows);
	live_free(c.live);
	free(w);
	return ret;
}
