/*
 * traces.h - what every agent did: one trace per attempt, as orch-exec
 * recorded it (cycle.h's cycle_trace): the context it was given, what it
 * printed, its stderr (the last SPAWN_MAX_STDERR bytes), its exit status,
 * error and token usage. traces_fts, a full-text index kept by triggers,
 * covers the thinking, the actions, the error and the stderr of each.
 */
#ifndef ORCH_TRACES_H
#define ORCH_TRACES_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/*
 * The most tokens one agent run can have spent, by either count of its
 * usage (a trillion: no model comes near). A count that is not a whole
 * number from 0 to this is not believed: it is read as none, so no sum of
 * them can be thrown off, or overflow, by what an agent reported.
 */
#define TRACES_TOKENS_MAX 1000000000000
#define TRACES_STR_(x) #x
#define TRACES_STR(x) TRACES_STR_(x)
/* SQL: the count FIELD ("prompt_tokens") of the usage JSON text in column
 * USAGE, as TRACES_TOKENS_MAX says it is read. */
#define TRACES_TOKENS(usage, field)                                             \
	"(CASE WHEN json_valid(" usage ")"                                        \
	" AND json_type(" usage ", '$." field "') = 'integer' THEN"              \
	" CASE WHEN CAST(json_extract(" usage ", '$." field "') AS NUMERIC)"      \
	"     BETWEEN 0 AND " TRACES_STR(TRACES_TOKENS_MAX)                       \
	" THEN CAST(json_extract(" usage ", '$." field "') AS BIGINT) ELSE 0 END" \
	" ELSE 0 END)"

/* Which traces traces_list() gives: 0 or NULL where a filter is off. */
struct traces_filter {
	int64_t stack_id;     /* the stack's */
	int64_t cycle;        /* of this cycle only */
	const char *agent;    /* of this agent only */
	int failed;           /* failed attempts only */
	int64_t since;        /* started at or after (ms) */
	const char *query;    /* containing every word of it (full text) */
	int64_t limit;        /* at most this many, newest first */
};

/* One attempt. Strings borrowed for the call; NULL for SQL NULL. */
struct traces_row {
	int64_t id;
	int64_t execution_id;   /* 0 when unknown */
	int64_t cycle;          /* 0 when unknown */
	const char *stack;      /* the stack's name */
	const char *agent;
	int64_t attempt;        /* from 1 */
	const char *status;     /* completed, failed */
	int64_t started_at;
	int64_t ended_at;
	int has_exit_status;    /* it exited normally */
	int64_t exit_status;
	int64_t prompt_tokens;  /* from its usage; 0 when none (TRACES_TOKENS) */
	int64_t completion_tokens;
	const char *actions;    /* the types of its actions, space-separated */
	const char *error;
	/* Filled by traces_get() only: */
	const char *input;      /* the context, JSON text (artifact left out) */
	size_t input_len;
	const char *output;     /* what it printed on stdout */
	size_t output_len;
	const char *stderr_text; /* the end of what it printed on stderr */
	size_t stderr_len;
	int64_t stderr_dropped; /* bytes of stderr before those, not kept */
	const char *usage;      /* JSON text */
	size_t usage_len;
};

/*
 * Call FN for each trace F selects, newest first, until it returns
 * nonzero. F->query is taken as words, each of which must appear (a word
 * of several tokens, "provider-A", as a phrase); it is never FTS5 syntax.
 * Returns 0, FN's nonzero return, or -1 with ERR.
 */
int traces_list(struct store *s, const struct traces_filter *f,
		int (*fn)(const struct traces_row *t, void *arg), void *arg,
		struct orch_error *err);

/* Trace ID whole: FN called once; 1, 0 when there is none, -1 with ERR. */
int traces_get(struct store *s, int64_t id,
	       int (*fn)(const struct traces_row *t, void *arg), void *arg,
	       struct orch_error *err);

/*
 * "create_todo x2, set_phase" from T's action types, or "no actions";
 * for a failed attempt its error. New string.
 */
char *traces_result(const struct traces_row *t);

/*
 * T as JSON, a new reference: the columns of `log --json`, and with WHOLE
 * (log show --json) the context, output and usage parsed when they are
 * JSON (else as text), the thinking and the stderr. Never fails: text
 * that is not UTF-8 has its ill-formed bytes replaced by U+FFFD.
 */
json_t *traces_json(const struct traces_row *t, int whole);

#endif
