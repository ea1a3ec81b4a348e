/* Per-source token buckets: how many unauthenticated error responses
 * (401, 438, 400...) one address gets a second. Such a response goes to
 * whatever source the request claims, so it is a reflection a spoofer can
 * aim; authenticated traffic never meets this. IPv4 addresses count one by
 * one, IPv6 ones by /64 (a host usually has a whole /64). A fixed table:
 * a source that finds its slot taken by another starts afresh, so memory
 * stays bounded whatever the number of sources. Not thread-safe: one per
 * worker. */
#ifndef XT_RATELIMIT_H
#define XT_RATELIMIT_H

#include <stdbool.h>
#include <time.h>
#include <sys/socket.h>

struct ratelimit;

/* rate per second, with bursts of up to burst; rate 0: NULL (no limit).
 * NULL and errno on failure too. */
struct ratelimit *ratelimit_new(unsigned rate, unsigned burst);
void ratelimit_free(struct ratelimit *rl);
/* May src get one more now (seconds, any monotonic clock)? Takes a token.
 * rl NULL: always. */
bool ratelimit_take(struct ratelimit *rl, const struct sockaddr_storage *src, time_t now);

#endif
