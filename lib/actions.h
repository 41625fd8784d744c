/*
 * actions.h - the agent contract: the context an agent command reads, the
 * actions document it prints, and how orch-exec applies them
 * (README.md, "orch.context" and "Actions").
 *
 * The life of one agent run, as orch-exec drives it:
 *
 *   context_build()            own transaction; may claim the task
 *   ... the command runs ...
 *   actions_validate()         pure, no database
 *   store_begin()
 *   actions_apply()            inside the caller's transaction
 *   actions_finish_success()   inside the same transaction
 *   store_commit()
 *
 * and on any failure (command failed, invalid actions, apply failed,
 * rolled back): actions_finish_failure(), in its own transaction.
 */
#ifndef ORCH_ACTIONS_H
#define ORCH_ACTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/* Size limits on what an agent may write. */
#define ACTIONS_MAX_COUNT 100          /* actions in one document */
#define ACTIONS_MAX_TEXT 65536         /* bytes in a todo, message, reply */
#define ACTIONS_MAX_ARTIFACT (1 << 20) /* bytes in one artifact version */

/*
 * What the agent is given to do; filled by context_build(), read by the
 * finish functions.
 */
struct agent_task {
	int64_t execution_id;     /* the cycle it runs in, 0 for none */
	int64_t todo_id;          /* builder: the todo claimed, else 0 */
	int64_t user_message_id;  /* communicator: the message, else 0 */
	size_t recommendations;   /* planner: reviewer recommendations in its
				     context; only these are consumed, so one a
				     reviewer adds during the run survives */
};

/*
 * Build the orch.context document for AGENT of STACK_ID. For the builder,
 * claim the highest-priority pending todo (oldest first among equals) by
 * marking it in_progress, in its own transaction; for the communicator,
 * pick the oldest unprocessed user message.
 * Returns 1 with *OUT a new reference, 0 when the agent has nothing left to
 * do (no pending todo for the builder, no message for the communicator: the
 * state changed since detection), -1 with ERR set.
 */
int context_build(struct store *s, int64_t stack_id, const char *agent,
		  const char *reason, int64_t now, int64_t execution_id,
		  int64_t cycle, struct agent_task *task, json_t **out,
		  struct orch_error *err);

/*
 * Check the shape of an actions document: an object with an "actions" array
 * (and optionally a "thinking" string and a "usage" object) of known action
 * types with typed fields within the size limits. No database. Error 65
 * names the action: "action 2 (update_todo): 'id' must be an integer ...".
 */
int actions_validate(const json_t *doc, struct orch_error *err);

/*
 * Apply a validated document's actions for AGENT of STACK_ID, given TASK
 * (may be NULL; an artifact it writes records TASK's cycle and todo),
 * inside the caller's transaction. Ids must belong to the stack (a todo
 * of another stack is error 65 "action 1 (complete_todo): no todo 7 in
 * this stack").
 * On -1 the caller rolls back.
 */
int actions_apply(struct store *s, int64_t stack_id, const char *agent,
		  const struct agent_task *task, const json_t *doc, int64_t now,
		  struct orch_error *err);

/*
 * The bookkeeping after a successful run, inside the same transaction:
 * planner: last_planning_time = NOW, the first task->recommendations of
 * reviewer_recommendations consumed;
 * reviewer: last_review_time = NOW; builder: its todo completed (unless
 * the agent already set its status); communicator: its message marked
 * processed (if the agent did not reply to it).
 */
int actions_finish_success(struct store *s, int64_t stack_id, const char *agent,
			   const struct agent_task *task, int64_t now,
			   struct orch_error *err);

/*
 * After a failed run, in its own transaction: the builder's todo goes back
 * to pending if it is still in_progress.
 */
int actions_finish_failure(struct store *s, int64_t stack_id, const char *agent,
			   const struct agent_task *task, struct orch_error *err);

#endif
