/* TURN over TCP and TLS between client and server (RFC 8656 §3.1, §6): the
 * listening sockets, the accepted connections of one worker, per-connection
 * framing of the byte stream into STUN and ChannelData messages, bounded
 * send buffering, and TLS (1.2+) with OpenSSL. The relayed transport stays
 * UDP. The caller runs the protocol; this module only moves messages.
 *
 * A connection that breaks a rule (bytes that are neither STUN nor
 * ChannelData, a message above STUN_FRAME_MAX, a send buffer above the
 * bound, a handshake or idle timeout, EOF, a socket error) is marked doomed
 * and handed back by stream_next_doomed(): the caller closes it between two
 * event batches, never in the middle of handling one of its messages. */
#ifndef XT_STREAM_H
#define XT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <openssl/ssl.h>

#include "common/counters.h"
#include "common/stun.h"

struct stream_limits {
	unsigned max_conns;		/* per set (worker); more are accepted and closed */
	/* Connections without an allocation (not held) from one address
	 * (IPv6: its /64), per set; 0: no limit. More are accepted and closed,
	 * so one source cannot take every slot before authenticating. */
	unsigned max_pending_per_ip;
	unsigned idle_timeout;		/* s a connection may live without an allocation */
	unsigned handshake_timeout;	/* s to finish the TLS handshake */
	size_t max_sndbuf;		/* bytes queued for a client that does not read */
};

struct stream_conn {
	int fd;
	struct sockaddr_storage peer;	/* the client, canonical */
	struct sockaddr_storage local;	/* our address it connected to, canonical */
	void *user;			/* the caller's; also the epoll data pointer */
	/* private */
	SSL *ssl;			/* NULL: plain TCP */
	bool doomed, held, tls_wants_write;
	bool pending;			/* counted in its address's pending count */
	uint32_t events;		/* registered with epoll */
	bool tls_failed;		/* no close_notify after a fatal TLS error */
	bool dirty;			/* ChannelData queued for stream_flush */
	time_t deadline;		/* idle deadline; unused while held */
	time_t hs_deadline;		/* TLS handshake deadline */
	struct stream_conn *next_doomed, *next_dirty;
	uint8_t *wbuf;
	size_t woff, wlen, wcap;
	uint8_t *hold;			/* TLS bytes read, not yet taken by OpenSSL */
	size_t hold_len;
	size_t rlen;
	uint8_t rbuf[STUN_FRAME_MAX];	/* a message split across reads */
};

struct stream_set;

struct config;

/* A TLS server context (TLS 1.2 and later; 1.3 only with no-tlsv1_2) from
 * the configuration's PEM files (cert, pkey, pkey-pwd, cipher-list). 0, or
 * -errno with err naming the config key and OpenSSL's reason. */
int stream_tls_new(SSL_CTX **out, const struct config *cfg, char *err, size_t errlen);

/* A listening TCP socket on addr with SO_REUSEPORT (every worker has its
 * own on the same address): the fd, or -errno. */
int stream_listen(const struct sockaddr_storage *addr);

/* The connections of one worker, registered with its epoll set. */
struct stream_set *stream_set_new(const struct stream_limits *lim, int epfd);
/* Closes every connection left (doom them first to close them the usual way). */
void stream_set_free(struct stream_set *set);
/* Dooms every connection (shutdown). */
void stream_doom_all(struct stream_set *set);
const struct stream_stats *stream_stats(const struct stream_set *set);
unsigned stream_count(const struct stream_set *set);

/* Accepts one connection from listener lfd (tls: NULL for plain TCP).
 * 0 and *out (not yet watched: set user, then stream_watch), -EAGAIN when
 * none is waiting, -EDQUOT when it was over max_conns or its address over
 * max_pending_per_ip, or when no descriptor was left (closed, counted), or
 * another -errno from accept. Out of descriptors (EMFILE, ENFILE), the set
 * gives up a spare one to take the connection off the backlog and close
 * it: left there, it would wake the listener for ever. */
int stream_accept(struct stream_set *set, int lfd, SSL_CTX *tls, time_t now,
		  struct stream_conn **out);
/* A connection a daemon before us accepted (a handover; plain TCP): taken
 * on as if accepted now. 0, or -errno (then fd is closed). */
int stream_adopt(struct stream_set *set, int fd, time_t now, struct stream_conn **out);
/* Calls fn for every open connection. */
void stream_foreach(struct stream_set *set, void (*fn)(void *ctx, struct stream_conn *c),
		    void *ctx);
/* May it pass to another process as it is: plain TCP, nothing half read
 * or waiting to be written (TLS state cannot pass). */
bool stream_passable(const struct stream_conn *c);
/* Adds the connection to the epoll set with data.ptr = c->user. */
int stream_watch(struct stream_set *set, struct stream_conn *c);
/* The connection on fd, or NULL. */
struct stream_conn *stream_get(const struct stream_set *set, int fd);
static inline bool stream_is_tls(const struct stream_conn *c)
{
	return c->ssl != NULL;
}

/* Called for each complete message, without ChannelData padding. */
typedef void (*stream_msg_fn)(void *arg, struct stream_conn *c, const uint8_t *msg, size_t len);
/* Handles an epoll event: reads what is there (bounded), calls fn per
 * message, and writes what is queued. Dooms the connection on a violation. */
void stream_event(struct stream_set *set, struct stream_conn *c, stream_msg_fn fn, void *arg);
/* Queues one message (ChannelData is padded to 4 bytes here) and writes
 * what the socket takes: a STUN message at once (with what waits before
 * it), ChannelData at stream_flush, so a batch of relayed media goes in
 * one write (over TLS, in records of up to 16 KB rather than one each).
 * 0, or -EPIPE (doomed already) / -ENOBUFS (the bound was exceeded: doomed
 * now) / -EMSGSIZE. */
int stream_send(struct stream_set *set, struct stream_conn *c, const struct iovec *iov,
		int iovcnt);
/* Writes the ChannelData stream_send queued since the last call: the
 * caller's batch end. */
void stream_flush(struct stream_set *set);
/* An allocation now lives on the connection (held: no idle timeout) or
 * went away (the idle timeout starts again at now). */
void stream_hold(struct stream_set *set, struct stream_conn *c, bool held, time_t now);
/* Dooms connections past their idle or handshake deadline. */
void stream_expire(struct stream_set *set, time_t now);
/* Takes the next doomed connection off the list, or NULL. */
struct stream_conn *stream_next_doomed(struct stream_set *set);
/* Closes and frees (TLS: a best-effort close_notify first). */
void stream_close(struct stream_set *set, struct stream_conn *c);

#endif
