/* Logging: what a client sent (a username, a realm) cannot forge a line or
 * drive a terminal: control characters and backslashes come out escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/log.h"

/* Everything lvl's line for user came out as, stderr pointing at a
 * temporary file; journal: JOURNAL_STREAM names that file ("other": some
 * other stream, as a child redirected elsewhere inherits it). */
static char *written(enum log_level lvl, const char *user, const char *journal)
{
	static char buf[8192];
	FILE *f = tmpfile();
	int saved = dup(2);
	struct stat st;
	char js[64];
	size_t n;

	assert_non_null(f);
	fflush(stderr);
	assert_true(dup2(fileno(f), 2) >= 0);
	assert_int_equal(fstat(2, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (journal && !strcmp(journal, "other")));
	if (journal)
		setenv("JOURNAL_STREAM", js, 1);
	else
		unsetenv("JOURNAL_STREAM");
	log_init();
	log_msg(lvl, "auth failed for %s", user);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	log_init();
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* The line log_info writes for msg, without its timestamp and level. */
static char *logged(const char *user)
{
	char *p = strstr(written(LOG_INFO, user, NULL), "info  ");

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

/* Journal format: the syslog priority first, no timestamp; only when
 * JOURNAL_STREAM is this stderr. Escaping is the same. */
static void test_journal(void **state)
{
	const char *plain;

	assert_string_equal(written(LOG_ERR, "a", "this"), "<3>auth failed for a\n");
	assert_string_equal(written(LOG_WARN, "b", "this"), "<4>auth failed for b\n");
	assert_string_equal(written(LOG_INFO, "c\nx", "this"), "<6>auth failed for c\\x0ax\n");
	log_level = LOG_DEBUG;
	assert_string_equal(written(LOG_DEBUG, "d", "this"), "<7>auth failed for d\n");
	log_level = LOG_INFO;
	/* another stream's JOURNAL_STREAM, or none: timestamped lines */
	plain = written(LOG_WARN, "e", "other");
	assert_int_equal(plain[4], '-');	/* 2026-... */
	assert_non_null(strstr(plain, "Z warn  auth failed for e\n"));
	assert_non_null(strstr(written(LOG_WARN, "f", NULL), "Z warn  auth failed for f\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escaped),
		cmocka_unit_test(test_journal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
