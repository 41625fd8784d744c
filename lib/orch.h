/*
 * orch.h - what every orch program shares: the exit table, the version,
 * and the modules of liborch.a.
 *
 * Ownership rule, as everywhere in lib/: a function returning json_t *
 * returns a NEW reference unless its comment says "borrowed"; no function
 * steals a reference it is given unless its comment says "steals".
 * lib/ never prints and never exits (the x-allocators excepted): it returns
 * -1 or NULL and fills a struct orch_error; only cmd/ reports and exits.
 *
 * Adding a tool (orch-foo):
 *   1. cmd/orch-foo.c: main(), usage(), the option table, glue only;
 *      everything reusable goes into lib/.
 *   2. Makefile: add orch-foo to PROGRAMS.
 *   3. man/orch-foo.1 (mdoc, SYNOPSIS word for word the usage() text).
 *   4. completions/orch.bash: an entry for orch-foo.
 *   5. tests/orch-foo.bats, fixtures under tests/fixtures/orch-foo/;
 *      tests/conventions.bats checks --help, --version, a bad flag and
 *      /dev/full for every program in PROGRAMS.
 *   6. README.md: what it does, where it sits in the pipeline.
 */
#ifndef ORCH_H
#define ORCH_H

#include <stdint.h>

#define ORCH_VERSION "0.1.0"

/*
 * The exit table (sysexits names). Never renumbered; every man page's
 * EXIT STATUS lists the same values.
 */
enum orch_exit {
	ORCH_EX_OK = 0,
	ORCH_EX_USAGE = 64,       /* bad flag or argument */
	ORCH_EX_DATAERR = 65,     /* bad input document */
	ORCH_EX_NOINPUT = 66,     /* missing input file or database */
	ORCH_EX_UNAVAILABLE = 69, /* a needed service could not be reached */
	ORCH_EX_SOFTWARE = 70,    /* internal error, out of memory, write error */
	ORCH_EX_TEMPFAIL = 75,    /* try again later: database locked */
};

/* The four agents of a stack, in tie-break order. */
#define ORCH_AGENT_COUNT 4
extern const char *const orch_agents[ORCH_AGENT_COUNT];
/* Index of NAME in orch_agents, or -1. */
int orch_agent_index(const char *name);

/* Milliseconds since the epoch, wall clock. */
int64_t orch_now_ms(void);
/* Milliseconds from a monotonic clock, for durations and deadlines. */
int64_t orch_mono_ms(void);

/*
 * Clocks that go back. A wall-clock time stored further ahead than
 * ORCH_CLOCK_SLACK_MS was stamped by a clock that was ahead and has been
 * put back since (hosts sharing a database must agree within it); no
 * pause may be longer than ORCH_MAX_PAUSE_MS (every pause.* setting is
 * bounded by it, lib/config.c). Plain numbers: lib/schedule.h writes
 * them into SQL.
 */
#define ORCH_CLOCK_SLACK_MS 60000
#define ORCH_MAX_PAUSE_MS 604800000

/* Resource bounds, documented in orch(7). */
#define ORCH_MAX_DOCUMENT (16 * 1024 * 1024) /* one input JSON value */
#define ORCH_MAX_CHILD_OUTPUT (8 * 1024 * 1024) /* an agent's stdout */
#define ORCH_MAX_NODES 100000                /* nodes in one orch-exec run */

#endif
