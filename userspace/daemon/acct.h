/* Session accounting, what operators bill and debug by: one JSON object per
 * ended allocation (accounting-log, one line each, reopened on SIGHUP for
 * logrotate) and one info line in the log. The same object, while the
 * allocation lives, is what `xturnctl sessions --json` lists. */
#ifndef XT_ACCT_H
#define XT_ACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "turn/alloc.h"

struct acct;

/* path NULL or "": the log line only. NULL with *err set on failure. */
struct acct *acct_open(const char *path, int *err);
void acct_free(struct acct *ac);
/* Reopens the file (after logrotate moved it); 0 or -errno (the old one
 * kept). */
int acct_reopen(struct acct *ac);

/* The JSON object of allocation a (no newline): live (a->end NONE) with
 * age_s, expires_in_s, permissions and channels, or ended with end,
 * duration_s and reason. c2p/p2c: its traffic (alloc_traffic's userspace
 * and XDP halves; the record's packets and bytes are their sum). now and
 * wall: monotonic and Unix time. Length, or 0 if buf is too small. */
size_t acct_json(char *buf, size_t len, const struct allocation *a, const char *realm,
		 const struct alloc_traffic *c2p, const struct alloc_traffic *p2c, time_t now,
		 time_t wall);
/* a has ended (its bindings' XDP counts already added): the record and
 * the log line. */
void acct_end(struct acct *ac, const struct allocation *a, const char *realm, time_t now,
	      time_t wall);

#endif
