/* The browser check (web-ip:web-port): one self-contained page that asks
 * this server for relay candidates over every transport it offers and runs
 * a relay-only call through it, and the credentials it uses
 * (GET /check/credentials): minted with the daemon's check secret, good for
 * 2 minutes, 2 allocations, and our own relayed addresses only (turn.c), so
 * they are useless to an abuser; handed out at most a few a minute to one
 * source address. Served by the stats module's HTTP code. */
#ifndef XT_WEB_H
#define XT_WEB_H

#include <stddef.h>
#include <time.h>
#include <sys/socket.h>

#include "daemon/config.h"

#define WEB_CHECK_TTL 120	/* seconds a check credential is good for */

struct web;

/* secret: the check secret (auth_set_check_secret's). NULL on no memory. */
struct web *web_new(const struct config *cfg, const char *secret);
void web_free(struct web *w);

/* Answers GET path from peer, which reached us at local: the HTTP status
 * line's text ("200 OK"...), the content type, and the body in buf (its
 * length in *len). NULL if path is none of ours. */
const char *web_answer(struct web *w, const char *path, const struct sockaddr_storage *peer,
		       const struct sockaddr_storage *local, time_t now, const char **ctype,
		       char *buf, size_t cap, size_t *len);

#endif
