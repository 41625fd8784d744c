/*
 * diff.h - a unified diff of two buffers by diff(1), run directly (never
 * through a shell): each buffer is handed to it as an anonymous in-memory
 * file (/dev/fd/3 and /dev/fd/4), and what it prints comes back through
 * a pipe. orch has no diff algorithm of its own.
 */
#ifndef ORCH_DIFF_H
#define ORCH_DIFF_H

#include <stddef.h>

#include "error.h"

/* The most of diff's output diff_unified() keeps. */
#define DIFF_MAX_OUTPUT (64 * 1024 * 1024)

/* One side of a diff. All borrowed. */
struct diff_side {
	const char *label;  /* its name in the "---" or "+++" line */
	const char *data;   /* its bytes */
	size_t len;         /* how many */
};

/*
 * `diff -u` of A and B: 0 with *OUT a new buffer of *OUT_LEN bytes (empty
 * when they are the same), or -1 with ERR: 69 when diff cannot be run,
 * 70 when it fails (its first line of stderr said) or says more than
 * DIFF_MAX_OUTPUT bytes.
 */
int diff_unified(const struct diff_side *a, const struct diff_side *b, char **out,
		 size_t *out_len, struct orch_error *err);

#endif
