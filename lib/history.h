/*
 * history.h - what a stack's cycles did, as the store recorded them: the
 * execution rows and their decisions, each cycle's orch.execution
 * document, the tokens spent, and why a stack keeps failing.
 *
 * The list functions call the caller's FN for each row, until FN returns
 * nonzero; they return 0, FN's nonzero return, or -1 with ERR. The strings
 * of a row are borrowed for the call; NULL stands for SQL NULL.
 */
#ifndef ORCH_HISTORY_H
#define ORCH_HISTORY_H

#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/* One cycle: its execution row. */
struct history_cycle {
	int64_t execution_id;
	int64_t cycle;
	const char *status;     /* running, completed, failed */
	int64_t started_at;
	int has_ended;          /* ended_at is set */
	int64_t ended_at;
	const char *decision;   /* continue, pause, stop; NULL before orch-decide */
	int has_pause;          /* pause_ms is set */
	int64_t pause_ms;
	int has_next;           /* next_at is set */
	int64_t next_at;
	const char *reason;     /* the decision's reason */
	const char *error;      /* the first failure */
	const char *summary;    /* orch-exec's summary, JSON text */
	size_t summary_len;     /* bytes in summary */
};

/* The latest LIMIT cycles of STACK_ID, newest first. */
int history_cycles(struct store *s, int64_t stack_id, int64_t limit,
		   int (*fn)(const struct history_cycle *c, void *arg), void *arg,
		   struct orch_error *err);

/*
 * C as `orch-stack history --json` prints it (a new reference), or NULL
 * with ERR (65) when its summary is not JSON or its text not UTF-8; the
 * message names the cycle of stack STACK_NAME.
 */
json_t *history_cycle_json(const struct history_cycle *c, const char *stack_name,
			   struct orch_error *err);

/*
 * The orch.execution document cycle CYCLE of STACK (0: the latest that
 * recorded one) recorded: 1 with *OUT a new reference and *FOUND its
 * cycle, 0 when there is none, -1 with ERR (65: not valid JSON, the
 * message naming the cycle).
 */
int history_execution(struct store *s, const struct stack_row *stack, int64_t cycle,
		      json_t **out, int64_t *found, struct orch_error *err);

/* The tokens of one agent at one model on one UTC day. */
struct history_usage {
	const char *agent;
	const char *model;        /* "" when the runs did not say */
	const char *day;          /* "2026-11-25" */
	int64_t runs;             /* agent runs recorded, attempts included */
	int64_t failed_runs;      /* of which failed */
	int64_t requests;         /* HTTP requests orch-agent sent (llm_requests) */
	int64_t prompt_tokens;    /* a count beyond belief adds 0 (TRACES_TOKENS);
				     the sum stops at INT64_MAX */
	int64_t completion_tokens;
	int64_t cached_tokens;    /* of the prompt tokens, served from a cache */
	int64_t failed_tokens;    /* prompt and completion spent in failed runs */
};

/* A + B for token counts (a negative one is 0): stops at INT64_MAX
 * instead of overflowing. */
int64_t history_tokens_add(int64_t a, int64_t b);

/*
 * The tokens STACK's agents (every stack's, STACK NULL) spent from SINCE
 * on, per agent (planner, builder, communicator, reviewer), model and
 * day. Where orch-agent recorded its requests (usage.h) they are counted,
 * each one, those of failed runs too, and the run's own usage is not;
 * for any other run, its usage. Retention's pruned runs (retention.h)
 * count whole days: from SINCE's day on. A recorded usage that is not
 * JSON is error 65, naming its trace.
 */
int history_usage(struct store *s, const struct stack_row *stack, int64_t since,
		  int (*fn)(const struct history_usage *u, void *arg), void *arg,
		  struct orch_error *err);

/*
 * Why a stack keeps failing: filled by history_diagnose() when its last
 * cycles (at least HISTORY_STREAK of them) all failed for one cause.
 */
#define HISTORY_STREAK 2

struct history_diagnosis {
	int64_t failures;  /* the failed cycles in a row, the latest included */
	char *cause;       /* owned: the cause in plain words */
	char *fix;         /* owned: what to do about it */
};

void history_diagnosis_release(struct history_diagnosis *d);

/*
 * Look at STACK's failure streak: 1 with D filled when its last cycles
 * failed for the same cause (no API key, an agent command missing or not
 * executable, a timeout, or the same error word for word), 0 when not,
 * -1 with ERR.
 */
int history_diagnose(struct store *s, const struct stack_row *stack,
		     struct history_diagnosis *d, struct orch_error *err);

#endif
