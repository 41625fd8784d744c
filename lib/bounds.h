/*
 * bounds.h - the totals a stack may hold (README.md, "Bounds"). Each
 * action is bounded on its own (actions.h); these bound what many runs
 * add up to, so the context every agent reads stays within its budget
 * however long the stack runs: an agent's document that would push its
 * stack past one is refused as a whole, naming the total.
 *
 * What only grows with time (completed todos, answered messages) is not
 * refused but windowed: the snapshot shows the newest and counts the
 * rest (snapshot.h).
 */
#ifndef ORCH_BOUNDS_H
#define ORCH_BOUNDS_H

#include <stdint.h>

#include "error.h"
#include "orch.h"
#include "store.h"

#define BOUND_OPEN_TODOS 200             /* pending, in progress or parked */
#define BOUND_OPEN_TODO_BYTES (1 << 20)  /* their text together */
#define BOUND_MEMORY_BYTES (256 * 1024)  /* one agent's memory, as JSON */
#define BOUND_RECOMMENDATIONS 100        /* waiting for the planner */
#define BOUND_SENT_PER_HOUR 60           /* inter-stack messages a stack sends */

struct bounds_totals {
	int64_t open_todos;
	int64_t open_todo_bytes;
	int64_t memory_bytes[ORCH_AGENT_COUNT]; /* in orch_agents order */
	int64_t recommendations;
	int64_t sent_last_hour;
};

/* Stack STACK_ID's totals at NOW into *T. 0, or -1 with ERR. */
int bounds_read(struct store *s, int64_t stack_id, int64_t now,
		struct bounds_totals *t, struct orch_error *err);

/*
 * 0 when AFTER is within every bound, or did not grow past BEFORE where
 * it was already over one (a stack from before the bounds can still
 * shrink); else -1 with ERR (65) naming the total: "the stack would have
 * 201 open todos, at most 200".
 */
int bounds_check(const struct bounds_totals *before,
		 const struct bounds_totals *after, struct orch_error *err);

#endif
