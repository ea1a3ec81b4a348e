#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/appendfile.h"

int appendfile_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

	return fd < 0 ? -errno : fd;
}

int appendfile_reopen(int fd, const char *path)
{
	int nfd = appendfile_open(path), err = 0;

	if (nfd < 0)
		return nfd;
	if (dup2(nfd, fd) < 0)
		err = -errno;
	close(nfd);
	return err;
}
