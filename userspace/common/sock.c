#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "common/sock.h"

void sock_buffers(int fd, int size)
{
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

void sock_raise_nofile(rlim_t need)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return;
	if (!need || (r.rlim_max != RLIM_INFINITY && need > r.rlim_max))
		need = r.rlim_max;
	if (r.rlim_cur < need) {
		r.rlim_cur = need;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

void sock_put_gso(void *buf, uint16_t seg)
{
	struct cmsghdr *cm = buf;

	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
}
