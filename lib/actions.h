/*
 * actions.h - the agent contract: the context an agent command reads, the
 * actions document it prints, and how orch-exec applies them
 * (README.md, "orch.context" and "Actions"). lib/actions.c holds the
 * vocabulary (validating and applying actions), lib/task.c the task
 * around it (the context, what a run must do, what orch settles after).
 *
 * The life of one agent run, as orch-exec drives it:
 *
 *   context_build()            own transaction; may claim the task
 *   ... the command runs ...
 *   actions_validate()         pure, no database
 *   actions_check_task()       pure: did the run do what it was given?
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

/* Inter-stack messages given to the communicator in one run. */
#define CONTEXT_MAX_STACK_MESSAGES 20 /* = SNAPSHOT_MESSAGES */

/*
 * What the agent is given to do; filled by context_build(), read by the
 * finish functions.
 */
struct agent_task {
	int64_t execution_id;     /* the cycle it runs in, 0 for none */
	int64_t todo_id;          /* builder: the todo claimed, else 0 */
	int64_t user_message_id;  /* communicator: the message, else 0 */
	int64_t message_ids[CONTEXT_MAX_STACK_MESSAGES]; /* communicator: the
				     unread inter-stack messages shown, read
				     once the run succeeds */
	size_t nmessages;         /* entries used in message_ids */
	size_t recommendations;   /* planner: reviewer recommendations in its
				     context; only these are consumed, so one a
				     reviewer adds during the run survives */
	int64_t started_at;       /* the context's "now": what the agent saw */
	int64_t cycle;            /* the context's cycle, 0 outside one */
	int64_t version_shown;    /* the stack's content_version in the context */
	int64_t version_at_apply; /* ... when actions_apply() began */
};

/*
 * Build the orch.context document for AGENT of STACK_ID. For the builder,
 * claim the highest-priority pending todo (oldest first among equals) by
 * marking it in_progress, in its own transaction; for the communicator,
 * pick the oldest unprocessed user message and the oldest unread
 * inter-stack messages (at most CONTEXT_MAX_STACK_MESSAGES); for the
 * planner, the user messages since its last planning, answered or not.
 * Returns 1 with *OUT a new reference, 0 when the agent has nothing left to
 * do (no pending todo for the builder, no message for the communicator: the
 * state changed since detection), -1 with ERR set.
 */
int context_build(struct store *s, int64_t stack_id, const char *agent,
		  const char *reason, int64_t now, int64_t execution_id,
		  int64_t cycle, struct agent_task *task, json_t **out,
		  struct orch_error *err);

/*
 * context_build()'s work inside the caller's write transaction
 * (store_begin), which it neither commits nor rolls back: orch-exec
 * --dry-run builds each node's context exactly as a run would, the
 * builder's claim included, then rolls it all back.
 */
int context_build_in(struct store *s, int64_t stack_id, const char *agent,
		     const char *reason, int64_t now, int64_t execution_id,
		     int64_t cycle, struct agent_task *task, json_t **out,
		     struct orch_error *err);

/*
 * Check the shape of an actions document: an object with an "actions" array
 * (and optionally a "thinking" string, a "usage" object and a
 * "retry_after_ms" from 0 to ORCH_MAX_PAUSE_MS) of known action
 * types with typed fields within the size limits. No database. Error 65
 * names the action: "action 2 (update_todo): 'id' must be an integer ...".
 */
int actions_validate(const json_t *doc, struct orch_error *err);

/*
 * Whether a validated document DOC of AGENT did the task it was given
 * (README.md, "What a run must do"): a builder given todo TODO_ID writes
 * an artifact or sets that todo's status; a communicator given user
 * message USER_MESSAGE_ID replies to it. Otherwise error 65 saying what
 * is missing, and nothing is applied: the todo goes back to pending, the
 * message stays unanswered. 0 when the task is done or there is none.
 */
int actions_check_task(const json_t *doc, const char *agent, int64_t todo_id,
		       int64_t user_message_id, struct orch_error *err);

/* The same, with the task read from CTX, the orch.context the agent was
 * given (an orch-agent has only that). */
int actions_check_context(const json_t *doc, const json_t *ctx,
			  struct orch_error *err);

/*
 * What a validated document does for the other agents, counted by kind:
 * {"todos_created", "todos_reopened", "recommendations", "artifacts",
 * "replies", "messages_sent"}, each an integer. A new reference.
 */
json_t *actions_effects(const json_t *doc);

/*
 * Apply a validated document's actions for AGENT of STACK_ID, inside the
 * caller's transaction, first noting the stack's content_version in
 * TASK->version_at_apply (an artifact it writes records TASK's cycle and
 * todo). Ids must belong to the stack (a todo of another
 * stack is error 65 "action 1 (complete_todo): no todo 7 in this stack").
 * While the builder runs, its todo is its own: another agent's action on
 * it is 65 "todo 7 is being built; ...". A document that would leave the
 * stack past one of its totals (bounds.h) is 65 "refused: ...".
 * On -1 the caller rolls back.
 */
int actions_apply(struct store *s, int64_t stack_id, const char *agent,
		  const json_t *doc, int64_t now, struct agent_task *task,
		  struct orch_error *err);

/*
 * The bookkeeping after a successful run, inside the same transaction:
 * planner: the first task->recommendations of reviewer_recommendations
 * consumed; builder: its todo completed (unless the agent set its status);
 * communicator: the inter-stack messages it was shown marked read. Then,
 * for every agent, its last run in agent_runs: task->started_at (which
 * the snapshot shows as last_planning_time and last_review_time), NOW,
 * task->cycle, and the content_version it leaves as seen: the version
 * after its own writes when nobody else changed the stack during the run,
 * else the version it was shown (so the next detection sees the change).
 */
int actions_finish_success(struct store *s, int64_t stack_id, const char *agent,
			   const struct agent_task *task, int64_t now,
			   struct orch_error *err);

/*
 * After a failed run, in its own transaction: the builder's todo goes back
 * to pending if it is still in_progress. WHY, when the failure was the
 * run's own (its output, its exit, its timeout; not the provider's 69 or
 * 75, nor a signal to orch-exec), is counted against what the run was
 * given: the builder's todo, the communicator's user message and
 * inter-stack messages. Once one has failed PARK_AFTER times (0: never)
 * it is parked with WHY as its last error (README.md, "Parked work"): a
 * todo's status becomes 'parked', a user message gets parked_at NOW, an
 * inter-stack message is set aside as read.
 */
int actions_finish_failure(struct store *s, int64_t stack_id, const char *agent,
			   const struct agent_task *task, const char *why,
			   int64_t park_after, int64_t now, struct orch_error *err);

#endif
