#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

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

int sock_unix_listen(const char *path, mode_t mode, ino_t *ino)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)];
	struct stat st;
	int fd, probe;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	memcpy(dir, path, strlen(path) + 1);
	if (mkdir(dirname(dir), 0755) && errno != EEXIST)
		return -errno;
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
		close(probe);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* chmod before listen: until then nobody can connect. */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(path, mode) ||
	    listen(fd, 16) || stat(path, &st)) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	*ino = st.st_ino;
	return fd;
}

void sock_unix_unlink(const char *path, ino_t ino)
{
	struct stat st;

	if (!stat(path, &st) && st.st_ino == ino)
		unlink(path);
}
