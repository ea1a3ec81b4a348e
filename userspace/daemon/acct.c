#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/appendfile.h"
#include "common/log.h"
#include "common/outbuf.h"
#include "daemon/acct.h"

struct acct {
	int fd;			/* -1: no file */
	char path[4096];
};

struct acct *acct_open(const char *path, int *err)
{
	struct acct *ac = calloc(1, sizeof(*ac));

	*err = -ENOMEM;
	if (!ac)
		return NULL;
	ac->fd = -1;
	if (path && *path) {
		if (strlen(path) >= sizeof(ac->path)) {
			*err = -ENAMETOOLONG;
			free(ac);
			return NULL;
		}
		if ((ac->fd = appendfile_open(path)) < 0) {
			*err = ac->fd;
			free(ac);
			return NULL;
		}
		strcpy(ac->path, path);
	}
	*err = 0;
	return ac;
}

void acct_free(struct acct *ac)
{
	if (!ac)
		return;
	if (ac->fd >= 0)
		close(ac->fd);
	free(ac);
}

int acct_reopen(struct acct *ac)
{
	return ac && ac->fd >= 0 ? appendfile_reopen(ac->fd, ac->path) : 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (s[0] >= 0xf5 || !k || k > n)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong 3- and 4-byte forms, surrogates, above U+10FFFF */
	if ((k == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (k == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (k == 4 && s[0] == 0xf0 && s[1] < 0x90) || (k == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return k;
}

/* A JSON string of what a client chose (a username): quotes, backslashes
 * and control characters escaped, valid UTF-8 kept, any other byte U+FFFD,
 * so the line always parses. */
static void put_str(struct outbuf *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	outbuf_put(o, "\"");
	while (n) {
		size_t k;

		if (*p == '"' || *p == '\\') {
			outbuf_put(o, "\\%c", *p);
			k = 1;
		} else if (*p < 0x20 || *p == 0x7f) {
			outbuf_put(o, "\\u%04x", *p);
			k = 1;
		} else if (*p < 0x80) {
			outbuf_put(o, "%c", *p);
			k = 1;
		} else if ((k = utf8_len(p, n))) {
			outbuf_put(o, "%.*s", (int)k, (const char *)p);
		} else {
			outbuf_put(o, "\\ufffd");
			k = 1;
		}
		p += k;
		n -= k;
	}
	outbuf_put(o, "\"");
}

static void put_time(struct outbuf *o, const char *key, time_t t)
{
	struct tm tm;
	char b[32];

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
	outbuf_put(o, ",\"%s\":\"%s\"", key, b);
}

static void put_traffic(struct outbuf *o, const char *key, const struct alloc_traffic *t)
{
	outbuf_put(o, ",\"%s\":{\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"xdp_packets\":%" PRIu64
	       ",\"xdp_bytes\":%" PRIu64 "}", key, t->packets + t->xdp_packets,
	    t->bytes + t->xdp_bytes, t->xdp_packets, t->xdp_bytes);
}

size_t acct_json(char *buf, size_t len, const struct allocation *a, const char *realm,
		 const struct alloc_traffic *c2p, const struct alloc_traffic *p2c, time_t now,
		 time_t wall)
{
	struct outbuf o = outbuf_init(buf, len);
	char addr[ADDR_STRLEN];
	long age = (long)(now - a->created);

	outbuf_put(&o, "{");
	if (a->end)
		outbuf_put(&o, "\"event\":\"allocation_end\",");
	outbuf_put(&o, "\"id\":\"%016" PRIx64 "\",\"user\":", a->id);
	put_str(&o, a->username);
	outbuf_put(&o, ",\"realm\":");
	put_str(&o, realm);
	outbuf_put(&o, ",\"client\":\"%s\",\"transport\":\"%s\",\"relays\":[",
	    addr_str(&a->client, true, addr, sizeof(addr)),
	    alloc_transport_name((enum alloc_transport)a->transport));
	for (unsigned i = 0; i < a->nrelays; i++)
		outbuf_put(&o, "%s\"%s\"", i ? "," : "", addr_str(&a->relays[i].adv, true, addr,
							     sizeof(addr)));
	outbuf_put(&o, "]");
	put_time(&o, "start", a->created_wall);
	if (a->end) {
		put_time(&o, "end", wall);
		outbuf_put(&o, ",\"duration_s\":%ld,\"reason\":\"%s\"", age,
		    alloc_end_name((enum alloc_end)a->end));
	} else {
		outbuf_put(&o, ",\"age_s\":%ld,\"expires_in_s\":%ld,\"permissions\":%u,\"channels\":%u",
		    age, (long)(a->expires > now ? a->expires - now : 0), a->nperms, a->nchans);
	}
	put_traffic(&o, "c2p", c2p);
	put_traffic(&o, "p2c", p2c);
	outbuf_put(&o, "}");
	return o.full ? 0 : o.pos;
}

void acct_end(struct acct *ac, const struct allocation *a, const char *realm, time_t now,
	      time_t wall)
{
	/* Fits any record: username and realm 6 bytes a byte ("\u00xx") at
	 * worst, the rest under 1 KiB. */
	char line[(STUN_MAX_USERNAME + 256) * 6 + 1024], addr[ADDR_STRLEN];
	size_t n;

	log_info("allocation %016" PRIx64 " of %s from %s/%s ended (%s) after %lds: "
		 "c2p %" PRIu64 " packets (%" PRIu64 " in XDP), p2c %" PRIu64 " packets (%" PRIu64
		 " in XDP)", a->id, a->username, addr_str(&a->client, true, addr, sizeof(addr)),
		 alloc_transport_name((enum alloc_transport)a->transport),
		 alloc_end_name((enum alloc_end)a->end), (long)(now - a->created),
		 a->c2p.packets + a->c2p.xdp_packets, a->c2p.xdp_packets,
		 a->p2c.packets + a->p2c.xdp_packets, a->p2c.xdp_packets);
	if (!ac || ac->fd < 0)
		return;
	n = acct_json(line, sizeof(line) - 1, a, realm, &a->c2p, &a->p2c, now, wall);
	if (!n)
		return;
	line[n++] = '\n';
	/* One write per record: O_APPEND keeps records whole between threads. */
	if (write(ac->fd, line, n) != (ssize_t)n)
		log_warn("accounting-log: %s", strerror(errno));
}
