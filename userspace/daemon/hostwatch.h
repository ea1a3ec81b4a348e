/* This host's addresses for the protocol's peer checks (turn/hostaddr):
 * the configured ones (relay, listening, external: a public address behind
 * 1:1 NAT leads back here) and whatever the kernel delivers locally, read
 * at start and again whenever rtnetlink says the local table may have
 * changed. */
#ifndef XT_HOSTWATCH_H
#define XT_HOSTWATCH_H

#include "daemon/config.h"

struct hostaddr;
struct hostwatch;

/* Fills host now and follows the changes (without rtnetlink events it
 * warns and the set stays as read). NULL: out of memory. */
struct hostwatch *hostwatch_new(const struct config *cfg, struct hostaddr *host);
void hostwatch_free(struct hostwatch *w);
/* The socket to poll, or -1 when changes are not followed. */
int hostwatch_fd(const struct hostwatch *w);
/* Reads what is there; re-reads the addresses if they may have changed. */
void hostwatch_event(struct hostwatch *w);

#endif
