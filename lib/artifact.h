/*
 * artifact.h - the thing a stack's team makes: versioned content (an HTML
 * page, by default), each version written whole by an agent, never
 * changed after. Each remembers the cycle and the todo that produced it.
 *
 * artifact_write() is the one place a version is written: orch-exec's
 * write_artifact action goes through it, and it alone fills the origin.
 */
#ifndef ORCH_ARTIFACT_H
#define ORCH_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* Where a version came from. */
struct artifact_origin {
	int64_t execution_id; /* the cycle's execution row, 0 for none */
	int64_t todo_id;      /* the todo the builder was given, 0 for none */
};

/*
 * Write the next version of STACK_ID's artifact, inside the caller's
 * transaction: CONTENT (LEN bytes), TYPE (TYPE_LEN bytes; "html" when
 * NULL), created at NOW, from ORIGIN (may be NULL: unknown). 0, or -1
 * with ERR.
 */
int artifact_write(struct store *s, int64_t stack_id, const char *type, size_t type_len,
		   const char *content, size_t len, int64_t now,
		   const struct artifact_origin *origin, struct orch_error *err);

/* One version, as artifact_list() gives it. Strings borrowed for the call. */
struct artifact_version {
	int64_t version;        /* from 1 */
	const char *type;       /* "html", ... */
	int64_t size;           /* bytes */
	int64_t created_at;
	int64_t cycle;          /* the cycle that wrote it, 0 when unknown */
	int64_t todo_id;        /* its todo, 0 for none (or one since deleted) */
	const char *todo;       /* that todo's text, or NULL */
};

/*
 * Call FN for each version of STACK_ID's artifact, newest first, until it
 * returns nonzero. Returns 0, FN's nonzero return, or -1 with ERR.
 */
int artifact_list(struct store *s, int64_t stack_id,
		  int (*fn)(const struct artifact_version *v, void *arg), void *arg,
		  struct orch_error *err);

/*
 * The content of version VERSION (0: the latest) of STACK_ID's artifact:
 * 1 with *CONTENT a new buffer of *LEN bytes (NUL-terminated besides)
 * and *FOUND its version, 0 when there is no such version, -1 with ERR.
 */
int artifact_read(struct store *s, int64_t stack_id, int64_t version, char **content,
		  size_t *len, int64_t *found, struct orch_error *err);

/*
 * Whether LEN bytes of CONTENT look like something a terminal should not
 * be given: a NUL, a control character other than tab, line feed, form
 * feed and carriage return (an escape sequence's start), or ill-formed
 * UTF-8.
 */
int artifact_is_binary(const char *content, size_t len);

#endif
