/*
 * decide.h - what a stack does after a cycle: continue at once, pause, or
 * stop. Pure rules over an orch.execution document (README.md, "Decision
 * rules"), so the tests and orch-decide --no-db call the same code.
 *
 * A stack continues at once only when the cycle gave another agent work
 * (todos created or reopened for the builder, recommendations for the
 * planner) or a write woke it during the cycle: an agent that ran and
 * made nothing new leaves the stack to pause, so a finished stack goes
 * quiet instead of running its planner around the clock. A stack over a
 * token budget pauses until it resets, or stops at a total one.
 */
#ifndef ORCH_DECIDE_H
#define ORCH_DECIDE_H

#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"

/* The pauses, in ms, from decide_rules_configure(); each is named by its
 * configuration key. */
struct decide_rules {
	int64_t busy_pause;       /* pause.busy: another pipeline holds the stack */
	int64_t idle_urgent;      /* pause.idle_urgent: no nodes, max priority >= 5: at least this */
	int64_t idle_normal;      /* pause.idle_normal: no nodes, max priority >= 3: at least this */
	int64_t idle_quiet;       /* pause.idle_quiet: no nodes, lower: at least this */
	int64_t idle_cap;         /* pause.idle_cap: no idle pause exceeds it; the
				     pause when no periodic check is due */
	int64_t failure_pause;    /* pause.failure: the first failed cycle, doubled per failure in a row */
	int64_t failure_cap;      /* pause.failure_cap: the backoff's ceiling */
	int64_t progress_pause;   /* pause.progress: nodes completed, no new work */
	int64_t nothing_pause;    /* pause.nothing: nothing completed, nothing failed */
};

/*
 * The rules of configuration C (its pause.* keys, lib/config.c) into *R,
 * each key C sets replacing its default; an empty C gives the documented
 * pauses. 0, or -1 with ERR (65).
 */
int decide_rules_configure(struct decide_rules *r, const struct config *c,
			   struct orch_error *err);

/* What the caller should record, filled by decide(). */
struct decision_facts {
	int record;      /* the cycle ran and the stack is still running */
	int failed;      /* a node failed: the failure streak grows */
	int floor;       /* the pause is an agent's retry_after_ms: no wake
			    during the cycle shortens it */
	int stop;        /* a total budget is reached: the stack is stopped */
	int64_t detected_at;  /* the work status's time, 0 when unknown: a
				 wake after it makes the stack due at once */
	int64_t stack_id;     /* the document's stack */
	int64_t execution_id; /* 0 when the document has none */
};

/* What the store says of the stack now; all 0 without a store. */
struct decide_stack {
	const char *state;            /* execution_state, NULL when deleted */
	int64_t consecutive_failures; /* failed cycles in a row before this one */
	int64_t wake_at;              /* the last write that woke it, 0 never */
	int64_t budget_until;         /* its tightest token budget (budget.h):
					 0 none applies, -1 a total one, else
					 the daily one's reset */
	const char *budget_reason;    /* set when that budget is reached;
					 NULL while it is not */
};

/*
 * Decide for EXECUTION (an orch.execution document) at NOW, given what
 * the store says of its stack (STACK). Returns a new reference to an
 * orch.decision document, whose "rule" names the rule that fired, and
 * fills FACTS; or NULL with ERR set (65, naming the field).
 */
json_t *decide(const json_t *execution, const struct decide_stack *stack,
	       int64_t now, const struct decide_rules *rules,
	       struct decision_facts *facts, struct orch_error *err);

#endif
