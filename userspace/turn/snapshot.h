/* An allocation's state as bytes, for the journal a restarted daemon adopts
 * (daemon/journal.h): everything that defines it (5-tuple, user, relays,
 * lifetimes, permissions, channels, traffic so far), never a password or a
 * key (the first authenticated request after a restart brings the key
 * back). Versioned and checked: a record is a header (magic, version, type,
 * length) and its payload's CRC-32; one that does not verify is refused
 * whole. Lifetimes are CLOCK_MONOTONIC seconds, which survive the process
 * (not a reboot: the journal lives in /run). */
#ifndef XT_SNAPSHOT_H
#define XT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "turn/alloc.h"

#define SNAP_MAGIC 0x4a545858u		/* "XXTJ" */
#define SNAP_VERSION 1
#define SNAP_HDR_LEN 16

enum snap_type { SNAP_ALLOC = 1, SNAP_END = 2 };

/* A decoded record: for SNAP_ALLOC, an allocation with its perms and
 * chans arrays (malloc'ed; snap_free), not in any table, user NULL. */
struct snap_rec {
	enum snap_type type;
	uint64_t id;
	struct allocation *alloc;
};

/* Bytes a record of a takes at most. */
size_t snap_alloc_len(const struct allocation *a);
/* Encodes a (SNAP_ALLOC) or its end (SNAP_END, a NULL but id given) into
 * buf: the length, or 0 if cap is too small. */
size_t snap_encode_alloc(const struct allocation *a, uint8_t *buf, size_t cap);
size_t snap_encode_end(uint64_t id, uint8_t *buf, size_t cap);
/* Decodes the record at buf: its length (*out filled), 0 if buf holds only
 * part of one (len too short: the end of a file), or -EINVAL (bad magic,
 * version, length, CRC or contents), -ENOMEM. */
long snap_decode(const uint8_t *buf, size_t len, struct snap_rec *out);
void snap_free(struct snap_rec *r);

#endif
