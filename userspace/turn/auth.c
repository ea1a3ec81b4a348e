#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/addr.h"
#include "turn/auth.h"

#define MD5_LEN 16
/* base64 of 24 security-feature bits; bit 0 (the first) is "password
 * algorithms" (RFC 8489 §18.1): 0x80 0x00 0x00 -> "gAAA". */
#define NONCE_FEATURES "gAAA"
/* Compact, as a 401 goes to whoever a request claims to come from: 32-bit
 * seconds in hex (until 2106) and 96 bits of HMAC-SHA256 in base64, plenty
 * for a value whose forgery only saves a round trip. 37 bytes in all. */
#define NONCE_TS_HEX 8
#define NONCE_MAC_LEN 12	/* truncated HMAC-SHA256 */
#define NONCE_MAC_B64 16	/* its base64: 12 bytes, no padding */
#define NONCE_PREFIX AUTH_NONCE_COOKIE NONCE_FEATURES
#define NONCE_LEN (sizeof(NONCE_PREFIX) - 1 + NONCE_TS_HEX + NONCE_MAC_B64)

/* PASSWORD-ALGORITHMS we offer: MD5 then SHA-256, no parameters. */
static const uint8_t pwalgs_offer[] = { 0, STUN_PWALG_MD5, 0, 0, 0, STUN_PWALG_SHA256, 0, 0 };

struct auth_user {
	char *name;
	uint8_t md5[STUN_MAX_KEY];	/* 16 used; sized for stun_long_term_key() */
	uint8_t sha256[STUN_MAX_KEY];
	bool has_sha256;		/* false for a user given by its MD5 key */
};

struct auth {
	char *realm;
	unsigned nonce_lifetime;
	uint8_t nonce_key[AUTH_NONCE_KEY_LEN];
	struct auth_user *users;
	size_t nusers;
	char **secrets;
	size_t nsecrets;
	char *check_secret;		/* the browser check's credentials; NULL: none */
};

struct auth *auth_new(const char *realm, unsigned nonce_lifetime)
{
	struct auth *a;

	/* RFC 8489 §14.9: REALM is at most 763 bytes. */
	if (!realm || !*realm || strlen(realm) > 763)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->realm = strdup(realm);
	a->nonce_lifetime = nonce_lifetime;
	if (!a->realm || RAND_bytes(a->nonce_key, sizeof(a->nonce_key)) != 1) {
		auth_free(a);
		return NULL;
	}
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nusers; i++) {
		free(a->users[i].name);
		OPENSSL_cleanse(&a->users[i], sizeof(a->users[i]));
	}
	for (size_t i = 0; i < a->nsecrets; i++) {
		OPENSSL_cleanse(a->secrets[i], strlen(a->secrets[i]));
		free(a->secrets[i]);
	}
	if (a->check_secret) {
		OPENSSL_cleanse(a->check_secret, strlen(a->check_secret));
		free(a->check_secret);
	}
	free(a->users);
	free(a->secrets);
	free(a->realm);
	OPENSSL_cleanse(a->nonce_key, sizeof(a->nonce_key));
	free(a);
}

const char *auth_realm(const struct auth *a)
{
	return a->realm;
}

/* A new slot for user name, or NULL (errno-style code in *err). */
static struct auth_user *user_slot(struct auth *a, const char *name, int *err)
{
	struct auth_user *u;

	*err = -EINVAL;
	if (!name || !*name || strlen(name) >= STUN_MAX_USERNAME)
		return NULL;
	*err = -EEXIST;
	for (size_t i = 0; i < a->nusers; i++)
		if (!strcmp(a->users[i].name, name))
			return NULL;
	*err = -ENOMEM;
	u = realloc(a->users, (a->nusers + 1) * sizeof(*u));
	if (!u)
		return NULL;
	a->users = u;
	u += a->nusers;
	memset(u, 0, sizeof(*u));
	if (!(u->name = strdup(name)))
		return NULL;
	*err = 0;
	return u;
}

int auth_add_user(struct auth *a, const char *name, const char *password)
{
	struct auth_user *u;
	int err;

	if (!password || !(u = user_slot(a, name, &err)))
		return password ? err : -EINVAL;
	if (stun_long_term_key(STUN_PWALG_MD5, name, a->realm, password, u->md5) != MD5_LEN ||
	    stun_long_term_key(STUN_PWALG_SHA256, name, a->realm, password, u->sha256) !=
		    SHA256_LEN) {
		free(u->name);
		return -EINVAL;
	}
	u->has_sha256 = true;
	a->nusers++;
	return 0;
}

int auth_add_user_key(struct auth *a, const char *name, const uint8_t md5[16])
{
	struct auth_user *u;
	int err;

	if (!(u = user_slot(a, name, &err)))
		return err;
	memcpy(u->md5, md5, MD5_LEN);
	a->nusers++;
	return 0;
}

int auth_add_secret(struct auth *a, const char *secret)
{
	char **s;

	if (!secret || !*secret)
		return -EINVAL;
	s = realloc(a->secrets, (a->nsecrets + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	a->secrets = s;
	s[a->nsecrets] = strdup(secret);
	if (!s[a->nsecrets])
		return -ENOMEM;
	a->nsecrets++;
	return 0;
}

/* ---- nonces -------------------------------------------------------------- */

/* Base64 of the truncated HMAC-SHA256 over (client address, port,
 * timestamp). IPv4 is hashed in its IPv4-mapped form so both socket views
 * agree. */
static bool nonce_mac(const struct auth *a, const struct sockaddr_storage *client,
		      const char ts_hex[NONCE_TS_HEX], char out[NONCE_MAC_B64 + 1])
{
	uint8_t msg[16 + 2 + NONCE_TS_HEX], mac[SHA256_LEN];
	uint32_t ip[4];
	uint16_t port = addr_port(client);

	addr_to_mapped(client, ip);
	memcpy(msg, ip, 16);
	msg[16] = (uint8_t)(port >> 8);
	msg[17] = (uint8_t)port;
	memcpy(msg + 18, ts_hex, NONCE_TS_HEX);
	if (stun_hmac(true, a->nonce_key, sizeof(a->nonce_key), msg, sizeof(msg), mac) != SHA256_LEN)
		return false;
	return EVP_EncodeBlock((unsigned char *)out, mac, NONCE_MAC_LEN) == NONCE_MAC_B64;
}

size_t auth_nonce_make(const struct auth *a, const struct sockaddr_storage *client, time_t now,
		       char *out, size_t outlen)
{
	char ts[NONCE_TS_HEX + 1], mac[NONCE_MAC_B64 + 1];

	if (outlen < NONCE_LEN + 1)
		return 0;
	snprintf(ts, sizeof(ts), "%08llx", (unsigned long long)now & 0xffffffffu);
	if (!nonce_mac(a, client, ts, mac))
		return 0;
	return (size_t)snprintf(out, outlen, "%s%s%s", NONCE_PREFIX, ts, mac);
}

int auth_nonce_check(const struct auth *a, const struct sockaddr_storage *client,
		     const char *nonce, size_t len, time_t now)
{
	const size_t pre = sizeof(NONCE_PREFIX) - 1;
	char ts[NONCE_TS_HEX + 1], mac[NONCE_MAC_B64 + 1];
	unsigned long long t;

	if (len != NONCE_LEN || memcmp(nonce, NONCE_PREFIX, pre))
		return -EINVAL;
	memcpy(ts, nonce + pre, NONCE_TS_HEX);
	ts[NONCE_TS_HEX] = 0;
	if (!nonce_mac(a, client, ts, mac) ||
	    CRYPTO_memcmp(mac, nonce + pre + NONCE_TS_HEX, NONCE_MAC_B64))
		return -EINVAL;
	/* Authentic, so the timestamp is one we wrote. */
	t = strtoull(ts, NULL, 16);
	if ((unsigned long long)now > t && (unsigned long long)now - t > a->nonce_lifetime)
		return -ESTALE;
	return 0;
}

/* ---- request check (RFC 8489 §9.2.4) ------------------------------------- */

/* The algorithm the client picked: MD5 if neither attribute is present, the
 * PASSWORD-ALGORITHM value if both are and agree with our offer, -1 for
 * anything else (400). */
static int password_algorithm(const struct stun_msg *m)
{
	const struct stun_attr *list = stun_find(m, STUN_A_PASSWORD_ALGORITHMS);
	const struct stun_attr *alg = stun_find(m, STUN_A_PASSWORD_ALGORITHM);
	const uint8_t *v;

	if (!list && !alg)
		return STUN_PWALG_MD5;
	if (!list || !alg || list->len != sizeof(pwalgs_offer) ||
	    memcmp(stun_attr_val(m, list), pwalgs_offer, sizeof(pwalgs_offer)) || alg->len != 4)
		return -1;
	v = stun_attr_val(m, alg);
	if (v[0] || (v[1] != STUN_PWALG_MD5 && v[1] != STUN_PWALG_SHA256) || v[2] || v[3])
		return -1;
	return v[1];
}

static bool try_key(const struct stun_msg *m, const uint8_t *key, size_t keylen,
		    struct auth_result *r)
{
	if (stun_check_integrity(m, key, keylen, &r->sha256))
		return false;
	memcpy(r->key, key, keylen);
	r->keylen = keylen;
	return true;
}

/* TURN REST username: "<expiry>" or "<expiry>:<name>". */
static bool rest_expired(const char *user, time_t now)
{
	char *end;
	unsigned long long exp;

	if (*user < '0' || *user > '9')
		return true;
	errno = 0;
	exp = strtoull(user, &end, 10);
	if (errno || (*end && *end != ':'))
		return true;
	return exp < (unsigned long long)now;
}

static bool rest_try(const struct auth *a, const char *secret, const struct stun_msg *m,
		     int pwalg, struct auth_result *r)
{
	char pw[STUN_REST_PW_LEN + 1];
	uint8_t key[STUN_MAX_KEY];
	size_t keylen;
	bool ok;

	if (stun_rest_password(secret, r->username, pw, sizeof(pw)))
		return false;
	keylen = stun_long_term_key(pwalg, r->username, a->realm, pw, key);
	ok = keylen && try_key(m, key, keylen, r);
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(key, sizeof(key));
	return ok;
}

/* Tries every secret (several during a rotation), then the check's. */
static bool rest_check(const struct auth *a, const struct stun_msg *m, int pwalg,
		       struct auth_result *r)
{
	for (size_t i = 0; i < a->nsecrets; i++)
		if (rest_try(a, a->secrets[i], m, pwalg, r))
			return true;
	return a->check_secret && (r->check = rest_try(a, a->check_secret, m, pwalg, r));
}

int auth_set_check_secret(struct auth *a, const char *secret)
{
	char *s = strdup(secret);

	if (!s)
		return -ENOMEM;
	free(a->check_secret);
	a->check_secret = s;
	return 0;
}

bool auth_key_valid(const struct auth *a, const char *username, const uint8_t *key,
		    size_t keylen)
{
	static const int pwalgs[] = { STUN_PWALG_MD5, STUN_PWALG_SHA256 };
	char pw[STUN_REST_PW_LEN + 1];
	uint8_t k[STUN_MAX_KEY];
	bool ok = false;

	for (size_t i = 0; i < a->nusers; i++) {
		const struct auth_user *u = &a->users[i];
		if (!strcmp(u->name, username))
			return (keylen == MD5_LEN && !CRYPTO_memcmp(u->md5, key, MD5_LEN)) ||
			       (keylen == SHA256_LEN && u->has_sha256 &&
				!CRYPTO_memcmp(u->sha256, key, SHA256_LEN));
	}
	for (size_t i = 0; i <= a->nsecrets && !ok; i++) {
		const char *secret = i < a->nsecrets ? a->secrets[i] : a->check_secret;

		if (!secret || stun_rest_password(secret, username, pw, sizeof(pw)))
			continue;
		for (size_t j = 0; j < 2 && !ok; j++)
			ok = stun_long_term_key(pwalgs[j], username, a->realm, pw, k) == keylen &&
			     !CRYPTO_memcmp(k, key, keylen);
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(k, sizeof(k));
	return ok;
}

void auth_set_nonce_key(struct auth *a, const uint8_t key[AUTH_NONCE_KEY_LEN])
{
	memcpy(a->nonce_key, key, AUTH_NONCE_KEY_LEN);
}

static enum auth_verdict check(const struct auth *a, const struct stun_msg *m,
			       const struct sockaddr_storage *client, time_t now,
			       struct auth_result *r)
{
	const struct stun_attr *user, *realm, *nonce;
	int pwalg;

	if (!stun_find(m, STUN_A_MESSAGE_INTEGRITY) &&
	    !stun_find(m, STUN_A_MESSAGE_INTEGRITY_SHA256))
		return r->why = "no credentials", AUTH_CHALLENGE;
	user = stun_find(m, STUN_A_USERNAME);
	realm = stun_find(m, STUN_A_REALM);
	nonce = stun_find(m, STUN_A_NONCE);
	if (!user || !realm || !nonce)
		return r->why = "USERNAME, REALM or NONCE missing", AUTH_BAD_REQUEST;
	if (auth_nonce_check(a, client, (const char *)stun_attr_val(m, nonce), nonce->len, now))
		return r->why = "nonce invalid or stale", AUTH_STALE_NONCE;
	pwalg = password_algorithm(m);
	if (pwalg < 0)
		return r->why = "password algorithm not offered", AUTH_BAD_REQUEST;
	if (realm->len != strlen(a->realm) ||
	    memcmp(stun_attr_val(m, realm), a->realm, realm->len))
		return r->why = "wrong realm", AUTH_REJECTED;
	if (user->len == 0 || user->len >= STUN_MAX_USERNAME ||
	    memchr(stun_attr_val(m, user), 0, user->len))
		return r->why = "unknown user", AUTH_REJECTED;
	memcpy(r->username, stun_attr_val(m, user), user->len);

	for (size_t i = 0; i < a->nusers; i++) {
		const struct auth_user *u = &a->users[i];

		if (strcmp(u->name, r->username))
			continue;
		if (pwalg == STUN_PWALG_SHA256 && !u->has_sha256)
			return r->why = "SHA-256 asked of a user known by its MD5 key", AUTH_REJECTED;
		if (pwalg == STUN_PWALG_SHA256 ? try_key(m, u->sha256, SHA256_LEN, r)
					       : try_key(m, u->md5, MD5_LEN, r))
			return r->why = "static user", AUTH_OK;
		return r->why = "wrong password", AUTH_REJECTED;
	}
	if (!a->nsecrets && !a->check_secret)
		return r->why = "unknown user", AUTH_REJECTED;
	if (rest_expired(r->username, now))
		return r->why = "REST username expired or malformed", AUTH_REJECTED;
	if (!rest_check(a, m, pwalg, r))
		return r->why = "wrong REST password", AUTH_REJECTED;
	return r->why = "REST credentials", AUTH_OK;
}

void auth_check(const struct auth *a, const struct stun_msg *m,
		const struct sockaddr_storage *client, time_t now, struct auth_result *r)
{
	static const int codes[] = {
		[AUTH_OK] = 0, [AUTH_CHALLENGE] = 401, [AUTH_BAD_REQUEST] = 400,
		[AUTH_STALE_NONCE] = 438, [AUTH_REJECTED] = 401,
	};

	memset(r, 0, sizeof(*r));
	r->verdict = check(a, m, client, now, r);
	r->error_code = codes[r->verdict];
	if (r->verdict != AUTH_OK) {
		OPENSSL_cleanse(r->key, sizeof(r->key));
		r->keylen = 0;
		r->sha256 = false;
	}
}

void auth_add_challenge(const struct auth *a, struct stun_builder *b,
			const struct sockaddr_storage *client, time_t now)
{
	char nonce[NONCE_LEN + 1];
	size_t n = auth_nonce_make(a, client, now, nonce, sizeof(nonce));

	if (!n) {
		b->overflow = true;	/* sticky error: the challenge is useless without */
		return;
	}
	stun_add_attr(b, STUN_A_REALM, a->realm, (uint16_t)strlen(a->realm));
	stun_add_attr(b, STUN_A_NONCE, nonce, (uint16_t)n);
	stun_add_attr(b, STUN_A_PASSWORD_ALGORITHMS, pwalgs_offer, sizeof(pwalgs_offer));
}
