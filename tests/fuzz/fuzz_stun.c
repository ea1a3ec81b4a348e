/* libFuzzer target: the STUN parser, every accessor on every attribute it
 * keeps, integrity checking, and ChannelData framing. Built by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[16] = "fuzz-long-term-k";
	struct sockaddr_storage ss;
	struct stun_msg m;
	const uint8_t *payload;
	uint16_t ch, dlen;
	uint32_t u;

	if (stun_parse(&m, data, size) == STUN_OK) {
		for (unsigned i = 0; i < m.nattrs; i++) {
			const struct stun_attr *a = &m.attrs[i];
			const uint8_t *v = stun_attr_val(&m, a);

			/* Read the whole value so ASan sees any bad offset. */
			for (unsigned j = 0; j < a->len; j++)
				sink ^= v[j];
			(void)stun_attr_xor_addr(&m, a, &ss);
			(void)stun_attr_u32(&m, a->type, &u);
			if (stun_find(&m, a->type) > a)
				__builtin_trap();	/* must be the first of its type */
		}
		(void)stun_check_integrity(&m, key, sizeof(key), NULL);
	}
	(void)stun_looks_like(data, size);
	if (channeldata_parse(data, size, &ch, &payload, &dlen) == 0 &&
	    (payload + dlen > data + size || ch < CHANNEL_MIN || ch > CHANNEL_MAX))
		__builtin_trap();
	return 0;
}
