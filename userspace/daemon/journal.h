/* A relay thread's TURN state on disk, as it changes, for a daemon that
 * starts after this one died (SIGKILL, a crash, OOM): one file per relay
 * thread (journal-dir/journal.N), a record (turn/snapshot.h) appended for
 * each allocation made, changed or ended. A new daemon replays it, adopts
 * what is still live (turn_adopt) and starts the file afresh with what it
 * took. A file that does not verify is set aside (renamed .bad) with a log
 * line, never trusted. UDP allocations only: a TCP/TLS one ends with its
 * connection. */
#ifndef XT_JOURNAL_H
#define XT_JOURNAL_H

#include <time.h>

#include "turn/alloc.h"

struct journal;

/* Calls adopt for every allocation the file at dir/journal.id holds live
 * (its last record, not an end), then starts the file again from the
 * allocations of table (what was adopted), open for appending. NULL (and
 * *err) if the file cannot be written. */
typedef void (*journal_adopt_fn)(void *ctx, const struct allocation *rec);
struct journal *journal_open(const char *dir, unsigned id, journal_adopt_fn adopt, void *ctx,
			     const struct alloc_table *table, int *err);
void journal_close(struct journal *j);

/* a was made or changed / a ended: its record waits in the journal's
 * buffer for journal_flush, so a batch of changes takes one write(). The
 * file is rewritten whole now and then, when the ends and changes
 * outweigh what lives (table). */
void journal_put(struct journal *j, const struct allocation *a, const struct alloc_table *table);
void journal_end(struct journal *j, const struct allocation *a, const struct alloc_table *table);
/* Writes the records put since the last flush (the caller's batch end,
 * before its replies go out). NULL: nothing. */
void journal_flush(struct journal *j);

#endif
