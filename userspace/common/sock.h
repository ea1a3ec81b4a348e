/* Small helpers of the daemon and the tools around the kernel's socket and
 * clock calls: monotonic time, socket buffers, the descriptor limit, and
 * the control message of a UDP GSO send. */
#ifndef XT_SOCK_H
#define XT_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SOCK_GSO_MAX_SEGS 64		/* UDP_MAX_SEGMENTS of older kernels */
#define SOCK_GSO_MAX_BYTES 65000	/* one UDP datagram before segmentation */
/* Room for the UDP_SEGMENT control message. */
#define SOCK_GSO_CMSG_SPACE CMSG_SPACE(sizeof(uint16_t))

/* CLOCK_MONOTONIC, in seconds, milliseconds or nanoseconds. */
static inline int64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static inline int64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}
static inline time_t clock_mono_s(void)
{
	return (time_t)(clock_mono_ns() / 1000000000);
}

/* Receive and send buffers of size bytes: the FORCE options (CAP_NET_ADMIN)
 * first, then what rmem_max and wmem_max allow. */
void sock_buffers(int fd, int size);
/* Raises the soft RLIMIT_NOFILE to need (0: to the hard limit), never past
 * the hard limit; opens beyond it then fail with EMFILE, which callers
 * report. */
void sock_raise_nofile(rlim_t need);
/* Writes the UDP_SEGMENT control message (segments of seg bytes) at buf,
 * which has SOCK_GSO_CMSG_SPACE bytes, aligned for a struct cmsghdr. */
void sock_put_gso(void *buf, uint16_t seg);

/* A listening Unix stream socket at path, its directory made (0755) if
 * missing, the file given mode before anyone can connect. A file nobody
 * answers on is stale (a crash) and replaced; one a live process answers
 * on is left alone: -EADDRINUSE. The fd (non-blocking), or -errno; *ino is
 * the file's inode, for sock_unix_unlink. */
int sock_unix_listen(const char *path, mode_t mode, ino_t *ino);
/* Removes path if it is still the file sock_unix_listen made (another
 * daemon may have replaced it since). */
void sock_unix_unlink(const char *path, ino_t ino);

#endif
