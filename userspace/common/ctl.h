/* The control socket's protocol, between xturnd (daemon/control.h) and
 * xturnctl: one request a connection, a line of words ("sessions json",
 * "kill 0123456789abcdef"), answered with "ok" or "error: WHY" on the first
 * line, then the body; the server then closes. */
#ifndef XT_CTL_H
#define XT_CTL_H

#include <stddef.h>
#include <stdio.h>

#define CTL_DEFAULT_SOCKET "/run/xturn/control.sock"
#define CTL_MAX_ARGS 4		/* a command and up to 3 arguments */
#define CTL_MAX_LINE 512

/* Sends line (no newline) to the socket at path and copies the body of an
 * "ok" answer to out. 0; 1 for an "error:" answer (why holds it); -errno
 * when the socket cannot be reached (why says so). */
int ctl_request(const char *path, const char *line, FILE *out, char *why, size_t whylen);

#endif
