#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "common/stun.h"

#define FINGERPRINT_XOR 0x5354554eu
/* RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16 bytes. */
#define SHA256_MIN_LEN 16
/* RFC 8489 §14.8: reason phrase < 128 characters, at most 763 bytes. */
#define REASON_MAX 763

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* Comprehension-required attributes this codec knows (all types < 0x8000 in
 * stun.h); anything else below 0x8000 earns a 420. */
static bool known_required(uint16_t type)
{
	switch (type) {
	case STUN_A_MAPPED_ADDRESS: case STUN_A_USERNAME: case STUN_A_MESSAGE_INTEGRITY:
	case STUN_A_ERROR_CODE: case STUN_A_UNKNOWN_ATTRIBUTES: case STUN_A_CHANNEL_NUMBER:
	case STUN_A_LIFETIME: case STUN_A_XOR_PEER_ADDRESS: case STUN_A_DATA:
	case STUN_A_REALM: case STUN_A_NONCE: case STUN_A_XOR_RELAYED_ADDRESS:
	case STUN_A_REQUESTED_ADDRESS_FAMILY: case STUN_A_EVEN_PORT:
	case STUN_A_REQUESTED_TRANSPORT: case STUN_A_DONT_FRAGMENT:
	case STUN_A_MESSAGE_INTEGRITY_SHA256: case STUN_A_PASSWORD_ALGORITHM:
	case STUN_A_USERHASH: case STUN_A_XOR_MAPPED_ADDRESS: case STUN_A_RESERVATION_TOKEN:
	case STUN_A_PRIORITY: case STUN_A_USE_CANDIDATE: case STUN_A_PADDING:
	case STUN_A_RESPONSE_PORT: case STUN_A_CONNECTION_ID:
		return true;
	default:
		return false;
	}
}

static uint32_t fingerprint(const uint8_t *buf, size_t len)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)len) ^ FINGERPRINT_XOR;
}

/* HMAC-SHA1 and HMAC-SHA256 contexts with their digest set and no key, made
 * once: each MAC starts from a copy, so no message pays for looking the
 * algorithms up in OpenSSL's provider tables (locks and allocations). */
static EVP_MAC_CTX *hmac_tmpl[2];
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_tmpl_init(void)
{
	static const char *const digests[2] = { "SHA1", "SHA256" };
	EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);

	for (int i = 0; i < 2 && mac; i++) {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
							 (char *)digests[i], 0),
			OSSL_PARAM_construct_end(),
		};
		EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);

		if (ctx && !EVP_MAC_CTX_set_params(ctx, params)) {
			EVP_MAC_CTX_free(ctx);
			ctx = NULL;
		}
		hmac_tmpl[i] = ctx;
	}
	EVP_MAC_free(mac);	/* the contexts hold their own references */
}

/* HMAC over two concatenated pieces (a rewritten header and the rest), so
 * checking needs no copy of the message. Returns the MAC length or 0. */
static size_t hmac2(bool sha256, const uint8_t *key, size_t keylen,
		    const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2,
		    uint8_t out[SHA256_LEN])
{
	EVP_MAC_CTX *ctx;
	size_t outlen = 0;

	pthread_once(&hmac_once, hmac_tmpl_init);
	ctx = hmac_tmpl[sha256] ? EVP_MAC_CTX_dup(hmac_tmpl[sha256]) : NULL;
	if (!ctx || !EVP_MAC_init(ctx, key, keylen, NULL) ||
	    !EVP_MAC_update(ctx, p1, n1) || (n2 && !EVP_MAC_update(ctx, p2, n2)) ||
	    !EVP_MAC_final(ctx, out, &outlen, SHA256_LEN))
		outlen = 0;
	EVP_MAC_CTX_free(ctx);
	return outlen;
}

size_t stun_hmac(bool sha256, const uint8_t *key, size_t keylen, const void *data, size_t len,
		 uint8_t out[SHA256_LEN])
{
	return hmac2(sha256, key, keylen, data, len, NULL, 0, out);
}

bool stun_looks_like(const uint8_t *buf, size_t len)
{
	return len >= STUN_HDR_LEN && (buf[0] & 0xC0) == 0 && get32(buf + 4) == STUN_MAGIC;
}

int stun_parse(struct stun_msg *m, const uint8_t *buf, size_t len)
{
	bool after_mi = false, after_mi256 = false, after_fp = false;
	size_t mlen, off;
	uint16_t type;

	if (len < STUN_HDR_LEN)
		return STUN_ERR_SHORT;
	if (!stun_looks_like(buf, len))
		return STUN_ERR_NOT_STUN;
	mlen = get16(buf + 2);
	if (mlen % 4)
		return STUN_ERR_LENGTH;
	if (STUN_HDR_LEN + mlen > len)
		return STUN_ERR_SHORT;
	/* One datagram is one message; attribute offsets are 16-bit. */
	if (STUN_HDR_LEN + mlen < len || len > UINT16_MAX)
		return STUN_ERR_LENGTH;

	m->buf = buf;
	m->len = len;
	type = get16(buf) & 0x3FFF;
	m->method = (uint16_t)((type & 0x000F) | (type & 0x00E0) >> 1 | (type & 0x3E00) >> 2);
	m->cls = (uint8_t)((type >> 4 & 1) | (type >> 7 & 2));
	memcpy(m->tid, buf + 8, STUN_TID_LEN);
	m->nattrs = 0;
	m->nunknown = 0;

	for (off = STUN_HDR_LEN; off < len;) {
		uint16_t atype, alen;
		size_t vstart;

		if (len - off < 4)
			return STUN_ERR_ATTR;
		atype = get16(buf + off);
		alen = get16(buf + off + 2);
		vstart = off + 4;
		if (pad4(alen) > len - vstart)
			return STUN_ERR_ATTR;
		if (after_fp)
			return STUN_ERR_FINGERPRINT;
		if (atype == STUN_A_FINGERPRINT) {
			if (alen != 4 || get32(buf + vstart) != fingerprint(buf, off))
				return STUN_ERR_FINGERPRINT;
			after_fp = true;
		}
		off = vstart + pad4(alen);
		/* RFC 8489 §14.5/§14.6: only these may follow the integrity. */
		if (after_mi256 && atype != STUN_A_FINGERPRINT)
			continue;
		if (after_mi && atype != STUN_A_FINGERPRINT &&
		    atype != STUN_A_MESSAGE_INTEGRITY_SHA256)
			continue;
		if (m->nattrs == STUN_MAX_ATTRS)
			return STUN_ERR_TOO_MANY;
		m->attrs[m->nattrs++] = (struct stun_attr){
			.type = atype, .len = alen, .off = (uint16_t)vstart,
		};
		if (atype == STUN_A_MESSAGE_INTEGRITY)
			after_mi = true;
		else if (atype == STUN_A_MESSAGE_INTEGRITY_SHA256)
			after_mi256 = true;
		else if (atype < 0x8000 && !known_required(atype) &&
			 m->nunknown < STUN_MAX_UNKNOWN)
			m->unknown[m->nunknown++] = atype;
	}
	return STUN_OK;
}

const char *stun_parse_strerror(int err)
{
	switch (err) {
	case STUN_OK: return "ok";
	case STUN_ERR_SHORT: return "truncated message";
	case STUN_ERR_NOT_STUN: return "not a STUN message";
	case STUN_ERR_LENGTH: return "bad message length";
	case STUN_ERR_ATTR: return "attribute past the end of the message";
	case STUN_ERR_TOO_MANY: return "too many attributes";
	case STUN_ERR_FINGERPRINT: return "bad or misplaced FINGERPRINT";
	default: return "unknown error";
	}
}

const struct stun_attr *stun_find(const struct stun_msg *m, uint16_t type)
{
	for (unsigned i = 0; i < m->nattrs; i++)
		if (m->attrs[i].type == type)
			return &m->attrs[i];
	return NULL;
}

int stun_attr_u32(const struct stun_msg *m, uint16_t type, uint32_t *out)
{
	const struct stun_attr *a = stun_find(m, type);

	if (!a || a->len != 4)
		return -EINVAL;
	*out = get32(stun_attr_val(m, a));
	return 0;
}

/* An address attribute, XOR'ed (XOR-*-ADDRESS) or not (ALTERNATE-SERVER). */
static int attr_addr(const struct stun_msg *m, const struct stun_attr *a, bool xor,
		     struct sockaddr_storage *out)
{
	const uint8_t *v = stun_attr_val(m, a);
	uint16_t port;

	if (a->len < 4)
		return -EINVAL;
	if (v[1] != STUN_FAMILY_IPV4 && v[1] != STUN_FAMILY_IPV6)
		return -EAFNOSUPPORT;
	if (a->len != (v[1] == STUN_FAMILY_IPV4 ? 8 : 20))
		return -EINVAL;
	port = get16(v + 2) ^ (xor ? (uint16_t)(STUN_MAGIC >> 16) : 0);
	memset(out, 0, sizeof(*out));
	if (v[1] == STUN_FAMILY_IPV4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(get32(v + 4) ^ (xor ? STUN_MAGIC : 0));
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		uint8_t *ip = s6->sin6_addr.s6_addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		/* XOR key: magic cookie then transaction id (RFC 8489 §14.2). */
		if (xor)
			memcpy(ip, m->buf + 4, 16);
		else
			memset(ip, 0, 16);
		for (int i = 0; i < 16; i++)
			ip[i] ^= v[4 + i];
	}
	return 0;
}

int stun_attr_xor_addr(const struct stun_msg *m, const struct stun_attr *a,
		       struct sockaddr_storage *out)
{
	return attr_addr(m, a, true, out);
}

int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a,
		   struct sockaddr_storage *out)
{
	return attr_addr(m, a, false, out);
}

int channeldata_parse(const uint8_t *buf, size_t len, uint16_t *channel,
		      const uint8_t **data, uint16_t *dlen)
{
	uint16_t ch, n;

	if (len < CHANNELDATA_HDR_LEN)
		return -EINVAL;
	ch = get16(buf);
	n = get16(buf + 2);
	/* RFC 8656 §12.5: up to 3 bytes of padding may follow the data; the
	 * XDP program drops more (XT_CNT_DROP_BAD_LEN), and so do we. */
	if (ch < CHANNEL_MIN || ch > CHANNEL_MAX || n > len - CHANNELDATA_HDR_LEN ||
	    len - CHANNELDATA_HDR_LEN - n > 3)
		return -EINVAL;
	*channel = ch;
	*data = buf + CHANNELDATA_HDR_LEN;
	*dlen = n;
	return 0;
}

/* ---- building ------------------------------------------------------------ */

void stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
		     enum stun_class cls, const uint8_t tid[STUN_TID_LEN])
{
	uint16_t type = (uint16_t)((method & 0x000F) | (method & 0x0070) << 1 |
				   (method & 0x0F80) << 2 | (cls & 1) << 4 | (cls & 2) << 7);

	*b = (struct stun_builder){ .buf = buf, .cap = cap };
	if (cap < STUN_HDR_LEN) {
		b->overflow = true;
		return;
	}
	put16(buf, type);
	put16(buf + 2, 0);
	put32(buf + 4, STUN_MAGIC);
	memcpy(buf + 8, tid, STUN_TID_LEN);
	b->len = STUN_HDR_LEN;
}

/* Appends an attribute header and zeroed padding, updates the header length
 * (MESSAGE-INTEGRITY and FINGERPRINT rely on it already counting their own
 * attribute) and returns where the value goes, or NULL on overflow. */
static uint8_t *attr_reserve(struct stun_builder *b, uint16_t type, uint16_t len)
{
	size_t total = 4 + pad4(len);
	uint8_t *p;

	if (b->overflow || total > b->cap - b->len || b->len + total - STUN_HDR_LEN > UINT16_MAX) {
		b->overflow = true;
		return NULL;
	}
	p = b->buf + b->len;
	put16(p, type);
	put16(p + 2, len);
	memset(p + 4 + len, 0, total - 4 - len);
	b->len += total;
	put16(b->buf + 2, (uint16_t)(b->len - STUN_HDR_LEN));
	return p + 4;
}

void stun_add_attr(struct stun_builder *b, uint16_t type, const void *val, uint16_t len)
{
	uint8_t *p = attr_reserve(b, type, len);

	if (p && len)
		memcpy(p, val, len);
}

void stun_add_u32(struct stun_builder *b, uint16_t type, uint32_t v)
{
	uint8_t *p = attr_reserve(b, type, 4);

	if (p)
		put32(p, v);
}

static void add_addr(struct stun_builder *b, uint16_t type, const struct sockaddr_storage *a,
		     bool xor)
{
	bool v4 = a->ss_family == AF_INET;
	uint8_t *p;

	if (!v4 && a->ss_family != AF_INET6) {
		b->overflow = true;	/* sticky error: nothing sensible to send */
		return;
	}
	p = attr_reserve(b, type, v4 ? 8 : 20);
	if (!p)
		return;
	p[0] = 0;
	p[1] = v4 ? STUN_FAMILY_IPV4 : STUN_FAMILY_IPV6;
	if (v4) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;

		put16(p + 2, ntohs(s4->sin_port) ^ (xor ? (uint16_t)(STUN_MAGIC >> 16) : 0));
		put32(p + 4, ntohl(s4->sin_addr.s_addr) ^ (xor ? STUN_MAGIC : 0));
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;

		put16(p + 2, ntohs(s6->sin6_port) ^ (xor ? (uint16_t)(STUN_MAGIC >> 16) : 0));
		for (int i = 0; i < 16; i++)
			p[4 + i] = s6->sin6_addr.s6_addr[i] ^ (xor ? b->buf[4 + i] : 0);
	}
}

void stun_add_xor_addr(struct stun_builder *b, uint16_t type, const struct sockaddr_storage *a)
{
	add_addr(b, type, a, true);
}

void stun_add_addr(struct stun_builder *b, uint16_t type, const struct sockaddr_storage *a)
{
	add_addr(b, type, a, false);
}

const char *stun_error_reason(int code)
{
	switch (code) {
	case 300: return "Try Alternate";
	case 400: return "Bad Request";
	case 401: return "Unauthenticated";	/* RFC 8489; RFC 5389 said "Unauthorized" */
	case 403: return "Forbidden";
	case 405: return "Mobility Forbidden";	/* RFC 8016 */
	case 420: return "Unknown Attribute";
	case 437: return "Allocation Mismatch";
	case 438: return "Stale Nonce";
	case 440: return "Address Family not Supported";
	case 441: return "Wrong Credentials";
	case 442: return "Unsupported Transport Protocol";
	case 443: return "Peer Address Family Mismatch";
	case 446: return "Connection Already Exists";	/* RFC 6062 */
	case 447: return "Connection Timeout or Failure";	/* RFC 6062 */
	case 486: return "Allocation Quota Reached";
	case 487: return "Role Conflict";	/* RFC 8445 */
	case 500: return "Server Error";
	case 508: return "Insufficient Capacity";
	default: return "Error";
	}
}

void stun_add_error(struct stun_builder *b, int code, const char *reason)
{
	size_t rlen;
	uint8_t *p;

	if (code < 300 || code > 699) {
		b->overflow = true;	/* not encodable (RFC 8489 §14.8) */
		return;
	}
	if (!reason)
		reason = stun_error_reason(code);
	rlen = strnlen(reason, REASON_MAX);
	p = attr_reserve(b, STUN_A_ERROR_CODE, (uint16_t)(4 + rlen));
	if (!p)
		return;
	p[0] = 0;
	p[1] = 0;
	p[2] = (uint8_t)(code / 100);
	p[3] = (uint8_t)(code % 100);
	memcpy(p + 4, reason, rlen);
}

void stun_add_unknown_attrs(struct stun_builder *b, const uint16_t *types, unsigned n)
{
	/* RFC 8489 §14.13: ordinary zero padding (RFC 3489 repeated an entry). */
	uint8_t *p = n <= UINT16_MAX / 2 ? attr_reserve(b, STUN_A_UNKNOWN_ATTRIBUTES,
							 (uint16_t)(2 * n)) : NULL;

	if (!p) {
		b->overflow = true;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		put16(p + 2 * i, types[i]);
}

static void add_mac(struct stun_builder *b, uint16_t type, bool sha256, uint16_t maclen,
		    const uint8_t *key, size_t keylen)
{
	uint8_t mac[SHA256_LEN];
	uint8_t *p = attr_reserve(b, type, maclen);
	size_t start;

	if (!p)
		return;
	start = (size_t)(p - 4 - b->buf);
	if (hmac2(sha256, key, keylen, b->buf, start, NULL, 0, mac) != maclen) {
		b->overflow = true;
		return;
	}
	memcpy(p, mac, maclen);
}

void stun_add_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	add_mac(b, STUN_A_MESSAGE_INTEGRITY, false, SHA1_LEN, key, keylen);
}

void stun_add_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	add_mac(b, STUN_A_MESSAGE_INTEGRITY_SHA256, true, SHA256_LEN, key, keylen);
}

void stun_add_fingerprint(struct stun_builder *b)
{
	uint8_t *p = attr_reserve(b, STUN_A_FINGERPRINT, 4);

	if (p)
		put32(p, fingerprint(b->buf, (size_t)(p - 4 - b->buf)));
}

size_t stun_build_finish(struct stun_builder *b)
{
	return b->overflow ? 0 : b->len;
}

int stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen,
			 bool *used_sha256)
{
	const struct stun_attr *a = stun_find(m, STUN_A_MESSAGE_INTEGRITY_SHA256);
	bool sha256 = a != NULL;
	uint8_t hdr[STUN_HDR_LEN], mac[SHA256_LEN];
	size_t start;

	if (!a)
		a = stun_find(m, STUN_A_MESSAGE_INTEGRITY);
	if (!a)
		return -ENOENT;
	if (used_sha256)
		*used_sha256 = sha256;
	if (sha256 ? a->len < SHA256_MIN_LEN || a->len > SHA256_LEN || a->len % 4
		   : a->len != SHA1_LEN)
		return -EBADMSG;
	/* The MAC covers the message up to this attribute, with the header
	 * length as if the message ended right after it. */
	start = a->off - 4u;
	memcpy(hdr, m->buf, STUN_HDR_LEN);
	put16(hdr + 2, (uint16_t)(a->off + a->len - STUN_HDR_LEN));
	if (hmac2(sha256, key, keylen, hdr, STUN_HDR_LEN,
		  m->buf + STUN_HDR_LEN, start - STUN_HDR_LEN, mac) < a->len)
		return -EBADMSG;
	return CRYPTO_memcmp(mac, stun_attr_val(m, a), a->len) ? -EBADMSG : 0;
}

/* ---- long-term credentials ---------------------------------------------------- */

size_t stun_long_term_key(int pwalg, const char *username, const char *realm,
			  const char *password, uint8_t key[STUN_MAX_KEY])
{
	const EVP_MD *md = pwalg == STUN_PWALG_MD5 ? EVP_md5() :
			   pwalg == STUN_PWALG_SHA256 ? EVP_sha256() : NULL;
	EVP_MD_CTX *ctx;
	unsigned n = 0;

	if (!md || !(ctx = EVP_MD_CTX_new()))
		return 0;
	if (!EVP_DigestInit_ex(ctx, md, NULL) ||
	    !EVP_DigestUpdate(ctx, username, strlen(username)) ||
	    !EVP_DigestUpdate(ctx, ":", 1) || !EVP_DigestUpdate(ctx, realm, strlen(realm)) ||
	    !EVP_DigestUpdate(ctx, ":", 1) || !EVP_DigestUpdate(ctx, password, strlen(password)) ||
	    !EVP_DigestFinal_ex(ctx, key, &n))
		n = 0;
	EVP_MD_CTX_free(ctx);
	return n;
}

int stun_rest_password(const char *secret, const char *username, char *out, size_t outlen)
{
	uint8_t mac[SHA256_LEN];

	if (outlen < STUN_REST_PW_LEN + 1)
		return -ENOSPC;
	if (stun_hmac(false, (const uint8_t *)secret, strlen(secret), username, strlen(username),
		      mac) != SHA1_LEN)
		return -EINVAL;
	EVP_EncodeBlock((uint8_t *)out, mac, SHA1_LEN);
	return 0;
}

/* ---- streams (TCP, TLS) ---------------------------------------------------- */

ssize_t stun_frame_len(const uint8_t *buf, size_t len)
{
	size_t n;

	if (len < 4)
		return 0;
	n = (size_t)buf[2] << 8 | buf[3];
	switch (buf[0] & 0xC0) {
	case 0x00:	/* STUN: header + length, already a multiple of 4 */
		if (n & 3)
			return -EPROTO;
		n += STUN_HDR_LEN;
		break;
	case 0x40:	/* ChannelData, padded over streams (RFC 8656 §12.5) */
		n = CHANNELDATA_HDR_LEN + ((n + 3) & ~(size_t)3);
		break;
	default:
		return -EPROTO;
	}
	return n > STUN_FRAME_MAX ? -EMSGSIZE : (ssize_t)n;
}
