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

#endif
