#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "common/addr.h"
#include "turn/ratelimit.h"

#define RL_SLOTS 4096		/* 96 KiB a worker */

struct rl_slot {
	uint32_t key[4];	/* addr_source_key */
	time_t last;		/* when tokens was last refilled */
	uint32_t tokens;
};

struct ratelimit {
	unsigned rate, burst;
	uint64_t seed;		/* so nobody can aim sources at one slot */
	struct rl_slot slots[RL_SLOTS];
};

struct ratelimit *ratelimit_new(unsigned rate, unsigned burst)
{
	struct ratelimit *rl;

	if (!rate) {
		errno = 0;
		return NULL;
	}
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	if (RAND_bytes((unsigned char *)&rl->seed, sizeof(rl->seed)) != 1) {
		free(rl);
		errno = EIO;
		return NULL;
	}
	rl->rate = rate;
	rl->burst = burst > rate ? burst : rate;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl);
}

bool ratelimit_take(struct ratelimit *rl, const struct sockaddr_storage *src, time_t now)
{
	uint32_t key[4];
	uint64_t h;
	struct rl_slot *s;

	if (!rl)
		return true;
	addr_source_key(src, key);
	h = rl->seed;
	for (unsigned i = 0; i < 4; i++)	/* splitmix64 steps */
		h = (h ^ key[i]) * 0x9e3779b97f4a7c15ULL, h ^= h >> 31;
	s = &rl->slots[h % RL_SLOTS];
	if (memcmp(s->key, key, sizeof(key))) {
		memcpy(s->key, key, sizeof(key));
		s->tokens = rl->burst;
		s->last = now;
	} else if (now > s->last) {
		uint64_t t = s->tokens + (uint64_t)(now - s->last) * rl->rate;
		s->tokens = t > rl->burst ? rl->burst : (uint32_t)t;
		s->last = now;
	}
	if (!s->tokens)
		return false;
	s->tokens--;
	return true;
}
