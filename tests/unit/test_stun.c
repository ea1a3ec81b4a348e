/* STUN codec: RFC 5769 test vectors, malformed input, builder round trips,
 * ChannelData framing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include "common/stun.h"

/* RFC 5769 §2.1: Binding request, short-term credential, FINGERPRINT.
 * USERNAME is padded with spaces, which receivers must accept. */
static const uint8_t rfc_req[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
	0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
	0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
	0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
	0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
	0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
	0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* §2.2: success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
static const uint8_t rfc_resp4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
	0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
	0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* §2.3: success response, XOR-MAPPED-ADDRESS
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t rfc_resp6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
	0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

/* §2.4: request with long-term credentials, no FINGERPRINT. */
static const uint8_t rfc_req_lt[] = {
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

static const char short_term_pw[] = "VOkJxbRl1RmTxUk/WvJxBt";

struct vec {
	const uint8_t *buf;
	size_t len;
	bool fingerprint;
	const uint8_t *key;
	size_t keylen;
};

/* MD5("<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>:example.org:TheMatrIX"),
 * computed here rather than by auth.c so the codec is checked on its own.
 * "TheMatrIX" is SASLprep("The<U+00AD>M<U+00AA>tr<U+2168>"). */
static void rfc_long_term_key(uint8_t key[16])
{
	static const char s[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf"
				"\xe3\x82\xb9:example.org:TheMatrIX";
	unsigned n = 0;

	assert_int_equal(EVP_Digest(s, strlen(s), key, &n, EVP_md5(), NULL), 1);
	assert_int_equal(n, 16);
}

static uint8_t lt_key[16];

static struct vec vectors(int i)
{
	const struct vec v[] = {
		{ rfc_req, sizeof(rfc_req), true, (const uint8_t *)short_term_pw,
		  sizeof(short_term_pw) - 1 },
		{ rfc_resp4, sizeof(rfc_resp4), true, (const uint8_t *)short_term_pw,
		  sizeof(short_term_pw) - 1 },
		{ rfc_resp6, sizeof(rfc_resp6), true, (const uint8_t *)short_term_pw,
		  sizeof(short_term_pw) - 1 },
		{ rfc_req_lt, sizeof(rfc_req_lt), false, lt_key, sizeof(lt_key) },
	};
	return v[i];
}
#define NVEC 4

/* Exact-size heap copy so ASan catches any read past the datagram. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	assert_non_null(d);
	memcpy(d, p, n);
	return d;
}

static void attr_equals(const struct stun_msg *m, uint16_t type, const char *s)
{
	const struct stun_attr *a = stun_find(m, type);

	assert_non_null(a);
	assert_int_equal(a->len, strlen(s));
	assert_memory_equal(stun_attr_val(m, a), s, a->len);
}

static void test_rfc5769_request(void **state)
{
	struct stun_msg m;
	uint32_t prio;
	bool sha;

	assert_int_equal(stun_parse(&m, rfc_req, sizeof(rfc_req)), STUN_OK);
	assert_int_equal(m.method, STUN_BINDING);
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_memory_equal(m.tid, rfc_req + 8, STUN_TID_LEN);
	assert_int_equal(m.nattrs, 6);
	assert_int_equal(m.nunknown, 0);
	attr_equals(&m, STUN_A_SOFTWARE, "STUN test client");
	attr_equals(&m, STUN_A_USERNAME, "evtj:h6vY");
	assert_int_equal(stun_attr_u32(&m, STUN_A_PRIORITY, &prio), 0);
	assert_int_equal(prio, 0x6e0001ff);
	assert_non_null(stun_find(&m, STUN_A_ICE_CONTROLLED));
	assert_int_equal(m.attrs[5].type, STUN_A_FINGERPRINT);
	sha = true;
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw,
					      strlen(short_term_pw), &sha), 0);
	assert_false(sha);
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"wrong", 5, NULL), -EBADMSG);
}

static void test_rfc5769_response_v4(void **state)
{
	struct stun_msg m;
	struct sockaddr_storage ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

	assert_int_equal(stun_parse(&m, rfc_resp4, sizeof(rfc_resp4)), STUN_OK);
	assert_int_equal(m.method, STUN_BINDING);
	assert_int_equal(m.cls, STUN_SUCCESS);
	attr_equals(&m, STUN_A_SOFTWARE, "test vector");
	assert_int_equal(stun_attr_xor_addr(&m, stun_find(&m, STUN_A_XOR_MAPPED_ADDRESS), &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 32853);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xC0000201);	/* 192.0.2.1 */
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw,
					      strlen(short_term_pw), NULL), 0);
}

static void test_rfc5769_response_v6(void **state)
{
	static const uint8_t ip[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78,
					0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };
	struct stun_msg m;
	struct sockaddr_storage ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

	assert_int_equal(stun_parse(&m, rfc_resp6, sizeof(rfc_resp6)), STUN_OK);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_int_equal(stun_attr_xor_addr(&m, stun_find(&m, STUN_A_XOR_MAPPED_ADDRESS), &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 32853);
	assert_memory_equal(s6->sin6_addr.s6_addr, ip, 16);
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw,
					      strlen(short_term_pw), NULL), 0);
}

static void test_rfc5769_long_term(void **state)
{
	struct stun_msg m;

	assert_int_equal(stun_parse(&m, rfc_req_lt, sizeof(rfc_req_lt)), STUN_OK);
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_null(stun_find(&m, STUN_A_FINGERPRINT));
	attr_equals(&m, STUN_A_REALM, "example.org");
	attr_equals(&m, STUN_A_NONCE, "f//499k954d6OL34oL9FSTvy64sA");
	attr_equals(&m, STUN_A_USERNAME, "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83"
					 "\xe3\x82\xaf\xe3\x82\xb9");
	assert_int_equal(stun_check_integrity(&m, lt_key, sizeof(lt_key), NULL), 0);
	/* The unprepared password gives another key. */
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw,
					      strlen(short_term_pw), NULL), -EBADMSG);
}

/* Any single flipped bit is caught: by FINGERPRINT (CRC-32 detects all
 * single-bit errors) when present, else by MESSAGE-INTEGRITY or parsing.
 * The FINGERPRINT attribute's own type is the exception: changed, it is
 * another (optional) attribute after MESSAGE-INTEGRITY, which is ignored. */
static void test_tampered(void **state)
{
	for (int i = 0; i < NVEC; i++) {
		struct vec v = vectors(i);

		for (size_t pos = 0; pos < v.len; pos++) {
			uint8_t *d = dup_exact(v.buf, v.len);
			struct stun_msg m;
			int rc;

			d[pos] ^= 0x04;
			rc = stun_parse(&m, d, v.len);
			if (v.fingerprint && pos < v.len - 8)
				assert_int_not_equal(rc, STUN_OK);
			if (rc == STUN_OK && pos < v.len - 8 * v.fingerprint)
				assert_int_not_equal(stun_check_integrity(&m, v.key, v.keylen,
									  NULL), 0);
			else if (rc == STUN_OK)
				assert_null(stun_find(&m, STUN_A_FINGERPRINT));
			free(d);
		}
	}
}

/* Runs every accessor on every attribute of a parsed message. */
static void touch_all(const struct stun_msg *m)
{
	struct sockaddr_storage ss;
	uint32_t u;

	for (unsigned i = 0; i < m->nattrs; i++) {
		(void)stun_attr_xor_addr(m, &m->attrs[i], &ss);
		(void)stun_attr_u32(m, m->attrs[i].type, &u);
		assert_true(m->attrs[i].off + m->attrs[i].len <= m->len);
	}
	(void)stun_check_integrity(m, (const uint8_t *)"k", 1, NULL);
}

static void test_truncated(void **state)
{
	for (int i = 0; i < NVEC; i++) {
		struct vec v = vectors(i);
		struct stun_msg full;

		/* Where the whole message's attributes end: the only prefixes
		 * that are whole messages once the length field agrees. */
		assert_int_equal(stun_parse(&full, v.buf, v.len), STUN_OK);
		for (size_t n = 0; n < v.len; n++) {
			uint8_t *d = dup_exact(v.buf, n);
			struct stun_msg m;
			bool boundary = n == STUN_HDR_LEN;

			for (unsigned a = 0; a < full.nattrs; a++)
				boundary |= n == (size_t)full.attrs[a].off + ((full.attrs[a].len + 3u) & ~3u);
			assert_int_not_equal(stun_parse(&m, d, n), STUN_OK);
			/* Same prefix with the length field made to agree. */
			if (n >= STUN_HDR_LEN) {
				int e;

				d[2] = (uint8_t)((n - STUN_HDR_LEN) >> 8);
				d[3] = (uint8_t)(n - STUN_HDR_LEN);
				e = stun_parse(&m, d, n);
				if (boundary) {
					assert_int_equal(e, STUN_OK);
					touch_all(&m);
				} else {
					assert_int_equal(e, n % 4 ? STUN_ERR_LENGTH : STUN_ERR_ATTR);
				}
			}
			free(d);
		}
	}
}

static void test_header_checks(void **state)
{
	uint8_t d[sizeof(rfc_req_lt) + 4];
	struct stun_msg m;

	memcpy(d, rfc_req_lt, sizeof(rfc_req_lt));
	assert_int_equal(stun_parse(&m, d, 19), STUN_ERR_SHORT);
	assert_false(stun_looks_like(d, 19));
	assert_true(stun_looks_like(d, 20));
	d[0] |= 0x40;
	assert_int_equal(stun_parse(&m, d, sizeof(rfc_req_lt)), STUN_ERR_NOT_STUN);
	assert_false(stun_looks_like(d, sizeof(rfc_req_lt)));
	d[0] = rfc_req_lt[0];
	d[7] ^= 1;	/* magic cookie */
	assert_int_equal(stun_parse(&m, d, sizeof(rfc_req_lt)), STUN_ERR_NOT_STUN);
	d[7] = rfc_req_lt[7];
	d[3] += 2;	/* length not a multiple of 4 */
	assert_int_equal(stun_parse(&m, d, sizeof(rfc_req_lt)), STUN_ERR_LENGTH);
	d[3] = rfc_req_lt[3];
	/* Trailing bytes after the message in the datagram. */
	memset(d + sizeof(rfc_req_lt), 0, 4);
	assert_int_equal(stun_parse(&m, d, sizeof(d)), STUN_ERR_LENGTH);
	/* A length field claiming more than the datagram. */
	d[3] += 4;
	assert_int_equal(stun_parse(&m, d, sizeof(rfc_req_lt)), STUN_ERR_SHORT);
	assert_string_not_equal(stun_parse_strerror(STUN_ERR_SHORT),
				stun_parse_strerror(STUN_ERR_LENGTH));
}

/* A header plus raw attribute bytes, length field set. */
static size_t raw_msg(uint8_t *buf, const uint8_t *attrs, size_t alen)
{
	static const uint8_t tid[STUN_TID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct stun_builder b;

	stun_build_init(&b, buf, STUN_HDR_LEN, STUN_BINDING, STUN_REQUEST, tid);
	memcpy(buf + STUN_HDR_LEN, attrs, alen);
	buf[2] = (uint8_t)(alen >> 8);
	buf[3] = (uint8_t)alen;
	return STUN_HDR_LEN + alen;
}

static void test_attr_padding(void **state)
{
	uint8_t buf[64];
	struct stun_msg m;
	/* USERNAME of 5 bytes: value then 3 bytes of padding. */
	const uint8_t ok[] = { 0x00, 0x06, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e', 0, 0, 0 };
	/* No padding after the value: the next attribute starts at once, so
	 * its header is read from 3 bytes later. */
	const uint8_t nopad[] = { 0x00, 0x06, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e',
				  0x80, 0x22, 0x00, 0x03, 'x', 'y', 'z' };
	/* The value cut short by the message's end. */
	const uint8_t cut[] = { 0x00, 0x06, 0x00, 0x05, 'a', 'b', 'c', 'd' };
	/* Value length past the message. */
	const uint8_t past[] = { 0x00, 0x06, 0x00, 0x09, 'a', 'b', 'c', 'd' };
	/* A trailing partial attribute header. */
	const uint8_t partial[] = { 0x00, 0x06, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x80, 0x22,
				    0x00, 0x00 };
	size_t n;

	n = raw_msg(buf, ok, sizeof(ok));
	assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
	attr_equals(&m, STUN_A_USERNAME, "abcde");
	n = raw_msg(buf, nopad, sizeof(nopad));
	assert_int_equal(stun_parse(&m, buf, n), STUN_ERR_ATTR);
	n = raw_msg(buf, cut, sizeof(cut));
	assert_int_equal(stun_parse(&m, buf, n), STUN_ERR_ATTR);
	n = raw_msg(buf, past, sizeof(past));
	assert_int_equal(stun_parse(&m, buf, n), STUN_ERR_ATTR);
	n = raw_msg(buf, partial, sizeof(partial));
	assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
	assert_int_equal(m.nattrs, 3);
	assert_int_equal(m.attrs[2].len, 0);
}

static void test_unknown_attrs(void **state)
{
	const uint8_t a[] = {
		0x00, 0x30, 0x00, 0x00,	/* unknown, comprehension-required */
		0x80, 0x30, 0x00, 0x00,	/* unknown, optional */
		0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0,	/* REQUESTED-TRANSPORT: known */
		0x7f, 0xff, 0x00, 0x00,	/* unknown, required */
		0xc0, 0x01, 0x00, 0x00,	/* unknown, optional */
	};
	uint8_t buf[64];
	struct stun_msg m;

	assert_int_equal(stun_parse(&m, buf, raw_msg(buf, a, sizeof(a))), STUN_OK);
	assert_int_equal(m.nattrs, 5);
	assert_int_equal(m.nunknown, 2);
	assert_int_equal(m.unknown[0], 0x0030);
	assert_int_equal(m.unknown[1], 0x7fff);
}

static const uint8_t tid1[STUN_TID_LEN] = { 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4, 5, 6 };

static void test_after_integrity(void **state)
{
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;
	uint32_t crc;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_attr(&b, STUN_A_USERNAME, "u", 1);
	stun_add_integrity(&b, (const uint8_t *)"k", 1);
	stun_add_attr(&b, STUN_A_SOFTWARE, "x", 1);	/* ignored */
	stun_add_attr(&b, 0x0031, NULL, 0);		/* ignored, even though unknown */
	stun_add_integrity_sha256(&b, (const uint8_t *)"k", 1);
	stun_add_attr(&b, STUN_A_REALM, "r", 1);		/* ignored */
	stun_add_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
	assert_int_equal(m.nattrs, 4);
	assert_int_equal(m.attrs[0].type, STUN_A_USERNAME);
	assert_int_equal(m.attrs[1].type, STUN_A_MESSAGE_INTEGRITY);
	assert_int_equal(m.attrs[2].type, STUN_A_MESSAGE_INTEGRITY_SHA256);
	assert_int_equal(m.attrs[3].type, STUN_A_FINGERPRINT);
	assert_int_equal(m.nunknown, 0);

	/* After MESSAGE-INTEGRITY-SHA256 alone, only FINGERPRINT is kept. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_integrity_sha256(&b, (const uint8_t *)"k", 1);
	stun_add_attr(&b, STUN_A_SOFTWARE, "x", 1);
	stun_add_integrity(&b, (const uint8_t *)"k", 1);
	assert_int_equal(stun_parse(&m, buf, stun_build_finish(&b)), STUN_OK);
	assert_int_equal(m.nattrs, 1);

	/* Nothing may follow FINGERPRINT, even with a correct CRC (computed
	 * here with the final header length). */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_u32(&b, STUN_A_FINGERPRINT, 0);
	stun_add_attr(&b, STUN_A_SOFTWARE, "x", 1);
	n = stun_build_finish(&b);
	crc = (uint32_t)crc32(0, buf, STUN_HDR_LEN) ^ 0x5354554e;
	buf[STUN_HDR_LEN + 4] = (uint8_t)(crc >> 24);
	buf[STUN_HDR_LEN + 5] = (uint8_t)(crc >> 16);
	buf[STUN_HDR_LEN + 6] = (uint8_t)(crc >> 8);
	buf[STUN_HDR_LEN + 7] = (uint8_t)crc;
	assert_int_equal(stun_parse(&m, buf, n), STUN_ERR_FINGERPRINT);
	assert_int_equal(stun_parse(&m, buf, STUN_HDR_LEN + 8), STUN_ERR_SHORT);
	buf[3] = 8;	/* without the trailing attribute the same CRC is wrong */
	assert_int_equal(stun_parse(&m, buf, STUN_HDR_LEN + 8), STUN_ERR_FINGERPRINT);
	/* FINGERPRINT of the wrong size. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_attr(&b, STUN_A_FINGERPRINT, "12345678", 8);
	assert_int_equal(stun_parse(&m, buf, stun_build_finish(&b)), STUN_ERR_FINGERPRINT);
}

static void test_too_many(void **state)
{
	uint8_t buf[STUN_HDR_LEN + 4 * (STUN_MAX_ATTRS + 1)];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	for (int i = 0; i < STUN_MAX_ATTRS; i++)
		stun_add_attr(&b, STUN_A_SOFTWARE, NULL, 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
	assert_int_equal(m.nattrs, STUN_MAX_ATTRS);
	stun_add_attr(&b, STUN_A_SOFTWARE, NULL, 0);
	n = stun_build_finish(&b);
	assert_int_equal(n, sizeof(buf));
	assert_int_equal(stun_parse(&m, buf, n), STUN_ERR_TOO_MANY);
}

static void test_build_roundtrip(void **state)
{
	static const uint16_t methods[] = { STUN_BINDING, TURN_ALLOCATE, TURN_REFRESH, TURN_SEND,
					    TURN_DATA, TURN_CREATE_PERMISSION, TURN_CHANNEL_BIND,
					    0xFFF };
	static const uint16_t unk[] = { 0x0031, 0x0032, 0x7000 };
	const uint8_t key[] = "0123456789abcdef";
	uint8_t buf[512];
	struct sockaddr_storage a4 = { 0 }, a6 = { 0 }, out;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a4;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a6;
	struct stun_builder b;
	struct stun_msg m;
	const struct stun_attr *a;
	const uint8_t *v;
	uint32_t u;
	bool sha;
	size_t n;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(49152);
	inet_pton(AF_INET, "203.0.113.7", &s4->sin_addr);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(3478);
	inet_pton(AF_INET6, "2001:db8::dead:beef", &s6->sin6_addr);

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		for (int cls = STUN_REQUEST; cls <= STUN_ERROR; cls++) {
			stun_build_init(&b, buf, sizeof(buf), methods[i], cls, tid1);
			n = stun_build_finish(&b);
			assert_int_equal(n, STUN_HDR_LEN);
			assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
			assert_int_equal(m.method, methods[i]);
			assert_int_equal(m.cls, cls);
			assert_memory_equal(m.tid, tid1, STUN_TID_LEN);
		}
	}
	/* RFC 8489 §5: a Binding success response is type 0x0101. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, tid1);
	assert_int_equal(buf[0] << 8 | buf[1], 0x0101);

	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_ERROR, tid1);
	stun_add_u32(&b, STUN_A_LIFETIME, 600);
	stun_add_xor_addr(&b, STUN_A_XOR_RELAYED_ADDRESS, &a4);
	stun_add_xor_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, &a6);
	stun_add_error(&b, 438, NULL);
	stun_add_unknown_attrs(&b, unk, 3);
	stun_add_integrity(&b, key, 16);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
	assert_int_equal(m.method, TURN_ALLOCATE);
	assert_int_equal(m.cls, STUN_ERROR);
	assert_int_equal(stun_attr_u32(&m, STUN_A_LIFETIME, &u), 0);
	assert_int_equal(u, 600);
	assert_int_equal(stun_attr_xor_addr(&m, stun_find(&m, STUN_A_XOR_RELAYED_ADDRESS), &out), 0);
	assert_memory_equal(&out, &a4, sizeof(struct sockaddr_in));
	assert_int_equal(stun_attr_xor_addr(&m, stun_find(&m, STUN_A_XOR_MAPPED_ADDRESS), &out), 0);
	assert_memory_equal(&out, &a6, sizeof(struct sockaddr_in6));
	a = stun_find(&m, STUN_A_ERROR_CODE);
	assert_non_null(a);
	v = stun_attr_val(&m, a);
	assert_int_equal(v[2], 4);
	assert_int_equal(v[3], 38);
	assert_int_equal(a->len, 4 + strlen("Stale Nonce"));
	assert_memory_equal(v + 4, "Stale Nonce", a->len - 4);
	a = stun_find(&m, STUN_A_UNKNOWN_ATTRIBUTES);
	assert_non_null(a);
	v = stun_attr_val(&m, a);
	assert_int_equal(a->len, 6);
	assert_int_equal(v[0] << 8 | v[1], 0x0031);
	assert_int_equal(v[4] << 8 | v[5], 0x7000);
	assert_int_equal(v[6] | v[7], 0);	/* zero padding */
	sha = true;
	assert_int_equal(stun_check_integrity(&m, key, 16, &sha), 0);
	assert_false(sha);
	assert_int_equal(stun_check_integrity(&m, key, 15, NULL), -EBADMSG);

	/* MESSAGE-INTEGRITY-SHA256 is preferred when both are present. */
	stun_add_integrity_sha256(&b, key, 16);
	stun_add_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(&m, buf, n), STUN_OK);
	a = stun_find(&m, STUN_A_MESSAGE_INTEGRITY_SHA256);
	assert_non_null(a);
	assert_int_equal(a->len, 32);
	assert_int_equal(stun_check_integrity(&m, key, 16, &sha), 0);
	assert_true(sha);
	buf[a->off] ^= 1;	/* breaks SHA-256 MAC (and FINGERPRINT, not re-checked) */
	assert_int_equal(stun_check_integrity(&m, key, 16, &sha), -EBADMSG);
	assert_true(sha);

	/* No integrity at all. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	assert_int_equal(stun_parse(&m, buf, stun_build_finish(&b)), STUN_OK);
	assert_int_equal(stun_check_integrity(&m, key, 16, NULL), -ENOENT);
}

/* RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16, 20, 24 or
 * 28 bytes, never below 16. The MAC is computed here with OpenSSL's HMAC(). */
static void test_integrity_sha256_truncated(void **state)
{
	static const uint8_t key[] = "truncation-key";
	uint8_t buf[128], mac[32];
	struct stun_builder b;
	struct stun_msg m;
	unsigned maclen;
	bool sha;

	for (uint16_t n = 8; n <= 32; n += 4) {
		stun_build_init(&b, buf, sizeof(buf), TURN_REFRESH, STUN_REQUEST, tid1);
		stun_add_attr(&b, STUN_A_USERNAME, "user", 4);
		stun_add_attr(&b, STUN_A_MESSAGE_INTEGRITY_SHA256, mac, n);
		assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), buf, STUN_HDR_LEN + 8, mac,
				     &maclen));
		memcpy(buf + STUN_HDR_LEN + 12, mac, n);
		assert_int_equal(stun_parse(&m, buf, stun_build_finish(&b)), STUN_OK);
		assert_int_equal(stun_check_integrity(&m, key, sizeof(key), &sha),
				 n >= 16 ? 0 : -EBADMSG);
		assert_true(sha);
	}
}

static void test_build_padding_zeroed(void **state)
{
	uint8_t buf[64];
	struct stun_builder b;

	memset(buf, 0xAA, sizeof(buf));
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_attr(&b, STUN_A_USERNAME, "x", 1);
	assert_int_equal(stun_build_finish(&b), STUN_HDR_LEN + 8);
	assert_int_equal(buf[3], 8);
	assert_int_equal(buf[STUN_HDR_LEN + 3], 1);
	assert_int_equal(buf[STUN_HDR_LEN + 4], 'x');
	assert_int_equal(buf[STUN_HDR_LEN + 5] | buf[STUN_HDR_LEN + 6] | buf[STUN_HDR_LEN + 7], 0);
	assert_int_equal(buf[STUN_HDR_LEN + 8], 0xAA);
}

static void test_build_overflow(void **state)
{
	uint8_t buf[STUN_HDR_LEN + 8 + 16];
	struct stun_builder b;
	struct sockaddr_storage bad = { .ss_family = AF_UNIX };
	size_t cap = STUN_HDR_LEN + 8;

	memset(buf, 0x55, sizeof(buf));
	stun_build_init(&b, buf, cap, STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_u32(&b, STUN_A_LIFETIME, 1);		/* exactly fills */
	assert_int_equal(stun_build_finish(&b), cap);
	stun_add_attr(&b, STUN_A_SOFTWARE, NULL, 0);	/* does not fit */
	assert_int_equal(stun_build_finish(&b), 0);
	assert_int_equal(buf[3], 8);			/* header untouched */
	for (size_t i = cap; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x55);
	/* Sticky. */
	stun_add_fingerprint(&b);
	assert_int_equal(stun_build_finish(&b), 0);

	stun_build_init(&b, buf, STUN_HDR_LEN - 1, STUN_BINDING, STUN_REQUEST, tid1);
	assert_int_equal(stun_build_finish(&b), 0);
	stun_build_init(&b, buf, sizeof(buf) - 1, STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_integrity(&b, (const uint8_t *)"k", 1);	/* 24 bytes: 1 too many */
	assert_int_equal(stun_build_finish(&b), 0);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_xor_addr(&b, STUN_A_XOR_PEER_ADDRESS, &bad);
	assert_int_equal(stun_build_finish(&b), 0);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, tid1);
	stun_add_error(&b, 200, NULL);
	assert_int_equal(stun_build_finish(&b), 0);
}

static void test_error_reasons(void **state)
{
	static const int codes[] = { 300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443,
				     486, 500, 508 };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_string_not_equal(stun_error_reason(codes[i]), stun_error_reason(599));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(stun_error_reason(codes[i]),
						stun_error_reason(codes[j]));
	}
	assert_string_equal(stun_error_reason(438), "Stale Nonce");
	assert_string_equal(stun_error_reason(420), "Unknown Attribute");
}

static void test_accessor_errors(void **state)
{
	const uint8_t a[] = {
		0x00, 0x12, 0x00, 0x02, 0, 1, 0, 0,		/* XOR-PEER: too short */
		0x00, 0x20, 0x00, 0x04, 0, 3, 0, 0,		/* XOR-MAPPED: family 3 */
		0x00, 0x16, 0x00, 0x14, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,				/* XOR-RELAYED: v4, 20 bytes */
		0x00, 0x0d, 0x00, 0x02, 0, 1, 0, 0,		/* LIFETIME of 2 bytes */
	};
	uint8_t buf[128];
	struct stun_msg m;
	struct sockaddr_storage ss;
	uint32_t u;

	assert_int_equal(stun_parse(&m, buf, raw_msg(buf, a, sizeof(a))), STUN_OK);
	assert_int_equal(stun_attr_xor_addr(&m, &m.attrs[0], &ss), -EINVAL);
	assert_int_equal(stun_attr_xor_addr(&m, &m.attrs[1], &ss), -EAFNOSUPPORT);
	assert_int_equal(stun_attr_xor_addr(&m, &m.attrs[2], &ss), -EINVAL);
	assert_int_equal(stun_attr_u32(&m, STUN_A_LIFETIME, &u), -EINVAL);
	assert_int_equal(stun_attr_u32(&m, STUN_A_PRIORITY, &u), -EINVAL);
	assert_null(stun_find(&m, STUN_A_PRIORITY));
}

static void test_channeldata(void **state)
{
	uint8_t d[13] = { 0x40, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0 };
	const uint8_t *data;
	uint16_t ch, n;

	assert_true(channeldata_looks_like(d, 12));
	/* Padded (3 bytes at most, as XDP takes it) and unpadded. */
	assert_int_equal(channeldata_parse(d, 12, &ch, &data, &n), 0);
	assert_int_equal(channeldata_parse(d, 13, &ch, &data, &n), -EINVAL);
	assert_int_equal(channeldata_parse(d, 12, &ch, &data, &n), 0);
	assert_int_equal(ch, 0x4000);
	assert_int_equal(n, 5);
	assert_ptr_equal(data, d + 4);
	assert_int_equal(channeldata_parse(d, 9, &ch, &data, &n), 0);
	assert_int_equal(channeldata_parse(d, 8, &ch, &data, &n), -EINVAL);
	assert_int_equal(channeldata_parse(d, 3, &ch, &data, &n), -EINVAL);
	d[0] = 0x7F;
	d[1] = 0xFF;
	assert_int_equal(channeldata_parse(d, 9, &ch, &data, &n), 0);
	assert_int_equal(ch, 0x7FFF);
	d[0] = 0x80;
	d[1] = 0x00;
	assert_int_equal(channeldata_parse(d, 9, &ch, &data, &n), -EINVAL);
	d[0] = 0x3F;
	d[1] = 0xFF;
	assert_int_equal(channeldata_parse(d, 9, &ch, &data, &n), -EINVAL);
	/* Empty payload. */
	d[0] = 0x41;
	d[1] = 0x23;
	d[2] = d[3] = 0;
	assert_int_equal(channeldata_parse(d, 4, &ch, &data, &n), 0);
	assert_int_equal(ch, 0x4123);
	assert_int_equal(n, 0);
	d[2] = d[3] = 0xFF;
	assert_int_equal(channeldata_parse(d, sizeof(d), &ch, &data, &n), -EINVAL);
	assert_false(stun_looks_like(d, sizeof(d)));
}

static int setup(void **state)
{
	rfc_long_term_key(lt_key);
	return 0;
}

/* Framing over a stream: each message's length from its first 4 bytes. */
static void test_frame_len(void **state)
{
	static const struct {
		uint8_t hdr[4];
		size_t have;
		ssize_t want;
	} cases[] = {
		{ { 0x00, 0x01, 0x00, 0x00 }, 3, 0 },			/* not 4 bytes yet */
		{ { 0x00, 0x01, 0x00, 0x00 }, 4, STUN_HDR_LEN },	/* bare Binding */
		{ { 0x01, 0x01, 0x00, 0x0c }, 4, STUN_HDR_LEN + 12 },
		{ { 0x00, 0x01, 0x00, 0x0d }, 4, -EPROTO },		/* STUN not in 4s */
		{ { 0x00, 0x01, 0x10, 0x00 }, 4, STUN_FRAME_MAX },	/* 4 KB of attributes */
		{ { 0x00, 0x01, 0x10, 0x04 }, 4, -EMSGSIZE },
		{ { 0x40, 0x01, 0x00, 0x00 }, 4, 4 },			/* empty ChannelData */
		{ { 0x40, 0x01, 0x00, 0x05 }, 4, 12 },			/* padded to 4 */
		{ { 0x7f, 0xff, 0x00, 0x08 }, 4, 12 },
		{ { 0x40, 0x01, 0x10, 0x10 }, 4, STUN_FRAME_MAX },	/* 4112: fits */
		{ { 0x40, 0x01, 0x10, 0x11 }, 4, -EMSGSIZE },		/* 4113, 4116 padded */
		{ { 0x80, 0x00, 0x00, 0x00 }, 4, -EPROTO },		/* RTP, DTLS: neither */
		{ { 0xc0, 0x00, 0x00, 0x00 }, 4, -EPROTO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (stun_frame_len(cases[i].hdr, cases[i].have) != cases[i].want)
			fail_msg("case %zu: %zd, want %zd", i,
				 stun_frame_len(cases[i].hdr, cases[i].have), cases[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_response_v4),
		cmocka_unit_test(test_rfc5769_response_v6),
		cmocka_unit_test(test_rfc5769_long_term),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_attr_padding),
		cmocka_unit_test(test_unknown_attrs),
		cmocka_unit_test(test_after_integrity),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_build_roundtrip),
		cmocka_unit_test(test_integrity_sha256_truncated),
		cmocka_unit_test(test_build_padding_zeroed),
		cmocka_unit_test(test_build_overflow),
		cmocka_unit_test(test_error_reasons),
		cmocka_unit_test(test_accessor_errors),
		cmocka_unit_test(test_channeldata),
		cmocka_unit_test(test_frame_len),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
