/* xturnd: the TURN server daemon. Reads the configuration, builds the
 * credentials and the peer policy, loads the XDP fast path (or says why not)
 * and runs the event loop until SIGTERM/SIGINT. */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "common/addr.h"
#include "common/log.h"
#include "turn/auth.h"
#include "turn/policy.h"
#include "daemon/config.h"
#include "daemon/fastpath.h"
#include "daemon/handover.h"
#include "daemon/server.h"
#include "daemon/stream.h"
#include "daemon/udp.h"

static struct config cfg;
static int g_argc;
static char **g_argv;

/* Credentials and policy from a configuration: at start and on SIGHUP. */
/* One nonce key for the daemon's life: every worker and every reload shares
 * it (auth_set_nonce_key). */
static uint8_t nonce_key[AUTH_NONCE_KEY_LEN];

/* coturn's user=NAME:0xKEY: "0x" and 32 hex digits, the MD5 key. */
static bool parse_hex_key(const char *s, uint8_t key[16])
{
	if (strncmp(s, "0x", 2) || strlen(s) != 34 || strspn(s + 2, "0123456789abcdefABCDEF") != 32)
		return false;
	for (unsigned i = 0; i < 16; i++)
		sscanf(s + 2 + 2 * i, "%2hhx", &key[i]);
	return true;
}

static int build_auth(const struct config *c, struct auth **auth, struct policy **pol)
{
	struct auth *a = auth_new(c->realm, c->stale_nonce);
	struct policy *p = policy_new();
	int err = (!a || !p) ? -ENOMEM : 0;

	if (a)
		auth_set_nonce_key(a, nonce_key);
	/* The browser check's REST secret: drawn at start, known to no one
	 * else; what it signs may reach only our own relays (turn.c). */
	if (a && c->check_secret[0] && auth_set_check_secret(a, c->check_secret))
		err = -ENOMEM;

	for (unsigned i = 0; !err && i < c->users.n; i++) {
		char *colon = strchr(c->users.v[i], ':');
		char name[STUN_MAX_USERNAME];
		size_t nl = colon ? (size_t)(colon - c->users.v[i]) : 0;
		if (!colon || nl >= sizeof(name)) {
			err = -EINVAL;
			break;
		}
		uint8_t key[16];
		memcpy(name, c->users.v[i], nl);
		name[nl] = 0;
		err = parse_hex_key(colon + 1, key) ? auth_add_user_key(a, name, key)
						   : auth_add_user(a, name, colon + 1);
	}
	for (unsigned i = 0; !err && c->use_auth_secret && i < c->secrets.n; i++)
		err = auth_add_secret(a, c->secrets.v[i]);
	for (unsigned i = 0; !err && i < c->allowed_peers.n; i++)
		err = policy_allow(p, c->allowed_peers.v[i]);
	for (unsigned i = 0; !err && i < c->denied_peers.n; i++)
		err = policy_deny(p, c->denied_peers.v[i]);
	if (!err && c->allow_loopback_peers)
		err = policy_allow(p, "127.0.0.0/8") ?: policy_allow(p, "::1");
	if (!err)
		policy_set_default_deny(p, !c->allow_special_peers);
	if (err) {
		auth_free(a);
		policy_free(p);
		return err;
	}
	*auth = a;
	*pol = p;
	return 0;
}

#define SWAP(a, b) do { __typeof__(a) t_ = (a); (a) = (b); (b) = t_; } while (0)

/* SIGHUP: re-reads the file and flags, and takes over what can change at
 * run time (credentials, peer policy, the TLS certificate's files; addresses
 * and ports need a restart). A configuration that does not load changes
 * nothing. */
static int reread_config(void)
{
	struct config nc;
	char err[512];
	int rc;

	if (cfg.demo) {
		log_err("reload refused: the demo's credentials exist only in this process");
		return -EINVAL;
	}
	config_init(&nc);
	rc = config_parse_args(&nc, g_argc, g_argv, err, sizeof(err));
	if (!rc)
		rc = config_validate(&nc, err, sizeof(err));
	if (rc) {
		log_err("reload refused, keeping the running configuration: %s", err);
		config_free(&nc);
		return rc;
	}
	memcpy(cfg.realm, nc.realm, sizeof(cfg.realm));
	/* TLS stays on or off as started; its files may move or be renewed. */
	memcpy(cfg.cert, nc.cert, sizeof(cfg.cert));
	memcpy(cfg.pkey, nc.pkey, sizeof(cfg.pkey));
	memcpy(cfg.cipher_list, nc.cipher_list, sizeof(cfg.cipher_list));
	cfg.use_auth_secret = nc.use_auth_secret;
	cfg.stale_nonce = nc.stale_nonce;
	cfg.allow_special_peers = nc.allow_special_peers;
	cfg.allow_loopback_peers = nc.allow_loopback_peers;
	for (unsigned i = 0; i < nc.warnings.n; i++)
		log_warn("%s", nc.warnings.v[i]);
	SWAP(cfg.users, nc.users);
	SWAP(cfg.secrets, nc.secrets);
	SWAP(cfg.allowed_peers, nc.allowed_peers);
	SWAP(cfg.denied_peers, nc.denied_peers);
	config_free(&nc);	/* the old lists */
	return 0;
}

static int reload(bool reread, struct auth **auth, struct policy **pol)
{
	int rc = reread ? reread_config() : 0;

	if (!rc && (rc = build_auth(&cfg, auth, pol)))
		log_err("credentials/policy: %s", strerror(-rc));
	return rc;
}

/* With no relay-ip: relay on the listening addresses if they are specific,
 * else on the host's first global IPv4 and IPv6 addresses (loopback as a
 * last resort, so a laptop demo still works). */
static void pick_relays(struct config *c)
{
	struct ifaddrs *ifa, *i;
	struct sockaddr_storage lo;
	bool have4 = false, have6 = false;

	for (unsigned k = 0; k < c->nlisten && c->nrelay < CONFIG_MAX_ADDRS; k++)
		if (!addr_is_any(&c->listen[k]))
			c->relay[c->nrelay++] = c->listen[k];
	if (c->nrelay || getifaddrs(&ifa))
		goto fallback;
	for (i = ifa; i; i = i->ifa_next) {
		struct sockaddr_storage a;
		if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		if (i->ifa_addr->sa_family == AF_INET && !have4) {
			memset(&a, 0, sizeof(a));
			memcpy(&a, i->ifa_addr, sizeof(struct sockaddr_in));
			c->relay[c->nrelay++] = a;
			have4 = true;
		} else if (i->ifa_addr->sa_family == AF_INET6 && !have6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)i->ifa_addr;
			if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
				continue;
			memset(&a, 0, sizeof(a));
			memcpy(&a, s6, sizeof(*s6));
			c->relay[c->nrelay++] = a;
			have6 = true;
		}
	}
	freeifaddrs(ifa);
fallback:
	if (!c->nrelay) {
		addr_parse("127.0.0.1", 0, &lo);
		c->relay[c->nrelay++] = lo;
	}
}

/* --demo: a REST secret made up now (into the configuration, before the
 * credentials are built), and, once every listener is bound, what to paste
 * into a WebRTC app. */
static char demo_secret[33];

static int demo_setup(struct config *c)
{
	uint8_t rnd[16];
	char err[256];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	for (unsigned i = 0; i < sizeof(rnd); i++)
		snprintf(demo_secret + 2 * i, 3, "%02x", rnd[i]);
	if (config_set(c, "use-auth-secret", NULL, "--demo", err, sizeof(err)) ||
	    config_set(c, "static-auth-secret", demo_secret, "--demo", err, sizeof(err)))
		return -EINVAL;
	return 0;
}

static int demo_banner(const struct config *c)
{
	char user[64], pass[64], ip[ADDR_STRLEN];
	time_t expiry = time(NULL) + 24 * 3600;

	snprintf(user, sizeof(user), "%ld:demo", (long)expiry);
	if (stun_rest_password(demo_secret, user, pass, sizeof(pass)))
		return -EINVAL;
	addr_str(&c->relay[0], false, ip, sizeof(ip));
	printf("\nxturn demo: TURN over UDP on port %u, realm \"%s\"\n", c->listen_port, c->realm);
	printf("REST shared secret (use-auth-secret): %s\n", demo_secret);
	printf("Credentials valid for 24 h. In your WebRTC app:\n\n");
	printf("  const pc = new RTCPeerConnection({ iceServers: [{\n"
	       "    urls: \"turn:%s%s%s:%u?transport=udp\",\n"
	       "    username: \"%s\",\n"
	       "    credential: \"%s\"\n"
	       "  }], iceTransportPolicy: \"relay\" });\n\n",
	       c->relay[0].ss_family == AF_INET6 ? "[" : "", ip,
	       c->relay[0].ss_family == AF_INET6 ? "]" : "", c->listen_port, user, pass);
	printf("Mint more: user=\"$(( $(date +%%s) + 86400 )):alice\"; "
	       "echo -n \"$user\" | openssl dgst -sha1 -hmac %s -binary | base64\n", demo_secret);
	if (c->web_port)
		printf("Check it from a browser: http://%s:%u/ (relay candidates, a relayed call)\n",
		       c->web_ip, c->web_port);
	printf("Firewall: open %u/udp and %u/tcp, and the relay ports %u-%u/udp.\n",
	       c->listen_port, c->listen_port, c->min_port, c->max_port);
	printf("Peers on private/loopback addresses are refused by default "
	       "(allowed-peer-ip to open them). Counters: build/xturnstat. Ctrl-C stops.\n\n");
	fflush(stdout);
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f);
}

int main(int argc, char **argv)
{
	/* Before anything opens a file: the sockets a restarting daemon passed. */
	struct handover *h = handover_take();
	uint8_t rnd[32];
	char self[4096];
	ssize_t selflen;
	struct auth *auth = NULL;
	struct policy *pol = NULL;
	struct fastpath *fp = NULL;
	struct server *srv = NULL;
	char err[512];
	int rc;

	g_argc = argc;
	g_argv = argv;
	/* The binary as started: a planned restart execs what is at this
	 * path then (make install may have put a new version there). */
	selflen = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[selflen > 0 ? selflen : 0] = 0;
	if (selflen > 10 && !strcmp(self + selflen - 10, " (deleted)"))
		self[selflen - 10] = 0;
	log_init();
	config_init(&cfg);
	rc = config_parse_args(&cfg, argc, argv, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc) {
		fprintf(stderr, "xturnd: %s\n", err);
		return 2;
	}
	log_level = cfg.log_level;
	if (!cfg.check_only && (rc = log_open(cfg.syslog ? "syslog" : cfg.log_file))) {
		fprintf(stderr, "xturnd: log-file %s: %s\n", cfg.log_file, strerror(-rc));
		return 2;
	}
	for (unsigned i = 0; i < cfg.warnings.n; i++) {
		if (cfg.check_only)
			fprintf(stderr, "xturnd: warning: %s\n", cfg.warnings.v[i]);
		else
			log_warn("%s", cfg.warnings.v[i]);
	}
	fp_route_logs();
	if (RAND_bytes(nonce_key, sizeof(nonce_key)) != 1 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		fprintf(stderr, "xturnd: no random bytes for the nonce key\n");
		return 1;
	}
	for (unsigned i = 0; i < sizeof(rnd); i++)
		snprintf(cfg.check_secret + 2 * i, 3, "%02x", rnd[i]);
	if (!cfg.nrelay)
		pick_relays(&cfg);
	if (cfg.demo && demo_setup(&cfg)) {
		fprintf(stderr, "xturnd: demo setup failed\n");
		return 1;
	}
	rc = config_validate(&cfg, err, sizeof(err));
	if (!rc && (rc = build_auth(&cfg, &auth, &pol)))
		snprintf(err, sizeof(err), "credentials/policy: %s", strerror(-rc));
	if (rc) {
		fprintf(stderr, "xturnd: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (cfg.check_only) {	/* like nginx -t: files read, nothing bound or attached */
		SSL_CTX *tls = NULL;

		if (cfg.cert[0] && !cfg.no_tls &&
		    stream_tls_new(&tls, &cfg, err, sizeof(err))) {
			fprintf(stderr, "xturnd: %s\n", err);
			auth_free(auth);
			policy_free(pol);
			config_free(&cfg);
			return 2;
		}
		SSL_CTX_free(tls);
		printf("xturnd: configuration %s is good\n",
		       cfg.config_path[0] ? cfg.config_path : "(command line)");
		auth_free(auth);
		policy_free(pol);
		config_free(&cfg);
		return 0;
	}

	/* In a handover the ports are ours already: the old daemon passed them. */
	if (!h && server_check_ports(&cfg, err, sizeof(err))) {
		log_err("%s", err);
		config_free(&cfg);
		return 1;
	}
	if (cfg.no_xdp) {
		log_info("fast path: off (no-xdp): relaying in userspace");
		/* A stale program would go on forwarding old bindings and
		 * dropping peers' traffic to relay ports this daemon reuses. */
		err[0] = 0;
		if (fp_clear_stale(cfg.pin_dir, cfg.xdp_lookup_dev, err, sizeof(err)))
			log_warn("fast path: %s", err);
	} else {
		struct sockaddr_storage addrs[CONFIG_MAX_ADDRS * 2];
		unsigned n = 0;
		struct fp_opts o = {
			.pin_dir = cfg.pin_dir,
			.mode = cfg.xdp_mode,
			.keep_pins = cfg.keep_pins,
			.verify_csum = cfg.xdp_verify_csum,
			.max_bindings = cfg.xdp_max_bindings,
			.max_relays = cfg.xdp_max_allocs,
			.max_perms = cfg.xdp_max_perms,
			.lookup_dev = cfg.xdp_lookup_dev,
			.addrs = addrs,
			.ifaces = cfg.xdp_ifaces.v,
			.nifaces = cfg.xdp_ifaces.n,
			.lock_fd = handover_lock(h),
		};
		struct sockaddr_storage any;
		addr_parse("0.0.0.0", 0, &any);
		for (unsigned i = 0; i < cfg.nlisten; i++)
			addrs[n++] = cfg.listen[i];
		if (!cfg.nlisten)
			addrs[n++] = any;
		for (unsigned i = 0; i < cfg.nrelay; i++)
			addrs[n++] = cfg.relay[i];
		o.naddrs = n;
		err[0] = 0;
		rc = fp_open(&fp, &o, err, sizeof(err));
		if (rc) {
			log_warn("fast path: off, relaying in userspace: %s", err);
			fp = NULL;
		} else {
			log_info("fast path: on, maps pinned in %s", cfg.pin_dir);
			if (fp_has_tc(fp)) {
				udp_gro_enable(false);
				log_info("fast path: UDP GRO off on our sockets (the TC program "
					 "cannot rewrite a GRO train)");
			}
			if (err[0])	/* a note worth an operator's eye */
				log_warn("fast path: %s", err);
		}
	}

	rc = server_new(&srv, &cfg, auth, pol, fp, h, reload, err, sizeof(err));
	if (rc) {
		log_err("%s", err);
		fp_close(fp);
		config_free(&cfg);
		return 1;
	}
	server_set_exec(srv, self, argv);
	/* The relay threads have re-added what their journals hold; what an
	 * earlier daemon left in the maps beyond that goes. */
	if (fp && (rc = (int)fp_sweep(fp)))
		log_info("fast path: removed %d map entries no allocation of ours has", rc);
	for (unsigned i = 0; i < cfg.nrelay; i++) {
		char b[ADDR_STRLEN];
		log_info("relaying on %s ports %u-%u", addr_str(&cfg.relay[i], false, b, sizeof(b)),
			 cfg.min_port, cfg.max_port);
	}
	if (cfg.pidfile[0] && write_pidfile(cfg.pidfile))
		log_warn("pidfile %s: %s", cfg.pidfile, strerror(errno));
	/* Printed once the listeners are bound: "Ctrl-C stops" means it answers. */
	if (cfg.demo && demo_banner(&cfg))
		log_warn("demo: could not print the credentials");
	rc = server_run(srv);
	server_free(srv);	/* allocations go first: their map entries with them */
	handover_free(h);
	if (cfg.pidfile[0])
		unlink(cfg.pidfile);
	fp_close(fp);
	config_free(&cfg);
	return rc ? 1 : 0;
}
