/* Configuration: every key type from a file and the command line, the line
 * syntax, error texts naming file, line and key, overrides, validation. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/addr.h"
#include "common/log.h"
#include "daemon/config.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Keys operators' files use: each must stay in the table (the table itself
 * is walked too, see test_usage_lists_every_key). */
static const char *const all_keys[] = {
	"listening-ip", "listening-port", "relay-ip", "external-ip", "min-port", "max-port",
	"realm", "user", "use-auth-secret", "static-auth-secret", "stale-nonce",
	"allowed-peer-ip", "denied-peer-ip", "user-quota", "total-quota",
	"max-allocate-lifetime", "allow-special-peers", "max-permissions", "max-channels",
	"default-allocate-lifetime", "permission-lifetime", "channel-lifetime", "no-xdp",
	"xdp-mode", "bpf-pin-dir", "keep-pins", "xdp-interface", "log-level", "prometheus",
	"prometheus-port", "relay-threads", "verbose", "lt-cred-mech", "fingerprint", "no-tls",
	"no-dtls", "no-cli", "no-tcp-relay",
};

struct fixture {
	struct config c;
	char path[64];		/* the temp config file, "" if none */
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	config_init(&f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	config_free(&f->c);
	if (f->path[0])
		unlink(f->path);
	free(f);
	return 0;
}

/* Writes text to a fresh temp file named in f->path. */
static void write_conf(struct fixture *f, const char *text)
{
	int fd;

	if (f->path[0])
		unlink(f->path);
	snprintf(f->path, sizeof(f->path), "/tmp/xturn-test-config-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int load(struct fixture *f, const char *text)
{
	write_conf(f, text);
	f->err[0] = 0;
	return config_load_file(&f->c, f->path, f->err, sizeof(f->err));
}

static void assert_ip(const struct sockaddr_storage *a, const char *want)
{
	char buf[ADDR_STRLEN];

	assert_string_equal(addr_str(a, false, buf, sizeof(buf)), want);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;

	assert_int_equal(c->listen_port, 3478);
	assert_int_equal(c->min_port, 49152);
	assert_int_equal(c->max_port, 65535);
	assert_string_equal(c->realm, "xturn");
	assert_int_equal(c->stale_nonce, 600);
	assert_int_equal(c->max_perms, 64);
	assert_int_equal(c->max_channels, 64);
	assert_int_equal(c->max_lifetime, 3600);
	assert_int_equal(c->default_lifetime, 600);
	assert_int_equal(c->permission_lifetime, 300);
	assert_int_equal(c->channel_lifetime, 600);
	assert_string_equal(c->xdp_mode, "auto");
	assert_string_equal(c->pin_dir, "/sys/fs/bpf/xturn");
	assert_int_equal(c->prometheus_port, 9641);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->nlisten + c->nrelay + c->next + c->users.n + c->secrets.n, 0);
	assert_false(c->no_xdp || c->use_auth_secret || c->demo || c->prometheus);
}

static void test_every_type(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;

	assert_int_equal(load(f,
		"listening-ip = 192.0.2.1\n"
		"listening-ip = ::ffff:198.51.100.7\n"
		"listening-ip = 2001:db8::1\n"
		"listening-port = 3479\n"
		"relay-ip = 10.0.0.2\n"
		"external-ip = 203.0.113.5\n"
		"external-ip = 203.0.113.6/10.0.0.2\n"
		"min-port = 40000\n"
		"max-port = 40100\n"
		"realm = example.org\n"
		"user = alice:secret:with:colons\n"
		"use-auth-secret\n"
		"static-auth-secret = s3cr3t\n"
		"stale-nonce = 120\n"
		"allowed-peer-ip = 10.1.2.0/24\n"
		"denied-peer-ip = 8.8.8.1-8.8.8.9\n"
		"allow-special-peers\n"
		"user-quota = 5\n"
		"total-quota = 1000\n"
		"max-permissions = 10\n"
		"max-channels = 20\n"
		"max-allocate-lifetime = 7200\n"
		"default-allocate-lifetime = 900\n"
		"permission-lifetime = 200\n"
		"channel-lifetime = 400\n"
		"no-xdp\n"
		"xdp-mode = generic\n"
		"bpf-pin-dir = /sys/fs/bpf/other\n"
		"keep-pins\n"
		"xdp-interface = eth1\n"
		"log-level = warn\n"
		"prometheus\n"
		"prometheus-port = 9100\n"
		"relay-threads = 3\n"
		"lt-cred-mech\nfingerprint\nno-tls\nno-dtls\nno-cli\nno-tcp-relay\n"), 0);
	assert_int_equal(c->nlisten, 3);
	assert_ip(&c->listen[0], "192.0.2.1");
	/* IPv4-mapped is stored canonical. */
	assert_int_equal(c->listen[1].ss_family, AF_INET);
	assert_ip(&c->listen[1], "198.51.100.7");
	assert_ip(&c->listen[2], "2001:db8::1");
	assert_int_equal(addr_port(&c->listen[0]), 0);
	assert_int_equal(c->listen_port, 3479);
	assert_int_equal(c->nrelay, 1);
	assert_ip(&c->relay[0], "10.0.0.2");
	assert_int_equal(c->next, 2);
	assert_ip(&c->ext_public[0], "203.0.113.5");
	assert_int_equal(c->ext_private[0].ss_family, AF_UNSPEC);
	assert_ip(&c->ext_public[1], "203.0.113.6");
	assert_ip(&c->ext_private[1], "10.0.0.2");
	assert_int_equal(c->min_port, 40000);
	assert_int_equal(c->max_port, 40100);
	assert_string_equal(c->realm, "example.org");
	assert_int_equal(c->users.n, 1);
	assert_string_equal(c->users.v[0], "alice:secret:with:colons");
	assert_true(c->use_auth_secret);
	assert_int_equal(c->secrets.n, 1);
	assert_string_equal(c->secrets.v[0], "s3cr3t");
	assert_int_equal(c->stale_nonce, 120);
	assert_string_equal(c->allowed_peers.v[0], "10.1.2.0/24");
	assert_string_equal(c->denied_peers.v[0], "8.8.8.1-8.8.8.9");
	assert_true(c->allow_special_peers);
	assert_int_equal(c->user_quota, 5);
	assert_int_equal(c->total_quota, 1000);
	assert_int_equal(c->max_perms, 10);
	assert_int_equal(c->max_channels, 20);
	assert_int_equal(c->max_lifetime, 7200);
	assert_int_equal(c->default_lifetime, 900);
	assert_int_equal(c->permission_lifetime, 200);
	assert_int_equal(c->channel_lifetime, 400);
	assert_true(c->no_xdp);
	assert_string_equal(c->xdp_mode, "generic");
	assert_string_equal(c->pin_dir, "/sys/fs/bpf/other");
	assert_true(c->keep_pins);
	assert_int_equal(c->xdp_ifaces.n, 1);
	assert_string_equal(c->xdp_ifaces.v[0], "eth1");
	assert_int_equal(c->log_level, LOG_WARN);
	assert_true(c->prometheus);
	assert_int_equal(c->prometheus_port, 9100);
	assert_int_equal(c->workers, 3);
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);
}

static void test_line_syntax(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;

	assert_int_equal(load(f,
		"# full-line comment\n"
		"\n"
		"   \t\n"
		"  # indented comment\n"
		"realm=\"quoted realm\"   # trailing comment\n"
		"static-auth-secret \"has # inside\"\n"
		"static-auth-secret\tab#c\n"
		"user=bob:pw\r\n"
		"  min-port   =   1024  \n"
		"max-port 2048\n"
		"no-xdp   # bare flag with a comment\n"
		"keep-pins\t# after a tab\n"), 0);
	assert_string_equal(c->realm, "quoted realm");
	assert_int_equal(c->secrets.n, 2);
	assert_string_equal(c->secrets.v[0], "has # inside");
	/* '#' not after whitespace is part of the value. */
	assert_string_equal(c->secrets.v[1], "ab#c");
	assert_string_equal(c->users.v[0], "bob:pw");
	assert_int_equal(c->min_port, 1024);
	assert_int_equal(c->max_port, 2048);
	assert_true(c->no_xdp);
	assert_true(c->keep_pins);
}

static void test_flag_values(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	static const struct {
		const char *v;
		bool want;
	} cases[] = {
		{ "yes", true }, { "no", false }, { "true", true }, { "false", false },
		{ "1", true }, { "0", false }, { "on", true }, { "off", false }, { "YES", true },
	};

	for (size_t i = 0; i < N(cases); i++) {
		/* Start from the opposite so every case changes the value. */
		c->no_xdp = !cases[i].want;
		assert_int_equal(config_set(c, "no-xdp", cases[i].v, "t:1", f->err,
					    sizeof(f->err)), 0);
		assert_int_equal(c->no_xdp, cases[i].want);
	}
	assert_int_equal(load(f, "keep-pins = yes\nkeep-pins = off\nprometheus=on\n"), 0);
	assert_false(c->keep_pins);
	assert_true(c->prometheus);
	assert_true(load(f, "no-xdp = maybe\n") < 0);
	assert_non_null(strstr(f->err, "key 'no-xdp'"));
	/* verbose is log-level debug, and a no-op key accepts a value too. */
	assert_int_equal(load(f, "verbose\nfingerprint = yes\n"), 0);
	assert_int_equal(c->log_level, LOG_DEBUG);
}

/* One bad line: negative return, and the text names file, line and key. */
static void expect_file_error(struct fixture *f, const char *text, unsigned line,
			      const char *key, const char *why)
{
	char want[256];

	config_free(&f->c);
	config_init(&f->c);
	if (load(f, text) >= 0)
		fail_msg("accepted: %s", text);
	snprintf(want, sizeof(want), "%s:%u: key '%s': ", f->path, line, key);
	if (strncmp(f->err, want, strlen(want)) || !strstr(f->err, why))
		fail_msg("error '%s' for '%s', want prefix '%s' and '%s'", f->err, text, want,
			 why);
}

static void test_file_errors(void **state)
{
	struct fixture *f = *state;

	expect_file_error(f, "realm = r\n\nbogus-key = 1\n", 3, "bogus-key", "unknown key");
	expect_file_error(f, "listening-port = 12x\n", 1, "listening-port", "not a number");
	expect_file_error(f, "# c\nlistening-port = -1\n", 2, "listening-port", "not a number");
	expect_file_error(f, "listening-port = 70000\n", 1, "listening-port", "out of range");
	expect_file_error(f, "listening-port = 0\n", 1, "listening-port", "out of range");
	expect_file_error(f, "min-port = 99999999999999999999999\n", 1, "min-port",
			  "out of range");
	expect_file_error(f, "stale-nonce = +5\n", 1, "stale-nonce", "not a number");
	expect_file_error(f, "max-channels = 5000\n", 1, "max-channels", "out of range");
	expect_file_error(f, "user-quota = 1 2\n", 1, "user-quota", "not a number");
	expect_file_error(f, "user-quota\n", 1, "user-quota", "needs a value");
	expect_file_error(f, "realm =\n", 1, "realm", "empty value");
	expect_file_error(f, "user = nocolon\n", 1, "user", "NAME:PASSWORD");
	expect_file_error(f, "user = :pw\n", 1, "user", "empty user name");
	expect_file_error(f, "user = name:\n", 1, "user", "empty password");
	expect_file_error(f, "listening-ip = 1.2.3\n", 1, "listening-ip", "not an IP");
	expect_file_error(f, "relay-ip = 1.2.3.4:5\n", 1, "relay-ip", "not an IP");
	expect_file_error(f, "external-ip = 1.2.3.4/nope\n", 1, "external-ip", "not an IP");
	expect_file_error(f, "external-ip = host/1.2.3.4\n", 1, "external-ip", "not an IP");
	expect_file_error(f, "allowed-peer-ip = 10.0.0.0/33\n", 1, "allowed-peer-ip", "CIDR");
	expect_file_error(f, "denied-peer-ip = 1.2.3.9-1.2.3.1\n", 1, "denied-peer-ip",
			  "range");
	expect_file_error(f, "xdp-mode = turbo\n", 1, "xdp-mode", "auto, native, generic or tc");
	expect_file_error(f, "log-level = loud\n", 1, "log-level", "debug");
	expect_file_error(f, "xdp-interface = averyveryverylongname0\n", 1, "xdp-interface",
			  "too long");
	/* A config file cannot turn the demo on. */
	expect_file_error(f, "demo\n", 1, "demo", "unknown key");
}

static void test_too_long_and_too_many(void **state)
{
	struct fixture *f = *state;
	char big[CONFIG_MAX_STR + 32];
	int rc = 0;

	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_true(config_set(&f->c, "realm", big, "t:1", f->err, sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "too long"));
	assert_string_equal(f->c.realm, "xturn");
	for (unsigned i = 0; i <= CONFIG_MAX_ADDRS && !rc; i++)
		rc = config_set(&f->c, "relay-ip", "192.0.2.1", "t:1", f->err, sizeof(f->err));
	assert_true(rc < 0);
	assert_int_equal(f->c.nrelay, CONFIG_MAX_ADDRS);
	assert_non_null(strstr(f->err, "too many"));
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(config_load_file(&f->c, "/nonexistent/xturn.conf", f->err,
					  sizeof(f->err)), -ENOENT);
	assert_non_null(strstr(f->err, "/nonexistent/xturn.conf"));
}

static int parse(struct fixture *f, int argc, char **argv)
{
	f->err[0] = 0;
	return config_parse_args(&f->c, argc, argv, f->err, sizeof(f->err));
}

static void test_cmdline_overrides_file(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;

	write_conf(f, "realm = fromfile\nlistening-port = 1000\nuser = a:1\nuser = b:2\n"
		      "no-xdp\nlog-level = error\n");
	/* The file is read first even when -c comes after the overrides. */
	char *argv[] = { "xturnd", "--realm=fromflag", "--user", "c:3", "--no-xdp=no",
			 "--verbose", "-c", f->path, "--min-port", "2000", "--demo" };

	assert_int_equal(parse(f, N(argv), argv), 0);
	assert_string_equal(c->realm, "fromflag");
	assert_int_equal(c->listen_port, 1000);
	assert_int_equal(c->min_port, 2000);
	assert_false(c->no_xdp);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_true(c->demo);
	assert_string_equal(c->config_path, f->path);
	/* Lists accumulate across file and command line. */
	assert_int_equal(c->users.n, 3);
	assert_string_equal(c->users.v[0], "a:1");
	assert_string_equal(c->users.v[1], "b:2");
	assert_string_equal(c->users.v[2], "c:3");
}

static void test_cmdline_config_forms(void **state)
{
	struct fixture *f = *state;
	char opt[128];

	write_conf(f, "realm = viaconfig\n");
	snprintf(opt, sizeof(opt), "--config=%s", f->path);
	char *argv[] = { "xturnd", opt };

	assert_int_equal(parse(f, N(argv), argv), 0);
	assert_string_equal(f->c.realm, "viaconfig");

	/* An error inside the file names the file and line. */
	write_conf(f, "realm = ok\nmax-port = x\n");
	char *argv2[] = { "xturnd", "--config", f->path };
	char want[128];

	assert_true(parse(f, N(argv2), argv2) < 0);
	snprintf(want, sizeof(want), "%s:2: key 'max-port': ", f->path);
	assert_non_null(strstr(f->err, want));
}

static void expect_args_error(struct fixture *f, int argc, char **argv, const char *want)
{
	if (parse(f, argc, argv) >= 0)
		fail_msg("accepted %s", argv[1]);
	if (!strstr(f->err, want))
		fail_msg("error '%s', want '%s'", f->err, want);
}

static void test_cmdline_errors(void **state)
{
	struct fixture *f = *state;
	char *a1[] = { "xturnd", "--bogus=1" };
	char *a2[] = { "xturnd", "--listening-port", "99999" };
	char *a3[] = { "xturnd", "--listening-port=12x" };
	char *a4[] = { "xturnd", "--realm" };
	char *a5[] = { "xturnd", "stray" };
	char *a6[] = { "xturnd", "-c" };
	char *a7[] = { "xturnd", "--demo=yes" };
	char *a8[] = { "xturnd", "--bogus", "value" };

	expect_args_error(f, N(a1), a1, "--bogus: unknown key");
	expect_args_error(f, N(a2), a2, "--listening-port: out of range");
	expect_args_error(f, N(a3), a3, "--listening-port: '12x' is not a number");
	expect_args_error(f, N(a4), a4, "--realm: needs a value");
	expect_args_error(f, N(a5), a5, "unexpected argument 'stray'");
	expect_args_error(f, N(a6), a6, "-c: needs a value");
	expect_args_error(f, N(a7), a7, "--demo: takes no value");
	expect_args_error(f, N(a8), a8, "--bogus: unknown key");
}

static void test_help(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "xturnd", "--realm=x", "-h" };
	char *argv2[] = { "xturnd", "--help" };
	FILE *saved = stdout;

	/* Help goes to stdout; keep the test output clean. */
	stdout = fopen("/dev/null", "w");
	assert_non_null(stdout);
	assert_int_equal(parse(f, N(argv), argv), 1);
	assert_int_equal(parse(f, N(argv2), argv2), 1);
	fclose(stdout);
	stdout = saved;
}

/* --help lists every key, and every listed key is known to config_set. */
static void test_usage_lists_every_key(void **state)
{
	struct fixture *f = *state;
	char *text = NULL, want[64];
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	assert_non_null(m);
	config_usage(m);
	fclose(m);
	for (size_t i = 0; i < N(all_keys); i++) {
		unsigned k = 0;

		while (config_key(k) && strcmp(config_key(k), all_keys[i]))
			k++;
		if (!config_key(k))
			fail_msg("%s is no longer in the key table", all_keys[i]);
	}
	/* Every key of the table: in the usage text, known to config_set. */
	for (unsigned i = 0; config_key(i); i++) {
		const char *key = config_key(i);

		snprintf(want, sizeof(want), "--%s", key);
		if (!strstr(text, want))
			fail_msg("usage lacks %s", want);
		if (config_set(&f->c, key, strstr(key, "ip") ? "192.0.2.1" : "1", "t:1", f->err,
			       sizeof(f->err)) &&
		    strstr(f->err, "unknown key"))
			fail_msg("%s unknown to config_set", key);
	}
	assert_true(config_key(0) && !config_key(10000));
	assert_non_null(strstr(text, "coturn keys that do not apply"));
	free(text);
}

static void expect_invalid(struct fixture *f, const char *text, const char *why)
{
	config_free(&f->c);
	config_init(&f->c);
	assert_int_equal(load(f, text), 0);
	if (config_validate(&f->c, f->err, sizeof(f->err)) != -EINVAL)
		fail_msg("validated: %s", text);
	if (!strstr(f->err, why))
		fail_msg("error '%s', want '%s'", f->err, why);
}

static void test_validate(void **state)
{
	struct fixture *f = *state;

	expect_invalid(f, "user=a:b\nmin-port=5000\nmax-port=4000\n", "min-port");
	expect_invalid(f, "user=a:b\nuse-auth-secret\n", "static-auth-secret");
	expect_invalid(f, "user=a:b\ndefault-allocate-lifetime=4000\n",
		       "default-allocate-lifetime");
	expect_invalid(f, "realm=r\n", "no credentials");
	expect_invalid(f, "user=a:b\nno-udp\nno-tcp\n", "nothing to listen on");
	/* Two relay-ip told to clients as one address. */
	expect_invalid(f, "user=a:b\nrelay-ip=10.0.0.1\nrelay-ip=10.0.0.2\n"
		       "external-ip=198.51.100.7\n", "relay-ip 10.0.0.1 and 10.0.0.2");
	expect_invalid(f, "user=a:b\nrelay-ip=10.0.0.1\nrelay-ip=10.0.0.2\n"
		       "external-ip=198.51.100.7/10.0.0.1\nexternal-ip=198.51.100.7/10.0.0.2\n",
		       "relay-ip 10.0.0.1 and 10.0.0.2");
	/* The boundary cases are valid. */
	config_free(&f->c);
	config_init(&f->c);
	assert_int_equal(load(f, "use-auth-secret\nstatic-auth-secret=k\nmin-port=5000\n"
			      "max-port=5000\ndefault-allocate-lifetime=3600\n"), 0);
	assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
	/* Each relay-ip its own public address, or one of each family. */
	config_free(&f->c);
	config_init(&f->c);
	assert_int_equal(load(f, "user=a:b\nrelay-ip=10.0.0.1\nrelay-ip=10.0.0.2\n"
			      "relay-ip=2001:db8::1\nexternal-ip=198.51.100.7/10.0.0.1\n"
			      "external-ip=198.51.100.8/10.0.0.2\nexternal-ip=2001:db8:1::1\n"), 0);
	assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
}

/* coturn's forms: a bare stale-nonce, -v, a user given twice, keys that do
 * not apply (one warning each, naming the first line), keys that say what
 * xturn always does (none). */
static void test_coturn_forms(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "xturnd", "-v", NULL };

	assert_int_equal(load(f, "stale-nonce=30\nstale-nonce\nuser=a:one\nuser=b:two\n"
			      "user=a:three\nmobility\nproc-user=<user-name>\nmobility=yes\n"
			      "no-rfc5780\nno-multicast-peers\nno-tlsv1\n"), 0);
	assert_int_equal(f->c.stale_nonce, 600);
	assert_int_equal(f->c.users.n, 2);
	assert_string_equal(f->c.users.v[0], "b:two");
	assert_string_equal(f->c.users.v[1], "a:three");
	assert_int_equal(f->c.warnings.n, 3);
	assert_non_null(strstr(f->c.warnings.v[0], ":5: user 'a' given again"));
	assert_non_null(strstr(f->c.warnings.v[1], ":6: key 'mobility' does not apply"));
	assert_non_null(strstr(f->c.warnings.v[2], ":7: key 'proc-user' does not apply"));
	assert_int_equal(config_parse_args(&f->c, 2, argv, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->c.log_level, LOG_DEBUG);
	/* An unknown key is still an error: a typo must not pass as coturn's. */
	assert_int_equal(load(f, "mobilty\n"), -EINVAL);
	assert_non_null(strstr(f->err, "unknown key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_long_and_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_overrides_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_config_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_lists_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coturn_forms, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
