#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/sock.h"
#include "daemon/outq.h"

#define OUTQ_MAX 256		/* datagrams queued before a flush */
#define OUTQ_HASH 512		/* flow table: a power of 2 > OUTQ_MAX */
#define OUTQ_END UINT32_MAX

/* Outgoing datagrams of one receive batch. Payloads are copied: callers
 * build responses on their stacks. Datagrams are grouped into flows (same
 * socket, destination and source address), each keeping its order. A
 * flow's datagrams of one size leave as one UDP GSO send (the kernel routes
 * and builds the train once) and a socket's sends as one sendmmsg: a
 * client's train of ChannelData for several peers becomes one send per
 * peer. Order between flows is not kept; nothing needs it. */
struct outq {
	unsigned n, nflows;
	struct {
		int fd;
		uint16_t len;
		uint16_t ctrl_len;
		unsigned next;		/* next datagram of its flow, or OUTQ_END */
	} d[OUTQ_MAX];
	struct sockaddr_storage to[OUTQ_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + SOCK_GSO_CMSG_SPACE];
		struct cmsghdr align;
	} ctrl[OUTQ_MAX];
	uint8_t bufs[OUTQ_MAX][OUTQ_DGRAM_MAX];
	struct {
		unsigned first, last;	/* datagrams */
	} flows[OUTQ_MAX];
	uint16_t table[OUTQ_HASH];	/* flow index + 1, 0: free (open addressing) */
	/* built by outq_flush */
	struct iovec iovs[OUTQ_MAX];
	struct mmsghdr sends[OUTQ_MAX];
	unsigned count[OUTQ_MAX];	/* datagrams in each send */
	int send_fd[OUTQ_MAX];
	uint64_t drops;
};

struct outq *outq_new(void)
{
	return calloc(1, sizeof(struct outq));
}

void outq_free(struct outq *q)
{
	free(q);
}

uint64_t outq_drops(const struct outq *q)
{
	return q->drops;
}

/* A run: datagram d and those after it in its flow that can share one GSO
 * send (every one but the last of the first one's size, the last no
 * larger, none empty). Puts their iovecs at q->iovs + ni and returns how
 * many; *rest is the datagram after the run. */
static unsigned outq_run(struct outq *q, unsigned d, unsigned ni, unsigned *rest)
{
	size_t seg = q->d[d].len, bytes = 0;
	unsigned n = 0;

	for (;;) {
		size_t len = q->d[d].len;

		q->iovs[ni + n++] = (struct iovec){ .iov_base = q->bufs[d], .iov_len = len };
		bytes += len;
		d = q->d[d].next;
		if (d == OUTQ_END || n == SOCK_GSO_MAX_SEGS || len != seg || !q->d[d].len ||
		    q->d[d].len > seg || bytes + q->d[d].len > SOCK_GSO_MAX_BYTES)
			break;
	}
	*rest = d;
	return n;
}

/* Sends sends[i..j), all on socket fd, counting what the kernel refuses. */
static void outq_send(struct outq *q, int fd, unsigned i, unsigned j)
{

	while (i < j) {
		int n = sendmmsg(fd, q->sends + i, j - i, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && errno == EAGAIN) {
			/* Socket buffer full: UDP's answer is to drop, and count. */
			for (; i < j; i++)
				q->drops += q->count[i];
			return;
		}
		if (n > 0) {
			i += (unsigned)n;
			continue;
		}
		/* Refused (no route, too big, or GSO not possible here): a run
		 * goes again datagram by datagram, once. */
		if (q->count[i] > 1) {
			struct mmsghdr one[SOCK_GSO_MAX_SEGS];
			struct msghdr *mh = &q->sends[i].msg_hdr;
			unsigned c = q->count[i];

			for (unsigned k = 0; k < c; k++) {
				one[k].msg_hdr = *mh;
				one[k].msg_hdr.msg_iov = mh->msg_iov + k;
				one[k].msg_hdr.msg_iovlen = 1;
				one[k].msg_hdr.msg_controllen -= SOCK_GSO_CMSG_SPACE;
				if (!one[k].msg_hdr.msg_controllen)
					one[k].msg_hdr.msg_control = NULL;
			}
			n = sendmmsg(fd, one, c, MSG_DONTWAIT);
			q->drops += c - (unsigned)(n > 0 ? n : 0);
		} else {
			q->drops++;
		}
		i++;
	}
}

void outq_flush(struct outq *q)
{
	unsigned ns = 0, ni = 0, from = 0;

	for (unsigned f = 0; f < q->nflows; f++) {
		for (unsigned d = q->flows[f].first; d != OUTQ_END;) {
			unsigned head = d, c = outq_run(q, d, ni, &d);
			struct msghdr *mh = &q->sends[ns].msg_hdr;

			*mh = (struct msghdr){
				.msg_name = &q->to[head],
				.msg_namelen = addr_len(&q->to[head]),
				.msg_iov = &q->iovs[ni],
				.msg_iovlen = c,
				.msg_control = q->d[head].ctrl_len ? q->ctrl[head].buf : NULL,
				.msg_controllen = q->d[head].ctrl_len,
			};
			if (c > 1) {
				sock_put_gso(q->ctrl[head].buf + mh->msg_controllen, q->d[head].len);
				mh->msg_control = q->ctrl[head].buf;
				mh->msg_controllen += SOCK_GSO_CMSG_SPACE;
			}
			q->count[ns] = c;
			q->send_fd[ns] = q->d[head].fd;
			/* One sendmmsg for each run of sends on one socket. */
			if (q->send_fd[ns] != q->send_fd[from]) {
				outq_send(q, q->send_fd[from], from, ns);
				from = ns;
			}
			ns++;
			ni += c;
		}
	}
	if (ns)
		outq_send(q, q->send_fd[from], from, ns);
	q->n = q->nflows = 0;
	memset(q->table, 0, sizeof(q->table));
}

int outq_push(struct outq *q, int fd, const struct sockaddr_storage *to,
	      const struct sockaddr_storage *src, const struct iovec *iov, int iovcnt)
{
	unsigned n, slot;
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > OUTQ_DGRAM_MAX) {
		q->drops++;	/* larger than any media datagram */
		return -EMSGSIZE;
	}
	if (q->n == OUTQ_MAX)
		outq_flush(q);
	n = q->n;
	len = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(q->bufs[n] + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	q->d[n].fd = fd;
	q->d[n].len = (uint16_t)len;
	q->d[n].ctrl_len = 0;
	q->d[n].next = OUTQ_END;
	q->to[n] = *to;
	memset(&q->ctrl[n], 0, sizeof(q->ctrl[n]));
	if (src) {
		/* Answer from the address the client talked to (listeners may be
		 * bound to the any-address on a multi-homed host). */
		struct cmsghdr *cm = &q->ctrl[n].align;

		if (src->ss_family == AF_INET) {
			struct in_pktinfo pi = {
				.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr };
			q->d[n].ctrl_len = CMSG_SPACE(sizeof(pi));
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		} else {
			struct in6_pktinfo pi = {
				.ipi6_addr = ((const struct sockaddr_in6 *)src)->sin6_addr };
			q->d[n].ctrl_len = CMSG_SPACE(sizeof(pi));
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		}
	}

	/* Its flow: same socket, destination and source address. */
	slot = (unsigned)(addr_hash(to, true) ^ (uint64_t)fd * 0x9E3779B97F4A7C15ULL);
	for (;; slot++) {
		unsigned f, h;

		slot &= OUTQ_HASH - 1;
		if (!q->table[slot]) {
			f = q->nflows++;
			q->flows[f].first = q->flows[f].last = n;
			q->table[slot] = (uint16_t)(f + 1);
			break;
		}
		f = q->table[slot] - 1u;
		h = q->flows[f].first;
		if (q->d[h].fd == fd && q->d[h].ctrl_len == q->d[n].ctrl_len &&
		    addr_len(&q->to[h]) == addr_len(to) && addr_eq(&q->to[h], to) &&
		    !memcmp(q->ctrl[h].buf, q->ctrl[n].buf, q->d[n].ctrl_len)) {
			q->d[q->flows[f].last].next = n;
			q->flows[f].last = n;
			break;
		}
	}
	q->n++;
	return 0;
}
