/*
 * orch - find and run orch-SUBCOMMAND, the way git runs its dashed
 * externals: first beside this binary, then on PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

static const char usage_line[] =
	"usage: orch [--help | --version] SUBCOMMAND [ARG ...]";

static const char help_text[] =
	"usage: orch [--help | --version] SUBCOMMAND [ARG ...]\n"
	"       orch help SUBCOMMAND\n"
	"\n"
	"Run orch-SUBCOMMAND with the arguments given. Subcommands:\n"
	"  stack     create, start, pause and inspect stacks\n"
	"  detect    find which agents of each stack have work\n"
	"  graph     turn work statuses into execution graphs\n"
	"  exec      run execution graphs\n"
	"  decide    decide whether each stack continues, pauses or stops\n"
	"  agent     the built-in LLM agent\n"
	"\n"
	"One cycle: orch detect --all | orch graph | orch exec | orch decide\n";

/* The directory this binary lives in, or NULL. */
static char *self_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= sizeof(buf) - 1)
		return NULL;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	return xstrdup(buf);
}

static int valid_subcommand(const char *s)
{
	if (!*s || *s == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	char *name, *dir, *path;

	orch_progname = "orch";
	if (argc < 2)
		cli_usage_error(usage_line, "no subcommand given");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		cli_help(help_text);
	if (strcmp(argv[1], "--version") == 0)
		cli_version();
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3)
			cli_help(help_text);
		if (!valid_subcommand(argv[2]))
			cli_usage_error(usage_line, "'%s' is not an orch subcommand", argv[2]);
		name = xasprintf("orch-%s", argv[2]);
		execlp("man", "man", name, (char *)NULL);
		cli_die(ORCH_EX_UNAVAILABLE, "cannot run 'man': %s", strerror(errno));
	}
	if (argv[1][0] == '-')
		cli_usage_error(usage_line, "unknown option '%s'", argv[1]);
	if (!valid_subcommand(argv[1]))
		cli_usage_error(usage_line, "'%s' is not an orch subcommand", argv[1]);
	name = xasprintf("orch-%s", argv[1]);
	argv[1] = name;
	dir = self_dir();
	if (dir) {
		path = xasprintf("%s/%s", dir, name);
		if (access(path, X_OK) == 0)
			execv(path, argv + 1);
		free(path);
		free(dir);
	}
	execvp(name, argv + 1);
	if (errno == ENOENT)
		cli_usage_error(usage_line, "'%s' is not an orch subcommand", argv[1] + 5);
	cli_die(ORCH_EX_UNAVAILABLE, "cannot run '%s': %s", name, strerror(errno));
}
