/* What xturnctl asks of the allocations, across every relay thread: list
 * them with their traffic so far (the fast path's counts included), end
 * some (kill) or all (a drain's timeout). Each worker is held between two
 * batches while its table is read or marked; what is marked ends on its
 * own thread, through the same path as an expiry (hooks, accounting). */
#ifndef XT_ADMIN_H
#define XT_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

#include "turn/alloc.h"

struct offload;
struct worker;

/* A JSON array of acct_json's live objects (json), or a table. */
void admin_sessions(struct worker *const *w, unsigned n, struct offload *o, const char *realm,
		    bool json, FILE *out);
/* Marks the allocation with this id (16 hex digits), or every one of user
 * (id NULL), or every one (both NULL), to end with why. Returns how many. */
unsigned admin_end(struct worker *const *w, unsigned n, const char *id, const char *user,
		   enum alloc_end why);

#endif
