#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "common/addr.h"
#include "common/outbuf.h"
#include "common/stun.h"
#include "turn/ratelimit.h"
#include "daemon/web.h"
#include "check_html.h"		/* generated from check.html: the page, embedded */

/* Credentials to one source: a burst of 6 (a check takes 4: one gather per
 * transport and the call), then one a second. */
#define CREDS_RATE 1
#define CREDS_BURST 6

struct web {
	const struct config *cfg;
	char secret[128];
	struct ratelimit *limit;
};

struct web *web_new(const struct config *cfg, const char *secret)
{
	struct web *w = calloc(1, sizeof(*w));

	if (!w || !(w->limit = ratelimit_new(CREDS_RATE, CREDS_BURST))) {
		free(w);
		return NULL;
	}
	w->cfg = cfg;
	snprintf(w->secret, sizeof(w->secret), "%s", secret);
	return w;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	ratelimit_free(w->limit);
	free(w);
}

/* Where the browser reaches our TURN listeners: the first listening-ip, or
 * the address it reached this page at. */
static const struct sockaddr_storage *turn_host(const struct web *w,
						const struct sockaddr_storage *local)
{
	return w->cfg->nlisten && !addr_is_any(&w->cfg->listen[0]) ? &w->cfg->listen[0] : local;
}

static size_t credentials(struct web *w, const struct sockaddr_storage *local, char *buf,
			  size_t cap)
{
	const struct config *c = w->cfg;
	struct outbuf o = outbuf_init(buf, cap);
	char user[64], pass[64], ip[ADDR_STRLEN + 2], a[ADDR_STRLEN];
	uint8_t rnd[6];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return 0;
	/* REST usernames carry Unix time (now is the rate limit's monotonic). */
	snprintf(user, sizeof(user), "%lld:xturn-check-%02x%02x%02x%02x%02x%02x",
		 (long long)time(NULL) + WEB_CHECK_TTL, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		 rnd[5]);
	if (stun_rest_password(w->secret, user, pass, sizeof(pass)))
		return 0;
	addr_str(turn_host(w, local), false, a, sizeof(a));
	snprintf(ip, sizeof(ip), turn_host(w, local)->ss_family == AF_INET6 ? "[%s]" : "%s", a);
	outbuf_put(&o, "{\"urls\":[");
	if (!c->no_udp)
		outbuf_put(&o, "\"turn:%s:%u?transport=udp\"", ip, c->listen_port);
	if (!c->no_tcp)
		outbuf_put(&o, "%s\"turn:%s:%u?transport=tcp\"", c->no_udp ? "" : ",", ip,
			   c->listen_port);
	if (c->cert[0] && !c->no_tls)
		outbuf_put(&o, ",\"turns:%s:%u?transport=tcp\"", ip, c->tls_port);
	/* The REST username and password: JSON-safe as made (digits, hex,
	 * base64). */
	outbuf_put(&o, "],\"username\":\"%s\",\"credential\":\"%s\",\"ttl\":%d}\n", user, pass,
		   WEB_CHECK_TTL);
	return o.full ? 0 : o.pos;
}

const char *web_answer(struct web *w, const char *path, const struct sockaddr_storage *peer,
		       const struct sockaddr_storage *local, time_t now, const char **ctype,
		       char *buf, size_t cap, size_t *len)
{
	size_t n = strcspn(path, " ?\r\n");

	*len = 0;
	if (n == 1 && path[0] == '/') {
		*ctype = "text/html; charset=utf-8";
		*len = sizeof(check_html) - 1 < cap ? sizeof(check_html) - 1 : 0;
		memcpy(buf, check_html, *len);
		return *len ? "200 OK" : "500 Internal Server Error";
	}
	if (n != 18 || strncmp(path, "/check/credentials", 18))
		return NULL;
	*ctype = "application/json";
	if (!ratelimit_take(w->limit, peer, now))
		return "429 Too Many Requests";
	*len = credentials(w, local, buf, cap);
	/* Never cached: each is good for two allocations and two minutes. */
	return *len ? "200 OK" : "500 Internal Server Error";
}
