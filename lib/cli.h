/*
 * cli.h - the manners every orch program shares: reporting, usage errors,
 * number flags, and closing stdout. The only part of lib/ that prints and
 * exits, and only cmd/ calls it.
 */
#ifndef ORCH_CLI_H
#define ORCH_CLI_H

#include <stdint.h>
#include <stdnoreturn.h>

#include "error.h"

/*
 * Print "PROG: MESSAGE" on stderr. Here and in every report below, the
 * message is escaped for the terminal (escape_term(): control characters,
 * line breaks and escape sequences become spaces, ill-formed UTF-8 '?'),
 * so an argument or a stack's text it echoes is shown, never obeyed.
 */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "PROG: MESSAGE" and exit STATUS. */
noreturn void cli_die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Report ERR and exit with its status. */
noreturn void cli_die_error(const struct orch_error *err);

/*
 * A bad flag or argument: print "PROG: MESSAGE", the one-line USAGE and
 * "Try 'PROG --help' for more information." on stderr, exit 64.
 */
noreturn void cli_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "PROG VERSION" on stdout and exit 0 (after cli_finish). */
noreturn void cli_version(void);

/* Print TEXT on stdout and exit 0 (after cli_finish): for --help. */
noreturn void cli_help(const char *text);

/*
 * Parse ARG as a decimal integer within [MIN, MAX] for FLAG; a bad value is
 * a usage error naming the flag.
 */
int64_t cli_int(const char *usage, const char *flag, const char *arg,
		int64_t min, int64_t max);

/*
 * The database every program opens the same way: --db's value DB_FLAG
 * (NULL when not given), else $ORCH_DB, else the default path; FLAGS as
 * for store_open(). Reports the error and exits when it cannot.
 */
struct store;
struct store *cli_open_store(const char *db_flag, unsigned flags);

/*
 * Flush and close stdout; on a write error (a full disk, /dev/full, a
 * closed pipe reader) report it and return 70, else return STATUS.
 */
int cli_finish(int status);

#endif
