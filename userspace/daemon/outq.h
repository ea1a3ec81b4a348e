/* A relay thread's outgoing datagrams, queued while it handles one receive
 * batch and sent together at the end of it (or when the queue is full).
 * Payloads are copied: callers build responses on their stacks. A flow
 * (socket, destination, source address) keeps its order; its datagrams of
 * one size leave as one UDP GSO send, and a socket's sends as one
 * sendmmsg. What the kernel refuses is dropped and counted, as UDP does. */
#ifndef XT_OUTQ_H
#define XT_OUTQ_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define OUTQ_DGRAM_MAX 2048	/* larger than any media datagram */

struct outq;

struct outq *outq_new(void);
void outq_free(struct outq *q);
/* Queues one datagram on fd to to; src (may be NULL) sets its source
 * address (a listener bound to the any-address answers from the address
 * the client talked to). 0, or -EMSGSIZE (over OUTQ_DGRAM_MAX: dropped). */
int outq_push(struct outq *q, int fd, const struct sockaddr_storage *to,
	      const struct sockaddr_storage *src, const struct iovec *iov, int iovcnt);
/* Sends everything queued. Before a queued datagram's socket is closed:
 * its fd number could be reused by a new socket. */
void outq_flush(struct outq *q);
/* Datagrams not sent: refused by the kernel, or too big. */
uint64_t outq_drops(const struct outq *q);

#endif
