/*
 * admin.h - the store operations a person drives through orch-stack:
 * creating stacks, changing their state, adding todos and messages.
 * Each runs in its own transaction.
 */
#ifndef ORCH_ADMIN_H
#define ORCH_ADMIN_H

#include <stdint.h>

#include "error.h"
#include "store.h"

/*
 * Check a new stack name: 1-64 characters of [A-Za-z0-9._-], not all
 * digits (a number addresses a stack by id). 0 or -1 with ERR (64).
 */
int admin_check_name(const char *name, struct orch_error *err);

/* A new idle stack, with a project when IDEA is not NULL. Sets *ID.
 * A taken name is error 65 "stack 'NAME' already exists". */
int admin_create(struct store *s, const char *name, const char *idea,
		 int64_t now, int64_t *id, struct orch_error *err);

/* Set the execution state to running, paused or stopped, with its time;
 * starting also makes the stack due now (a wake) and clears its failure
 * streak. */
int admin_set_state(struct store *s, int64_t id, const char *state, int64_t now,
		    struct orch_error *err);

/* Delete a stack and, through the foreign keys, everything it owns. */
int admin_remove(struct store *s, int64_t id, struct orch_error *err);

/* Each of these gives the stack work, and so makes it due now when it is
 * running (schedule_wake), in the same transaction. */
int admin_add_todo(struct store *s, int64_t id, const char *content,
		   int64_t priority, int64_t now, struct orch_error *err);

/* *MESSAGE_ID (when not NULL) is the new message's id. */
int admin_add_user_message(struct store *s, int64_t id, const char *sender,
			   const char *content, int64_t now, int64_t *message_id,
			   struct orch_error *err);

/* A stack as orch-stack list shows it. Strings borrowed for the call. */
struct admin_stack {
	int64_t id;
	const char *name;
	const char *execution_state;
	const char *phase;
	int64_t total_cycles;
	int64_t consecutive_failures; /* the failure streak: orch-decide backs off */
	int64_t next_run_at;          /* 0: due since it started */
	int64_t created_at;
	int64_t pending_todos;
	int64_t todos;                /* all statuses */
	int64_t unprocessed_messages; /* user messages */
};

/*
 * Call FN for every stack, by id, until it returns nonzero. Returns 0,
 * FN's nonzero return, or -1 with ERR.
 */
int admin_list_stacks(struct store *s, int (*fn)(const struct admin_stack *st, void *arg),
		      void *arg, struct orch_error *err);

/* Call FN with every stack's name, sorted, as admin_list_stacks() does. */
int admin_list_names(struct store *s, int (*fn)(const char *name, void *arg),
		     void *arg, struct orch_error *err);

/* A todo. Strings borrowed for the call. */
struct admin_todo {
	int64_t id;
	int64_t priority;
	const char *status;
	const char *content;
	int64_t created_at;
	int64_t completed_at; /* 0 while not completed */
	int64_t attempts;     /* failed builder runs on it */
	const char *last_error; /* the last one's error, or NULL */
};

/* Call FN for every todo of STACK_ID, oldest first, as admin_list_stacks(). */
int admin_list_todos(struct store *s, int64_t stack_id,
		     int (*fn)(const struct admin_todo *t, void *arg), void *arg,
		     struct orch_error *err);

/*
 * Repairs: what a person removes from a stack that went wrong (orch-stack
 * todo rm, todo clear, messages clear, memory clear), each in one
 * transaction. What an agent of a running cycle may hold (a todo in
 * progress, an unanswered message, the inter-stack messages) is refused
 * with 75 while one runs: try again when it ends. None wakes the stack.
 */

/* The statuses a todo may have, NULL-terminated. */
extern const char *const admin_todo_statuses[];

/* Remove todo TODO_ID of STACK_ID: 1, 0 when the stack has no such todo,
 * or -1 with ERR. */
int admin_todo_remove(struct store *s, int64_t stack_id, int64_t todo_id,
		      struct orch_error *err);

/* Give parked todo TODO_ID of STACK_ID back to the builder: pending, its
 * failures forgotten (its last error kept), the stack woken at NOW. 1; 0
 * when the stack has no such todo; -1 with ERR (65: it is not parked). */
int admin_todo_retry(struct store *s, int64_t stack_id, int64_t todo_id, int64_t now,
		     struct orch_error *err);

/* Give STACK_ID's parked user message MESSAGE_ID (0: every parked one)
 * back to the communicator, its failures forgotten, the stack woken at
 * NOW; *RETRIED says how many. 1; 0 when the stack has no message
 * MESSAGE_ID; -1 with ERR (65: that message is not parked). */
int admin_messages_retry(struct store *s, int64_t stack_id, int64_t message_id,
			 int64_t now, int64_t *retried, struct orch_error *err);

/* Remove STACK_ID's todos of STATUS, or the completed and cancelled ones
 * when STATUS is NULL; *REMOVED says how many. */
int admin_todo_clear(struct store *s, int64_t stack_id, const char *status,
		     int64_t *removed, struct orch_error *err);

/* Remove STACK_ID's answered user messages (their replies with them), or
 * with UNANSWERED the ones still waiting; *REMOVED says how many. */
int admin_messages_clear(struct store *s, int64_t stack_id, int unanswered,
			 int64_t *removed, struct orch_error *err);

/* The inter-stack messages STACK_ID received: those to it alone removed
 * (*REMOVED), the broadcasts of other stacks marked read by it at NOW
 * (*MARKED: the newly marked), as the others may still need them. */
int admin_stack_messages_clear(struct store *s, int64_t stack_id, int64_t now,
			       int64_t *removed, int64_t *marked, struct orch_error *err);

/* Remove the memory of AGENT of STACK_ID, or of all four when AGENT is
 * NULL; *REMOVED: the agents whose memory there was. */
int admin_memory_clear(struct store *s, int64_t stack_id, const char *agent,
		       int64_t *removed, struct orch_error *err);

#endif
