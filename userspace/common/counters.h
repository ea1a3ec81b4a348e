/* The counters the daemon's modules keep (they only ever grow) and export:
 * defined here, apart from the modules, because the metrics renderer
 * (common/metrics.c) and xturnstat read them without linking those. */
#ifndef XT_COUNTERS_H
#define XT_COUNTERS_H

#include <stdint.h>

#define XT_TRANSPORTS 3		/* a client's: UDP, TCP, TLS */

/* The protocol's (turn/turn.c), per relay thread. */
struct turn_stats {
	uint64_t requests;		/* STUN requests handled */
	uint64_t binding;		/* Binding requests */
	uint64_t allocations_created;
	uint64_t auth_challenges;	/* 401 without credentials (normal first step) */
	uint64_t auth_failures;		/* wrong credentials, stale or bad nonce */
	uint64_t error_responses;
	uint64_t malformed;		/* dropped: not parseable STUN/ChannelData */
	uint64_t peer_denied;		/* 403 by peer policy, or data to a denied peer dropped */
	/* Relayed in userspace, by the client's transport (enum
	 * alloc_transport: UDP, TCP, TLS); bytes are application data. */
	uint64_t c2p_packets[XT_TRANSPORTS], c2p_bytes[XT_TRANSPORTS];	/* client -> peer */
	uint64_t p2c_packets[XT_TRANSPORTS], p2c_bytes[XT_TRANSPORTS];	/* peer -> client */
	uint64_t dropped_no_perm;	/* peer data without a permission */
	uint64_t dropped_no_alloc;	/* ChannelData/Send with no allocation or channel */
	uint64_t revoked;		/* permissions, channels, allocations revoked */
	uint64_t unauth_limited;	/* unauthenticated error responses not sent */
};

/* TCP/TLS connections' (daemon/stream.c), per relay thread. */
struct stream_stats {
	uint64_t accepted;
	uint64_t rejected;		/* over max_conns or max_pending_per_ip, or no fd */
	uint64_t bad_framing;		/* closed: neither STUN nor ChannelData, or too big */
	uint64_t overflow;		/* closed: send buffer over max_sndbuf */
	uint64_t timeouts;		/* closed: idle or handshake timeout */
	uint64_t tls_failures;		/* closed: TLS handshake or record error */
};

#endif
