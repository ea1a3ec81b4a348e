/* xturnctl: administers a running xturnd over its control socket (root and
 * the xturn group only): sessions, kill, drain, reload, status. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/version.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: xturnctl [--socket PATH] COMMAND\n"
		"  status                    fast path per interface, counts, drain state\n"
		"  sessions [--json]         live allocations with their traffic so far\n"
		"  kill ID                   end allocation ID (accounting says killed)\n"
		"  kill --user NAME          end every allocation of NAME\n"
		"  drain [--timeout S]       send new allocations elsewhere; exit when the\n"
		"                            last ends or S seconds pass (default drain-timeout)\n"
		"  reload                    as SIGHUP: credentials, peer policy, certificates\n"
		"  restart                   as SIGUSR2: a new process of the binary (maybe a new\n"
		"                            version) takes the sockets and allocations over\n"
		"Options: --socket PATH (default %s), --help, --version\n", CTL_DEFAULT_SOCKET);
}

/* The request line for argv (after the options), or NULL if malformed. */
static const char *request(int argc, char **argv, char *line, size_t len)
{
	const char *cmd = argc ? argv[0] : "";

	if (!strcmp(cmd, "status") && argc == 1)
		snprintf(line, len, "status");
	else if (!strcmp(cmd, "reload") && argc == 1)
		snprintf(line, len, "reload");
	else if (!strcmp(cmd, "restart") && argc == 1)
		snprintf(line, len, "restart");
	else if (!strcmp(cmd, "sessions") && argc == 1)
		snprintf(line, len, "sessions");
	else if (!strcmp(cmd, "sessions") && argc == 2 && !strcmp(argv[1], "--json"))
		snprintf(line, len, "sessions json");
	else if (!strcmp(cmd, "kill") && argc == 2 && argv[1][0] != '-')
		snprintf(line, len, "kill %s", argv[1]);
	else if (!strcmp(cmd, "kill") && argc == 3 && !strcmp(argv[1], "--user"))
		snprintf(line, len, "kill-user %s", argv[2]);
	else if (!strcmp(cmd, "drain") && argc == 1)
		snprintf(line, len, "drain");
	else if (!strcmp(cmd, "drain") && argc == 3 && !strcmp(argv[1], "--timeout"))
		snprintf(line, len, "drain %s", argv[2]);
	else
		return NULL;
	/* One line of words: a name with spaces or a newline cannot pass. */
	return strpbrk(argc > 1 ? argv[argc - 1] : "", " \t\n") ? NULL : line;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = CTL_DEFAULT_SOCKET;
	char line[CTL_MAX_LINE], why[512];
	int c, rc;

	/* "+": options end at the command, so "kill --user" is the command's. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("xturnctl %s\n", xt_version());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!request(argc - optind, argv + optind, line, sizeof(line))) {
		usage(stderr);
		return 2;
	}
	rc = ctl_request(path, line, stdout, why, sizeof(why));
	if (rc)
		fprintf(stderr, "xturnctl: %s\n", why);
	return rc ? 1 : 0;
}
