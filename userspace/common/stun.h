/* STUN (RFC 8489) and TURN (RFC 8656) message codec, ChannelData, framing
 * over streams and the long-term credential keys. Pure functions over
 * caller-owned buffers: no allocation, no logging. */
#ifndef XT_STUN_H
#define XT_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define STUN_MAGIC 0x2112A442u
#define STUN_HDR_LEN 20
#define STUN_TID_LEN 12
#define STUN_MAX_ATTRS 40
#define STUN_MAX_UNKNOWN 8
/* Largest message we build or accept over UDP. */
#define STUN_MAX_MSG 1500
#define SHA1_LEN 20		/* MESSAGE-INTEGRITY */
#define SHA256_LEN 32		/* MESSAGE-INTEGRITY-SHA256, untruncated */

/* Methods. */
enum {
	STUN_BINDING = 0x001,
	TURN_ALLOCATE = 0x003,
	TURN_REFRESH = 0x004,
	TURN_SEND = 0x006,
	TURN_DATA = 0x007,
	TURN_CREATE_PERMISSION = 0x008,
	TURN_CHANNEL_BIND = 0x009,
};

/* Classes. */
enum stun_class {
	STUN_REQUEST = 0,
	STUN_INDICATION = 1,
	STUN_SUCCESS = 2,
	STUN_ERROR = 3,
};

/* Attributes (RFC 8489 §18.3, RFC 8656 §18, RFC 8445). */
enum {
	STUN_A_MAPPED_ADDRESS = 0x0001,
	STUN_A_USERNAME = 0x0006,
	STUN_A_MESSAGE_INTEGRITY = 0x0008,
	STUN_A_ERROR_CODE = 0x0009,
	STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
	STUN_A_CHANNEL_NUMBER = 0x000C,
	STUN_A_LIFETIME = 0x000D,
	STUN_A_XOR_PEER_ADDRESS = 0x0012,
	STUN_A_DATA = 0x0013,
	STUN_A_REALM = 0x0014,
	STUN_A_NONCE = 0x0015,
	STUN_A_XOR_RELAYED_ADDRESS = 0x0016,
	STUN_A_REQUESTED_ADDRESS_FAMILY = 0x0017,
	STUN_A_EVEN_PORT = 0x0018,
	STUN_A_REQUESTED_TRANSPORT = 0x0019,
	STUN_A_DONT_FRAGMENT = 0x001A,
	STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_A_PASSWORD_ALGORITHM = 0x001D,
	STUN_A_USERHASH = 0x001E,
	STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_A_RESERVATION_TOKEN = 0x0022,
	STUN_A_PRIORITY = 0x0024,
	STUN_A_USE_CANDIDATE = 0x0025,
	STUN_A_PADDING = 0x0026,
	STUN_A_RESPONSE_PORT = 0x0027,
	STUN_A_CONNECTION_ID = 0x002A,
	/* comprehension-optional (>= 0x8000) */
	STUN_A_ADDITIONAL_ADDRESS_FAMILY = 0x8000,
	STUN_A_ADDRESS_ERROR_CODE = 0x8001,
	STUN_A_PASSWORD_ALGORITHMS = 0x8002,
	STUN_A_ALTERNATE_DOMAIN = 0x8003,
	STUN_A_ICMP = 0x8004,
	STUN_A_SOFTWARE = 0x8022,
	STUN_A_ALTERNATE_SERVER = 0x8023,
	STUN_A_TRANSACTION_TRANSMIT_COUNTER = 0x8025,
	STUN_A_CACHE_TIMEOUT = 0x8027,
	STUN_A_FINGERPRINT = 0x8028,
	STUN_A_ICE_CONTROLLED = 0x8029,
	STUN_A_ICE_CONTROLLING = 0x802A,
	STUN_A_RESPONSE_ORIGIN = 0x802B,
	STUN_A_OTHER_ADDRESS = 0x802C,
};

/* PASSWORD-ALGORITHM values (RFC 8489 §18.5). */
enum {
	STUN_PWALG_MD5 = 0x0001,
	STUN_PWALG_SHA256 = 0x0002,
};

/* REQUESTED-ADDRESS-FAMILY values. */
enum {
	STUN_FAMILY_IPV4 = 0x01,
	STUN_FAMILY_IPV6 = 0x02,
};

/* Why stun_parse() refused a datagram: the caller drops it and counts. */
enum stun_parse_err {
	STUN_OK = 0,
	STUN_ERR_SHORT = -1,		/* shorter than the header or its length field */
	STUN_ERR_NOT_STUN = -2,		/* top bits or magic cookie wrong */
	STUN_ERR_LENGTH = -3,		/* length not a multiple of 4 or past the datagram */
	STUN_ERR_ATTR = -4,		/* an attribute runs past the message */
	STUN_ERR_TOO_MANY = -5,		/* more than STUN_MAX_ATTRS attributes */
	STUN_ERR_FINGERPRINT = -6,	/* FINGERPRINT present and wrong, or not last */
};

struct stun_attr {
	uint16_t type;
	uint16_t len;		/* value length, without padding */
	uint16_t off;		/* offset of the value from the start of the message */
};

struct stun_msg {
	const uint8_t *buf;	/* the message; not owned */
	size_t len;		/* STUN_HDR_LEN + message length */
	uint16_t method;
	uint8_t cls;		/* enum stun_class */
	uint8_t tid[STUN_TID_LEN];
	/* Attributes in order. After MESSAGE-INTEGRITY only
	 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are kept (RFC 8489 §14.5). */
	struct stun_attr attrs[STUN_MAX_ATTRS];
	unsigned nattrs;
	/* Comprehension-required attribute types we do not understand: the
	 * server answers a request carrying any with 420. */
	uint16_t unknown[STUN_MAX_UNKNOWN];
	unsigned nunknown;
};

/* Parses and validates one STUN message (the whole datagram); FINGERPRINT is
 * checked if present. Returns STUN_OK or an enum stun_parse_err. */
int stun_parse(struct stun_msg *m, const uint8_t *buf, size_t len);
/* Cheap test of the first bytes: could this be STUN (vs ChannelData)? */
bool stun_looks_like(const uint8_t *buf, size_t len);
const char *stun_parse_strerror(int err);

/* First attribute of a type, or NULL. */
const struct stun_attr *stun_find(const struct stun_msg *m, uint16_t type);
static inline const uint8_t *stun_attr_val(const struct stun_msg *m, const struct stun_attr *a)
{
	return m->buf + a->off;
}
/* 32-bit value attributes (LIFETIME, CHANNEL-NUMBER's first half, ...):
 * 0 or -EINVAL if absent/malformed. */
int stun_attr_u32(const struct stun_msg *m, uint16_t type, uint32_t *out);
/* Decodes an XOR-*-ADDRESS attribute value: 0, or -EINVAL (bad length or
 * family), -EAFNOSUPPORT (family byte neither 1 nor 2). */
int stun_attr_xor_addr(const struct stun_msg *m, const struct stun_attr *a,
		       struct sockaddr_storage *out);
/* The same for a plain address attribute (ALTERNATE-SERVER). */
int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a,
		   struct sockaddr_storage *out);

/* Message building into a caller buffer. Errors are sticky: after an
 * overflow every call is a no-op and stun_build_finish() returns 0. */
struct stun_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
		     enum stun_class cls, const uint8_t tid[STUN_TID_LEN]);
void stun_add_attr(struct stun_builder *b, uint16_t type, const void *val, uint16_t len);
void stun_add_u32(struct stun_builder *b, uint16_t type, uint32_t v);
void stun_add_xor_addr(struct stun_builder *b, uint16_t type, const struct sockaddr_storage *a);
/* A plain (not XOR'ed) address attribute: ALTERNATE-SERVER. */
void stun_add_addr(struct stun_builder *b, uint16_t type, const struct sockaddr_storage *a);
/* ERROR-CODE with the RFC's reason phrase for the code when reason is NULL. */
void stun_add_error(struct stun_builder *b, int code, const char *reason);
void stun_add_unknown_attrs(struct stun_builder *b, const uint16_t *types, unsigned n);
/* MESSAGE-INTEGRITY (HMAC-SHA1) / MESSAGE-INTEGRITY-SHA256 over everything
 * so far, keyed with the long-term key (see auth.h). */
void stun_add_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen);
void stun_add_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t keylen);
void stun_add_fingerprint(struct stun_builder *b);
/* HMAC-SHA1 or HMAC-SHA256 of data (what MESSAGE-INTEGRITY uses; also for
 * auth's nonces and REST passwords). Returns the MAC length, 0 on error. */
size_t stun_hmac(bool sha256, const uint8_t *key, size_t keylen, const void *data, size_t len,
		 uint8_t out[SHA256_LEN]);
/* Length of the finished message, or 0 if it did not fit. */
size_t stun_build_finish(struct stun_builder *b);

/* Verifies MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, in
 * constant time. 0 if it matches, -EBADMSG if not, -ENOENT if neither is
 * present. *used_sha256 (may be NULL) says which one was checked. */
int stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen,
			 bool *used_sha256);

/* Long-term credentials (RFC 8489 §9.2.2): the key is MD5 (16 bytes) or
 * SHA-256 (32 bytes) of "username:realm:password"; returns its length, 0
 * for an unknown algorithm. */
#define STUN_MAX_USERNAME 513	/* RFC 8489: < 509 bytes, plus NUL */
#define STUN_MAX_KEY 32		/* SHA-256 key; MD5 keys are 16 */
size_t stun_long_term_key(int pwalg, const char *username, const char *realm,
			  const char *password, uint8_t key[STUN_MAX_KEY]);
/* TURN REST (draft-uberti-behave-turn-rest): the password of a username is
 * base64(HMAC-SHA1(secret, username)), STUN_REST_PW_LEN characters. */
#define STUN_REST_PW_LEN 28
int stun_rest_password(const char *secret, const char *username, char *out, size_t outlen);

/* RFC reason phrase of an error code ("Unauthorized" for 401...). */
const char *stun_error_reason(int code);

/* ChannelData (RFC 8656 §12.4): 4-byte header (channel, length) then data,
 * padded to 4 bytes over TCP (optional over UDP).
 * Channel numbers: RFC 8656 narrowed RFC 5766's 0x4000-0x7FFF to
 * 0x4000-0x4FFF, but deployed clients (coturn's own turnutils_uclient among
 * them) still pick numbers up to 0x7FFF, and the first two bits (01) already
 * tell ChannelData from STUN, DTLS and RTP (RFC 7983). We accept the RFC 5766
 * range so those clients work; clients of RFC 8656 stay within it. */
#define CHANNELDATA_HDR_LEN 4
#define CHANNEL_MIN 0x4000
#define CHANNEL_MAX 0x7FFF
static inline bool channeldata_looks_like(const uint8_t *buf, size_t len)
{
	return len >= CHANNELDATA_HDR_LEN && (buf[0] & 0xC0) == 0x40;
}
/* Parses a ChannelData datagram: 0, or -EINVAL (short, length past the
 * datagram, more than 3 bytes after the data, channel out of
 * CHANNEL_MIN-CHANNEL_MAX). */
int channeldata_parse(const uint8_t *buf, size_t len, uint16_t *channel,
		      const uint8_t **data, uint16_t *dlen);
/* Writes the 4-byte header in front of data (caller leaves room). */
static inline void channeldata_put_hdr(uint8_t *hdr, uint16_t channel, uint16_t dlen)
{
	hdr[0] = (uint8_t)(channel >> 8);
	hdr[1] = (uint8_t)channel;
	hdr[2] = (uint8_t)(dlen >> 8);
	hdr[3] = (uint8_t)dlen;
}

/* Over TCP and TLS (RFC 8656 §12.5): the largest message accepted, a STUN
 * header (or ChannelData header and padding) and 4 KB; and the length of
 * the message starting at buf (a STUN message, or ChannelData with its
 * padding to 4 bytes), 0 if fewer than 4 bytes are there yet, or -EPROTO
 * (neither STUN nor ChannelData), -EMSGSIZE (above STUN_FRAME_MAX). */
#define STUN_FRAME_MAX (STUN_HDR_LEN + 4096)
ssize_t stun_frame_len(const uint8_t *buf, size_t len);

#endif
