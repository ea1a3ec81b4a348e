/* A planned restart (SIGUSR2, xturnctl restart): the running daemon hands
 * its sockets to a fresh exec of its binary, which may be a new version.
 * The old one pauses its relay threads (what arrives waits in the sockets'
 * queues), lists every socket it passes (each relay thread's listeners, each
 * allocation's relayed socket, and its hold on the pin dir) in a manifest
 * and execs the binary with them inherited; the new one takes them instead
 * of binding, adopts the journals and the pinned maps (its program replaces
 * the old in one step) and says it is ready; only then does the old one
 * exit, without undoing anything. If the new one fails, the old one goes on
 * serving and logs why. Plain TCP connections pass with their allocations
 * (when nothing of theirs is half read or waiting to be sent); a TLS
 * session's state cannot pass, so TLS clients reconnect and allocate again. */
#ifndef XT_HANDOVER_H
#define XT_HANDOVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- the new process ---- */

/* The sockets the old daemon passed (from the environment), or NULL when
 * this start is not a handover. */
struct handover *handover_take(void);
/* The passed fd of a listener (relay thread worker, SOCK_DGRAM or
 * SOCK_STREAM, TLS or not, bound to addr), or of a relayed address; -1 if
 * none. Each is given once. */
int handover_listener(struct handover *h, unsigned worker, int type, bool tls,
		      const struct sockaddr_storage *addr);
int handover_relay(struct handover *h, const struct sockaddr_storage *addr);
/* The plain TCP connections passed to relay thread worker: fn(ctx, fd,
 * record, length) for each, with its allocation's record (turn/snapshot.h)
 * or none (NULL, 0). */
typedef void (*handover_conn_fn)(void *ctx, int fd, const uint8_t *rec, size_t len);
void handover_conns(struct handover *h, unsigned worker, handover_conn_fn fn, void *ctx);
/* The old daemon's hold on the pin dir (flock), now ours; -1 if none. */
int handover_lock(struct handover *h);
/* Everything is taken over: the old daemon may exit. Closes the passed
 * sockets nobody claimed. */
void handover_ready(struct handover *h);
void handover_free(struct handover *h);

/* ---- the old process ---- */

struct handover_out;
/* A manifest to fill, then handover_exec. NULL when out of memory or fds. */
struct handover_out *handover_out_new(void);
void handover_out_listener(struct handover_out *o, unsigned worker, int type, bool tls,
			   const struct sockaddr_storage *addr, int fd);
void handover_out_relay(struct handover_out *o, const struct sockaddr_storage *addr, int fd);
void handover_out_lock(struct handover_out *o, int fd);
/* A plain TCP connection of relay thread worker, with its allocation's
 * record (n bytes; 0: none). */
void handover_out_conn(struct handover_out *o, unsigned worker, int fd, const uint8_t *rec,
		       size_t n);
/* Execs path with argv and the listed sockets, and waits (at most
 * timeout_ms) until the new process is ready: its pid, or -errno with why
 * filled (it exited, or took too long and was killed). The listed fds are
 * closed-on-exec again afterwards; o is freed. */
int handover_exec(struct handover_out *o, const char *path, char *const argv[], int timeout_ms,
		  char *why, size_t whylen);

#endif
