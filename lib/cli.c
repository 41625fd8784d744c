#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "escape.h"
#include "orch.h"
#include "store.h"
#include "xalloc.h"

/*
 * "PROG: MESSAGE" on one line. The message is escaped here, where every
 * program's reports pass, so what it echoes (an argument, a stack name, an
 * agent's error) cannot drive the terminal or break the line. Escaping is
 * idempotent (its output has no control character and no ill-formed
 * byte), so a caller's text that is already escaped comes out unchanged.
 */
static void vwarn(const char *fmt, va_list ap)
{
	char *msg = xvasprintf(fmt, ap), *shown = escape_term_dup(msg, strlen(msg), 0);

	/* One call: stderr is unbuffered, and a line is one write. */
	fprintf(stderr, "%s: %s\n", orch_progname, shown);
	free(shown);
	free(msg);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

/*
 * config_load()'s report of an unknown key, said as a warning. orch-stack
 * config lists unknown keys in its own table and warns of them itself.
 */
static void warn_config(const char *line)
{
	if (strcmp(orch_progname, "orch-stack") != 0)
		cli_warn("%s", line);
}

config_warn_fn *config_warn = warn_config;

noreturn void cli_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}

noreturn void cli_die_error(const struct orch_error *err)
{
	cli_die(err->status ? err->status : ORCH_EX_SOFTWARE, "%s",
		err->msg ? err->msg : "unknown error");
}

noreturn void cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\nTry '%s --help' for more information.\n", usage,
		orch_progname);
	exit(ORCH_EX_USAGE);
}

noreturn void cli_version(void)
{
	printf("%s %s\n", orch_progname, ORCH_VERSION);
	exit(cli_finish(ORCH_EX_OK));
}

noreturn void cli_help(const char *text)
{
	fputs(text, stdout);
	exit(cli_finish(ORCH_EX_OK));
}

int64_t cli_int(const char *usage, const char *flag, const char *arg,
		int64_t min, int64_t max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (arg[0] == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max)
		cli_usage_error(usage, "%s: '%s' is not a whole number from %lld to %lld",
				flag, arg, (long long)min, (long long)max);
	return v;
}

int cli_finish(int status)
{
	int bad = ferror(stdout);

	if (fflush(stdout) != 0)
		bad = 1;
	if (fclose(stdout) != 0)
		bad = 1;
	if (bad) {
		fprintf(stderr, "%s: write error on standard output: %s\n",
			orch_progname, errno ? strerror(errno) : "unknown error");
		return ORCH_EX_SOFTWARE;
	}
	return status;
}

/*
 * The last store cli_open_store() opened. A program that dies through
 * cli_die() exits with its store open; the compiler may have dropped its
 * own pointer to it (nothing is used after a noreturn call), and the leak
 * checker would then report the store as lost. Kept here, it is not.
 */
static struct store *volatile opened_store; /* volatile: never read, yet kept */

struct store *cli_open_store(const char *db_flag, unsigned flags)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct store *s;
	char *path;

	if (!(path = store_default_path(db_flag, &err)) ||
	    !(s = store_open(path, flags, &err)))
		cli_die_error(&err);
	free(path);
	opened_store = s;
	return s;
}
