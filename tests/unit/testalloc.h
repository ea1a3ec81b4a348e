/* Allocations made by hand for the unit tests that drive alloc.c directly
 * (test_alloc, test_metrics). Include after <cmocka.h>. */
#ifndef XT_TESTALLOC_H
#define XT_TESTALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/addr.h"
#include "turn/alloc.h"

static inline struct sockaddr_storage A(const char *s)
{
	struct sockaddr_storage a;

	assert_int_equal(addr_parse(s, 0, &a), 0);
	return a;
}

/* An allocation of client for user on 192.0.2.1 (listener 3478, relay
 * 50000), not yet in any table. */
static inline struct allocation *mk(const char *client, const char *user, time_t expires)
{
	struct allocation *a = alloc_new(user);

	assert_non_null(a);
	a->client = A(client);
	a->listener = A("192.0.2.1:3478");
	a->relays[0].addr = A("192.0.2.1:50000");
	a->nrelays = 1;
	a->expires = expires;
	return a;
}

#endif
