#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "daemon/evloop.h"

#define EV_BATCH 64

struct ev_loop {
	int epfd;
	int nfired;
	struct epoll_event fired[EV_BATCH];
	struct ev_src *retired, **retired_tail;
};

struct ev_loop *ev_new(void)
{
	struct ev_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->retired_tail = &l->retired;
	return l;
}

static void release_retired(struct ev_loop *l)
{
	while (l->retired) {
		struct ev_src *s = l->retired;

		l->retired = s->next_retired;
		if (s->release)
			s->release(s);	/* may free s */
	}
	l->retired_tail = &l->retired;
}

void ev_free(struct ev_loop *l)
{
	if (!l)
		return;
	release_retired(l);
	close(l->epfd);
	free(l);
}

int ev_fd(const struct ev_loop *l)
{
	return l->epfd;
}

void ev_src_init(struct ev_src *s, int fd, ev_fn fn, void *data)
{
	*s = (struct ev_src){ .fd = fd, .fn = fn, .data = data };
}

int ev_add(struct ev_loop *l, struct ev_src *s, int fd, ev_fn fn, void *data)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	ev_src_init(s, fd, fn, data);
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

void ev_retire(struct ev_loop *l, struct ev_src *s, ev_release_fn release)
{
	/* No EPOLL_CTL_DEL: closing the fd leaves the set, and a caller that
	 * has closed it already could not name it any more. */
	s->fd = -1;
	s->release = release;
	s->next_retired = NULL;
	*l->retired_tail = s;
	l->retired_tail = &s->next_retired;
}

int ev_wait(struct ev_loop *l, int timeout_ms)
{
	int n = epoll_wait(l->epfd, l->fired, EV_BATCH, timeout_ms);

	l->nfired = n > 0 ? n : 0;
	return n < 0 ? -errno : n;
}

void ev_dispatch(struct ev_loop *l)
{
	for (int i = 0; i < l->nfired; i++) {
		struct ev_src *s = l->fired[i].data.ptr;

		if (s->fd >= 0)
			s->fn(s, l->fired[i].events);
	}
	l->nfired = 0;
	release_retired(l);
}
