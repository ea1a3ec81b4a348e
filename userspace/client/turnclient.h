/* A blocking, single-socket TURN client (RFC 8656) for xturngen and the
 * end-to-end tests, over UDP, TCP or TLS to the server (the relayed
 * transport is always UDP). One struct turnc = one client socket connected
 * to the server = at most one allocation. Requests over UDP are
 * retransmitted with RFC 8489 timers (RTO doubling, Rc transmissions, last
 * wait 16 x RTO); over TCP/TLS they are sent once and wait as long.
 *
 * Return values: 0 on success; a negative errno for local failures
 * (-ETIMEDOUT when no response came); -CODE (-300..-699) when the server
 * answered with an error response CODE, e.g. -403. turnc_error() then holds
 * the code and reason phrase; turnc_response() the whole response. */
#ifndef XT_TURNCLIENT_H
#define XT_TURNCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/stun.h"

/* Is r (a turnc_ return value) a STUN error response code? */
#define TURNC_IS_STUN_ERR(r) ((r) <= -300 && (r) >= -699)
#define TURNC_MAX_CHANNELS 64	/* channel->peer table for turnc_recv() */
#define TURNC_RTO_MS 500	/* RFC 8489 defaults */
#define TURNC_RC 7

struct turnc;

enum turnc_transport {
	TURNC_UDP,
	TURNC_TCP,
	/* TLS 1.2+; the server's certificate is not verified (a test and load
	 * client: it proves the transport, not the server's identity). */
	TURNC_TLS,
};

/* Credentials are a static user and password; see turnc_open_rest() for
 * the TURN REST form. local may be NULL (ephemeral port, server's family). */
int turnc_open(struct turnc **out, const struct sockaddr_storage *server,
	       const struct sockaddr_storage *local, const char *username, const char *password);
/* The same over a transport: TCP and TLS connect (and handshake) here.
 * Writing to a connection the server closed raises SIGPIPE over TLS: the
 * caller ignores it. */
int turnc_open_tp(struct turnc **out, const struct sockaddr_storage *server,
		  const struct sockaddr_storage *local, const char *username,
		  const char *password, enum turnc_transport tp);
/* TURN REST: username "<now+ttl>:<name>" (just "<now+ttl>" if name is empty),
 * password base64(HMAC-SHA1(secret, username)). */
int turnc_open_rest(struct turnc **out, const struct sockaddr_storage *server,
		    const struct sockaddr_storage *local, const char *name, const char *secret,
		    unsigned ttl_s);
/* A client whose datagrams go through callbacks instead of a socket, to
 * drive a server in the same process (the protocol's unit tests). send
 * hands one datagram (UDP framing) to the server, which answers within the
 * call; recv takes the next datagram the server sent this client: its
 * length, or 0 when none is queued (nothing is waited for, so a request
 * the server does not answer fails at once with -ETIMEDOUT, sent once). */
struct turnc_pipe {
	void *ctx;
	int (*send)(void *ctx, const void *buf, size_t len);
	int (*recv)(void *ctx, void *buf, size_t cap);
	struct sockaddr_storage local;	/* the client's address, as the server sees it */
};
int turnc_open_pipe(struct turnc **out, const struct turnc_pipe *pipe, const char *username,
		    const char *password);
void turnc_close(struct turnc *t);

/* The connected socket (the data plane may send/recv on it directly over
 * UDP and TCP; TLS needs turnc_send_raw); -1 for a pipe. */
int turnc_fd(const struct turnc *t);
/* Local address of the socket. */
int turnc_local_addr(const struct turnc *t, struct sockaddr_storage *out);
/* Retransmission timers: initial RTO and number of transmissions (Rc). */
void turnc_set_timers(struct turnc *t, unsigned rto_ms, unsigned rc);
/* Prefer PASSWORD-ALGORITHM SHA-256 when the server offers it (RFC 8489
 * §9.2.4) and sign with MESSAGE-INTEGRITY-SHA256. Default: MD5 and
 * MESSAGE-INTEGRITY (what coturn speaks). */
void turnc_set_sha256(struct turnc *t, bool on);

struct turnc_error {
	int code;		/* STUN error code of the last error response, else 0 */
	char reason[128];
	int address_error;	/* ADDRESS-ERROR-CODE of a dual allocation, else 0 */
};
const struct turnc_error *turnc_error(const struct turnc *t);
/* The last response received (success or error); buf points into t and is
 * valid until the next call on t. NULL if none. */
const struct stun_msg *turnc_response(const struct turnc *t);

struct turnc_alloc_opts {
	uint32_t lifetime;		/* 0: no LIFETIME attribute (server default) */
	uint8_t family;			/* 0 or STUN_FAMILY_IPV4/IPV6: REQUESTED-ADDRESS-FAMILY */
	uint8_t additional_family;	/* 0 or STUN_FAMILY_IPV6: ADDITIONAL-ADDRESS-FAMILY */
	bool even_port;			/* EVEN-PORT */
	bool reserve_next;		/* EVEN-PORT R bit: reserve port + 1 */
	bool dont_fragment;		/* DONT-FRAGMENT */
	bool has_token;			/* send RESERVATION-TOKEN below */
	uint8_t token[8];
};

struct turnc_alloc {
	struct sockaddr_storage relayed[2];	/* in response order */
	unsigned nrelayed;
	struct sockaddr_storage mapped;		/* XOR-MAPPED-ADDRESS (AF_UNSPEC if absent) */
	uint32_t lifetime;
	bool has_token;				/* RESERVATION-TOKEN in the response */
	uint8_t token[8];
};

/* Allocate; answers the 401 challenge and a 438 stale nonce by retrying.
 * opts may be NULL (defaults). */
int turnc_allocate(struct turnc *t, const struct turnc_alloc_opts *opts, struct turnc_alloc *res);
/* Refresh with LIFETIME; 0 deletes the allocation. *granted may be NULL. */
int turnc_refresh(struct turnc *t, uint32_t lifetime, uint32_t *granted);
/* One CreatePermission carrying one XOR-PEER-ADDRESS per peer. */
int turnc_create_permission(struct turnc *t, const struct sockaddr_storage *peers, unsigned n);
int turnc_channel_bind(struct turnc *t, uint16_t channel, const struct sockaddr_storage *peer);
/* Plain Binding request (no credentials): XOR-MAPPED-ADDRESS. */
int turnc_binding(struct turnc *t, struct sockaddr_storage *mapped);

int turnc_send_indication(struct turnc *t, const struct sockaddr_storage *peer,
			  const void *data, size_t len);
int turnc_send_channel(struct turnc *t, uint16_t channel, const void *data, size_t len);
/* Writes bytes as they are: one datagram over UDP, part of the byte
 * stream over TCP/TLS (a message may be split across calls). */
int turnc_send_raw(struct turnc *t, const void *buf, size_t len);
/* Writes n messages, each as turnc_send_raw would; over TLS each is its
 * own record but all go out in one write() at the end. The number
 * written, or -errno when none was (over TLS, when the write failed). */
int turnc_send_batch(struct turnc *t, const struct iovec *iov, unsigned n);
/* Waits up to timeout_ms for a ChannelData message or a Data indication.
 * *channel is its channel (0 for a Data indication); *peer its peer
 * (AF_UNSPEC for a channel this client did not bind). Returns the data
 * length (truncated to cap), -ETIMEDOUT, or over TCP/TLS -ECONNRESET when
 * the server closed the connection (-EPROTO: it broke the framing). */
int turnc_recv(struct turnc *t, int timeout_ms, struct sockaddr_storage *peer,
	       uint16_t *channel, void *buf, size_t cap);

/* Generic request: fill adds the method's attributes (may be NULL); with
 * auth, USERNAME/REALM/NONCE and MESSAGE-INTEGRITY follow and the 401/438
 * dance is done. The response is turnc_response(). */
typedef void (*turnc_fill_fn)(struct stun_builder *b, void *arg);
int turnc_request(struct turnc *t, uint16_t method, turnc_fill_fn fill, void *arg, bool auth);
/* Appends USERNAME, REALM, NONCE (and the password-algorithm attributes) and
 * MESSAGE-INTEGRITY with the current credentials, for tests that build a
 * request by hand; -ENOKEY before the first challenge was answered. */
int turnc_sign(struct turnc *t, struct stun_builder *b);
/* Sends a pre-built datagram as is (retransmitted like a request) and
 * returns the length of the STUN response whose transaction ID matches
 * bytes 8..19 of req (any STUN message from the server if req is shorter
 * than a header), copied to resp; -ETIMEDOUT if none came. */
int turnc_raw(struct turnc *t, const void *req, size_t len, void *resp, size_t cap);

/* Pipelining many clients from one thread (UDP): the caller sends each
 * request on turnc_fd() itself, retransmits it as is, and hands every
 * response whose transaction ID (bytes 8..19) matches to
 * turnc_take_response(). turnc_request() is these two around a blocking
 * exchange. */
/* Builds method's request with a new transaction ID into buf (STUN_MAX_MSG
 * is enough): with auth, signed once a challenge was taken
 * (turnc_has_key()). Returns its length or -errno. */
int turnc_build(struct turnc *t, uint16_t method, turnc_fill_fn fill, void *arg, bool auth,
		void *buf, size_t cap);
bool turnc_has_key(const struct turnc *t);
/* Takes the response to a request built with auth and signed_req (whether
 * it was signed): 0 on success, 1 when it was a challenge (a 401 to an
 * unsigned request, or a 438) that was taken, so the request is to be
 * built and sent again; else an error as turnc_request() returns it.
 * turnc_response() and turnc_error() describe it afterwards. */
int turnc_take_response(struct turnc *t, const void *resp, size_t len, bool auth,
			bool signed_req);
/* The allocation in the last response (a success to an Allocate). */
int turnc_alloc_result(struct turnc *t, struct turnc_alloc *res);
/* The attributes each request carries, for turnc_build(). */
struct turnc_peers {
	const struct sockaddr_storage *peers;
	unsigned n;
};
struct turnc_bind {
	uint16_t channel;
	const struct sockaddr_storage *peer;
};
void turnc_fill_allocate(struct stun_builder *b, void *arg);	/* const struct turnc_alloc_opts * */
void turnc_fill_lifetime(struct stun_builder *b, void *arg);	/* const uint32_t * (Refresh) */
void turnc_fill_peers(struct stun_builder *b, void *arg);	/* const struct turnc_peers * */
void turnc_fill_channel_bind(struct stun_builder *b, void *arg);	/* const struct turnc_bind * */

#endif
