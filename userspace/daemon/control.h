/* The administration socket xturnctl talks to (control-socket; its
 * protocol in common/ctl.h): apart from the read-only stats socket, and only
 * for root and the xturn group (the file is 0660, group xturn when that
 * group exists, and each peer's credentials are checked again). */
#ifndef XT_CONTROL_H
#define XT_CONTROL_H

#include <stdio.h>

#include "common/ctl.h"

/* Runs one command: argv[0] is its name. Writes the body to out; returns
 * NULL (ok) or why it failed. */
typedef const char *(*control_fn)(void *ctx, int argc, char **argv, FILE *out);

struct control;

/* NULL with *err set (-EADDRINUSE: another daemon serves path). */
struct control *control_open(const char *path, control_fn fn, void *ctx, int *err);
int control_fd(const struct control *c);
/* The listening socket is readable: serves the connections waiting. */
void control_event(struct control *c);
/* Closes and removes the socket file. NULL is fine. */
void control_close(struct control *c);

#endif
