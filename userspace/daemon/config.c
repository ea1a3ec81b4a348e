#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/addr.h"
#include "common/ctl.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pins.h"
#include "common/version.h"
#include "turn/policy.h"
#include "daemon/config.h"

enum config_type {
	CONFIG_FLAG,		/* bool; bare key = true, or yes/no/true/false/1/0/on/off */
	CONFIG_UINT,		/* unsigned within [min, max] */
	CONFIG_PORT,		/* uint16_t within [min, max] */
	CONFIG_STR,		/* char[size], non-empty */
	CONFIG_ADDRS,		/* sockaddr_storage[CONFIG_MAX_ADDRS] + unsigned count at off_n */
	CONFIG_LIST,		/* struct config_list, one item per occurrence */
	CONFIG_LOGLEVEL,	/* int, log_level_parse() */
	CONFIG_EXTIP,		/* external-ip: "public" or "public/private" */
	CONFIG_CONST,		/* flag that stores min into an int (verbose) */
	CONFIG_NOOP,		/* coturn's: what xturn always does; no effect, no warning */
	CONFIG_IGNORED,		/* coturn's: does not apply here; a warning saying why */
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t off, off_n;
	size_t size;		/* CONFIG_STR buffer size */
	unsigned long min, max;
	const char *def;	/* default, applied by config_init through the setter */
	const char *bare;	/* value of the bare key (coturn's optional values) */
	/* Extra check of a string or list item: NULL if fine, else why not. */
	const char *(*check)(const char *v);
	const char *arg;	/* value placeholder in --help */
	const char *help;
	const char *coturn;	/* how coturn's key of this name differs, if it does */
};

static const char *config_check_user(const char *v);
static const char *config_check_peer(const char *v);
static const char *config_check_ifname(const char *v);
static const char *config_check_xdp_mode(const char *v);
static const char *config_check_ip(const char *v);
static const char *config_check_software(const char *v);
static const char *config_check_alternate(const char *v);

#define F(field) offsetof(struct config, field)
/* Each takes, last, more designated initializers: .coturn = "..." for a key
 * whose coturn namesake means something else. */
/* 16 Mi entries. A binding costs the kernel 440 bytes (two 216-byte hash
 * entries and its expiry; measured at 1 Mi: 440 MiB). */
#define XDP_MAX_ENTRIES (1u << 24)
#define FLAG(n, f, h, ...) { .name = n, .type = CONFIG_FLAG, .off = F(f), .help = h, __VA_ARGS__ }
#define UINT(n, f, lo, hi, d, h, ...) { .name = n, .type = CONFIG_UINT, .off = F(f), \
	.min = lo, .max = hi, .def = d, .arg = "N", .help = h, __VA_ARGS__ }
#define PORT(n, f, d, h, ...) { .name = n, .type = CONFIG_PORT, .off = F(f), \
	.min = 1, .max = 65535, .def = d, .arg = "PORT", .help = h, __VA_ARGS__ }
#define STR(n, f, d, ck, a, h, ...) { .name = n, .type = CONFIG_STR, .off = F(f), \
	.size = sizeof(((struct config *)0)->f), .def = d, .check = ck, .arg = a, .help = h, \
	__VA_ARGS__ }
#define ADDRS(n, f, fn, h, ...) { .name = n, .type = CONFIG_ADDRS, .off = F(f), .off_n = F(fn), \
	.arg = "IP", .help = h, __VA_ARGS__ }
#define LIST(n, f, ck, a, h, ...) { .name = n, .type = CONFIG_LIST, .off = F(f), .check = ck, \
	.arg = a, .help = h, __VA_ARGS__ }
#define NOOP(n, h) { .name = n, .type = CONFIG_NOOP, .help = h }
#define IGNORED(n, h) { .name = n, .type = CONFIG_IGNORED, .help = h }

static const struct config_key config_keys[] = {
	ADDRS("listening-ip", listen, nlisten,
	      "address to listen on for STUN/TURN (repeatable; default: all)"),
	PORT("listening-port", listen_port, "3478", "UDP and TCP port to listen on"),
	FLAG("no-tcp", no_tcp, "no TURN over TCP on listening-port"),
	FLAG("no-tls", no_tls, "no TURN over TLS, even with cert and pkey"),
	FLAG("no-udp", no_udp, "no TURN over UDP on listening-port (relayed traffic stays UDP)"),
	PORT("tls-listening-port", tls_port, "5349", "TLS port (with cert and pkey)"),
	STR("cert", cert, NULL, NULL, "FILE", "TLS certificate chain, PEM (TLS only with pkey)"),
	STR("pkey", pkey, NULL, NULL, "FILE", "TLS private key, PEM"),
	STR("cipher-list", cipher_list, NULL, NULL, "LIST",
	    "OpenSSL cipher list for TLS 1.2 (default: OpenSSL's)"),
	STR("pkey-pwd", pkey_pwd, NULL, NULL, "PASSWORD", "password of an encrypted pkey"),
	NOOP("no-tlsv1", "TLS 1.0 is never offered (TLS 1.2 is the minimum)"),
	NOOP("no-tlsv1_1", "TLS 1.1 is never offered (TLS 1.2 is the minimum)"),
	FLAG("no-tlsv1_2", no_tlsv1_2, "TLS 1.3 only"),
	/* Each thread bounds its own, like coturn's per-process limit would. */
	UINT("max-tcp-connections", max_tcp_conns, 1, 1000000, "8192",
	     "TCP and TLS client connections per relay thread"),
	UINT("max-tcp-pending-per-ip", tcp_pending_per_ip, 0, 1000000, "32",
	     "TCP/TLS connections without an allocation from one address (IPv6: its /64), "
	     "per relay thread; 0: no limit"),
	UINT("tcp-idle-timeout", tcp_idle_timeout, 1, 3600, "30",
	     "seconds a TCP/TLS connection may live without an allocation"),
	UINT("tls-handshake-timeout", tls_handshake_timeout, 1, 600, "10",
	     "seconds to complete the TLS handshake"),
	ADDRS("relay-ip", relay, nrelay, "address to allocate relayed ports on (repeatable: allocations alternate between them)"),
	{ .name = "external-ip", .type = CONFIG_EXTIP, .arg = "PUBLIC[/PRIVATE]",
	  .help = "public address advertised for relays on PRIVATE (or on any) (repeatable)" },
	PORT("min-port", min_port, "49152", "lowest relay port"),
	PORT("max-port", max_port, "65535", "highest relay port"),
	STR("realm", realm, "xturn", NULL, "REALM", "authentication realm"),
	STR("software-name", software, NULL, config_check_software, "TEXT",
	    "SOFTWARE in every response, unauthenticated ones too (unset: \"xturn\" in "
	    "authenticated ones only, so a spoofed request gets less back)",
	    .coturn = "coturn sends it in every response; xturnd only in authenticated "
		     "ones unless set"),
	FLAG("no-software-attribute", no_software, "no SOFTWARE attribute in any response"),
	LIST("user", users, config_check_user, "NAME:PASSWORD",
	     "long-term credential (repeatable); a password of the form 0x and 32 hex "
	     "digits is the key MD5(NAME:REALM:PASSWORD), as coturn's turnadmin -k prints "
	     "(such a user authenticates with MD5 only)"),
	FLAG("use-auth-secret", use_auth_secret, "TURN REST credentials from static-auth-secret"),
	LIST("static-auth-secret", secrets, NULL, "SECRET",
	     "TURN REST shared secret (repeatable, for rotation)"),
	{ .name = "stale-nonce", .type = CONFIG_UINT, .off = F(stale_nonce), .min = 1,
	  .max = 86400, .def = "600", .bare = "600", .arg = "N",
	  .help = "seconds before a nonce is stale (bare key: 600)" },
	UINT("unauth-rate-limit", unauth_rate, 0, 1000000, "50",
	     "unauthenticated error responses (401, 438, 400) a second to one source address "
	     "(IPv6: its /64) over UDP, per relay thread; 0: no limit"),
	UINT("unauth-rate-burst", unauth_burst, 1, 1000000, "200",
	     "burst allowed above unauth-rate-limit"),
	LIST("allowed-peer-ip", allowed_peers, config_check_peer, "IP|CIDR|IP-IP[:PORT[-PORT]]",
	     "peers always allowed, even special-purpose ones (repeatable)"),
	LIST("denied-peer-ip", denied_peers, config_check_peer, "IP|CIDR|IP-IP[:PORT[-PORT]]",
	     "peers denied (repeatable)"),
	FLAG("allow-special-peers", allow_special_peers,
	     "do not deny loopback, private, link-local, multicast... peers by default"),
	FLAG("allow-loopback-peers", allow_loopback_peers,
	     "allow peers on 127.0.0.0/8 and ::1 (for tests only)"),
	NOOP("no-loopback-peers", "loopback peers are denied unless allowed"),
	NOOP("no-multicast-peers", "multicast and broadcast peers are denied unless allowed"),
	UINT("user-quota", user_quota, 0, 1000000, "0", "allocations per user (0: unlimited)"),
	UINT("total-quota", total_quota, 0, 1000000, "0", "allocations in all (0: unlimited)"),
	UINT("max-permissions", max_perms, 1, 65535, "64", "permissions per allocation"),
	/* RFC 8656 §12 gives a client 4096 channel numbers. */
	UINT("max-channels", max_channels, 1, 4096, "64", "channels per allocation"),
	UINT("max-allocate-lifetime", max_lifetime, 1, 86400, "3600",
	     "longest allocation lifetime, seconds"),
	UINT("default-allocate-lifetime", default_lifetime, 1, 86400, "600",
	     "allocation lifetime when the client asks none, seconds"),
	UINT("permission-lifetime", permission_lifetime, 1, 3600, "300",
	     "permission lifetime, seconds"),
	UINT("channel-lifetime", channel_lifetime, 1, 3600, "600", "channel lifetime, seconds"),
	FLAG("no-xdp", no_xdp, "relay in userspace only"),
	STR("xdp-mode", xdp_mode, "auto", config_check_xdp_mode, "auto|native|generic|tc",
	    "fast path attach mode (auto: native XDP, TC where XDP would not deliver)"),
	STR("bpf-pin-dir", pin_dir, PINS_DEFAULT_DIR, NULL, "DIR", "bpffs directory for maps"),
	FLAG("keep-pins", keep_pins, "leave pinned maps at exit"),
	LIST("xdp-interface", xdp_ifaces, config_check_ifname, "IFNAME",
	     "also attach XDP to this interface (repeatable)"),
	STR("xdp-lookup-device", xdp_lookup_dev, "xturn0", config_check_ifname, "IFNAME",
	    "device created for the XDP route lookups, with forwarding on (only it)"),
	FLAG("xdp-verify-checksum", xdp_verify_csum,
	     "XDP also drops relayed datagrams whose UDP checksum is wrong"),
	/* The kernel's tables, one entry per channel binding, relayed address
	 * or permission in all: beyond them the rest is relayed in userspace. */
	UINT("xdp-max-bindings", xdp_max_bindings, 1, XDP_MAX_ENTRIES, "65536",
	     "channel bindings the fast path holds, all allocations together"),
	UINT("xdp-max-allocations", xdp_max_allocs, 1, XDP_MAX_ENTRIES, "65536",
	     "relayed addresses the fast path holds"),
	UINT("xdp-max-permissions", xdp_max_perms, 1, XDP_MAX_ENTRIES, "262144",
	     "permissions the fast path holds, all allocations together"),
	{ .name = "log-level", .type = CONFIG_LOGLEVEL, .off = F(log_level), .def = "info",
	  .arg = "error|warn|info|debug", .help = "log verbosity" },
	{ .name = "verbose", .type = CONFIG_CONST, .off = F(log_level), .min = LOG_DEBUG,
	  .help = "same as log-level=debug" },
	{ .name = "Verbose", .type = CONFIG_CONST, .off = F(log_level), .min = LOG_DEBUG,
	  .help = "same as log-level=debug (coturn's extra verbose)",
	  .coturn = "coturn's extra verbosity is the same as verbose here" },
	FLAG("syslog", syslog, "log to syslog (daemon facility) instead of stderr",
	     .coturn = "coturn's facility is set with syslog-facility; here it is always daemon"),
	STR("log-file", log_file, NULL, NULL, "FILE|stdout|syslog",
	    "log to FILE (appended, reopened on SIGHUP), stdout or syslog instead of stderr",
	    .coturn = "coturn adds the date to the name unless simple-log; here the name is used as "
		     "given"),
	NOOP("simple-log", "log-file is always the name given"),
	NOOP("no-stdout-log", "logs go to stderr, log-file or syslog, never stdout unless asked"),
	STR("pidfile", pidfile, NULL, NULL, "FILE", "write the process id to FILE"),
	STR("accounting-log", accounting_log, NULL, NULL, "FILE",
	    "append one JSON object per ended allocation to FILE (reopened on SIGHUP)"),
	LIST("alternate-server", alternates, config_check_alternate, "IP[:PORT]",
	     "ALTERNATE-SERVER for UDP and TCP clients when draining or at total-quota "
	     "(repeatable, round robin; port 3478 unless given)",
	     .coturn = "coturn sends every Allocate to these, round robin, as a load balancer; xturnd "
		     "only while draining or at total-quota"),
	LIST("tls-alternate-server", tls_alternates, config_check_alternate, "IP[:PORT]",
	     "the same for TLS clients (port 5349 unless given)"),
	FLAG("prometheus", prometheus, "serve metrics over HTTP",
	     .coturn = "coturn's metric names differ (turn_*); xturnd's are xturn_* "
		     "(see the README)"),
	PORT("prometheus-port", prometheus_port, "9641", "metrics port"),
	/* Loopback by default: the counters are no secret, but a scraper
	 * elsewhere is a choice to make, not a default. */
	STR("prometheus-ip", prometheus_ip, "127.0.0.1", config_check_ip, "IP",
	    "metrics address (0.0.0.0 or :: for all)",
	    .coturn = "coturn serves metrics on every address; xturnd on loopback unless this says "
		     "otherwise"),
	{ .name = "web-port", .type = CONFIG_PORT, .off = F(web_port), .min = 0, .max = 65535,
	  .def = "0", .arg = "PORT",
	  .help = "serve the browser check page and its credentials over HTTP (0: off)" },
	STR("web-ip", web_ip, "127.0.0.1", config_check_ip, "IP",
	    "address of the check page (0.0.0.0 or :: for all; it may be prometheus-ip:port)"),
	STR("stats-socket", stats_socket, METRICS_DEFAULT_SOCKET, NULL, "PATH",
	    "Unix socket answering with the JSON metrics (xturnstat)"),
	STR("control-socket", control_socket, CTL_DEFAULT_SOCKET, NULL, "PATH",
	    "Unix socket for xturnctl (root and the xturn group only)"),
	UINT("drain-timeout", drain_timeout, 1, 604800, "3600",
	     "seconds a drain (SIGUSR1, xturnctl drain) waits for the allocations to end "
	     "before it ends them"),
	STR("journal-dir", journal_dir, "/run/xturn", NULL, "DIR",
	    "where each relay thread journals its allocations, so a daemon started after this "
	    "one died takes them over (keep relay-threads the same across it)"),
	FLAG("no-journal", no_journal, "journal nothing: a restart loses every allocation"),
	UINT("relay-threads", workers, 0, 1024, "0", "relay threads (0: one per CPU)",
	     .coturn = "coturn's 0 runs one relay thread with the listener; here 0 is "
		     "one thread per CPU"),
	/* coturn keys that describe what xturn always does: accepted so a
	 * coturn configuration loads unchanged. */
	NOOP("lt-cred-mech", "long-term credentials are the only mechanism"),
	NOOP("fingerprint", "FINGERPRINT is added when the request had one"),
	NOOP("no-dtls", "xturn has no DTLS"),
	NOOP("no-cli", "xturn has no telnet CLI (see xturnctl)"),
	NOOP("no-tcp-relay", "relayed transport is UDP only (RFC 6062 is not implemented)"),
	NOOP("no-rfc5780", "RFC 5780 NAT behaviour discovery is not implemented"),
	NOOP("response-origin-only-with-rfc5780", "RESPONSE-ORIGIN is never sent"),
	NOOP("no-stun-backward-compatibility", "RFC 3489 (classic STUN) is not answered"),
	/* coturn keys for what xturn does not do: one warning each. */
	IGNORED("listening-device", "bind with listening-ip instead"),
	IGNORED("relay-device", "bind with relay-ip instead"),
	IGNORED("alt-listening-port", "RFC 5780 is not implemented"),
	IGNORED("alt-tls-listening-port", "RFC 5780 is not implemented"),
	IGNORED("tcp-proxy-port", "no proxy protocol listener"),
	IGNORED("aux-server", "listen on more addresses with listening-ip"),
	IGNORED("udp-self-balance", "every relay thread has its own SO_REUSEPORT socket"),
	IGNORED("no-auth", "xturn always authenticates"),
	IGNORED("server-name", "the realm names the server"),
	IGNORED("oauth", "third-party (OAuth) authorization is not implemented"),
	IGNORED("userdb", "users come from user= lines or TURN REST credentials"),
	IGNORED("psql-userdb", "users come from user= lines or TURN REST credentials"),
	IGNORED("mysql-userdb", "users come from user= lines or TURN REST credentials"),
	IGNORED("mongo-userdb", "users come from user= lines or TURN REST credentials"),
	IGNORED("redis-userdb", "users come from user= lines or TURN REST credentials"),
	IGNORED("redis-statsdb", "statistics are served by prometheus and xturnstat"),
	IGNORED("secret-key-file", "keys are not stored encrypted"),
	IGNORED("check-origin-consistency", "ORIGIN is not checked"),
	IGNORED("max-bps", "bandwidth is not limited per allocation"),
	IGNORED("bps-capacity", "bandwidth is not limited"),
	IGNORED("no-udp-relay", "the relayed transport is always UDP"),
	IGNORED("CA-file", "client certificates are not asked for"),
	IGNORED("ec-curve-name", "OpenSSL's default groups are negotiated"),
	IGNORED("dh566", "no DHE ciphers: ECDHE only"),
	IGNORED("dh1066", "no DHE ciphers: ECDHE only"),
	IGNORED("dh2066", "no DHE ciphers: ECDHE only"),
	IGNORED("dh-file", "no DHE ciphers: ECDHE only"),
	IGNORED("syslog-facility", "syslog uses the daemon facility"),
	IGNORED("new-log-timestamp", "lines carry RFC 3339 UTC timestamps (none under journald)"),
	IGNORED("new-log-timestamp-format", "lines carry RFC 3339 UTC timestamps"),
	IGNORED("log-binding", "Binding requests are not logged"),
	IGNORED("stun-only", "TURN cannot be turned off"),
	IGNORED("no-stun", "Binding requests are always answered"),
	IGNORED("rest-api-separator", "TURN REST usernames are EXPIRY:NAME"),
	IGNORED("max-allocate-timeout", "unauthenticated TCP/TLS connections end after "
		"tcp-idle-timeout"),
	IGNORED("secure-stun", "Binding requests are answered without credentials"),
	IGNORED("mobility", "RFC 8016 mobility is not implemented"),
	IGNORED("keep-address-family", "the relayed address family is always the one asked "
		"for (RFC 8656)"),
	IGNORED("allocation-default-address-family", "IPv4 unless the client asks otherwise "
		"(RFC 8656)"),
	IGNORED("proc-user", "run xturnd as the xturn user with the unit's User= and "
		"capabilities (xturnd.service)"),
	IGNORED("proc-group", "run xturnd with the unit's Group= (xturnd.service)"),
	IGNORED("cli-ip", "xturn has no telnet CLI; xturnctl uses control-socket"),
	IGNORED("cli-port", "xturn has no telnet CLI; xturnctl uses control-socket"),
	IGNORED("cli-password", "xturn has no telnet CLI; xturnctl uses control-socket"),
	IGNORED("cli-max-output-sessions", "xturn has no telnet CLI"),
	IGNORED("web-admin", "no web admin; xturnctl and the metrics"),
	IGNORED("web-admin-ip", "no web admin"),
	IGNORED("web-admin-port", "no web admin"),
	IGNORED("web-admin-listen-on-workers", "no web admin"),
	IGNORED("acme-redirect", "no HTTP listener for ACME; use certbot's own"),
	IGNORED("server-relay", "relaying to this host's addresses is denied by the peer "
		"policy unless allowed-peer-ip opens them"),
	IGNORED("ne", "one network engine"),
	IGNORED("prod", "SOFTWARE is governed by software-name and no-software-attribute"),
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *config_check_user(const char *v)
{
	const char *colon = strchr(v, ':');

	if (!colon)
		return "expected NAME:PASSWORD";
	if (colon == v)
		return "empty user name";
	if (!colon[1])
		return "empty password";
	return NULL;
}

static const char *config_check_peer(const char *v)
{
	return policy_spec_check(v) ? "expected an IP, a CIDR or a range IP-IP, optionally "
				      "with :PORT or :PORT-PORT ([IPv6]:PORT)" : NULL;
}

/* RFC 8489 §14.14: fewer than 128 characters. */
static const char *config_check_software(const char *v)
{
	return strlen(v) > 127 ? "at most 127 bytes" : NULL;
}

static const char *config_check_alternate(const char *v)
{
	struct sockaddr_storage a;

	return addr_parse(v, 3478, &a) ? "expected IP or IP:PORT ([IPv6]:PORT)" : NULL;
}

static const char *config_check_ip(const char *v)
{
	struct sockaddr_storage a;

	return addr_parse(v, 0, &a) || addr_port(&a) ? "expected an IP address" : NULL;
}

static const char *config_check_ifname(const char *v)
{
	if (strlen(v) >= IFNAMSIZ)
		return "interface name too long";
	return strpbrk(v, "/ \t:") ? "not an interface name" : NULL;
}

static const char *config_check_xdp_mode(const char *v)
{
	if (!strcmp(v, "auto") || !strcmp(v, "native") || !strcmp(v, "generic") ||
	    !strcmp(v, "tc"))
		return NULL;
	return "expected auto, native, generic or tc";
}

static const struct config_key *config_find(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (!strcmp(config_keys[i].name, name))
			return &config_keys[i];
	return NULL;
}

/* Keys that take no value unless given one with '=' (never the next argv). */
static bool config_is_flag(const struct config_key *k)
{
	return k->type == CONFIG_FLAG || k->type == CONFIG_CONST || k->type == CONFIG_NOOP ||
	       k->type == CONFIG_IGNORED || k->bare;
}

static int config_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "1", "on" };
	static const char *const no[] = { "no", "false", "0", "off" };

	if (!v) {
		*out = true;
		return 0;
	}
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			*out = !strcasecmp(v, yes[i]);
			return 0;
		}
	}
	return -EINVAL;
}

/* Digits only: no sign, no spaces, no trailing junk. */
static int config_parse_num(const char *v, const struct config_key *k, unsigned long *out,
			    char *why, size_t len)
{
	unsigned long n = 0;

	if (!*v || strspn(v, "0123456789") != strlen(v)) {
		snprintf(why, len, "'%s' is not a number", v);
		return -EINVAL;
	}
	for (; *v; v++) {
		n = n * 10 + (unsigned long)(*v - '0');
		if (n > k->max)
			break;
	}
	if (n < k->min || n > k->max) {
		snprintf(why, len, "out of range %lu..%lu", k->min, k->max);
		return -ERANGE;
	}
	*out = n;
	return 0;
}

/* A bare IP (no port) into a canonical address. */
static int config_parse_ip(const char *v, struct sockaddr_storage *a, char *why, size_t len)
{
	if (addr_parse(v, 0, a) || addr_port(a)) {
		snprintf(why, len, "'%s' is not an IP address", v);
		return -EINVAL;
	}
	addr_canon(a);
	return 0;
}

static int config_set_extip(struct config *c, const char *v, char *why, size_t len)
{
	char pub[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(v, '/');
	size_t n = slash ? (size_t)(slash - v) : strlen(v);
	struct sockaddr_storage a, b = { .ss_family = AF_UNSPEC };
	int err;

	if (c->next >= CONFIG_MAX_ADDRS) {
		snprintf(why, len, "too many (at most %d)", CONFIG_MAX_ADDRS);
		return -E2BIG;
	}
	if (n >= sizeof(pub)) {
		snprintf(why, len, "'%s' is not an IP address", v);
		return -EINVAL;
	}
	memcpy(pub, v, n);
	pub[n] = 0;
	if ((err = config_parse_ip(pub, &a, why, len)))
		return err;
	if (slash && (err = config_parse_ip(slash + 1, &b, why, len)))
		return err;
	c->ext_public[c->next] = a;
	c->ext_private[c->next++] = b;
	return 0;
}

static int config_list_add(struct config_list *l, const char *v, char *why, size_t len)
{
	if (l->n >= CONFIG_MAX_LIST) {
		snprintf(why, len, "too many (at most %d)", CONFIG_MAX_LIST);
		return -E2BIG;
	}
	if (!(l->v[l->n] = strdup(v))) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

/* Applies value v (NULL: bare key) to the field of k. */
static int config_apply(const struct config_key *k, struct config *c, const char *v,
			char *why, size_t len)
{
	char *field = (char *)c + k->off;
	const char *bad;
	unsigned long n;
	bool b;
	int err;

	if (!v && k->bare)
		v = k->bare;
	if (!v && !config_is_flag(k)) {
		snprintf(why, len, "needs a value");
		return -EINVAL;
	}
	if (v && !*v && k->type != CONFIG_NOOP && k->type != CONFIG_IGNORED) {
		snprintf(why, len, "empty value");
		return -EINVAL;
	}
	if (v && k->check && (bad = k->check(v))) {
		snprintf(why, len, "%s", bad);
		return -EINVAL;
	}
	switch (k->type) {
	case CONFIG_FLAG:
	case CONFIG_CONST:
		if (config_parse_bool(v, &b)) {
			snprintf(why, len, "expected yes/no, true/false, 1/0 or on/off");
			return -EINVAL;
		}
		if (k->type == CONFIG_FLAG)
			*(bool *)field = b;
		else if (b)
			*(int *)field = (int)k->min;
		return 0;
	case CONFIG_UINT:
	case CONFIG_PORT:
		if ((err = config_parse_num(v, k, &n, why, len)))
			return err;
		if (k->type == CONFIG_UINT)
			*(unsigned *)field = (unsigned)n;
		else
			*(uint16_t *)field = (uint16_t)n;
		return 0;
	case CONFIG_STR:
		if (strlen(v) >= k->size) {
			snprintf(why, len, "too long (at most %zu characters)", k->size - 1);
			return -ENAMETOOLONG;
		}
		strcpy(field, v);
		return 0;
	case CONFIG_ADDRS: {
		unsigned *count = (unsigned *)((char *)c + k->off_n);
		struct sockaddr_storage a;

		if (*count >= CONFIG_MAX_ADDRS) {
			snprintf(why, len, "too many (at most %d)", CONFIG_MAX_ADDRS);
			return -E2BIG;
		}
		if ((err = config_parse_ip(v, &a, why, len)))
			return err;
		((struct sockaddr_storage *)field)[(*count)++] = a;
		return 0;
	}
	case CONFIG_LIST:
		return config_list_add((struct config_list *)field, v, why, len);
	case CONFIG_LOGLEVEL:
		if ((err = log_level_parse(v)) < 0) {
			snprintf(why, len, "expected error, warn, info or debug");
			return -EINVAL;
		}
		*(int *)field = err;
		return 0;
	case CONFIG_EXTIP:
		return config_set_extip(c, v, why, len);
	case CONFIG_NOOP:
	case CONFIG_IGNORED:	/* config_set records the warning */
		return 0;
	}
	return -EINVAL;
}

void config_init(struct config *c)
{
	char why[128];

	memset(c, 0, sizeof(*c));
	/* Defaults go through the same parser as user input; the unit tests
	 * check the result, so a bad default cannot ship. */
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (config_keys[i].def)
			config_apply(&config_keys[i], c, config_keys[i].def, why, sizeof(why));
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		struct config_list *l;

		if (config_keys[i].type != CONFIG_LIST)
			continue;
		l = (struct config_list *)((char *)c + config_keys[i].off);
		for (unsigned j = 0; j < l->n; j++)
			free(l->v[j]);
		l->n = 0;
	}
	for (unsigned j = 0; j < c->warnings.n; j++)
		free(c->warnings.v[j]);
	c->warnings.n = 0;
}

/* "FILE:LINE: key 'KEY': why"; a command-line where ("--KEY") already names
 * the key, so it is "--KEY: why" there. */
static int config_fail(char *err, size_t errlen, const char *where, const char *key,
		       const char *why, int rc)
{
	if (where && !strncmp(where, "--", 2))
		snprintf(err, errlen, "%s: %s", where, why);
	else if (where)
		snprintf(err, errlen, "%s: key '%s': %s", where, key, why);
	else
		snprintf(err, errlen, "key '%s': %s", key, why);
	return rc;
}

/* One warning per key, however often it appears. */
static void config_warn(struct config *c, const struct config_key *k, const char *where)
{
	char line[CONFIG_MAX_STR * 2], why[64];
	size_t n = strlen(k->name);

	for (unsigned i = 0; i < c->warnings.n; i++) {
		const char *q = strstr(c->warnings.v[i], "key '");
		if (q && !strncmp(q + 5, k->name, n) && q[5 + n] == '\'')
			return;
	}
	snprintf(line, sizeof(line), "%s%skey '%s' does not apply, ignored: %s",
		 where ? where : "", where ? ": " : "", k->name, k->help);
	config_list_add(&c->warnings, line, why, sizeof(why));
}

/* A user given again replaces the earlier line (as in coturn), saying so. */
static void config_user_replace(struct config *c, const char *where)
{
	struct config_list *l = &c->users;
	const char *last = l->v[l->n - 1];
	size_t n = strcspn(last, ":");
	char line[CONFIG_MAX_STR * 2], why[64];

	for (unsigned i = 0; i + 1 < l->n; i++) {
		if (strncmp(l->v[i], last, n + 1))
			continue;
		free(l->v[i]);
		memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
		l->n--;
		snprintf(line, sizeof(line), "%s%suser '%.*s' given again: this line replaces "
			 "the earlier one", where ? where : "", where ? ": " : "", (int)n, last);
		config_list_add(&c->warnings, line, why, sizeof(why));
		return;
	}
}

int config_set(struct config *c, const char *key, const char *value, const char *where,
	       char *err, size_t errlen)
{
	const struct config_key *k = config_find(key);
	char why[128];
	int rc;

	if (!k)
		return config_fail(err, errlen, where, key, "unknown key", -EINVAL);
	rc = config_apply(k, c, value, why, sizeof(why));
	if (rc)
		return config_fail(err, errlen, where, key, why, rc);
	if (k->type == CONFIG_IGNORED)
		config_warn(c, k, where);
	if (k->off == F(users) && k->type == CONFIG_LIST)
		config_user_replace(c, where);
	return 0;
}

/* Splits a line in place into key and value (NULL when bare). Returns false
 * for blank and comment lines. */
static bool config_split_line(char *line, char **key, char **value)
{
	bool quoted = false;
	char *p, *end;
	size_t n;

	/* '#' starts a comment at line start or after whitespace, outside quotes. */
	for (p = line; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted && (p == line || *(p - 1) == ' ' || *(p - 1) == '\t'))
			break;
	}
	*p = 0;
	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && strchr(" \t\r\n", end[-1]))
		*--end = 0;
	if (!*line)
		return false;
	*key = line;
	p = line + strcspn(line, " \t=");
	*value = NULL;
	if (!*p)
		return true;
	/* "key = value", "key=value", "key value" */
	end = p;
	p += strspn(p, " \t");
	if (*p == '=')
		p += 1 + strspn(p + 1, " \t");
	*end = 0;
	/* Trailing blanks are gone, so p is a value or "" after a bare '='. */
	n = strlen(p);
	if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
		p[n - 1] = 0;
		p++;
	}
	*value = p;
	return true;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *key, *value, where[CONFIG_MAX_STR + 16];
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		if (!config_split_line(line, &key, &value))
			continue;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (!*key) {
			snprintf(err, errlen, "%s: missing key before '='", where);
			rc = -EINVAL;
			break;
		}
		if ((rc = config_set(c, key, value, where, err, errlen)))
			break;
	}
	if (!rc && ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
	free(line);
	fclose(f);
	return rc;
}

/* One command-line option: argv[*i] (and maybe the next) into key/value.
 * 0, or -EINVAL with err set. */
static int config_next_arg(int argc, char **argv, int *i, char *key, size_t keylen,
			   const char **value, char *err, size_t errlen)
{
	const char *arg = argv[*i], *eq;
	const struct config_key *k;
	size_t n;

	*value = NULL;
	if (!strcmp(arg, "-h")) {
		snprintf(key, keylen, "help");
		return 0;
	}
	if (!strcmp(arg, "-v")) {	/* coturn's */
		snprintf(key, keylen, "verbose");
		return 0;
	}
	if (!strcmp(arg, "-c")) {
		snprintf(key, keylen, "config");
	} else if (!strncmp(arg, "--", 2) && arg[2]) {
		arg += 2;
		eq = strchr(arg, '=');
		n = eq ? (size_t)(eq - arg) : strlen(arg);
		if (n >= keylen) {
			snprintf(err, errlen, "--%s: unknown key", arg);
			return -EINVAL;
		}
		memcpy(key, arg, n);
		key[n] = 0;
		if (eq) {
			*value = eq + 1;
			return 0;
		}
		if (!strcmp(key, "help") || !strcmp(key, "demo") || !strcmp(key, "version") ||
		    !strcmp(key, "check-config") || !strcmp(key, "help-man"))
			return 0;
		if (strcmp(key, "config")) {
			if (!(k = config_find(key))) {
				snprintf(err, errlen, "--%s: unknown key", key);
				return -EINVAL;
			}
			if (config_is_flag(k))
				return 0;
		}
	} else {
		snprintf(err, errlen, "unexpected argument '%s'", arg);
		return -EINVAL;
	}
	if (*i + 1 >= argc) {
		snprintf(err, errlen, "%s: needs a value", argv[*i]);
		return -EINVAL;
	}
	*value = argv[++*i];
	return 0;
}

int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	char key[64], where[80];
	const char *value;
	int rc;

	/* Pass 1: help and config files; pass 2: every other key overrides them. */
	for (int pass = 1; pass <= 2; pass++) {
		for (int i = 1; i < argc; i++) {
			if ((rc = config_next_arg(argc, argv, &i, key, sizeof(key), &value,
						  err, errlen)))
				return rc;
			snprintf(where, sizeof(where), "--%s", key);
			if (!strcmp(key, "help")) {
				config_usage(stdout);
				return 1;
			} else if (!strcmp(key, "version")) {
				printf("xturnd %s\n", xt_version());
				return 1;
			} else if (!strcmp(key, "help-man")) {
				config_man(stdout);
				return 1;
			} else if (!strcmp(key, "config")) {
				if (pass == 2)
					continue;
				if (strlen(value) >= sizeof(c->config_path))
					return config_fail(err, errlen, where, key, "path too long",
							   -ENAMETOOLONG);
				strcpy(c->config_path, value);
				if ((rc = config_load_file(c, value, err, errlen)))
					return rc;
			} else if (pass == 1) {
				continue;
			} else if (!strcmp(key, "demo")) {
				/* Command line only: a config file cannot turn it on. */
				if (value)
					return config_fail(err, errlen, where, key,
							   "takes no value", -EINVAL);
				c->demo = true;
			} else if (!strcmp(key, "check-config")) {
				if (value)
					return config_fail(err, errlen, where, key,
							   "takes no value", -EINVAL);
				c->check_only = true;
			} else if ((rc = config_set(c, key, value, where, err, errlen))) {
				return rc;
			}
		}
	}
	return 0;
}

void config_advertised(const struct config *cfg, const struct sockaddr_storage *local,
		       struct sockaddr_storage *adv)
{
	*adv = *local;
	for (unsigned i = 0; i < cfg->next; i++) {
		const struct sockaddr_storage *priv = &cfg->ext_private[i];
		const struct sockaddr_storage *pub = &cfg->ext_public[i];
		if (pub->ss_family != local->ss_family)
			continue;
		if (priv->ss_family == AF_UNSPEC || addr_ip_eq(priv, local)) {
			*adv = *pub;
			addr_set_port(adv, addr_port(local));
			return;
		}
	}
}

/* Two relay addresses told to clients as one (external-ip): their
 * allocations' relayed addresses would clash. The first such pair, or -1. */
static int advertised_clash(const struct config *c, unsigned *j)
{
	struct sockaddr_storage a, b;

	for (unsigned i = 0; i < c->nrelay; i++)
		for (*j = i + 1; *j < c->nrelay; (*j)++) {
			config_advertised(c, &c->relay[i], &a);
			config_advertised(c, &c->relay[*j], &b);
			if (addr_ip_eq(&a, &b))
				return (int)i;
		}
	return -1;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	char a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];
	unsigned j;
	int i;

	if (c->min_port > c->max_port)
		snprintf(err, errlen, "min-port %u is above max-port %u", c->min_port, c->max_port);
	else if (c->default_lifetime > c->max_lifetime)
		snprintf(err, errlen, "default-allocate-lifetime %u is above "
			 "max-allocate-lifetime %u", c->default_lifetime, c->max_lifetime);
	else if (c->use_auth_secret && !c->secrets.n)
		snprintf(err, errlen, "use-auth-secret needs a static-auth-secret");
	else if (!c->cert[0] != !c->pkey[0])
		snprintf(err, errlen, "%s is set but not %s: TLS needs both", c->cert[0] ? "cert" :
			 "pkey", c->cert[0] ? "pkey" : "cert");
	else if (c->no_udp && c->no_tcp && (c->no_tls || !c->cert[0]))
		snprintf(err, errlen, "no-udp, no-tcp and %s: nothing to listen on",
			 c->no_tls ? "no-tls" : "no cert");
	else if (!c->users.n && !c->secrets.n)
		snprintf(err, errlen, "no credentials: set user=NAME:PASSWORD or "
			 "use-auth-secret with static-auth-secret");
	else if ((i = advertised_clash(c, &j)) >= 0)
		snprintf(err, errlen, "relay-ip %s and %s would both be told to clients as one "
			 "external-ip address: give each its own (external-ip = PUBLIC/PRIVATE)",
			 addr_str(&c->relay[i], false, a, sizeof(a)),
			 addr_str(&c->relay[j], false, b, sizeof(b)));
	else
		return 0;
	return -EINVAL;
}

const char *config_key(unsigned i)
{
	return i < CONFIG_NKEYS ? config_keys[i].name : NULL;
}

void config_usage(FILE *f)
{
	fprintf(f, "Usage: xturnd [-c FILE] [--demo] [--check-config] [--KEY[=VALUE]]...\n"
		"Every KEY is also a config file line \"KEY = VALUE\" (coturn syntax).\n\n"
		"  -c, --config=FILE\n\tread FILE first; command-line keys override it\n"
		"  --demo\n\trun with a demo user and print how to connect\n"
		"  --check-config\n\tload and check the configuration: exit 0 (good) or 2 (bad,\n"
		"\tsaying why) without binding anything\n"
		"  -v\n\tsame as --verbose\n"
		"  -h, --help\n\tthis text\n"
		"  --version\n\tthe version, and exit\n"
		"  --help-man\n\tthe keys below as man(7) source (how xturn.conf(5) is made)\n");
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CONFIG_NOOP || k->type == CONFIG_IGNORED)
			continue;
		fprintf(f, "  --%s%s%s\n\t%s", k->name, k->arg ? "=" : "",
			k->arg ? k->arg : "", k->help);
		if (k->def)
			fprintf(f, " (default %s)", k->def);
		if (k->coturn)
			fprintf(f, "\n\tnot as in coturn: %s", k->coturn);
		fputc('\n', f);
	}
	for (int pass = 0; pass < 2; pass++) {
		enum config_type t = pass ? CONFIG_IGNORED : CONFIG_NOOP;

		fprintf(f, "\n%s\n", pass ? "coturn keys that do not apply (accepted, each with a "
					     "warning saying why):"
					  : "coturn keys for what xturn always does (accepted, no effect):");
		for (size_t i = 0; i < CONFIG_NKEYS; i++)
			if (config_keys[i].type == t)
				fprintf(f, "  --%s\n\t%s\n", config_keys[i].name, config_keys[i].help);
	}
}

/* Text for a man(7) line: backslashes escaped, a leading '.' or '\'' kept
 * from reading as a request. */
static void man_text(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++)
		if (*s == '\\')
			fputs("\\e", f);
		else
			fputc(*s, f);
}

void config_man(FILE *f)
{
	fputs(".SH KEYS\n", f);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CONFIG_NOOP || k->type == CONFIG_IGNORED)
			continue;
		fprintf(f, ".TP\n\\fB%s\\fR", k->name);
		if (k->arg) {
			fputs(" = \\fI", f);
			man_text(f, k->arg);
			fputs("\\fR", f);
		}
		fputs("\n", f);
		man_text(f, k->help);
		fputs(".", f);
		if (k->def) {
			fputs(" Default: ", f);
			man_text(f, k->def);
			fputs(".", f);
		}
		fputs("\n", f);
		if (k->coturn) {
			fputs(".IP\nNot as in coturn: ", f);
			man_text(f, k->coturn);
			fputs(".\n", f);
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		enum config_type t = pass ? CONFIG_IGNORED : CONFIG_NOOP;

		fputs(pass ? ".SS Keys of coturn that do not apply\n"
			     "Accepted so that a coturn configuration loads; each is warned "
			     "about once, naming its line, and has no effect.\n"
			   : ".SS Keys of coturn for what xturnd always does\n"
			     "Accepted with no effect and no warning.\n", f);
		for (size_t i = 0; i < CONFIG_NKEYS; i++) {
			if (config_keys[i].type != t)
				continue;
			fprintf(f, ".TP\n.B %s\n", config_keys[i].name);
			man_text(f, config_keys[i].help);
			fputs(".\n", f);
		}
	}
}
