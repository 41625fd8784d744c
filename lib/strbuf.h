/*
 * strbuf.h - a growable string: text added piece by piece, never cut.
 * Initialise with STRBUF_INIT; buf is NULL until something is added, then
 * always NUL-terminated; the caller owns (and frees) buf.
 */
#ifndef ORCH_STRBUF_H
#define ORCH_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *buf;  /* owned; NULL until the first add */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
};

#define STRBUF_INIT { NULL, 0, 0 }

/* Append N bytes of S (NULs allowed). */
void strbuf_add(struct strbuf *sb, const char *s, size_t n);

#endif
