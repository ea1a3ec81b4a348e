#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include "common/addr.h"
#include "common/sock.h"
#include "turn/hostaddr.h"
#include "daemon/udp.h"

/* Socket buffers: a listener takes every client of its relay thread and
 * must ride out the thread's pauses at full rate; a relay socket carries
 * what one allocation's peers send. */
#define LISTENER_BUF (32 << 20)
#define RELAY_BUF (4 << 20)

/* Socket buffers, and UDP GRO: a flow's datagrams that arrive together
 * come up as one train (one trip through the receive path and one slot of
 * recvmmsg for up to 64); no-op where the kernel or device has no GRO. */
static bool gro = true;

void udp_gro_enable(bool on)
{
	gro = on;
}

static void sock_setup(int fd, int sz)
{
	int one = 1;

	if (gro)
		setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	sock_buffers(fd, sz);
}

int udp_listen(const struct sockaddr_storage *a)
{
	int one = 1, err;
	int fd = socket(a->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* Every relay thread binds the same address: the kernel spreads clients. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (a->ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (const struct sockaddr *)a, addr_len(a))) {
		err = -errno;
		close(fd);
		return err;
	}
	sock_setup(fd, LISTENER_BUF);
	return fd;
}

/* The k-th relay address of family (k below relay_count). */
static const struct sockaddr_storage *relay_nth(const struct config *cfg, int family, unsigned k)
{
	for (unsigned i = 0; i < cfg->nrelay; i++)
		if (cfg->relay[i].ss_family == family && !k--)
			return &cfg->relay[i];
	return NULL;
}

static unsigned relay_count(const struct config *cfg, int family)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->nrelay; i++)
		n += cfg->relay[i].ss_family == family;
	return n;
}

static bool is_relay_ip(const struct config *cfg, const struct sockaddr_storage *a)
{
	for (unsigned i = 0; i < cfg->nrelay; i++)
		if (addr_ip_eq(&cfg->relay[i], a))
			return true;
	return false;
}

static int try_bind(int family, const struct sockaddr_storage *ip, uint16_t port, bool df,
		    struct sockaddr_storage *addr)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	*addr = *ip;
	addr_set_port(addr, port);
	if (bind(fd, (struct sockaddr *)addr, addr_len(addr))) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (df && family == AF_INET) {
		int v = IP_PMTUDISC_DO;
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
	}
	sock_setup(fd, RELAY_BUF);
	return fd;
}

int udp_relay_open(struct udp_ports *p, int family, const struct sockaddr_storage *at, bool even,
		   bool df, struct sockaddr_storage *addr, struct sockaddr_storage *adv)
{
	unsigned lo = p->cfg->min_port, hi = p->cfg->max_port, span = hi - lo + 1;
	unsigned nips = relay_count(p->cfg, family);
	int fd = -EADDRINUSE;

	if (!nips)
		return -EAFNOSUPPORT;
	if (at) {
		uint16_t port = addr_port(at);

		if (at->ss_family != family || !is_relay_ip(p->cfg, at))
			return -EADDRNOTAVAIL;
		if (port < lo || port > hi)
			return -EADDRINUSE;
		fd = try_bind(family, at, port, df, addr);
	} else {
		/* The cursor counts (address, port) pairs: address fastest. */
		for (unsigned i = 0; i < span * nips; i++) {
			unsigned c = p->cursor++ % (span * nips);
			uint16_t pt = (uint16_t)(lo + c / nips);

			if (even && (pt & 1))
				continue;
			fd = try_bind(family, relay_nth(p->cfg, family, c % nips), pt, df, addr);
			if (fd >= 0 || fd != -EADDRINUSE)
				break;
		}
	}
	if (fd >= 0) {
		config_advertised(p->cfg, addr, adv);
		hostaddr_relay_bound(p->host, addr);
	}
	return fd;
}

int udp_relay_adopt(struct udp_ports *p, int fd, struct sockaddr_storage *addr,
		    struct sockaddr_storage *adv)
{
	socklen_t len = sizeof(*addr);

	if (getsockname(fd, (struct sockaddr *)addr, &len)) {
		int err = -errno;
		close(fd);
		return err;
	}
	addr_canon(addr);
	config_advertised(p->cfg, addr, adv);
	hostaddr_relay_bound(p->host, addr);
	return fd;
}

void udp_relay_close(struct udp_ports *p, int fd, const struct sockaddr_storage *addr)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	if (!addr && !getsockname(fd, (struct sockaddr *)&a, &len)) {
		addr_canon(&a);
		addr = &a;
	}
	if (addr)
		hostaddr_relay_closed(p->host, addr);
	close(fd);
}

struct udp_rx *udp_rx_new(void)
{
	struct udp_rx *rx = calloc(1, sizeof(*rx));

	if (rx && !(rx->bufs = calloc(UDP_RX_BATCH, sizeof(*rx->bufs)))) {
		free(rx);
		rx = NULL;
	}
	return rx;
}

void udp_rx_free(struct udp_rx *rx)
{
	if (!rx)
		return;
	free(rx->bufs);
	free(rx);
}

int udp_recv(struct udp_rx *rx, int fd, size_t headroom)
{
	int n;

	for (int i = 0; i < UDP_RX_BATCH; i++) {
		rx->iovs[i].iov_base = rx->bufs[i] + headroom;
		rx->iovs[i].iov_len = UDP_RX_SLOT - headroom;
		memset(&rx->msgs[i].msg_hdr, 0, sizeof(rx->msgs[i].msg_hdr));
		rx->msgs[i].msg_hdr.msg_name = &rx->from[i];
		rx->msgs[i].msg_hdr.msg_namelen = sizeof(rx->from[i]);
		rx->msgs[i].msg_hdr.msg_iov = &rx->iovs[i];
		rx->msgs[i].msg_hdr.msg_iovlen = 1;
		rx->msgs[i].msg_hdr.msg_control = rx->ctrl[i];
		rx->msgs[i].msg_hdr.msg_controllen = sizeof(rx->ctrl[i]);
	}
	n = recvmmsg(fd, rx->msgs, UDP_RX_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++)
		addr_canon(&rx->from[i]);
	return n;
}

size_t udp_rx_meta(const struct udp_rx *rx, int i, const struct sockaddr_storage *local,
		   struct sockaddr_storage *dst)
{
	struct msghdr *mh = (struct msghdr *)&rx->msgs[i].msg_hdr;
	size_t seg = 0;

	if (dst)
		*dst = *local;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			seg = v > 0 ? (size_t)v : 0;
		} else if (!dst) {
			continue;
		} else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in *)dst)->sin_addr = pi.ipi_addr;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in6 *)dst)->sin6_addr = pi.ipi6_addr;
		}
	}
	return seg;
}
