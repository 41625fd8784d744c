/*
 * actions_int.h - what lib/actions.c (the vocabulary of actions) and
 * lib/task.c (the agent's task around them) share. Not for other
 * modules: they use actions.h.
 */
#ifndef ORCH_ACTIONS_INT_H
#define ORCH_ACTIONS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/* The planner's memory member orch keeps: the reviewers' advice. */
#define KEY_RECOMMENDATIONS "reviewer_recommendations"

/*
 * Step ST, a query whose first column is an integer, and store_finish it:
 * 1 with *OUT set from the first row, 0 when there is no row, -1 with ERR
 * (prefixed WHAT).
 */
int actions_query_int(struct store *s, struct stmt *st, int64_t *out,
		      const char *what, struct orch_error *err);

/* 0 when stack ID exists, -1 with ERR (66 when it does not). */
int actions_stack_exists(struct store *s, int64_t id, struct orch_error *err);

/* The stack's content_version into *OUT. 0, or -1 with ERR (66 when the
 * stack is gone). */
int actions_content_version(struct store *s, int64_t stack_id, int64_t *out,
			    struct orch_error *err);

/* Store AGENT's memory object MEM (borrowed), creating the row if missing. */
int actions_memory_write(struct store *s, int64_t stack_id, const char *agent,
			 const json_t *mem, int64_t now, struct orch_error *err);

/* 0 when AGENT is one of the four, else -1 with ERR (65). */
int actions_check_agent(const char *agent, struct orch_error *err);

#endif
