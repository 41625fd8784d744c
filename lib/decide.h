/*
 * decide.h - what a stack does after a cycle: continue at once, pause, or
 * stop. Pure rules over an orch.execution document (README.md), so the
 * tests and orch-decide --no-db call the same code.
 */
#ifndef ORCH_DECIDE_H
#define ORCH_DECIDE_H

#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct decide_rules {
	int64_t busy_pause;       /* another pipeline holds the stack: 1000 */
	int64_t idle_urgent;      /* no nodes, max priority >= 5: 1000 */
	int64_t idle_normal;      /* no nodes, max priority >= 3: 5000 */
	int64_t idle_quiet;       /* no nodes, lower: 10000 */
	int64_t idle_cap;         /* no pause for an idle stack exceeds: 30000 */
	int64_t failure_pause;    /* first failed cycle: 5000, doubled per failure in a row */
	int64_t failure_cap;      /* backoff ceiling: 300000 */
	int64_t progress_pause;   /* nodes completed, planner did not: 1000 */
	int64_t nothing_pause;    /* nothing completed, nothing failed: 5000 */
};

struct decide_rules decide_rules_default(void);

/* What the caller should record, filled by decide(). */
struct decision_facts {
	int record;      /* the cycle ran and the stack is still running */
	int failed;      /* a node failed: the failure streak grows */
	int64_t stack_id;     /* the document's stack */
	int64_t execution_id; /* 0 when the document has none */
};

/*
 * Decide for EXECUTION (an orch.execution document). CURRENT_STATE is the
 * stack's execution_state now (NULL: deleted); CONSECUTIVE_FAILURES the
 * failed cycles in a row before this one. Returns a new reference to an
 * orch.decision document and fills FACTS, or NULL with ERR set (65, naming
 * the field).
 */
json_t *decide(const json_t *execution, const char *current_state,
	       int64_t consecutive_failures, int64_t now,
	       const struct decide_rules *rules, struct decision_facts *facts,
	       struct orch_error *err);

#endif
