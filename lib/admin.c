#include <string.h>

#include "admin.h"
#include "orch.h"
#include "schedule.h"
#include "banned.h"

int admin_check_name(const char *name, struct orch_error *err)
{
	size_t n = strlen(name), i, digits = 0;

	if (n == 0 || n > 64)
		return orch_error_set(err, ORCH_EX_USAGE,
				      "stack name '%s' must be 1 to 64 characters", name);
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			digits++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   c == '.' || c == '_' || c == '-'))
			return orch_error_set(err, ORCH_EX_USAGE,
					      "stack name '%s' may only hold letters, digits, '.', '_' and '-'",
					      name);
	}
	if (digits == n)
		return orch_error_set(err, ORCH_EX_USAGE,
				      "stack name '%s' must not be all digits", name);
	return 0;
}

int admin_create(struct store *s, const char *name, const char *idea,
		 int64_t now, int64_t *id, struct orch_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (store_begin(s, err) != 0)
		return -1;
	if (!(st = store_prepare(s, "INSERT INTO stacks (name, created_at) VALUES (?, ?)", err)))
		goto fail;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	store_finish(s, st);
	if (rc == SQLITE_CONSTRAINT) {
		orch_error_set(err, ORCH_EX_DATAERR, "stack '%s' already exists", name);
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		store_error(s, err, "creating the stack");
		goto fail;
	}
	*id = sqlite3_last_insert_rowid(s->db);
	if (idea) {
		if (!(st = store_prepare(s, "INSERT INTO projects (stack_id, title, description,"
					 " created_at, updated_at) VALUES (?, ?, ?, ?, ?)", err)))
			goto fail;
		sqlite3_bind_int64(st, 1, *id);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, idea, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_int64(st, 5, now);
		if (store_step_done(s, st, "creating the project", err) != 0)
			goto fail;
	}
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

int admin_set_state(struct store *s, int64_t id, const char *state, int64_t now,
		    struct orch_error *err)
{
	const char *sql;
	sqlite3_stmt *st;

	if (strcmp(state, "running") == 0)
		sql = "UPDATE stacks SET execution_state = 'running', started_at = ?2,"
		      " next_run_at = ?2, wake_at = ?2, consecutive_failures = 0 WHERE id = ?1";
	else if (strcmp(state, "paused") == 0)
		sql = "UPDATE stacks SET execution_state = 'paused', paused_at = ?2 WHERE id = ?1";
	else
		sql = "UPDATE stacks SET execution_state = 'stopped', stopped_at = ?2 WHERE id = ?1";
	if (!(st = store_prepare(s, sql, err)))
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return store_step_done(s, st, "changing the stack's state", err);
}

int admin_remove(struct store *s, int64_t id, struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, "DELETE FROM stacks WHERE id = ?", err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_step_done(s, st, "removing the stack", err);
}

/* Step ST, an insert of work for stack ID, and wake the stack, in one
 * transaction. */
static int insert_and_wake(struct store *s, sqlite3_stmt *st, int64_t id,
			   int64_t now, const char *what, struct orch_error *err)
{
	if (store_begin(s, err) != 0) {
		store_finish(s, st);
		return -1;
	}
	if (store_step_done(s, st, what, err) != 0 ||
	    schedule_wake(s, id, now, err) != 0) {
		store_rollback(s);
		return -1;
	}
	return store_commit(s, err);
}

int admin_add_todo(struct store *s, int64_t id, const char *content,
		   int64_t priority, int64_t now, struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, "INSERT INTO todos (stack_id, content,"
					 " priority, created_at) VALUES (?, ?, ?, ?)", err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, content, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, priority);
	sqlite3_bind_int64(st, 4, now);
	return insert_and_wake(s, st, id, now, "adding the todo", err);
}

int admin_add_user_message(struct store *s, int64_t id, const char *sender,
			   const char *content, int64_t now, int64_t *message_id,
			   struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, "INSERT INTO user_messages (stack_id, sender,"
					 " content, created_at) VALUES (?, ?, ?, ?)", err);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, content, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	if (insert_and_wake(s, st, id, now, "adding the message", err) != 0)
		return -1;
	if (message_id)
		*message_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}
