/* --peer: counting (and with --echo, echoing) sockets on the peer addresses. */
#include <poll.h>

#include "xturngen.h"

static void print_rx_json(const char *mode, const struct rx *r, double secs)
{
	struct rx_sum s;

	rx_summarize(r, &s);
	printf("{\"mode\":\"%s\",\"duration_s\":%.3f,\"flows\":%u,\"received\":%llu,"
	       "\"bytes\":%llu,\"pps\":%.1f,\"expected\":%llu,\"lost\":%llu,\"loss_pct\":%.3f,"
	       "\"reorder\":%llu,\"bad\":%llu,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f}\n",
	       mode, secs, s.flows, (unsigned long long)r->pkts, (unsigned long long)r->bytes,
	       secs > 0 ? (double)r->pkts / secs : 0, (unsigned long long)s.expected,
	       (unsigned long long)s.lost, s.loss_pct, (unsigned long long)s.reorder,
	       (unsigned long long)r->bad, hist_pct(&r->lat, 50) / 1e3,
	       hist_pct(&r->lat, 99) / 1e3);
}

int run_peer(const struct opts *o)
{
	unsigned nfd = 0;
	struct pollfd *pfd = calloc((size_t)o->npeers * o->ports, sizeof(*pfd));
	uint8_t (*bufs)[RX_SLOT] = calloc(BATCH, RX_SLOT);
	struct rx r = { 0 };
	int64_t start = clock_mono_ns(), next_report = start + 1000000000, end;
	uint64_t last_pkts = 0;
	int ret = 0;

	if (!pfd || !bufs) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < o->npeers; i++) {
		for (unsigned p = 0; p < o->ports; p++) {
			struct sockaddr_storage a = o->peers[i];
			char s[ADDR_STRLEN];
			int fd;

			addr_set_port(&a, (uint16_t)(addr_port(&a) + p));
			fd = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || bind(fd, (struct sockaddr *)&a, addr_len(&a)) < 0) {
				ret = -errno;
				fprintf(stderr, "xturngen: listen %s: %s\n",
					addr_str(&a, true, s, sizeof(s)), strerror(errno));
				if (fd >= 0)
					close(fd);
				goto out;
			}
			sock_buffers(fd, SOCK_BUF);
			pfd[nfd++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
	}
	fprintf(stderr, "xturngen: peer listening on %u socket(s)%s\n", nfd,
		o->echo ? ", echoing" : "");
	end = o->duration > 0 ? start + (int64_t)(o->duration * 1e9) : INT64_MAX;
	while (!g_stop && clock_mono_ns() < end) {
		int n = poll(pfd, nfd, 100);
		int64_t now;

		if (n < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		for (unsigned i = 0; n > 0 && i < nfd; i++) {
			/* A bounded number of batches per wakeup keeps the
			 * progress line and the stop check timely. */
			for (int k = 0; k < 64 && (pfd[i].revents & POLLIN); k++)
				if (rx_batch(pfd[i].fd, bufs, &r, o->echo, 0) < BATCH)
					break;
		}
		now = clock_mono_ns();
		if (now >= next_report) {
			uint64_t p = __atomic_load_n(&r.pkts, __ATOMIC_RELAXED);

			fprintf(stderr, "peer: t=%.0fs rx=%llu pps=%llu lat_p50=%.1fus\n",
				(now - start) / 1e9, (unsigned long long)p,
				(unsigned long long)(p - last_pkts), hist_pct(&r.lat, 50) / 1e3);
			last_pkts = p;
			next_report += 1000000000;
		}
	}
	{
		double secs = r.last_ns > r.first_ns ? (r.last_ns - r.first_ns) / 1e9 : 0;
		struct rx_sum s;

		rx_summarize(&r, &s);
		fprintf(stderr, "peer: received %llu in %u flows, lost %llu (%.3f%%), reorder %llu, "
			"latency p50 %.1f us p99 %.1f us\n", (unsigned long long)r.pkts, s.flows,
			(unsigned long long)s.lost, s.loss_pct, (unsigned long long)s.reorder,
			hist_pct(&r.lat, 50) / 1e3, hist_pct(&r.lat, 99) / 1e3);
		if (o->json)
			print_rx_json("peer", &r, secs);
	}
out:
	for (unsigned i = 0; i < nfd; i++)
		close(pfd[i].fd);
	free(pfd);
	free(bufs);
	free(r.flows);
	return ret;
}
