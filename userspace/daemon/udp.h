/* The daemon's UDP sockets: the listeners clients send to, the relay
 * sockets of allocations (the port walk, external-ip's advertised
 * address), and batch reception with recvmmsg and UDP GRO. */
#ifndef XT_UDP_H
#define XT_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/config.h"

struct hostaddr;

/* UDP GRO on the sockets opened from now on (on by default). Off where the
 * TC fast path runs: it sees datagrams after GRO, and a train is many
 * ChannelData messages it cannot rewrite as one (it would pass them all to
 * us); the kernel makes trains only for sockets that ask. */
void udp_gro_enable(bool on);
/* A listening socket on a (with port), SO_REUSEPORT so every relay thread
 * has its own, with IP(V6)_PKTINFO: the fd, or -errno. */
int udp_listen(const struct sockaddr_storage *a);

/* One relay thread's walk over its relay addresses and port range. */
struct udp_ports {
	const struct config *cfg;
	struct hostaddr *host;		/* told which relay ports are bound */
	uint32_t cursor;
};

/* A relay socket. at NULL: on a relay address of family and a free port of
 * the range (even if even): round-robin from the cursor over (address,
 * port), the addresses alternating, so allocations spread over every
 * relay-ip and a freed port is not handed out again at once. Else exactly
 * at, which must be a relay address with a port of the range. df sets
 * DONT-FRAGMENT (IPv4). The fd with addr and adv (config_advertised) set, or
 * -EAFNOSUPPORT (no relay address of the family), -EADDRNOTAVAIL (at is
 * none), -EADDRINUSE, -errno. */
int udp_relay_open(struct udp_ports *p, int family, const struct sockaddr_storage *at, bool even,
		   bool df, struct sockaddr_storage *addr, struct sockaddr_storage *adv);
/* Closes a relay socket (addr: its bound address, NULL to ask the socket),
 * which no longer holds its port for relay to relay. */
/* A relay socket bound by a daemon before us (a handover): taken as if
 * udp_relay_open had made it. fd, or -errno (then it is closed). */
int udp_relay_adopt(struct udp_ports *p, int fd, struct sockaddr_storage *addr,
		    struct sockaddr_storage *adv);
void udp_relay_close(struct udp_ports *p, int fd, const struct sockaddr_storage *addr);

#define UDP_RX_BATCH 32
#define UDP_RX_SLOT 65536		/* a UDP GRO train: <= 64 KiB */

/* recvmmsg state, reused for every batch. A slot holds one datagram, or
 * with UDP GRO a train of them (pages the kernel never fills are never
 * touched). */
struct udp_rx {
	struct mmsghdr msgs[UDP_RX_BATCH];
	struct iovec iovs[UDP_RX_BATCH];
	struct sockaddr_storage from[UDP_RX_BATCH];	/* canonical after udp_recv */
	uint8_t (*bufs)[UDP_RX_SLOT];
	uint8_t ctrl[UDP_RX_BATCH][96];
};

struct udp_rx *udp_rx_new(void);
void udp_rx_free(struct udp_rx *rx);
/* Receives up to UDP_RX_BATCH slots from fd, each into bufs[i] + headroom:
 * their number, 0 or -errno (-EAGAIN: nothing there). */
int udp_recv(struct udp_rx *rx, int fd, size_t headroom);
/* What slot i's control messages say: the size of each datagram of a GRO
 * train (0: the slot is one datagram) and, if dst, the local address it
 * was sent to (local with IP(V6)_PKTINFO's address). */
size_t udp_rx_meta(const struct udp_rx *rx, int i, const struct sockaddr_storage *local,
		   struct sockaddr_storage *dst);

#endif
