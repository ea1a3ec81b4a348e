/* Logging: what a client sent (a username, a realm) cannot forge a line or
 * drive a terminal: control characters and backslashes come out escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"

/* The line log_info writes for msg, without its timestamp and level. */
static char *logged(const char *user)
{
	static char buf[8192];
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;
	char *p;

	assert_non_null(f);
	fflush(stderr);
	assert_true(dup2(fileno(f), 2) >= 0);
	log_info("auth failed for %s", user);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strstr(buf, "info  ");
	assert_non_null(p);
	return p + 6;
}

static void test_escaped(void **state)
{
	assert_string_equal(logged("alice"), "auth failed for alice\n");
	/* a forged second line, an ANSI escape, a backslash, DEL, UTF-8 kept */
	assert_string_equal(logged("bob\n2026-01-01T00:00:00.000Z info  admin logged in"),
			    "auth failed for bob\\x0a2026-01-01T00:00:00.000Z info  admin logged in\n");
	assert_string_equal(logged("\x1b[2J\x1b]0;pwned\x07"),
			    "auth failed for \\x1b[2J\\x1b]0;pwned\\x07\n");
	assert_string_equal(logged("a\\x0ab\x7f"), "auth failed for a\\\\x0ab\\x7f\n");
	assert_string_equal(logged("J\xc3\xbcrgen\r"), "auth failed for J\xc3\xbcrgen\\x0d\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escaped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
