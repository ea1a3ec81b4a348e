#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/sock.h"
#include "turn/auth.h"
#include "turn/hostaddr.h"
#include "turn/policy.h"
#include "turn/turn.h"
#include "daemon/acct.h"
#include "daemon/admin.h"
#include "daemon/control.h"
#include "daemon/handover.h"
#include "daemon/evloop.h"
#include "daemon/hostwatch.h"
#include "daemon/offload.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/stats.h"
#include "daemon/stream.h"
#include "daemon/udp.h"
#include "daemon/web.h"
#include "daemon/worker.h"

#define MAX_WORKERS 64
#define STATUS_S 10

struct server {
	const struct config *cfg;
	struct worker_env env;		/* what the workers share */
	struct sockaddr_storage alternates[CONFIG_MAX_LIST], tls_alternates[CONFIG_MAX_LIST];
	struct hostwatch *hosts;	/* keeps env.host equal to this host's addresses */
	struct worker *workers[MAX_WORKERS];
	unsigned nworkers;
	/* the main thread's loop: signals, netlink, metrics */
	struct ev_loop *loop;
	struct ev_src sig, netlink, metrics_src, hostaddr_src, status_timer, control_src,
		drain_timer;
	bool running;
	struct stats *metrics;
	struct web *web;		/* the check page (web-port), or NULL */
	struct control *control;
	server_reload_fn reload;
	/* A drain: since when, until when, and whether its timeout has ended
	 * what was left. */
	bool draining, drain_ended;
	time_t drain_start, drain_deadline;
	time_t start_wall;		/* process_start_time_seconds */
	/* A planned restart: asked for (SIGUSR2, xturnctl restart; run after
	 * the batch that asked), and what it execs. */
	bool handover_pending;
	char exec_path[4096];
	char *const *exec_argv;
};

static void collect(void *ctx, struct metrics_snapshot *m)
{
	struct server *srv = ctx;
	struct turn_server *turns[MAX_WORKERS];

	/* Every worker is held between two batches while its state is read. */
	for (unsigned i = 0; i < srv->nworkers; i++) {
		worker_lock(srv->workers[i]);
		turns[i] = worker_turn(srv->workers[i]);
	}
	stats_collect(m, turns, srv->nworkers);
	offload_snapshot(srv->env.offload, m);
	m->start_time = (uint64_t)srv->start_wall;
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_add_counts(srv->workers[i], m);
	for (unsigned i = srv->nworkers; i-- > 0;)
		worker_unlock(srv->workers[i]);
}

static unsigned worker_count(const struct config *cfg)
{
	unsigned n = cfg->workers ? cfg->workers : (unsigned)get_nprocs();

	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
}

/* Binds port/type on ip alone (no SO_REUSEPORT, which would let us join
 * another process's listeners): -EADDRINUSE if someone holds it. */
static int probe_port(const struct sockaddr_storage *ip, uint16_t port, int type)
{
	struct sockaddr_storage a = *ip;
	int one = 1, rc = 0;
	int fd = socket(a.ss_family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;	/* no such family here: open_listeners says so */
	addr_set_port(&a, port);
	if (type == SOCK_STREAM)	/* TIME_WAIT of our own last run is no owner */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)) && errno == EADDRINUSE)
		rc = -EADDRINUSE;
	close(fd);
	return rc;
}

int server_check_ports(const struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ips[CONFIG_MAX_ADDRS];
	unsigned n = cfg->nlisten;
	char buf[ADDR_STRLEN];

	memcpy(ips, cfg->listen, n * sizeof(ips[0]));
	if (!n) {
		addr_parse("0.0.0.0", 0, &ips[n++]);
		addr_parse("::", 0, &ips[n++]);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct { uint16_t port; int type; const char *name; bool on; } l[] = {
			{ cfg->listen_port, SOCK_DGRAM, "udp", !cfg->no_udp },
			{ cfg->listen_port, SOCK_STREAM, "tcp", !cfg->no_tcp },
			{ cfg->tls_port, SOCK_STREAM, "tls", cfg->cert[0] && !cfg->no_tls },
		};
		for (unsigned k = 0; k < sizeof(l) / sizeof(l[0]); k++) {
			if (!l[k].on || !probe_port(&ips[i], l[k].port, l[k].type))
				continue;
			addr_set_port(&ips[i], l[k].port);
			snprintf(err, errlen, "%s/%s is in use by another process (another xturnd, "
				 "or a TURN server such as coturn's service?)",
				 addr_str(&ips[i], true, buf, sizeof(buf)), l[k].name);
			return -EADDRINUSE;
		}
	}
	return 0;
}

static void on_hostaddr(struct ev_src *s, uint32_t events)
{
	(void)events;
	hostwatch_event(((struct server *)s->data)->hosts);
}

/* systemctl status: what runs, every STATUS_S seconds. */
static void report_status(struct server *srv)
{
	struct metrics_snapshot m = { 0 };

	collect(srv, &m);
	service_status("%llu allocations, %llu channels (%llu in XDP); fast path %s",
		       (unsigned long long)m.allocations, (unsigned long long)m.channels,
		       (unsigned long long)m.channels_in_kernel, m.fastpath ? "XDP" : "off");
}

static void on_status_timer(struct ev_src *s, uint32_t events)
{
	uint64_t ticks;

	(void)events;
	if (read(s->fd, &ticks, sizeof(ticks)) > 0)
		report_status(s->data);
}

/* Renewed certificates (certbot's deploy hook reloads): new connections get
 * them; a file that does not load keeps the running ones. */
static void reload_tls(struct server *srv)
{
	const struct config *c = srv->cfg;
	SSL_CTX *tls;
	char err[512];

	if (stream_tls_new(&tls, c, err, sizeof(err))) {
		log_err("TLS: keeping the running certificate: %s", err);
		return;
	}
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_replace_tls(srv->workers[i], tls);
	SSL_CTX_free(srv->env.tls);
	srv->env.tls = tls;
	log_info("TLS: reloaded %s", c->cert);
}

static void reload_all(struct server *srv)
{
	int rc;

	service_reloading();
	if ((rc = log_reopen()))
		log_err("log-file: reopening failed, writing on to the old file: %s", strerror(-rc));
	if ((rc = acct_reopen(srv->env.acct)))
		log_err("accounting-log: reopening failed, writing on to the old file: %s",
			strerror(-rc));
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct auth *auth;
		struct policy *pol;

		/* Re-read once; the other workers get copies of the same. */
		if (srv->reload(i == 0, &auth, &pol))
			break;	/* the callee logged why; everything stays as it was */
		worker_replace_auth(srv->workers[i], auth, pol);
		if (i + 1 == srv->nworkers)
			log_info("reloaded users, secrets and peer policy");
	}
	if (srv->env.tls)
		reload_tls(srv);
	service_ready();
}

static unsigned live_allocations(struct server *srv)
{
	struct metrics_snapshot m;

	collect(srv, &m);
	return (unsigned)m.allocations;
}

/* Every second of a drain: exit once no allocation is left; at the
 * timeout, end those that are (reason drained). */
static void on_drain_timer(struct ev_src *s, uint32_t events)
{
	struct server *srv = s->data;
	uint64_t ticks;
	unsigned left;

	(void)events;
	if (read(s->fd, &ticks, sizeof(ticks)) < 0)
		return;
	left = live_allocations(srv);
	if (!left) {
		log_info("drain: no allocation left after %lds, exiting",
			 (long)(clock_mono_s() - srv->drain_start));
		service_stopping();
		srv->running = false;
		return;
	}
	if (!srv->drain_ended && clock_mono_s() >= srv->drain_deadline) {
		log_info("drain: timeout, ending the %u allocations left", left);
		admin_end(srv->workers, srv->nworkers, NULL, NULL, ALLOC_END_DRAINED);
		srv->drain_ended = true;
	}
	service_status("draining: %u allocations left, %lds to the timeout", left,
		       (long)(srv->drain_deadline > clock_mono_s() ?
			      srv->drain_deadline - clock_mono_s() : 0));
}

/* New Allocates go to the alternates (or get 508); the daemon exits 0 when
 * the last allocation ends or timeout seconds pass. Again while draining:
 * the new timeout replaces the old. */
static int start_drain(struct server *srv, unsigned timeout)
{
	struct itimerspec its = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };
	int fd;

	srv->drain_deadline = clock_mono_s() + timeout;
	if (srv->draining)
		return 0;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) ||
	    ev_add(srv->loop, &srv->drain_timer, fd, on_drain_timer, srv)) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		return err ? err : -ENOMEM;
	}
	srv->draining = true;
	srv->drain_start = clock_mono_s();
	for (unsigned i = 0; i < srv->nworkers; i++) {
		worker_lock(srv->workers[i]);
		turn_set_draining(worker_turn(srv->workers[i]), true);
		worker_unlock(srv->workers[i]);
	}
	log_info("drain: new allocations %s; exiting when the %u left end, or in %us",
		 srv->cfg->alternates.n ? "sent to alternate-server" : "refused (508)",
		 live_allocations(srv), timeout);
	return 0;
}

static void status_text(struct server *srv, FILE *out)
{
	struct metrics_snapshot m;

	collect(srv, &m);
	if (srv->draining)
		fprintf(out, "state: draining, %lds to the timeout\n",
			(long)(srv->drain_deadline > clock_mono_s() ?
			       srv->drain_deadline - clock_mono_s() : 0));
	else
		fprintf(out, "state: running\n");
	offload_describe(srv->env.offload, out);
	fprintf(out, "relay threads: %u\nallocations: %llu\nusers: %llu\npermissions: %llu\n"
		"channels: %llu (%llu in XDP)\ntcp connections: %llu\n", srv->nworkers,
		(unsigned long long)m.allocations, (unsigned long long)m.users,
		(unsigned long long)m.permissions, (unsigned long long)m.channels,
		(unsigned long long)m.channels_in_kernel, (unsigned long long)m.tcp_connections);
}

static void on_metrics(struct ev_src *s, uint32_t events);
static void on_control(struct ev_src *s, uint32_t events);
static const char *on_command(void *ctx, int argc, char **argv, FILE *out);

/* The stats and control sockets (and the metrics' HTTP listener): opened
 * at start, closed for a handover (the new process binds them), opened
 * again if it fails. */
static void endpoints_open(struct server *srv, char *err, size_t errlen)
{
	int rc = stats_open(&srv->metrics, srv->cfg, collect, srv, srv->web, err, errlen);

	if (rc || err[0])
		log_warn("%s", err);
	if (!rc && (rc = ev_add(srv->loop, &srv->metrics_src, stats_fd(srv->metrics), on_metrics,
				srv)))
		log_warn("metrics endpoints: %s", strerror(-rc));
	srv->control = control_open(srv->cfg->control_socket, on_command, srv, &rc);
	if (!srv->control)
		log_warn("control-socket %s: %s; xturnctl cannot reach this daemon",
			 srv->cfg->control_socket,
			 rc == -EADDRINUSE ? "served by another running xturnd" : strerror(-rc));
	else if ((rc = ev_add(srv->loop, &srv->control_src, control_fd(srv->control), on_control,
			      srv)))
		log_warn("control-socket: %s", strerror(-rc));
}

static void endpoints_close(struct server *srv)
{
	if (srv->metrics) {
		ev_retire(srv->loop, &srv->metrics_src, NULL);
		stats_close(srv->metrics);
		srv->metrics = NULL;
	}
	if (srv->control) {
		ev_retire(srv->loop, &srv->control_src, NULL);
		control_close(srv->control);
		srv->control = NULL;
	}
}

/* The planned restart (handover.h): the relay threads held still, their
 * sockets listed and passed to a fresh exec of our binary; once it says it
 * is ready we exit at once, undoing nothing (its program, maps, sockets and
 * journals are the new one's now). If it fails, everything goes on. */
static void handover(struct server *srv)
{
	struct handover_out *o;
	char why[256], err[512] = "";
	int64_t t0 = clock_mono_ms();
	int pid, lock;

	if (!srv->exec_path[0] || srv->cfg->demo) {
		log_err("restart refused: %s", srv->cfg->demo ? "the demo's credentials exist only "
			"in this process" : "no binary to exec");
		return;
	}
	if (!(o = handover_out_new())) {
		log_err("restart refused: %s", strerror(errno));
		return;
	}
	for (unsigned i = 0; i < srv->nworkers; i++) {
		worker_lock(srv->workers[i]);
		worker_handover_fds(srv->workers[i], o);
	}
	if ((lock = offload_lock_fd(srv->env.offload)) >= 0)
		handover_out_lock(o, lock);
	endpoints_close(srv);
	log_info("restart: handing over to a new %s", srv->exec_path);
	pid = handover_exec(o, srv->exec_path, srv->exec_argv, 10000, why, sizeof(why));
	if (pid > 0) {
		log_info("restart: pid %d took over after %lld ms; exiting", pid,
			 (long long)(clock_mono_ms() - t0));
		service_mainpid(pid);
		_exit(0);
	}
	log_err("restart failed, serving on: %s", why);
	endpoints_open(srv, err, sizeof(err));
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_unlock(srv->workers[i]);
}

void server_set_exec(struct server *srv, const char *path, char *const argv[])
{
	snprintf(srv->exec_path, sizeof(srv->exec_path), "%s", path);
	srv->exec_argv = argv;
}

/* xturnctl's commands (control.h). */
static const char *on_command(void *ctx, int argc, char **argv, FILE *out)
{
	struct server *srv = ctx;
	const char *cmd = argv[0];
	unsigned n;

	if (!strcmp(cmd, "status") && argc == 1) {
		status_text(srv, out);
	} else if (!strcmp(cmd, "sessions") && (argc == 1 || (argc == 2 &&
						!strcmp(argv[1], "json")))) {
		admin_sessions(srv->workers, srv->nworkers, srv->env.offload, srv->cfg->realm,
			       argc == 2, out);
	} else if (!strcmp(cmd, "kill") && argc == 2) {
		if (!(n = admin_end(srv->workers, srv->nworkers, argv[1], NULL, ALLOC_END_KILLED)))
			return "no such allocation";
		log_info("xturnctl: killed allocation %s", argv[1]);
		fprintf(out, "killed %u allocation\n", n);
	} else if (!strcmp(cmd, "kill-user") && argc == 2) {
		n = admin_end(srv->workers, srv->nworkers, NULL, argv[1], ALLOC_END_KILLED);
		log_info("xturnctl: killed %u allocations of %s", n, argv[1]);
		fprintf(out, "killed %u allocation%s\n", n, n == 1 ? "" : "s");
	} else if (!strcmp(cmd, "drain") && argc <= 2) {
		unsigned long t = srv->cfg->drain_timeout;
		char *end;
		int err;

		if (argc == 2) {
			t = strtoul(argv[1], &end, 10);
			if (*end || !t || t > 604800)
				return "timeout: expected seconds, 1 to 604800";
		}
		if ((err = start_drain(srv, (unsigned)t)))
			return strerror(-err);
		fprintf(out, "draining: %u allocations left, %lus to the timeout\n",
			live_allocations(srv), t);
	} else if (!strcmp(cmd, "reload") && argc == 1) {
		reload_all(srv);
		fprintf(out, "reloaded\n");
	} else if (!strcmp(cmd, "restart") && argc == 1) {
		srv->handover_pending = true;	/* after this answer is sent */
		fprintf(out, "restarting: a new process takes over\n");
	} else {
		return "unknown command (status, sessions [json], kill ID, kill-user NAME, "
		       "drain [SECONDS], reload, restart)";
	}
	return NULL;
}

static void on_control(struct ev_src *s, uint32_t events)
{
	(void)events;
	control_event(((struct server *)s->data)->control);
}

static void on_signal(struct ev_src *s, uint32_t events)
{
	struct server *srv = s->data;
	struct signalfd_siginfo si;

	(void)events;
	while (read(s->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload_all(srv);
			continue;
		}
		if (si.ssi_signo == SIGUSR2) {	/* a planned restart */
			srv->handover_pending = true;
			continue;
		}
		if (si.ssi_signo == SIGUSR1) {	/* coturn's drain signal */
			int err = start_drain(srv, srv->cfg->drain_timeout);
			if (err)
				log_err("drain: %s", strerror(-err));
			continue;
		}
		log_info("%s: shutting down", strsignal((int)si.ssi_signo));
		service_stopping();
		srv->running = false;
		return;
	}
}

static void on_netlink(struct ev_src *s, uint32_t events)
{
	(void)events;
	offload_netlink_event(((struct server *)s->data)->env.offload);
}

static void on_metrics(struct ev_src *s, uint32_t events)
{
	(void)events;
	stats_event(((struct server *)s->data)->metrics);
}

/* alternate-server lines, checked by the config already. */
static void parse_alternates(const struct config_list *l, uint16_t port,
			     struct sockaddr_storage *out, unsigned *n)
{
	*n = 0;
	for (unsigned i = 0; i < l->n; i++)
		if (!addr_parse(l->v[i], port, &out[*n]))
			addr_canon(&out[(*n)++]);
}

int server_new(struct server **out, const struct config *cfg, struct auth *auth,
	       struct policy *pol, struct fastpath *fp, struct handover *h, server_reload_fn reload,
	       char *err, size_t errlen)
{
	struct server *srv = calloc(1, sizeof(*srv));
	unsigned n = worker_count(cfg);
	sigset_t sigs;
	int rc, fd;

	if (!srv) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	srv->cfg = cfg;
	srv->start_wall = time(NULL);
	srv->reload = reload;
	srv->sig.fd = -1;
	srv->env.cfg = cfg;
	srv->env.handover = h;
	srv->env.offload = offload_new(fp);
	srv->env.shared = turn_shared_new();
	srv->env.host = hostaddr_new(cfg->relay, cfg->nrelay);
	srv->loop = ev_new();
	/* A client's peer may be another client's relayed address as we
	 * advertise it (external-ip): the same relay ports. */
	for (unsigned i = 0; srv->env.host && i < cfg->nrelay; i++) {
		struct sockaddr_storage adv;

		config_advertised(cfg, &cfg->relay[i], &adv);
		if (!addr_ip_eq(&adv, &cfg->relay[i]) &&
		    hostaddr_alias(srv->env.host, &adv, &cfg->relay[i]) == -ENOMEM)
			log_warn("external-ip: out of memory");
	}
	if (cfg->cert[0] && !cfg->no_tls &&
	    (rc = stream_tls_new(&srv->env.tls, cfg, err, errlen))) {
		auth_free(auth);
		policy_free(pol);
		server_free(srv);
		return rc;
	}
	srv->env.acct = acct_open(cfg->accounting_log, &rc);
	if (!srv->env.acct) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "accounting-log %s: %s", cfg->accounting_log, strerror(-rc));
		server_free(srv);
		return rc;
	}
	parse_alternates(&cfg->alternates, 3478, srv->alternates, &srv->env.nalternates);
	parse_alternates(&cfg->tls_alternates, 5349, srv->tls_alternates,
			 &srv->env.ntls_alternates);
	srv->env.alternates = srv->alternates;
	srv->env.tls_alternates = srv->tls_alternates;
	/* Every TCP/TLS client and every relay is a file descriptor. */
	sock_raise_nofile(0);
	if (!srv->loop || !srv->env.shared || !srv->env.host || !srv->env.offload) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return -ENOMEM;
	}
	srv->hosts = hostwatch_new(cfg, srv->env.host);
	if (!srv->hosts) {
		auth_free(auth);
		policy_free(pol);
		snprintf(err, errlen, "out of memory");
		server_free(srv);
		return -ENOMEM;
	}
	/* Worker 0 takes the credentials built by the caller; the others get
	 * their own copies (each worker owns and may replace its own). */
	for (unsigned i = 0; i < n; i++) {
		struct auth *a = auth;
		struct policy *p = pol;
		if (i > 0 && (rc = reload(false, &a, &p))) {
			snprintf(err, errlen, "credentials for worker %u: %s", i, strerror(-rc));
			server_free(srv);
			return rc;
		}
		rc = worker_new(&srv->env, i, a, p, &srv->workers[i], err, errlen);
		if (rc) {
			server_free(srv);
			return rc;
		}
		srv->nworkers++;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	/* Blocked before the threads start, so they inherit the mask and only
	 * the main thread's signalfd sees the signals. */
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0 || (rc = ev_add(srv->loop, &srv->sig, fd, on_signal, srv))) {
		rc = fd < 0 ? -errno : rc;
		snprintf(err, errlen, "signalfd: %s", strerror(-rc));
		if (fd >= 0)
			close(fd);
		server_free(srv);
		return rc;
	}
	if ((fd = offload_netlink_fd(srv->env.offload)) >= 0 &&
	    (rc = ev_add(srv->loop, &srv->netlink, fd, on_netlink, srv)))
		log_warn("netlink events: %s", strerror(-rc));
	if ((fd = hostwatch_fd(srv->hosts)) >= 0 &&
	    (rc = ev_add(srv->loop, &srv->hostaddr_src, fd, on_hostaddr, srv)))
		log_warn("address events: %s", strerror(-rc));
	err[0] = 0;
	if (cfg->web_port && !(srv->web = web_new(cfg, cfg->check_secret)))
		log_warn("check page: out of memory");
	endpoints_open(srv, err, errlen);
	if (getenv("NOTIFY_SOCKET")) {
		struct itimerspec its = { .it_interval.tv_sec = STATUS_S, .it_value.tv_sec = STATUS_S };

		fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) ||
		    ev_add(srv->loop, &srv->status_timer, fd, on_status_timer, srv)) {
			log_warn("status timer: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			srv->status_timer = (struct ev_src){ .fd = -1 };
		}
	}
	log_info("%u relay thread%s", n, n > 1 ? "s" : "");
	*out = srv;
	return 0;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_free(srv->workers[i]);
	turn_shared_free(srv->env.shared);
	hostaddr_free(srv->env.host);
	hostwatch_free(srv->hosts);
	SSL_CTX_free(srv->env.tls);
	acct_free(srv->env.acct);
	stats_close(srv->metrics);
	web_free(srv->web);
	control_close(srv->control);
	if (srv->drain_timer.fn)
		close(srv->drain_timer.fd);
	if (srv->sig.fd >= 0)
		close(srv->sig.fd);
	if (srv->status_timer.fn)
		close(srv->status_timer.fd);
	ev_free(srv->loop);
	offload_free(srv->env.offload);
	free(srv);
}

int server_run(struct server *srv)
{
	unsigned started = 0;
	int rc = 0;

	srv->running = true;
	for (; started < srv->nworkers; started++) {
		if ((rc = worker_start(srv->workers[started]))) {
			log_err("relay thread: %s", strerror(-rc));
			srv->running = false;
			break;
		}
	}
	if (srv->running) {
		/* A handover's old daemon may go now: we relay. */
		handover_ready(srv->env.handover);
		report_status(srv);
		service_ready();
	}
	while (srv->running) {
		int n = ev_wait(srv->loop, -1);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			log_err("epoll_wait: %s", strerror(-n));
			rc = n;
			break;
		}
		ev_dispatch(srv->loop);
		if (srv->handover_pending) {
			srv->handover_pending = false;
			handover(srv);
		}
	}
	for (unsigned i = 0; i < started; i++)
		worker_stop(srv->workers[i]);
	return rc;
}
