/* The daemon's event loop: epoll with one callback per file descriptor
 * (like redis's ae.h), used by every relay thread and the main thread.
 *
 * A source can go away while an epoll batch is being handled (a relay
 * socket closes with its allocation, another event of the same batch may
 * still point at it): ev_retire() marks it so later events of the batch
 * skip it (nginx's stale-event guard), and its memory is released only
 * after the batch. */
#ifndef XT_EVLOOP_H
#define XT_EVLOOP_H

#include <stdint.h>

struct ev_loop;
struct ev_src;

/* events: the epoll event mask that fired */
typedef void (*ev_fn)(struct ev_src *s, uint32_t events);
typedef void (*ev_release_fn)(struct ev_src *s);

/* Embedded in the caller's structure; data is the caller's. */
struct ev_src {
	int fd;			/* -1 once retired */
	ev_fn fn;
	void *data;
	/* private */
	ev_release_fn release;
	struct ev_src *next_retired;
};

struct ev_loop *ev_new(void);
/* Releases what is still retired; does not touch the sources' fds. */
void ev_free(struct ev_loop *l);
/* The epoll fd, for modules that register their own sources (stream). */
int ev_fd(const struct ev_loop *l);

/* Watches fd for input: s->fn(s, events) runs for each event. 0 or -errno. */
int ev_add(struct ev_loop *l, struct ev_src *s, int fd, ev_fn fn, void *data);
/* Fills s without registering it: for a source another module adds to
 * ev_fd() itself, with data.ptr = s. */
void ev_src_init(struct ev_src *s, int fd, ev_fn fn, void *data);
/* The source's fd is closed (by the caller, before or after) and no
 * further event reaches fn. release (may be NULL) runs after the current
 * batch, in the order sources were retired. */
void ev_retire(struct ev_loop *l, struct ev_src *s, ev_release_fn release);

/* Waits up to timeout_ms (-1: for ever) for a batch of events: their number,
 * 0, or -errno (-EINTR included). */
int ev_wait(struct ev_loop *l, int timeout_ms);
/* Runs the callbacks of the batch ev_wait got, then the releases of what
 * was retired meanwhile. */
void ev_dispatch(struct ev_loop *l);

#endif
