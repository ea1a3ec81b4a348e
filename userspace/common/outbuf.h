/* printf into a fixed buffer that remembers running out of room: one check
 * at the end instead of one per write (metrics, accounting records). */
#ifndef XT_OUTBUF_H
#define XT_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct outbuf {
	char *buf;
	size_t len, pos;
	bool full;		/* a write did not fit: the text is cut */
};

static inline struct outbuf outbuf_init(char *buf, size_t len)
{
	if (len)
		buf[0] = 0;
	return (struct outbuf){ buf, len, 0, len == 0 };
}

/* Appends; after one write that does not fit, nothing more is written. */
void outbuf_put(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
