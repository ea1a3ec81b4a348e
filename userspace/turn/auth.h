/* Long-term credentials (RFC 8489 §9.2), the TURN REST shared secret
 * (username "<expiry>:<name>", password base64(HMAC-SHA1(secret, username)))
 * and stateless nonces (an HMAC over client address and timestamp: a flood of
 * unauthenticated requests creates no state). */
#ifndef XT_AUTH_H
#define XT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "common/stun.h"

#define AUTH_NONCE_COOKIE "obMatJos2"	/* RFC 8489 §9.2: nonce cookie */
#define AUTH_NONCE_KEY_LEN 32

struct auth;

/* nonce_lifetime: seconds before a nonce is stale (438). */
struct auth *auth_new(const char *realm, unsigned nonce_lifetime);
void auth_free(struct auth *a);
/* Static users (coturn's `user=name:password`). 0, -EINVAL, -EEXIST, -ENOMEM. */
int auth_add_user(struct auth *a, const char *name, const char *password);
/* A static user known by its long-term key MD5(name:realm:password) (coturn's
 * `user=name:0xKEY`): MD5 only, as the SHA-256 key needs the password. */
int auth_add_user_key(struct auth *a, const char *name, const uint8_t md5[16]);
/* TURN REST shared secrets; several may be active during a rotation. */
int auth_add_secret(struct auth *a, const char *secret);
/* The browser check's own REST secret (a random one the daemon draws): its
 * credentials authenticate like REST ones, flagged check (auth_result),
 * and are held to what turn.c allows them. */
int auth_set_check_secret(struct auth *a, const char *secret);
const char *auth_realm(const struct auth *a);
/* The key nonces are made with (auth_new draws a random one). Auth objects
 * given the same key accept each other's nonces: the daemon's workers and
 * every reload share one, so a reload does not turn every client's nonce
 * stale. */
void auth_set_nonce_key(struct auth *a, const uint8_t key[AUTH_NONCE_KEY_LEN]);
/* Would these credentials still be accepted: a static user with this key,
 * or a REST username whose key one of the secrets gives? For revoking
 * allocations after a reload (REST expiry is checked when they refresh). */
bool auth_key_valid(const struct auth *a, const char *username, const uint8_t *key,
		    size_t keylen);

enum auth_verdict {
	AUTH_OK = 0,
	AUTH_CHALLENGE,		/* no credentials: 401 with REALM, NONCE */
	AUTH_BAD_REQUEST,	/* MI without USERNAME/REALM/NONCE, bad algorithm: 400 */
	AUTH_STALE_NONCE,	/* 438 with a fresh NONCE */
	AUTH_REJECTED,		/* unknown user, wrong password, expired REST name: 401 */
};

struct auth_result {
	enum auth_verdict verdict;
	int error_code;		/* 0, 400, 401 or 438 */
	const char *why;	/* short text for logs */
	/* When AUTH_OK: sign the response with this key, with
	 * MESSAGE-INTEGRITY-SHA256 if the request used it. */
	uint8_t key[STUN_MAX_KEY];
	size_t keylen;
	bool sha256;
	bool check;		/* a browser check's credentials (auth_set_check_secret) */
	char username[STUN_MAX_USERNAME];
};

/* Authenticates a request from client at time now. */
void auth_check(const struct auth *a, const struct stun_msg *m,
		const struct sockaddr_storage *client, time_t now, struct auth_result *r);
/* Adds REALM, a fresh NONCE and PASSWORD-ALGORITHMS to an error response. */
void auth_add_challenge(const struct auth *a, struct stun_builder *b,
			const struct sockaddr_storage *client, time_t now);

/* Nonce primitives (exposed for tests). auth_nonce_check: 0, -ESTALE, -EINVAL. */
size_t auth_nonce_make(const struct auth *a, const struct sockaddr_storage *client, time_t now,
		       char *out, size_t outlen);
int auth_nonce_check(const struct auth *a, const struct sockaddr_storage *client,
		     const char *nonce, size_t len, time_t now);

#endif
