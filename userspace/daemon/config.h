/* Configuration: a turnserver.conf-style file (coturn's key names where the
 * meaning is the same) and the same keys as --key[=value] flags. Table-driven:
 * every key has one entry in config.c saying its type, default and bounds. */
#ifndef XT_CONFIG_H
#define XT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONFIG_MAX_ADDRS 16
#define CONFIG_MAX_LIST 256
#define CONFIG_MAX_STR 256

struct config_list {
	unsigned n;
	char *v[CONFIG_MAX_LIST];	/* owned, strdup'd */
};

struct config {
	/* network */
	struct sockaddr_storage listen[CONFIG_MAX_ADDRS];	/* listening-ip (port 0) */
	unsigned nlisten;
	uint16_t listen_port;					/* listening-port, 3478 (UDP and TCP) */
	/* TURN over TCP and TLS (the relayed transport stays UDP) */
	bool no_tcp;						/* no-tcp */
	bool no_tls;						/* no-tls */
	bool no_udp;						/* no-udp: no UDP listener */
	uint16_t tls_port;					/* tls-listening-port, 5349 */
	char cert[CONFIG_MAX_STR];				/* cert: PEM chain */
	char pkey[CONFIG_MAX_STR];				/* pkey: PEM key */
	char cipher_list[CONFIG_MAX_STR];			/* cipher-list (TLS 1.2) */
	char pkey_pwd[CONFIG_MAX_STR];				/* pkey-pwd */
	bool no_tlsv1_2;					/* no-tlsv1_2: TLS 1.3 only */
	unsigned max_tcp_conns;					/* max-tcp-connections per thread */
	unsigned tcp_pending_per_ip;			/* max-tcp-pending-per-ip, 32 */
	unsigned tcp_idle_timeout;				/* tcp-idle-timeout, 30 s */
	unsigned tls_handshake_timeout;				/* tls-handshake-timeout, 10 s */
	struct sockaddr_storage relay[CONFIG_MAX_ADDRS];	/* relay-ip */
	unsigned nrelay;
	/* external-ip: "public" or "public/private"; public is advertised in
	 * XOR-RELAYED-ADDRESS for relays on private (or on any, if alone). */
	struct sockaddr_storage ext_public[CONFIG_MAX_ADDRS];
	struct sockaddr_storage ext_private[CONFIG_MAX_ADDRS];	/* AF_UNSPEC: any */
	unsigned next;
	uint16_t min_port, max_port;			/* 49152..65535 */
	/* auth */
	char realm[CONFIG_MAX_STR];			/* realm, "xturn" */
	char software[CONFIG_MAX_STR];			/* software-name, "" */
	bool no_software;				/* no-software-attribute */
	struct config_list users;			/* user=name:password */
	bool use_auth_secret;				/* use-auth-secret */
	struct config_list secrets;			/* static-auth-secret */
	unsigned stale_nonce;				/* stale-nonce, 600 s */
	unsigned unauth_rate;				/* unauth-rate-limit, 50/s */
	unsigned unauth_burst;				/* unauth-rate-burst, 200 */
	/* policy */
	struct config_list allowed_peers;		/* allowed-peer-ip */
	struct config_list denied_peers;		/* denied-peer-ip */
	bool allow_special_peers;			/* allow-special-peers: no default deny */
	bool allow_loopback_peers;			/* allow-loopback-peers */
	/* quotas and lifetimes */
	unsigned user_quota;				/* user-quota, 0 = unlimited */
	unsigned total_quota;				/* total-quota, 0 = unlimited */
	unsigned max_perms;				/* max-permissions per allocation, 64 */
	unsigned max_channels;				/* max-channels per allocation, 64 */
	unsigned max_lifetime;				/* max-allocate-lifetime, 3600 s */
	unsigned default_lifetime;			/* default-allocate-lifetime, 600 s */
	unsigned permission_lifetime;			/* permission-lifetime, 300 s */
	unsigned channel_lifetime;			/* channel-lifetime, 600 s */
	/* fast path */
	bool no_xdp;					/* no-xdp */
	char xdp_mode[16];				/* xdp-mode: auto|native|generic|tc */
	char pin_dir[CONFIG_MAX_STR];			/* bpf-pin-dir, /sys/fs/bpf/xturn */
	bool keep_pins;					/* keep-pins */
	struct config_list xdp_ifaces;			/* xdp-interface: extra/explicit */
	char xdp_lookup_dev[CONFIG_MAX_STR];		/* xdp-lookup-device, xturn0 */
	bool xdp_verify_csum;				/* xdp-verify-checksum, no */
	unsigned xdp_max_bindings;			/* xdp-max-bindings, 65536 */
	unsigned xdp_max_allocs;			/* xdp-max-allocations, 65536 */
	unsigned xdp_max_perms;				/* xdp-max-permissions, 262144 */
	/* operations */
	int log_level;					/* log-level: error|warn|info|debug */
	bool syslog;					/* syslog: logs to syslog(3) */
	char log_file[CONFIG_MAX_STR];			/* log-file (stdout, syslog or a path) */
	char pidfile[CONFIG_MAX_STR];			/* pidfile */
	char accounting_log[CONFIG_MAX_STR];		/* accounting-log: JSON lines */
	struct config_list alternates;			/* alternate-server IP:PORT */
	struct config_list tls_alternates;		/* tls-alternate-server IP:PORT */
	bool prometheus;				/* prometheus */
	uint16_t prometheus_port;			/* prometheus-port, 9641 */
	char prometheus_ip[64];				/* prometheus-ip, 127.0.0.1 */
	char stats_socket[108];				/* stats-socket (sun_path size) */
	char control_socket[108];			/* control-socket, for xturnctl */
	unsigned drain_timeout;				/* drain-timeout, 3600 s */
	char journal_dir[CONFIG_MAX_STR];		/* journal-dir, /run/xturn */
	bool no_journal;				/* no-journal */
	unsigned workers;				/* relay-threads, 0 = one per CPU */
	char config_path[CONFIG_MAX_STR];		/* -c / --config */
	bool demo;					/* --demo (command line only) */
	bool check_only;				/* --check-config (command line only) */
	char web_ip[64];				/* web-ip, 127.0.0.1 */
	uint16_t web_port;				/* web-port, 0: no check page */
	/* Not a key: the browser check's REST secret, drawn at start. */
	char check_secret[65];
	/* Keys accepted but not applied (coturn's that do not apply here), one
	 * line each: "WHERE: key 'KEY' does not apply: WHY". */
	struct config_list warnings;

};

/* Fills the defaults. */
void config_init(struct config *c);
void config_free(struct config *c);
/* Applies one key. where ("file:line" or "--flag") prefixes the error text. */
int config_set(struct config *c, const char *key, const char *value, const char *where,
	       char *err, size_t errlen);
/* Reads a file: "key = value", "key value", "key" (flags), '#' comments.
 * 0, or -errno with err naming file, line and key. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);
/* Parses argv: --key=value, --key value, --flag, -c FILE (file read first,
 * flags override it), -h. 0, 1 if help was printed, or -errno with err set. */
int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen);
/* Cross-key checks after loading (min-port <= max-port, a secret when
 * use-auth-secret, ...). 0 or -EINVAL with err set. */
int config_validate(const struct config *c, char *err, size_t errlen);
/* external-ip: the address clients are told for a local relay address
 * ("public" alone maps every relay of its family, "public/private" one). */
void config_advertised(const struct config *cfg, const struct sockaddr_storage *local,
		       struct sockaddr_storage *adv);
void config_usage(FILE *f);
/* The KEYS section of xturn.conf(5) (man(7) source): the same table. */
void config_man(FILE *f);
/* The i-th key of the table (what usage, files and flags know), NULL past
 * the last. */
const char *config_key(unsigned i);

#endif
