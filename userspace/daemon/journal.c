#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/log.h"
#include "turn/snapshot.h"
#include "daemon/journal.h"

#define COMPACT_MIN 4096	/* records appended before a rewrite is considered */

struct journal {
	int fd;
	unsigned appended;	/* records since the file was last written whole */
	size_t pending;		/* bytes of buf not yet written */
	char path[PATH_MAX];
	uint8_t buf[1 << 16];	/* records of this batch, then one write */
};

/* The whole file, or NULL (ENOENT: none, fine). */
static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *b = NULL;
	ssize_t n;

	*len = 0;
	if (fd < 0)
		return NULL;
	if (!fstat(fd, &st) && st.st_size > 0 && (b = malloc((size_t)st.st_size)) &&
	    (n = read(fd, b, (size_t)st.st_size)) == st.st_size)
		*len = (size_t)n;
	close(fd);
	if (b && !*len) {
		free(b);
		b = NULL;
	}
	return b;
}

struct entry {
	uint64_t id;
	struct snap_rec rec;
};

/* By id, then by place in the file (rec.id holds it here). */
static int by_id(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->rec.id < b->rec.id ? -1 : a->rec.id > b->rec.id;
}

/* Every record of buf; -EINVAL if one does not verify or the last is cut. */
static int parse(const uint8_t *buf, size_t len, struct entry **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (size_t off = 0; off < len;) {
		struct snap_rec r;
		long used = snap_decode(buf + off, len - off, &r);

		if (used <= 0)
			return used ? (int)used : -EINVAL;
		if (*n == cap) {
			struct entry *e = realloc(*out, (cap = cap ? 2 * cap : 64) * sizeof(**out));
			if (!e) {
				snap_free(&r);
				return -ENOMEM;
			}
			*out = e;
		}
		(*out)[(*n)++] = (struct entry){ r.id, r };
		off += (size_t)used;
	}
	return 0;
}

/* Last record per id wins: sorted by id, then file order. */
static void replay(const char *path, journal_adopt_fn adopt, void *ctx)
{
	size_t len, n = 0, taken = 0;
	uint8_t *buf = slurp(path, &len);
	struct entry *e = NULL;
	int err;

	if (!buf)
		return;
	err = parse(buf, len, &e, &n);
	free(buf);
	if (err) {
		char bad[PATH_MAX + 8];

		snprintf(bad, sizeof(bad), "%s.bad", path);
		rename(path, bad);
		log_err("journal %s does not verify (%s): set aside as %s, nothing adopted", path,
			strerror(-err), bad);
	} else {
		for (size_t i = 0; i < n; i++)
			e[i].rec.id = i;	/* file order, for the sort */
		qsort(e, n, sizeof(*e), by_id);
		for (size_t i = 0; i < n; i++) {
			bool last = i + 1 == n || e[i + 1].id != e[i].id;

			if (last && e[i].rec.type == SNAP_ALLOC) {
				adopt(ctx, e[i].rec.alloc);
				taken++;
			}
		}
		if (n)
			log_info("journal %s: %zu records, %zu allocations live in it", path, n, taken);
	}
	for (size_t i = 0; i < n; i++)
		snap_free(&e[i].rec);
	free(e);
}

void journal_flush(struct journal *j)
{
	if (!j || !j->pending)
		return;
	if (write(j->fd, j->buf, j->pending) != (ssize_t)j->pending)
		log_warn("journal %s: %s", j->path, strerror(errno));
	j->pending = 0;
}

static size_t encode(const struct allocation *a, bool end, uint8_t *at, size_t cap)
{
	return end ? snap_encode_end(a->id, at, cap) : snap_encode_alloc(a, at, cap);
}

/* a's record (or its end's) after the batch's others in buf. */
static void append(struct journal *j, const struct allocation *a, bool end)
{
	size_t n = encode(a, end, j->buf + j->pending, sizeof(j->buf) - j->pending);

	if (!n && j->pending) {
		journal_flush(j);
		n = encode(a, end, j->buf, sizeof(j->buf));
	}
	if (!n)
		log_warn("journal %s: record too big", j->path);
	j->pending += n;
	j->appended++;
}

struct rewrite {
	struct journal *j;
	int fd;
	bool failed;
};

static void put_one(void *arg, struct allocation *a)
{
	struct rewrite *rw = arg;
	size_t n;

	if (a->transport != ALLOC_UDP || a->end)
		return;
	n = snap_encode_alloc(a, rw->j->buf, sizeof(rw->j->buf));
	if (!n || write(rw->fd, rw->j->buf, n) != (ssize_t)n)
		rw->failed = true;
}

/* The file written again from table: a temporary then a rename, so a
 * crash meanwhile leaves the old whole file. */
static int rewrite(struct journal *j, const struct alloc_table *table)
{
	char tmp[PATH_MAX + 8];
	struct rewrite rw = { j, -1, false };

	/* What waits to be appended is in table already; buf is scratch now. */
	j->pending = 0;
	snprintf(tmp, sizeof(tmp), "%s.new", j->path);
	rw.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (rw.fd < 0)
		return -errno;
	alloc_foreach(table, put_one, &rw);
	if (rw.failed || rename(tmp, j->path)) {
		int err = rw.failed ? -EIO : -errno;
		close(rw.fd);
		unlink(tmp);
		return err;
	}
	if (j->fd >= 0)
		close(j->fd);
	j->fd = rw.fd;	/* the same file, now named path: appends follow */
	j->appended = 0;
	return 0;
}

struct journal *journal_open(const char *dir, unsigned id, journal_adopt_fn adopt, void *ctx,
			     const struct alloc_table *table, int *err)
{
	struct journal *j = calloc(1, sizeof(*j));

	*err = -ENOMEM;
	if (!j)
		return NULL;
	j->fd = -1;
	snprintf(j->path, sizeof(j->path), "%s/journal.%u", dir, id);
	mkdir(dir, 0755);
	replay(j->path, adopt, ctx);
	if ((*err = rewrite(j, table))) {
		free(j);
		return NULL;
	}
	return j;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	journal_flush(j);
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

static void maybe_compact(struct journal *j, const struct alloc_table *table)
{
	int err;

	if (j->appended < COMPACT_MIN || j->appended < 8 * alloc_count(table))
		return;
	if ((err = rewrite(j, table)))
		log_warn("journal %s: rewriting: %s", j->path, strerror(-err));
}

void journal_put(struct journal *j, const struct allocation *a, const struct alloc_table *table)
{
	if (!j || a->transport != ALLOC_UDP || a->end)
		return;
	append(j, a, false);
	maybe_compact(j, table);
}

void journal_end(struct journal *j, const struct allocation *a, const struct alloc_table *table)
{
	if (!j || a->transport != ALLOC_UDP)
		return;
	append(j, a, true);
	maybe_compact(j, table);
}
