/* The accounting record: every field tools rely on, live and ended forms,
 * a client-chosen username that cannot break the JSON line, and the file
 * reopened after logrotate moved it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/addr.h"
#include "daemon/acct.h"

#define WALL0 1764763200	/* 2025-12-03T12:00:00Z */

static struct allocation *mk(const char *user)
{
	struct allocation *a = alloc_new(user);

	assert_non_null(a);
	assert_int_equal(addr_parse("192.0.2.1:40000", 0, &a->client), 0);
	assert_int_equal(addr_parse("203.0.113.5:49152", 0, &a->relays[0].adv), 0);
	assert_int_equal(addr_parse("[2001:db8::5]:49153", 0, &a->relays[1].adv), 0);
	a->nrelays = 2;
	a->id = 0x0123456789abcdefULL;
	a->created = 100;
	a->created_wall = WALL0;
	a->expires = 700;
	a->transport = ALLOC_TLS;
	a->nperms = 2;
	a->nchans = 1;
	a->c2p = (struct alloc_traffic){ .packets = 5, .bytes = 500, .xdp_packets = 10,
					 .xdp_bytes = 2000 };
	a->p2c = (struct alloc_traffic){ .packets = 1, .bytes = 100 };
	return a;
}

static void test_record_fields(void **state)
{
	struct allocation *a;
	char buf[2048];

	a = mk("alice");
	assert_true(acct_json(buf, sizeof(buf), a, "example.org", &a->c2p, &a->p2c, 160,
			      WALL0 + 60) > 0);
	assert_string_equal(buf,
		"{\"id\":\"0123456789abcdef\",\"user\":\"alice\",\"realm\":\"example.org\","
		"\"client\":\"192.0.2.1:40000\",\"transport\":\"tls\","
		"\"relays\":[\"203.0.113.5:49152\",\"[2001:db8::5]:49153\"],"
		"\"start\":\"2025-12-03T12:00:00Z\",\"age_s\":60,\"expires_in_s\":540,"
		"\"permissions\":2,\"channels\":1,"
		"\"c2p\":{\"packets\":15,\"bytes\":2500,\"xdp_packets\":10,\"xdp_bytes\":2000},"
		"\"p2c\":{\"packets\":1,\"bytes\":100,\"xdp_packets\":0,\"xdp_bytes\":0}}");
	a->end = ALLOC_END_KILLED;
	assert_true(acct_json(buf, sizeof(buf), a, "example.org", &a->c2p, &a->p2c, 190,
			      WALL0 + 90) > 0);
	assert_non_null(strstr(buf, "{\"event\":\"allocation_end\",\"id\":\"0123456789abcdef\""));
	assert_non_null(strstr(buf, "\"start\":\"2025-12-03T12:00:00Z\","
				    "\"end\":\"2025-12-03T12:01:30Z\",\"duration_s\":90,"
				    "\"reason\":\"killed\",\"c2p\""));
	assert_null(strstr(buf, "age_s"));
	/* Too small a buffer: nothing, not half a line. */
	assert_int_equal(acct_json(buf, 40, a, "example.org", &a->c2p, &a->p2c, 190, WALL0), 0);
	free(a);
}

/* Quotes, backslashes, control bytes escaped; valid UTF-8 kept; a byte
 * that is not UTF-8 becomes U+FFFD. */
static void test_username_escaped(void **state)
{
	struct allocation *a;
	char buf[2048];

	a = mk("a\"b\\c\x01\n\x7f" "d\xff\xc3\xa9\xe2\x82\xac\xed\xa0\x80" "e");
	assert_true(acct_json(buf, sizeof(buf), a, "r", &a->c2p, &a->p2c, 100, WALL0) > 0);
	assert_non_null(strstr(buf, "\"user\":\"a\\\"b\\\\c\\u0001\\u000a\\u007fd\\ufffd"
				    "\xc3\xa9\xe2\x82\xac\\ufffd\\ufffd\\ufffde\","));
	free(a);
}

static void test_file_and_reopen(void **state)
{
	char path[] = "/tmp/xturn-test-acct-XXXXXX", moved[64], line[4096];
	struct allocation *a;
	struct acct *ac;
	FILE *f;
	int err, fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	ac = acct_open(path, &err);
	assert_non_null(ac);
	a = mk("first");
	a->end = ALLOC_END_EXPIRED;
	acct_end(ac, a, "r", 700, WALL0 + 600);
	snprintf(moved, sizeof(moved), "%s.1", path);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(acct_reopen(ac), 0);
	free(a);
	a = mk("second");
	a->end = ALLOC_END_DELETED;
	acct_end(ac, a, "r", 700, WALL0 + 600);
	acct_free(ac);
	f = fopen(moved, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"user\":\"first\""));
	assert_non_null(strstr(line, "\"reason\":\"expired\""));
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_null(fgets(line, sizeof(line), f));
	fclose(f);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"user\":\"second\""));
	assert_null(fgets(line, sizeof(line), f));
	fclose(f);
	unlink(path);
	unlink(moved);
	/* No file: the log line only. A file that cannot open: an error. */
	ac = acct_open(NULL, &err);
	assert_non_null(ac);
	acct_end(ac, a, "r", 700, WALL0);
	assert_int_equal(acct_reopen(ac), 0);
	acct_free(ac);
	assert_null(acct_open("/nonexistent-dir/acct.json", &err));
	assert_true(err < 0);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_fields),
		cmocka_unit_test(test_username_escaped),
		cmocka_unit_test(test_file_and_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
