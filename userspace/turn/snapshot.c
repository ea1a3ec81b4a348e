#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <zlib.h>

#include "turn/snapshot.h"

#define ADDR_LEN 20	/* family, pad, port, 16 bytes of address */

struct wr {
	uint8_t *p, *end;
	bool full;
};

static void put(struct wr *w, const void *v, size_t n)
{
	if (w->full || (size_t)(w->end - w->p) < n) {
		w->full = true;
		return;
	}
	memcpy(w->p, v, n);
	w->p += n;
}

/* Fixed-width integers in the host's order: the journal never leaves the
 * machine (it lives in /run). */
#define PUT(w, v) do { __typeof__(v) v_ = (v); put(w, &v_, sizeof(v_)); } while (0)

static void put_addr(struct wr *w, const struct sockaddr_storage *a)
{
	uint8_t b[ADDR_LEN] = { 0 };

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
		b[0] = 4;
		memcpy(b + 2, &s4->sin_port, 2);
		memcpy(b + 4, &s4->sin_addr, 4);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
		b[0] = 6;
		memcpy(b + 2, &s6->sin6_port, 2);
		memcpy(b + 4, &s6->sin6_addr, 16);
	}
	put(w, b, sizeof(b));
}

static void put_traffic(struct wr *w, const struct alloc_traffic *t)
{
	PUT(w, t->packets);
	PUT(w, t->bytes);
	PUT(w, t->xdp_packets);
	PUT(w, t->xdp_bytes);
}

size_t snap_alloc_len(const struct allocation *a)
{
	return SNAP_HDR_LEN + 8 + 3 * 8 + 4 + 2 * ADDR_LEN + 2 + strlen(a->username) +
	       STUN_TID_LEN + a->nrelays * 2 * ADDR_LEN + 2 + a->nperms * (ADDR_LEN + 8) + 2 +
	       a->nchans * (ADDR_LEN + 2 + 8) + 8 * 8;
}

/* The header before the payload at buf + SNAP_HDR_LEN, n bytes of it. */
static size_t seal(uint8_t *buf, enum snap_type type, size_t n)
{
	uint32_t magic = SNAP_MAGIC, len = (uint32_t)n;
	uint16_t version = SNAP_VERSION, t = (uint16_t)type;
	uint32_t crc = (uint32_t)crc32(0L, buf + SNAP_HDR_LEN, (uInt)n);

	memcpy(buf, &magic, 4);
	memcpy(buf + 4, &version, 2);
	memcpy(buf + 6, &t, 2);
	memcpy(buf + 8, &len, 4);
	memcpy(buf + 12, &crc, 4);
	return SNAP_HDR_LEN + n;
}

size_t snap_encode_alloc(const struct allocation *a, uint8_t *buf, size_t cap)
{
	struct wr w = { buf + SNAP_HDR_LEN, buf + cap, cap < SNAP_HDR_LEN };
	uint16_t ulen = (uint16_t)strlen(a->username);

	if (w.full)
		return 0;
	PUT(&w, a->id);
	PUT(&w, (int64_t)a->expires);
	PUT(&w, (int64_t)a->created);
	PUT(&w, (int64_t)a->created_wall);
	PUT(&w, a->transport);
	PUT(&w, (uint8_t)a->nrelays);
	PUT(&w, (uint16_t)(a->check ? 1 : 0));	/* flags */
	put_addr(&w, &a->client);
	put_addr(&w, &a->listener);
	PUT(&w, ulen);
	put(&w, a->username, ulen);
	put(&w, a->alloc_tid, STUN_TID_LEN);
	for (unsigned i = 0; i < a->nrelays; i++) {
		put_addr(&w, &a->relays[i].addr);
		put_addr(&w, &a->relays[i].adv);
	}
	PUT(&w, (uint16_t)a->nperms);
	for (unsigned i = 0; i < a->nperms; i++) {
		put_addr(&w, &a->perms[i].peer);
		PUT(&w, (int64_t)a->perms[i].expires);
	}
	PUT(&w, (uint16_t)a->nchans);
	for (unsigned i = 0; i < a->nchans; i++) {
		put_addr(&w, &a->chans[i].peer);
		PUT(&w, a->chans[i].number);
		PUT(&w, (int64_t)a->chans[i].expires);
	}
	put_traffic(&w, &a->c2p);
	put_traffic(&w, &a->p2c);
	return w.full ? 0 : seal(buf, SNAP_ALLOC, (size_t)(w.p - buf - SNAP_HDR_LEN));
}

size_t snap_encode_end(uint64_t id, uint8_t *buf, size_t cap)
{
	struct wr w = { buf + SNAP_HDR_LEN, buf + cap, cap < SNAP_HDR_LEN };

	if (w.full)
		return 0;
	PUT(&w, id);
	return w.full ? 0 : seal(buf, SNAP_END, 8);
}

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static void get(struct rd *r, void *v, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, r->p, n);
	r->p += n;
}

#define GET(r, v) get(r, &(v), sizeof(v))

static void get_addr(struct rd *r, struct sockaddr_storage *a)
{
	uint8_t b[ADDR_LEN];

	get(r, b, sizeof(b));
	memset(a, 0, sizeof(*a));
	if (b[0] == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)a;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_port, b + 2, 2);
		memcpy(&s4->sin_addr, b + 4, 4);
	} else if (b[0] == 6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_port, b + 2, 2);
		memcpy(&s6->sin6_addr, b + 4, 16);
	} else {
		r->bad = true;
	}
}

static void get_traffic(struct rd *r, struct alloc_traffic *t)
{
	GET(r, t->packets);
	GET(r, t->bytes);
	GET(r, t->xdp_packets);
	GET(r, t->xdp_bytes);
}

static int decode_alloc(struct rd *r, struct allocation *a)
{
	int64_t expires, created, wall;
	uint16_t ulen, n, pad;
	uint8_t nrelays;

	GET(r, a->id);
	GET(r, expires);
	GET(r, created);
	GET(r, wall);
	GET(r, a->transport);
	GET(r, nrelays);
	GET(r, pad);	/* flags */
	a->check = pad & 1;
	a->expires = (time_t)expires;
	a->created = (time_t)created;
	a->created_wall = (time_t)wall;
	get_addr(r, &a->client);
	get_addr(r, &a->listener);
	GET(r, ulen);
	if (r->bad || ulen >= STUN_MAX_USERNAME || a->transport > ALLOC_TLS ||
	    nrelays < 1 || nrelays > ALLOC_MAX_RELAYS)
		return -EINVAL;
	get(r, a->username, ulen);
	a->username[ulen] = 0;
	if (memchr(a->username, 0, ulen))
		return -EINVAL;
	get(r, a->alloc_tid, STUN_TID_LEN);
	a->nrelays = nrelays;
	for (unsigned i = 0; i < nrelays; i++) {
		get_addr(r, &a->relays[i].addr);
		get_addr(r, &a->relays[i].adv);
		a->relays[i].fd = -1;
	}
	GET(r, n);
	if (r->bad || (size_t)(r->end - r->p) < (size_t)n * (ADDR_LEN + 8))
		return -EINVAL;
	if (n && !(a->perms = calloc(n, sizeof(*a->perms))))
		return -ENOMEM;
	a->nperms = a->capperms = n;
	for (unsigned i = 0; i < n; i++) {
		int64_t e;
		get_addr(r, &a->perms[i].peer);
		GET(r, e);
		a->perms[i].expires = (time_t)e;
	}
	GET(r, n);
	if (r->bad || (size_t)(r->end - r->p) < (size_t)n * (ADDR_LEN + 10))
		return -EINVAL;
	if (n && !(a->chans = calloc(n, sizeof(*a->chans))))
		return -ENOMEM;
	a->nchans = n;
	for (unsigned i = 0; i < n; i++) {
		int64_t e;
		get_addr(r, &a->chans[i].peer);
		GET(r, a->chans[i].number);
		GET(r, e);
		a->chans[i].expires = (time_t)e;
	}
	get_traffic(r, &a->c2p);
	get_traffic(r, &a->p2c);
	return r->bad || r->p != r->end ? -EINVAL : 0;
}

long snap_decode(const uint8_t *buf, size_t len, struct snap_rec *out)
{
	uint32_t magic, n, crc;
	uint16_t version, type;
	struct rd r;
	int err;

	memset(out, 0, sizeof(*out));
	if (len < SNAP_HDR_LEN)
		return 0;
	memcpy(&magic, buf, 4);
	memcpy(&version, buf + 4, 2);
	memcpy(&type, buf + 6, 2);
	memcpy(&n, buf + 8, 4);
	memcpy(&crc, buf + 12, 4);
	if (magic != SNAP_MAGIC || version != SNAP_VERSION || n > 1u << 20 ||
	    (type != SNAP_ALLOC && type != SNAP_END))
		return -EINVAL;
	if (len - SNAP_HDR_LEN < n)
		return 0;
	if ((uint32_t)crc32(0L, buf + SNAP_HDR_LEN, (uInt)n) != crc)
		return -EINVAL;
	r = (struct rd){ buf + SNAP_HDR_LEN, buf + SNAP_HDR_LEN + n, false };
	out->type = (enum snap_type)type;
	if (type == SNAP_END) {
		GET(&r, out->id);
		return r.bad || r.p != r.end ? -EINVAL : (long)(SNAP_HDR_LEN + n);
	}
	/* Room for the longest name: a record lives only while it is read. */
	if (!(out->alloc = calloc(1, sizeof(*out->alloc) + STUN_MAX_USERNAME)))
		return -ENOMEM;
	err = decode_alloc(&r, out->alloc);
	if (err) {
		snap_free(out);
		return err;
	}
	out->id = out->alloc->id;
	return (long)(SNAP_HDR_LEN + n);
}

void snap_free(struct snap_rec *r)
{
	if (r->alloc) {
		free(r->alloc->perms);
		free(r->alloc->chans);
		free(r->alloc);
	}
	r->alloc = NULL;
}
