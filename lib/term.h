/*
 * term.h - printing for a person at a terminal: tables that fit 80
 * columns, text cut or wrapped to a width, times in UTC. Every string goes
 * through escape_term() (escape.h), so what an agent or a user wrote
 * cannot move the cursor, change colours or retitle the window.
 *
 * A column is a character: wide characters are not measured.
 */
#ifndef ORCH_TERM_H
#define ORCH_TERM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TERM_WIDTH 80     /* columns every table and summary fits in */
#define TERM_TIME_SIZE 32 /* room for term_utc() and term_span() */

/* The columns S takes. */
int term_columns(const char *s);

/*
 * Write S in at most WIDTH columns (at least 3), ending in "..." when it
 * is cut; with PAD, fill the rest of WIDTH with spaces. Returns the
 * columns written.
 */
int term_cut(FILE *fp, const char *s, int width, int pad);

/* MS since the epoch as "2026-11-25 01:02:03" (UTC) in BUF; the bare
 * number when the time is out of range. Returns BUF. */
const char *term_utc(int64_t ms, char buf[TERM_TIME_SIZE]);

/* A span of MS milliseconds, rounded down to its largest unit: "40s",
 * "12m", "3h", "2d" ("0s" below a second). Returns BUF. */
const char *term_span(int64_t ms, char buf[TERM_TIME_SIZE]);

/* A duration of MS milliseconds, short: "180ms", "1.6s", "42s", "3m20s",
 * "2h5m". Returns BUF. */
const char *term_duration(int64_t ms, char buf[TERM_TIME_SIZE]);

/*
 * The first piece of the line S (LEN bytes, no line feed among them)
 * broken to at most WIDTH columns: returns its length in bytes and sets
 * *NEXT to how many bytes to skip to the next piece. A piece breaks after
 * its last space when it has one (the space is skipped); a word wider
 * than WIDTH is split.
 */
size_t term_wrap(const char *s, size_t len, int width, size_t *next);

/*
 * Write S (LEN bytes: a message, an agent's stderr) as a block: each line
 * wrapped to WIDTH columns less INDENT (not wrapped when WIDTH is 0: a
 * JSON document), each piece indented by INDENT spaces and ended by a line
 * feed. An empty S writes nothing.
 */
void term_block(FILE *fp, const char *s, size_t len, int indent, int width);

#endif
