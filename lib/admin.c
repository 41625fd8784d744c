#include <string.h>

#include "actions.h"
#include "admin.h"
#include "escape.h"
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

/*
 * Text a person gives, checked at the door: valid UTF-8 (every program and
 * agent after reads it as JSON text) and at most ACTIONS_MAX_TEXT bytes,
 * as an agent's text is. 0, or -1 with ERR (65) naming WHAT.
 */
static int check_text(const char *text, const char *what, struct orch_error *err)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t n = strlen(text), i = 0;
	int k;

	if (n > ACTIONS_MAX_TEXT)
		return orch_error_set(err, ORCH_EX_DATAERR, "%s is %zu bytes, at most %d",
				      what, n, ACTIONS_MAX_TEXT);
	while (i < n) {
		if ((k = escape_utf8_len(p + i, n - i)) == 0)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "%s is not valid UTF-8 (byte %zu)", what, i + 1);
		i += (size_t)k;
	}
	return 0;
}

int admin_create(struct store *s, const char *name, const char *idea,
		 int64_t now, int64_t *id, struct orch_error *err)
{
	struct stmt *st;
	int rc;

	if (idea && check_text(idea, "the idea", err) != 0)
		return -1;
	if (store_begin(s, err) != 0)
		return -1;
	if (!(st = store_prepare(s, "INSERT INTO stacks (name, created_at) VALUES (?, ?)"
				 " RETURNING id", err)))
		goto fail;
	stmt_bind_text(st, 1, name);
	stmt_bind_int(st, 2, now);
	rc = stmt_step(st);
	if (rc == STMT_ROW)
		*id = stmt_int(st, 0);
	else if (store_error_is_constraint(s))
		orch_error_set(err, ORCH_EX_DATAERR, "stack '%s' already exists", name);
	else
		store_error(s, err, "creating the stack");
	store_finish(s, st);
	if (rc != STMT_ROW)
		goto fail;
	if (idea) {
		if (!(st = store_prepare(s, "INSERT INTO projects (stack_id, title, description,"
					 " created_at, updated_at) VALUES (?, ?, ?, ?, ?)", err)))
			goto fail;
		stmt_bind_int(st, 1, *id);
		stmt_bind_text(st, 2, name);
		stmt_bind_text(st, 3, idea);
		stmt_bind_int(st, 4, now);
		stmt_bind_int(st, 5, now);
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
	struct stmt *st;

	if (strcmp(state, "running") == 0)
		sql = "UPDATE stacks SET execution_state = 'running', started_at = ?2,"
		      " next_run_at = ?2, wake_at = ?2, consecutive_failures = 0 WHERE id = ?1";
	else if (strcmp(state, "paused") == 0)
		sql = "UPDATE stacks SET execution_state = 'paused', paused_at = ?2 WHERE id = ?1";
	else
		sql = "UPDATE stacks SET execution_state = 'stopped', stopped_at = ?2 WHERE id = ?1";
	if (!(st = store_prepare(s, sql, err)))
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, now);
	return store_step_done(s, st, "changing the stack's state", err);
}

int admin_remove(struct store *s, int64_t id, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "DELETE FROM stacks WHERE id = ?", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	return store_step_done(s, st, "removing the stack", err);
}

/* Step ST, an insert of work for stack ID, and wake the stack, in one
 * transaction. */
static int insert_and_wake(struct store *s, struct stmt *st, int64_t id,
			   int64_t now, const char *what, int64_t *new_id,
			   struct orch_error *err)
{
	int rc;

	if (store_begin(s, err) != 0) {
		store_finish(s, st);
		return -1;
	}
	if (new_id) {
		/* INSERT ... RETURNING id: the row is written at the first step. */
		if ((rc = stmt_step(st)) == STMT_ROW)
			*new_id = stmt_int(st, 0);
		else
			store_error(s, err, what);
		store_finish(s, st);
	} else {
		rc = store_step_done(s, st, what, err) == 0 ? STMT_ROW : STMT_ERROR;
	}
	if (rc != STMT_ROW || schedule_wake(s, id, now, err) != 0) {
		store_rollback(s);
		return -1;
	}
	return store_commit(s, err);
}

int admin_add_todo(struct store *s, int64_t id, const char *content,
		   int64_t priority, int64_t now, struct orch_error *err)
{
	struct stmt *st;

	if (check_text(content, "the todo", err) != 0 ||
	    !(st = store_prepare(s, "INSERT INTO todos (stack_id, content,"
				 " priority, created_at) VALUES (?, ?, ?, ?)", err)))
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_text(st, 2, content);
	stmt_bind_int(st, 3, priority);
	stmt_bind_int(st, 4, now);
	return insert_and_wake(s, st, id, now, "adding the todo", NULL, err);
}

int admin_add_user_message(struct store *s, int64_t id, const char *sender,
			   const char *content, int64_t now, int64_t *message_id,
			   struct orch_error *err)
{
	struct stmt *st;
	int64_t unused;

	if (check_text(sender, "the sender", err) != 0 ||
	    check_text(content, "the message", err) != 0 ||
	    !(st = store_prepare(s, "INSERT INTO user_messages (stack_id, sender,"
				 " content, created_at) VALUES (?, ?, ?, ?) RETURNING id", err)))
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_text(st, 2, sender);
	stmt_bind_text(st, 3, content);
	stmt_bind_int(st, 4, now);
	return insert_and_wake(s, st, id, now, "adding the message",
			       message_id ? message_id : &unused, err);
}

static const char *text(struct stmt *st, int col)
{
	const char *t = store_column_text(st, col);

	return t ? t : "";
}

/* A caller's callback and its argument, for each row adapter below. */
struct stacks_each {
	int (*fn)(const struct admin_stack *st, void *arg);
	void *arg;
};

static int stack_row_cb(struct stmt *st, void *arg)
{
	struct stacks_each *e = arg;
	struct admin_stack a = {
		.id = stmt_int(st, 0),
		.name = text(st, 1),
		.execution_state = text(st, 2),
		.phase = text(st, 3),
		.total_cycles = stmt_int(st, 4),
		.consecutive_failures = stmt_int(st, 5),
		.next_run_at = stmt_int(st, 6),
		.created_at = stmt_int(st, 7),
		.pending_todos = stmt_int(st, 8),
		.todos = stmt_int(st, 9),
		.unprocessed_messages = stmt_int(st, 10),
	};

	return e->fn(&a, e->arg);
}

int admin_list_stacks(struct store *s, int (*fn)(const struct admin_stack *st, void *arg),
		      void *arg, struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"SELECT id, name, execution_state, phase, total_cycles, consecutive_failures,"
		" next_run_at, created_at,"
		" (SELECT count(*) FROM todos t WHERE t.stack_id = s.id AND t.status = 'pending'),"
		" (SELECT count(*) FROM todos t WHERE t.stack_id = s.id),"
		" (SELECT count(*) FROM user_messages m WHERE m.stack_id = s.id AND m.processed = 0"
		"   AND m.parked_at IS NULL)"
		" FROM stacks s ORDER BY id", err);
	struct stacks_each e = { fn, arg };

	if (!st)
		return -1;
	return store_each(s, st, stack_row_cb, &e, "listing stacks", err);
}

struct names_each {
	int (*fn)(const char *name, void *arg);
	void *arg;
};

static int name_row_cb(struct stmt *st, void *arg)
{
	struct names_each *e = arg;

	return e->fn(text(st, 0), e->arg);
}

int admin_list_names(struct store *s, int (*fn)(const char *name, void *arg),
		     void *arg, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT name FROM stacks ORDER BY name", err);
	struct names_each e = { fn, arg };

	if (!st)
		return -1;
	return store_each(s, st, name_row_cb, &e, "listing stacks", err);
}

struct todos_each {
	int (*fn)(const struct admin_todo *t, void *arg);
	void *arg;
};

static int todo_row_cb(struct stmt *st, void *arg)
{
	struct todos_each *e = arg;
	struct admin_todo t = {
		.id = stmt_int(st, 0),
		.priority = stmt_int(st, 1),
		.status = text(st, 2),
		.content = text(st, 3),
		.created_at = stmt_int(st, 4),
		.completed_at = stmt_int(st, 5),
		.attempts = stmt_int(st, 6),
		.last_error = stmt_text(st, 7),
	};

	return e->fn(&t, e->arg);
}

int admin_list_todos(struct store *s, int64_t stack_id,
		     int (*fn)(const struct admin_todo *t, void *arg), void *arg,
		     struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT id, priority, status, content, created_at,"
					 " COALESCE(completed_at, 0), attempts, last_error FROM todos"
					 " WHERE stack_id = ? ORDER BY id", err);
	struct todos_each e = { fn, arg };

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	return store_each(s, st, todo_row_cb, &e, "listing todos", err);
}

/* --- repairs: what a person removes (orch-stack todo rm/clear, ...) --- */

const char *const admin_todo_statuses[] = {
	"pending", "in_progress", "completed", "cancelled", "parked", NULL,
};

/* SQL prepared, with ?1 the stack, ?2 ID and ?3 TEXT (unbound when NULL). */
static struct stmt *prepare_bound(struct store *s, const char *sql, int64_t stack_id,
				   int64_t id, const char *text, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, sql, err);

	if (!st)
		return NULL;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, id);
	if (text)
		stmt_bind_text(st, 3, text);
	return st;
}

/* The count the query SQL gives (parameters as prepare_bound's), in *N. */
static int count_rows(struct store *s, const char *sql, int64_t stack_id, int64_t id,
		      const char *text, int64_t *n, struct orch_error *err)
{
	struct stmt *st = prepare_bound(s, sql, stack_id, id, text, err);

	if (!st)
		return -1;
	return store_query_int(s, st, n, "reading the stack", err) < 0 ? -1 : 0;
}

/* Error 75 when a cycle of STACK_ID is running, since what WHAT names
 * may be in its agents' hands; 0 when none is; -1 with ERR. */
static int not_running(struct store *s, int64_t stack_id, const char *what,
		       struct orch_error *err)
{
	int64_t n;

	if (count_rows(s, "SELECT count(*) FROM executions WHERE stack_id = ?1"
		       " AND status = 'running'", stack_id, 0, NULL, &n, err) != 0)
		return -1;
	if (n)
		return orch_error_set(err, ORCH_EX_TEMPFAIL,
				      "%s: a cycle of the stack is running; try again when it ends",
				      what);
	return 0;
}

/* Run the write SQL (prepare_bound's parameters, and ?4 NOW); add the
 * rows it changed to *N. */
static int change_rows(struct store *s, const char *sql, int64_t stack_id, int64_t id,
		       const char *text, int64_t now, int64_t *n, const char *what,
		       struct orch_error *err)
{
	struct stmt *st = prepare_bound(s, sql, stack_id, id, text, err);

	if (!st)
		return -1;
	stmt_bind_int(st, 4, now);
	if (store_step_done(s, st, what, err) != 0)
		return -1;
	*n += store_changes(s);
	return 0;
}

/* End a repair's transaction: commit when RC is not -1, else roll back.
 * Returns RC, or -1. */
static int repair_end(struct store *s, int rc, struct orch_error *err)
{
	if (rc < 0) {
		store_rollback(s);
		return -1;
	}
	return store_commit(s, err) == 0 ? rc : -1;
}

int admin_todo_remove(struct store *s, int64_t stack_id, int64_t todo_id,
		      struct orch_error *err)
{
	int64_t found = 0, busy = 0, n = 0;
	int rc = -1;

	if (store_begin(s, err) != 0)
		return -1;
	if (count_rows(s, "SELECT count(*) FROM todos WHERE stack_id = ?1 AND id = ?2",
		       stack_id, todo_id, NULL, &found, err) != 0 ||
	    count_rows(s, "SELECT count(*) FROM todos WHERE stack_id = ?1 AND id = ?2"
		       " AND status = 'in_progress'", stack_id, todo_id, NULL, &busy, err) != 0)
		goto out;
	if (busy && not_running(s, stack_id, "the todo is in progress", err) != 0)
		goto out;
	if (change_rows(s, "DELETE FROM todos WHERE stack_id = ?1 AND id = ?2", stack_id,
			todo_id, NULL, 0, &n, "removing the todo", err) != 0)
		goto out;
	rc = found ? 1 : 0;
out:
	return repair_end(s, rc, err);
}

int admin_todo_retry(struct store *s, int64_t stack_id, int64_t todo_id, int64_t now,
		     struct orch_error *err)
{
	int64_t found = 0, n = 0;
	int rc = -1;

	if (store_begin(s, err) != 0)
		return -1;
	if (count_rows(s, "SELECT count(*) FROM todos WHERE stack_id = ?1 AND id = ?2",
		       stack_id, todo_id, NULL, &found, err) != 0)
		goto out;
	if (!found) {
		rc = 0;
		goto out;
	}
	/* Its last error stays, for the person and the builder to see. */
	if (change_rows(s, "UPDATE todos SET status = 'pending', attempts = 0"
			" WHERE stack_id = ?1 AND id = ?2 AND status = 'parked'",
			stack_id, todo_id, NULL, 0, &n, "retrying the todo", err) != 0)
		goto out;
	if (!n) {
		orch_error_set(err, ORCH_EX_DATAERR, "todo %lld is not parked",
			       (long long)todo_id);
		goto out;
	}
	rc = schedule_wake(s, stack_id, now, err) == 0 ? 1 : -1;
out:
	return repair_end(s, rc, err);
}

int admin_messages_retry(struct store *s, int64_t stack_id, int64_t message_id,
			 int64_t now, int64_t *retried, struct orch_error *err)
{
	int64_t found = 0;
	int rc = -1;

	*retried = 0;
	if (store_begin(s, err) != 0)
		return -1;
	if (message_id &&
	    count_rows(s, "SELECT count(*) FROM user_messages WHERE stack_id = ?1 AND id = ?2",
		       stack_id, message_id, NULL, &found, err) != 0)
		goto out;
	if (message_id && !found) {
		rc = 0;
		goto out;
	}
	if (change_rows(s, message_id
			? "UPDATE user_messages SET parked_at = NULL, attempts = 0"
			  " WHERE stack_id = ?1 AND id = ?2 AND parked_at IS NOT NULL"
			: "UPDATE user_messages SET parked_at = NULL, attempts = 0"
			  " WHERE stack_id = ?1 AND parked_at IS NOT NULL",
			stack_id, message_id, NULL, 0, retried, "retrying the messages", err) != 0)
		goto out;
	if (message_id && !*retried) {
		orch_error_set(err, ORCH_EX_DATAERR, "message %lld is not parked",
			       (long long)message_id);
		goto out;
	}
	rc = !*retried || schedule_wake(s, stack_id, now, err) == 0 ? 1 : -1;
out:
	return repair_end(s, rc, err);
}

int admin_todo_clear(struct store *s, int64_t stack_id, const char *status,
		     int64_t *removed, struct orch_error *err)
{
	int rc = -1;

	*removed = 0;
	if (store_begin(s, err) != 0)
		return -1;
	if (status && strcmp(status, "in_progress") == 0 &&
	    not_running(s, stack_id, "todos in progress", err) != 0)
		goto out;
	if (change_rows(s, status
			? "DELETE FROM todos WHERE stack_id = ?1 AND status = ?3"
			: "DELETE FROM todos WHERE stack_id = ?1"
			  " AND status IN ('completed', 'cancelled')",
			stack_id, 0, status, 0, removed, "removing the todos", err) != 0)
		goto out;
	rc = 0;
out:
	return repair_end(s, rc, err);
}

int admin_messages_clear(struct store *s, int64_t stack_id, int unanswered,
			 int64_t *removed, struct orch_error *err)
{
	int rc = -1;

	*removed = 0;
	if (store_begin(s, err) != 0)
		return -1;
	if (unanswered && not_running(s, stack_id, "unanswered messages", err) != 0)
		goto out;
	if (change_rows(s, "DELETE FROM user_messages WHERE stack_id = ?1 AND processed = ?2",
			stack_id, unanswered ? 0 : 1, NULL, 0, removed,
			"removing the messages", err) != 0)
		goto out;
	rc = 0;
out:
	return repair_end(s, rc, err);
}

int admin_stack_messages_clear(struct store *s, int64_t stack_id, int64_t now,
			       int64_t *removed, int64_t *marked, struct orch_error *err)
{
	int rc = -1;

	*removed = *marked = 0;
	if (store_begin(s, err) != 0)
		return -1;
	if (not_running(s, stack_id, "its messages", err) != 0 ||
	    change_rows(s, "DELETE FROM messages WHERE to_stack_id = ?1", stack_id, 0,
			NULL, 0, removed, "removing the messages", err) != 0 ||
	    change_rows(s, "INSERT INTO message_reads (message_id, stack_id, read_at)"
			" SELECT id, ?1, ?4 FROM messages WHERE to_stack_id IS NULL"
			" AND from_stack_id IS DISTINCT FROM ?1 ON CONFLICT DO NOTHING", stack_id, 0, NULL, now, marked,
			"marking the broadcasts read", err) != 0)
		goto out;
	rc = 0;
out:
	return repair_end(s, rc, err);
}

int admin_memory_clear(struct store *s, int64_t stack_id, const char *agent,
		       int64_t *removed, struct orch_error *err)
{
	int rc;

	*removed = 0;
	if (store_begin(s, err) != 0)
		return -1;
	rc = change_rows(s, agent ? "DELETE FROM memory WHERE stack_id = ?1 AND agent = ?3"
				  : "DELETE FROM memory WHERE stack_id = ?1",
			 stack_id, 0, agent, 0, removed, "removing the memory", err);
	return repair_end(s, rc, err);
}
