/*
 * orch-stack - administer stacks. SKELETON: only `init` so far; the rest
 * of the subcommands are being written.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "orch.h"
#include "store.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch-stack [--db PATH] [--json] SUBCOMMAND [ARG ...]";

static const char help_text[] =
	"usage: orch-stack [--db PATH] [--json] SUBCOMMAND [ARG ...]\n"
	"\n"
	"  init    create the database\n";

int main(int argc, char **argv)
{
	static const char shortopts[] = "+h";
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 256 },
		{ "db", required_argument, NULL, 257 },
		{ NULL, 0, NULL, 0 },
	};
	struct orch_error err = ORCH_ERROR_INIT;
	const char *db_flag = NULL;
	struct store *store;
	char *path;
	int c;

	orch_progname = "orch-stack";
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help(help_text);
		case 256:
			cli_version();
		case 257:
			db_flag = optarg;
			break;
		default:
			cli_usage_error(usage_line, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		cli_usage_error(usage_line, "no subcommand given");
	if (strcmp(argv[optind], "init") != 0)
		cli_usage_error(usage_line, "unknown subcommand '%s'", argv[optind]);
	if (!(path = store_default_path(db_flag, &err)))
		cli_die_error(&err);
	if (!(store = store_open(path, STORE_CREATE, &err)))
		cli_die_error(&err);
	store_close(store);
	free(path);
	return cli_finish(0);
}
