/* Long-term credentials, TURN REST secrets and stateless nonces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "turn/auth.h"

#define NOW ((time_t)1700000000)
#define LIFETIME 600
#define REALM "example.org"

static struct auth *A;
static struct sockaddr_storage client;

static const uint8_t tid[STUN_TID_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2 };
/* What we offer in PASSWORD-ALGORITHMS: MD5, SHA-256, no parameters. */
static const uint8_t offer[] = { 0, 1, 0, 0, 0, 2, 0, 0 };

static void set_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
}

/* Long-term key computed independently of auth.c. */
static size_t ref_key(const EVP_MD *md, const char *user, const char *pw, uint8_t *key)
{
	char s[256];
	unsigned n = 0;

	snprintf(s, sizeof(s), "%s:%s:%s", user, REALM, pw);
	assert_int_equal(EVP_Digest(s, strlen(s), key, &n, md, NULL), 1);
	return n;
}

struct req {
	const char *user, *realm, *nonce;	/* NULL: attribute left out */
	const void *algs;			/* PASSWORD-ALGORITHMS value or NULL */
	size_t algs_len;
	int alg;				/* PASSWORD-ALGORITHM or 0 */
	bool no_mi, mi256;
	const uint8_t *key;
	size_t keylen;
};

static uint8_t reqbuf[1024];

static void mkreq(const struct req *q, struct stun_msg *m)
{
	struct stun_builder b;
	uint8_t alg[4] = { 0, (uint8_t)q->alg, 0, 0 };

	stun_build_init(&b, reqbuf, sizeof(reqbuf), TURN_ALLOCATE, STUN_REQUEST, tid);
	stun_add_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
	if (q->user)
		stun_add_attr(&b, STUN_A_USERNAME, q->user, (uint16_t)strlen(q->user));
	if (q->realm)
		stun_add_attr(&b, STUN_A_REALM, q->realm, (uint16_t)strlen(q->realm));
	if (q->nonce)
		stun_add_attr(&b, STUN_A_NONCE, q->nonce, (uint16_t)strlen(q->nonce));
	if (q->algs)
		stun_add_attr(&b, STUN_A_PASSWORD_ALGORITHMS, q->algs, (uint16_t)q->algs_len);
	if (q->alg)
		stun_add_attr(&b, STUN_A_PASSWORD_ALGORITHM, alg, sizeof(alg));
	if (!q->no_mi && q->mi256)
		stun_add_integrity_sha256(&b, q->key, q->keylen);
	else if (!q->no_mi)
		stun_add_integrity(&b, q->key, q->keylen);
	stun_add_fingerprint(&b);
	assert_int_equal(stun_parse(m, reqbuf, stun_build_finish(&b)), STUN_OK);
}

static char nonce[128];
static uint8_t md5_alice[16], sha_alice[32];

static struct req alice(void)
{
	return (struct req){ .user = "alice", .realm = REALM, .nonce = nonce,
			     .key = md5_alice, .keylen = 16 };
}

static void expect(const struct req *q, time_t now, enum auth_verdict v, int code,
		   struct auth_result *r)
{
	struct stun_msg m;

	mkreq(q, &m);
	auth_check(A, &m, &client, now, r);
	assert_int_equal(r->verdict, v);
	assert_int_equal(r->error_code, code);
	assert_non_null(r->why);
}

static void test_long_term_key_rfc5769(void **state)
{
	/* RFC 5769 §2.4 signed with MD5("<U+30DE>...<U+30B9>:example.org:TheMatrIX"). */
	static const uint8_t msg[] = {
		0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33,
		0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12,
		0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83,
		0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00, 0x15, 0x00, 0x1c,
		0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
		0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79,
		0x36, 0x34, 0x73, 0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d,
		0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x08, 0x00, 0x14,
		0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71,
		0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
	};
	uint8_t key[STUN_MAX_KEY], ref[32];
	struct stun_msg m;

	assert_int_equal(stun_long_term_key(STUN_PWALG_MD5,
					    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83"
					    "\xe3\x82\xaf\xe3\x82\xb9", "example.org", "TheMatrIX",
					    key), 16);
	assert_int_equal(stun_parse(&m, msg, sizeof(msg)), STUN_OK);
	assert_int_equal(stun_check_integrity(&m, key, 16, NULL), 0);

	/* `printf %s alice:example.org:secret | openssl dgst -md5` */
	assert_int_equal(stun_long_term_key(STUN_PWALG_MD5, "alice", REALM, "secret", key), 16);
	assert_memory_equal(key, "\x54\x3e\x1a\xec\x5d\x36\x14\xf0\x31\x41\x65\x2d\x6a\xda\x51\xb2",
			    16);
	assert_int_equal(stun_long_term_key(STUN_PWALG_SHA256, "alice", REALM, "secret", key), 32);
	assert_int_equal(ref_key(EVP_sha256(), "alice", "secret", ref), 32);
	assert_memory_equal(key, ref, 32);
	assert_int_equal(stun_long_term_key(7, "alice", REALM, "secret", key), 0);
}

/* REST password against the openssl command line. */
static void test_rest_password(void **state)
{
	const char *user = "1700003600:bob";
	char pw[64], ref[64] = "";
	FILE *p;

	assert_int_equal(stun_rest_password("s1", user, pw, sizeof(pw)), 0);
	/* Computed at development time with
	 * `printf %s 1700003600:bob | openssl dgst -sha1 -hmac s1 -binary | base64`. */
	assert_string_equal(pw, "cifu2Er/OFLD9TkZ/da1W7wAiTA=");
	p = popen("printf %s 1700003600:bob | openssl dgst -sha1 -hmac 'an other secret' -binary"
		  " | base64", "r");
	assert_non_null(p);
	assert_non_null(fgets(ref, sizeof(ref), p));
	assert_int_equal(pclose(p), 0);
	ref[strcspn(ref, "\n")] = 0;
	assert_int_equal(stun_rest_password("an other secret", user, pw, sizeof(pw)), 0);
	assert_string_equal(pw, ref);
	assert_int_equal(stun_rest_password("s1", user, pw, 28), -ENOSPC);
}

static void test_setup_errors(void **state)
{
	assert_int_equal(auth_add_user(A, "alice", "x"), -EEXIST);
	assert_int_equal(auth_add_user(A, "", "x"), -EINVAL);
	assert_int_equal(auth_add_secret(A, ""), -EINVAL);
	assert_null(auth_new("", 1));
	assert_string_equal(auth_realm(A), REALM);
}

static void test_nonce(void **state)
{
	struct sockaddr_storage other, mapped;
	uint8_t feat[3];
	char n[128], t[128];
	size_t len = auth_nonce_make(A, &client, NOW, n, sizeof(n));
	struct auth *b;

	assert_true(len > strlen(AUTH_NONCE_COOKIE) + 4);
	assert_true(len < 128);	/* RFC 8489 §14.10: fewer than 128 characters */
	assert_int_equal(strlen(n), len);
	assert_memory_equal(n, AUTH_NONCE_COOKIE, strlen(AUTH_NONCE_COOKIE));
	/* Security feature bits: "password algorithms" is bit 0 (the first). */
	assert_int_equal(EVP_DecodeBlock(feat, (const uint8_t *)n + strlen(AUTH_NONCE_COOKIE), 4),
			 3);
	assert_int_equal(feat[0] & 0x80, 0x80);

	assert_int_equal(auth_nonce_check(A, &client, n, len, NOW), 0);
	assert_int_equal(auth_nonce_check(A, &client, n, len, NOW + LIFETIME), 0);
	assert_int_equal(auth_nonce_check(A, &client, n, len, NOW + LIFETIME + 1), -ESTALE);
	/* Bound to the client's address and port. */
	set_addr(&other, "192.0.2.11", 5000);
	assert_int_equal(auth_nonce_check(A, &other, n, len, NOW), -EINVAL);
	set_addr(&other, "192.0.2.10", 5001);
	assert_int_equal(auth_nonce_check(A, &other, n, len, NOW), -EINVAL);
	set_addr(&mapped, "::ffff:192.0.2.10", 5000);
	assert_int_equal(auth_nonce_check(A, &mapped, n, len, NOW), 0);
	/* Every altered character, truncation or extension is refused. */
	for (size_t i = 0; i < len; i++) {
		memcpy(t, n, len + 1);
		t[i] = t[i] == '0' ? '1' : '0';
		assert_int_equal(auth_nonce_check(A, &client, t, len, NOW), -EINVAL);
	}
	assert_int_equal(auth_nonce_check(A, &client, n, len - 1, NOW), -EINVAL);
	memcpy(t, n, len);
	t[len] = '0';
	assert_int_equal(auth_nonce_check(A, &client, t, len + 1, NOW), -EINVAL);
	/* Another instance has another key, unless given the same (the
	 * daemon's workers and reloads share one). */
	b = auth_new(REALM, LIFETIME);
	assert_non_null(b);
	assert_int_equal(auth_nonce_check(b, &client, n, len, NOW), -EINVAL);
	{
		uint8_t shared[AUTH_NONCE_KEY_LEN];
		struct auth *c = auth_new(REALM, LIFETIME);

		memset(shared, 7, sizeof(shared));
		auth_set_nonce_key(b, shared);
		auth_set_nonce_key(c, shared);
		len = auth_nonce_make(b, &client, NOW, t, sizeof(t));
		assert_int_equal(auth_nonce_check(c, &client, t, len, NOW), 0);
		assert_int_equal(auth_nonce_check(A, &client, t, len, NOW), -EINVAL);
		auth_free(c);
		len = auth_nonce_make(A, &client, NOW, n, sizeof(n));
	}
	auth_free(b);
	/* IPv6 clients. */
	set_addr(&other, "2001:db8::1", 3478);
	len = auth_nonce_make(A, &other, NOW, n, sizeof(n));
	assert_int_equal(auth_nonce_check(A, &other, n, len, NOW), 0);
	assert_int_equal(auth_nonce_check(A, &client, n, len, NOW), -EINVAL);
	assert_int_equal(auth_nonce_make(A, &other, NOW, n, 20), 0);
}

static void test_challenge(void **state)
{
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_msg m;
	const struct stun_attr *at;

	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_ERROR, tid);
	stun_add_error(&b, 401, NULL);
	auth_add_challenge(A, &b, &client, NOW);
	assert_int_equal(stun_parse(&m, buf, stun_build_finish(&b)), STUN_OK);
	at = stun_find(&m, STUN_A_REALM);
	assert_non_null(at);
	assert_int_equal(at->len, strlen(REALM));
	assert_memory_equal(stun_attr_val(&m, at), REALM, at->len);
	at = stun_find(&m, STUN_A_NONCE);
	assert_non_null(at);
	assert_int_equal(auth_nonce_check(A, &client, (const char *)stun_attr_val(&m, at), at->len,
					  NOW), 0);
	at = stun_find(&m, STUN_A_PASSWORD_ALGORITHMS);
	assert_non_null(at);
	assert_int_equal(at->len, sizeof(offer));
	assert_memory_equal(stun_attr_val(&m, at), offer, sizeof(offer));
}

static void test_verdict_ok(void **state)
{
	struct auth_result r;
	struct req q = alice();
	uint8_t key[16];

	/* What turnutils_uclient and browsers send: MESSAGE-INTEGRITY, MD5 key. */
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_int_equal(r.keylen, 16);
	assert_memory_equal(r.key, md5_alice, 16);
	assert_false(r.sha256);
	assert_string_equal(r.username, "alice");
	/* MESSAGE-INTEGRITY-SHA256 with the MD5 key. */
	q.mi256 = true;
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_true(r.sha256);
	assert_int_equal(r.keylen, 16);
	/* SHA-256 key chosen with PASSWORD-ALGORITHM, both MAC kinds. */
	q.algs = offer;
	q.algs_len = sizeof(offer);
	q.alg = STUN_PWALG_SHA256;
	q.key = sha_alice;
	q.keylen = 32;
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_true(r.sha256);
	assert_int_equal(r.keylen, 32);
	assert_memory_equal(r.key, sha_alice, 32);
	q.mi256 = false;
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_false(r.sha256);
	assert_int_equal(r.keylen, 32);
	/* MD5 chosen explicitly. */
	q.alg = STUN_PWALG_MD5;
	q.key = md5_alice;
	q.keylen = 16;
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_memory_equal(r.key, md5_alice, 16);
	/* Still fresh at the end of its lifetime. */
	expect(&q, NOW + LIFETIME, AUTH_OK, 0, &r);
	/* Another user whose name shares a prefix with the first. */
	q = alice();
	q.user = "alicia";
	q.key = key;
	q.keylen = ref_key(EVP_md5(), "alicia", "pw2", key);
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_string_equal(r.username, "alicia");
	assert_memory_equal(r.key, key, 16);
}

static void test_verdict_errors(void **state)
{
	static const uint8_t md5_only[] = { 0, 1, 0, 0 };
	struct sockaddr_storage other;
	char theirs[128];
	struct auth_result r;
	struct req q;

	q = alice();
	q.no_mi = true;
	expect(&q, NOW, AUTH_CHALLENGE, 401, &r);
	q = alice();
	q.user = NULL;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	q = alice();
	q.realm = NULL;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	q = alice();
	q.nonce = NULL;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	/* Stale, forged and another client's nonces. */
	q = alice();
	expect(&q, NOW + LIFETIME + 1, AUTH_STALE_NONCE, 438, &r);
	q.nonce = "obMatJos2gAAAforged";
	expect(&q, NOW, AUTH_STALE_NONCE, 438, &r);
	set_addr(&other, "192.0.2.99", 5000);
	assert_true(auth_nonce_make(A, &other, NOW, theirs, sizeof(theirs)) > 0);
	q.nonce = theirs;
	expect(&q, NOW, AUTH_STALE_NONCE, 438, &r);
	/* Password algorithms: list differs from our offer, unknown choice,
	 * only one of the two attributes. */
	q = alice();
	q.algs = md5_only;
	q.algs_len = sizeof(md5_only);
	q.alg = STUN_PWALG_MD5;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	q.algs = offer;
	q.algs_len = sizeof(offer);
	q.alg = 3;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	q.algs = NULL;
	q.alg = STUN_PWALG_MD5;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	q.algs = offer;
	q.alg = 0;
	expect(&q, NOW, AUTH_BAD_REQUEST, 400, &r);
	/* SHA-256 chosen but signed with the MD5 key. */
	q.alg = STUN_PWALG_SHA256;
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	assert_int_equal(r.keylen, 0);
	/* Wrong realm, unknown user, wrong password. */
	q = alice();
	q.realm = "example.com";
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	q.realm = "example";
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	q = alice();
	q.user = "mallory";
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	q = alice();
	q.key = (const uint8_t *)"0123456789abcdef";
	q.mi256 = true;
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	assert_int_equal(r.keylen, 0);
	assert_false(r.sha256);
}

/* A REST user signing with the MD5 key of its derived password. */
static void rest_req(const char *secret, const char *user, uint8_t key[16], struct req *q)
{
	char pw[64];

	assert_int_equal(stun_rest_password(secret, user, pw, sizeof(pw)), 0);
	assert_int_equal(ref_key(EVP_md5(), user, pw, key), 16);
	*q = (struct req){ .user = user, .realm = REALM, .nonce = nonce, .key = key,
			   .keylen = 16 };
}

static void test_rest(void **state)
{
	char user[64], expired[64], bare[64], later[128];
	uint8_t key[16];
	struct auth_result r;
	struct req q;

	snprintf(user, sizeof(user), "%lld:bob", (long long)NOW + 3600);
	snprintf(expired, sizeof(expired), "%lld:bob", (long long)NOW - 1);
	snprintf(bare, sizeof(bare), "%lld", (long long)NOW + 60);

	rest_req("s1", user, key, &q);
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_string_equal(r.username, user);
	assert_memory_equal(r.key, key, 16);
	/* The second secret of a rotation works too. */
	rest_req("s2", user, key, &q);
	expect(&q, NOW, AUTH_OK, 0, &r);
	rest_req("s1", bare, key, &q);
	expect(&q, NOW, AUTH_OK, 0, &r);
	/* Correctly signed but expired, or not a REST name at all. */
	rest_req("s1", expired, key, &q);
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	rest_req("s1", "bob", key, &q);
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	rest_req("s1", "12x:bob", key, &q);
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	/* A secret we do not have. */
	rest_req("s3", user, key, &q);
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	/* Expiry is checked against the request time. */
	rest_req("s1", bare, key, &q);
	assert_true(auth_nonce_make(A, &client, NOW + 61, later, sizeof(later)) > 0);
	q.nonce = later;
	expect(&q, NOW + 61, AUTH_REJECTED, 401, &r);
}

/* After a reload: which allocations' credentials still hold. */
static void test_key_valid(void **state)
{
	uint8_t k[STUN_MAX_KEY], kr[STUN_MAX_KEY];
	char pw[64];
	const char *ru = "1900000000:rest";
	size_t kl;

	assert_true(auth_key_valid(A, "alice", md5_alice, 16));
	assert_true(auth_key_valid(A, "alice", sha_alice, 32));
	assert_false(auth_key_valid(A, "alice", md5_alice, 15));
	assert_false(auth_key_valid(A, "alicia", md5_alice, 16));	/* another's key */
	kl = stun_long_term_key(STUN_PWALG_MD5, "alice", REALM, "changed", k);
	assert_false(auth_key_valid(A, "alice", k, kl));
	/* REST: a key one of the secrets gives, in either algorithm */
	assert_int_equal(stun_rest_password("s2", ru, pw, sizeof(pw)), 0);
	kl = stun_long_term_key(STUN_PWALG_SHA256, ru, REALM, pw, kr);
	assert_true(auth_key_valid(A, ru, kr, kl));
	assert_int_equal(stun_rest_password("gone", ru, pw, sizeof(pw)), 0);
	kl = stun_long_term_key(STUN_PWALG_MD5, ru, REALM, pw, kr);
	assert_false(auth_key_valid(A, ru, kr, kl));
	/* A static name is not a REST one: only its own password counts. */
	assert_int_equal(stun_rest_password("s1", "alice", pw, sizeof(pw)), 0);
	kl = stun_long_term_key(STUN_PWALG_MD5, "alice", REALM, pw, kr);
	assert_false(auth_key_valid(A, "alice", kr, kl));
}

/* coturn's user=NAME:0xKEY: a user known by MD5(name:realm:password) only
 * authenticates with MD5; SHA-256 needs the password it does not have. */
static void test_user_by_key(void **state)
{
	struct auth_result r;
	struct req q = alice();
	uint8_t md5[16], sha[32];

	q.user = "keyed";
	q.key = md5;
	q.keylen = ref_key(EVP_md5(), "keyed", "pw3", md5);
	assert_int_equal(auth_add_user_key(A, "keyed", md5), 0);
	assert_int_equal(auth_add_user_key(A, "keyed", md5), -EEXIST);
	expect(&q, NOW, AUTH_OK, 0, &r);
	assert_string_equal(r.username, "keyed");
	assert_memory_equal(r.key, md5, 16);
	assert_true(auth_key_valid(A, "keyed", md5, 16));
	q.algs = offer;
	q.algs_len = sizeof(offer);
	q.alg = STUN_PWALG_SHA256;
	q.key = sha;
	q.keylen = ref_key(EVP_sha256(), "keyed", "pw3", sha);
	expect(&q, NOW, AUTH_REJECTED, 401, &r);
	assert_false(auth_key_valid(A, "keyed", sha, 32));
	/* A zeroed SHA-256 key slot never matches either. */
	memset(sha, 0, sizeof(sha));
	assert_false(auth_key_valid(A, "keyed", sha, 32));
}

static int setup(void **state)
{
	A = auth_new(REALM, LIFETIME);
	if (!A || auth_add_user(A, "alice", "secret") || auth_add_user(A, "alicia", "pw2") ||
	    auth_add_secret(A, "s1") || auth_add_secret(A, "s2"))
		return -1;
	set_addr(&client, "192.0.2.10", 5000);
	if (!auth_nonce_make(A, &client, NOW, nonce, sizeof(nonce)))
		return -1;
	ref_key(EVP_md5(), "alice", "secret", md5_alice);
	ref_key(EVP_sha256(), "alice", "secret", sha_alice);
	return 0;
}

static int teardown(void **state)
{
	auth_free(A);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_term_key_rfc5769),
		cmocka_unit_test(test_rest_password),
		cmocka_unit_test(test_setup_errors),
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_verdict_ok),
		cmocka_unit_test(test_verdict_errors),
		cmocka_unit_test(test_rest),
		cmocka_unit_test(test_key_valid),
		cmocka_unit_test(test_user_by_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
