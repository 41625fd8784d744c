/*
 * snapshot.h - the orch.snapshot document: one stack's state as every
 * agent and rule sees it (README.md, "orch.snapshot").
 */
#ifndef ORCH_SNAPSHOT_H
#define ORCH_SNAPSHOT_H

#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "store.h"

/*
 * The windows that keep a snapshot, and so every context, within its
 * budget however long a stack runs (README.md, "Bounds"): what only
 * grows with time is shown newest (or oldest unanswered) first, and
 * "omitted" counts the rest. Open todos are bounded by bounds.h instead.
 */
#define SNAPSHOT_CLOSED_TODOS 20    /* completed or cancelled, newest */
#define SNAPSHOT_USER_MESSAGES 20   /* unprocessed, oldest; and since planning, newest */
#define SNAPSHOT_MESSAGES 20        /* unread inter-stack messages, oldest */
#define SNAPSHOT_MESSAGE_BYTES 262144 /* ... and their content together */

/*
 * The snapshot of stack ID: a new reference, or NULL with ERR set (66 when
 * there is no such stack, a store error otherwise). Reads in one
 * transaction, so the document is consistent.
 */
json_t *snapshot_load(struct store *s, int64_t stack_id, struct orch_error *err);

/*
 * The latest artifact's content as a new JSON string (artifacts are text),
 * or json null when the stack has none. NULL with ERR set on failure.
 */
json_t *snapshot_artifact_content(struct store *s, int64_t stack_id,
				  struct orch_error *err);

/*
 * The agent's memory object (always an object, {} when none is stored):
 * a new reference, or NULL with ERR set.
 */
json_t *snapshot_memory(struct store *s, int64_t stack_id, const char *agent,
			struct orch_error *err);

#endif
