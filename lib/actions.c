/*
 * actions.c - the agent contract: the orch.context an agent reads, the
 * actions document it prints, applying it, and the bookkeeping after the
 * run (README.md, "orch.context" and "Actions").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "actions_int.h"
#include "artifact.h"
#include "bounds.h"
#include "doc.h"
#include "orch.h"
#include "schedule.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

/* Memory members orch keeps; an agent may not overwrite them. */
#define KEY_PLANNING_TIME "last_planning_time"
#define KEY_REVIEW_TIME "last_review_time"

/* The two times live in agent_runs; snapshot_load() shows them in the
 * planner's and the reviewer's memory, where agents read them. */
static const char *const kept_keys[] = {
	KEY_RECOMMENDATIONS, KEY_PLANNING_TIME, KEY_REVIEW_TIME,
};

#define MAX_PHASE 64
#define MAX_KEY 128
#define MAX_ARTIFACT_TYPE 32

/* ---- store helpers (also lib/task.c's: actions_int.h) ------------------ */

int actions_query_int(struct store *s, struct stmt *st, int64_t *out,
		      const char *what, struct orch_error *err)
{
	int rc = stmt_step(st);

	if (rc == STMT_ROW)
		*out = stmt_int(st, 0);
	store_finish(s, st);
	if (rc == STMT_ROW)
		return 1;
	if (rc == STMT_DONE)
		return 0;
	return store_error(s, err, what);
}

int actions_stack_exists(struct store *s, int64_t id, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT id FROM stacks WHERE id = ?", err);
	int64_t found;
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	rc = actions_query_int(s, st, &found, "reading stack", err);
	if (rc == 0)
		return orch_error_set(err, ORCH_EX_NOINPUT, "no stack with id %lld",
				      (long long)id);
	return rc < 0 ? -1 : 0;
}

/* Bind STR of LEN bytes, or NULL when STR is NULL. */
static void bind_text(struct stmt *st, int i, const char *str, size_t len)
{
	if (str)
		stmt_bind_text_len(st, i, str, len);
	else
		stmt_bind_null(st, i);
}

int actions_memory_write(struct store *s, int64_t stack_id, const char *agent,
			 const json_t *mem, int64_t now, struct orch_error *err)
{
	struct stmt *st = NULL;
	char *data = json_dumps(mem, JSON_COMPACT);
	int rc = -1;

	if (!data) {
		orch_error_set(err, ORCH_EX_SOFTWARE,
			       "cannot encode the memory of agent '%s'", agent);
		goto out;
	}
	st = store_prepare(s, "INSERT INTO memory (stack_id, agent, data, updated_at)"
			   " VALUES (?1, ?2, ?3, ?4)"
			   " ON CONFLICT (stack_id, agent) DO UPDATE"
			   " SET data = excluded.data, updated_at = excluded.updated_at",
			   err);
	if (!st)
		goto out;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_text(st, 2, agent);
	stmt_bind_text(st, 3, data);
	stmt_bind_int(st, 4, now);
	rc = store_step_done(s, st, "writing memory", err);
out:
	free(data);
	return rc;
}

/* ---- the action table ------------------------------------------------- */

enum field_kind {
	FIELD_TEXT,          /* non-empty, at most ACTIONS_MAX_TEXT bytes */
	FIELD_TEXT_OR_EMPTY, /* may be empty, at most ACTIONS_MAX_TEXT bytes */
	FIELD_ARTIFACT,      /* non-empty, at most ACTIONS_MAX_ARTIFACT bytes */
	FIELD_ARTIFACT_TYPE, /* 1 to 32 of [a-z0-9._-] */
	FIELD_PHASE,         /* 1 to 64 bytes */
	FIELD_KEY,           /* 1 to 128 bytes, not a key orch keeps */
	FIELD_ID,            /* an integer from 1 */
	FIELD_PRIORITY,      /* an integer from 1 to 5 */
	FIELD_STATUS,        /* a todo status */
	FIELD_TO,            /* a stack name, a stack id, or null */
	FIELD_VALUE,         /* any JSON value, null included; always required */
};

struct field {
	const char *name;     /* the member of the action; NULL ends a list */
	enum field_kind kind; /* what it must hold */
	int required;         /* absent or null is an error */
};

/* What actions_apply() hands each action. */
struct apply_ctx {
	struct store *s;    /* inside the caller's transaction */
	int64_t stack_id;   /* the acting stack */
	const char *agent;  /* the acting agent */
	int64_t now;        /* the time stamped on what is written */
	const struct agent_task *task; /* what it was given */
};

struct action_def {
	const char *type;      /* the action's "type" */
	int (*apply)(const struct apply_ctx *c, const json_t *action,
		     struct orch_error *err); /* 0, or -1 with ERR unprefixed */
	int needs_optional;    /* at least one optional field must be given */
	struct field fields[5];
};

/* String member KEY of a validated action (*LEN its length), or NULL. */
static const char *opt_str(const json_t *action, const char *key, size_t *len)
{
	const json_t *v = json_object_get(action, key);

	*len = json_string_length(v);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Integer member KEY of a validated action, 0 when absent or null. */
static int64_t opt_int(const json_t *action, const char *key)
{
	return json_integer_value(json_object_get(action, key));
}

static int apply_set_project(const struct apply_ctx *c, const json_t *action,
			     struct orch_error *err)
{
	size_t tlen, dlen;
	const char *title = opt_str(action, "title", &tlen);
	const char *desc = opt_str(action, "description", &dlen);
	struct stmt *st = store_prepare(c->s,
		"INSERT INTO projects (stack_id, title, description, created_at,"
		" updated_at) VALUES (?1, ?2, ?3, ?4, ?4)"
		" ON CONFLICT (stack_id) DO UPDATE SET title = excluded.title,"
		" description = excluded.description, updated_at = excluded.updated_at",
		err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, c->stack_id);
	bind_text(st, 2, title, tlen);
	bind_text(st, 3, desc, dlen);
	stmt_bind_int(st, 4, c->now);
	return store_step_done(c->s, st, "setting the project", err);
}

static int apply_set_phase(const struct apply_ctx *c, const json_t *action,
			   struct orch_error *err)
{
	size_t len;
	const char *phase = opt_str(action, "phase", &len);
	struct stmt *st = store_prepare(c->s, "UPDATE stacks SET phase = ?2"
					 " WHERE id = ?1", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, c->stack_id);
	bind_text(st, 2, phase, len);
	return store_step_done(c->s, st, "setting the phase", err);
}

static int apply_create_todo(const struct apply_ctx *c, const json_t *action,
			     struct orch_error *err)
{
	size_t len;
	const char *content = opt_str(action, "content", &len);
	int64_t priority = opt_int(action, "priority");
	struct stmt *st = store_prepare(c->s, "INSERT INTO todos (stack_id, content,"
					 " priority, created_at) VALUES (?, ?, ?, ?)",
					 err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, c->stack_id);
	bind_text(st, 2, content, len);
	stmt_bind_int(st, 3, priority ? priority : 3);
	stmt_bind_int(st, 4, c->now);
	return store_step_done(c->s, st, "adding the todo", err);
}

/*
 * Run ST, a write to todo ID whose WHERE clause also requires this stack,
 * and turn "no row changed" into the error that names the todo.
 */
static int todo_write(const struct apply_ctx *c, struct stmt *st, int64_t id,
		      const char *what, struct orch_error *err)
{
	if (store_step_done(c->s, st, what, err) != 0)
		return -1;
	if (store_changes(c->s) == 0)
		return orch_error_set(err, ORCH_EX_DATAERR, "no todo %lld in this stack",
				      (long long)id);
	return 0;
}

/*
 * While the builder runs, its todo is its own: another agent that changes
 * it (a communicator setting it back to pending) would have it built
 * twice. 0 when C's agent may change todo ID, -1 with ERR otherwise.
 */
static int check_not_claimed(const struct apply_ctx *c, int64_t id,
			     struct orch_error *err)
{
	struct stmt *st;
	int64_t building;
	int rc;

	if (strcmp(c->agent, "builder") == 0 && c->task && c->task->todo_id == id)
		return 0;
	if (!(st = store_prepare(c->s, "SELECT count(*) FROM todos WHERE id = ?1"
				 " AND stack_id = ?2 AND status = 'in_progress'", err)))
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	if ((rc = actions_query_int(c->s, st, &building, "reading the todo", err)) < 0)
		return -1;
	if (rc > 0 && building)
		return orch_error_set(err, ORCH_EX_DATAERR, "todo %lld is being built; only"
				      " the builder changes it until its run ends",
				      (long long)id);
	return 0;
}

static int apply_update_todo(const struct apply_ctx *c, const json_t *action,
			     struct orch_error *err)
{
	size_t clen, slen;
	const char *content = opt_str(action, "content", &clen);
	const char *status = opt_str(action, "status", &slen);
	int64_t id = opt_int(action, "id"), priority = opt_int(action, "priority");
	struct stmt *st;

	if (check_not_claimed(c, id, err) != 0)
		return -1;
	/* A todo completed again keeps the time it was first completed; any
	 * other status has no completion time. A parked todo set pending is
	 * tried afresh. */
	st = store_prepare(c->s,
		"UPDATE todos SET content = COALESCE(?3, content),"
		" priority = COALESCE(?4, priority), status = COALESCE(?5, status),"
		" attempts = CASE WHEN ?5 = 'pending' AND status = 'parked' THEN 0"
		"   ELSE attempts END,"
		" completed_at = CASE WHEN ?5 IS NULL THEN completed_at"
		"   WHEN ?5 = 'completed' THEN COALESCE(completed_at, ?6)"
		"   ELSE NULL END"
		" WHERE id = ?1 AND stack_id = ?2", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	bind_text(st, 3, content, clen);
	if (priority)
		stmt_bind_int(st, 4, priority);
	bind_text(st, 5, status, slen);
	stmt_bind_int(st, 6, c->now);
	return todo_write(c, st, id, "updating the todo", err);
}

static int apply_complete_todo(const struct apply_ctx *c, const json_t *action,
			       struct orch_error *err)
{
	int64_t id = opt_int(action, "id");
	struct stmt *st;

	if (check_not_claimed(c, id, err) != 0)
		return -1;
	st = store_prepare(c->s,
		"UPDATE todos SET completed_at = CASE WHEN status = 'completed'"
		"   THEN COALESCE(completed_at, ?3) ELSE ?3 END,"
		" status = 'completed'"
		" WHERE id = ?1 AND stack_id = ?2", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	stmt_bind_int(st, 3, c->now);
	return todo_write(c, st, id, "completing the todo", err);
}

static int apply_delete_todo(const struct apply_ctx *c, const json_t *action,
			     struct orch_error *err)
{
	int64_t id = opt_int(action, "id");
	struct stmt *st;

	if (check_not_claimed(c, id, err) != 0)
		return -1;
	st = store_prepare(c->s, "DELETE FROM todos WHERE id = ?1 AND stack_id = ?2", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	return todo_write(c, st, id, "deleting the todo", err);
}

static int apply_clear_todos(const struct apply_ctx *c, const json_t *action,
			     struct orch_error *err)
{
	struct stmt *st = store_prepare(c->s, "UPDATE todos SET status = 'cancelled'"
					 " WHERE stack_id = ? AND status = 'pending'",
					 err);

	(void)action;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, c->stack_id);
	return store_step_done(c->s, st, "cancelling the todos", err);
}

static int apply_write_artifact(const struct apply_ctx *c, const json_t *action,
				struct orch_error *err)
{
	size_t clen, tlen = 0;
	const char *content = opt_str(action, "content", &clen);
	const char *type = opt_str(action, "artifact_type", &tlen);
	struct artifact_origin from = { c->task->execution_id, c->task->todo_id };

	return artifact_write(c->s, c->stack_id, type, tlen, content, clen, c->now, &from,
			      err);
}

static int apply_send_message(const struct apply_ctx *c, const json_t *action,
			      struct orch_error *err)
{
	const json_t *to = json_object_get(action, "to");
	struct stack_row row;
	struct stmt *st;
	int64_t to_id = 0;
	size_t len;
	const char *content = opt_str(action, "content", &len);
	int rc;

	if (json_is_string(to) || json_is_integer(to)) {
		rc = json_is_string(to)
		     ? store_find_stack(c->s, json_string_value(to), &row, err)
		     : store_get_stack(c->s, json_integer_value(to), &row, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return json_is_string(to)
			       ? orch_error_set(err, ORCH_EX_DATAERR, "no stack '%s'",
						json_string_value(to))
			       : orch_error_set(err, ORCH_EX_DATAERR, "no stack with id %lld",
						(long long)json_integer_value(to));
		to_id = row.id;
		stack_row_release(&row);
		if (to_id == c->stack_id)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "a stack cannot send a message to itself");
	}
	st = store_prepare(c->s, "INSERT INTO messages (from_stack_id, to_stack_id,"
			   " content, created_at) VALUES (?, ?, ?, ?)", err);
	if (!st)
		return -1;
	stmt_bind_int(st, 1, c->stack_id);
	if (to_id)
		stmt_bind_int(st, 2, to_id);
	bind_text(st, 3, content, len);
	stmt_bind_int(st, 4, c->now);
	if (store_step_done(c->s, st, "sending the message", err) != 0)
		return -1;
	/* The receivers' communicators have work now. */
	return to_id ? schedule_wake(c->s, to_id, c->now, err)
		     : schedule_wake_all(c->s, c->stack_id, c->now, err);
}

static int apply_reply_user(const struct apply_ctx *c, const json_t *action,
			    struct orch_error *err)
{
	int64_t id = opt_int(action, "message_id"), processed = 0;
	size_t len;
	const char *content = opt_str(action, "content", &len);
	struct stmt *st = store_prepare(c->s, "SELECT processed FROM user_messages"
					 " WHERE id = ?1 AND stack_id = ?2", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	rc = actions_query_int(c->s, st, &processed, "reading the user message", err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "no user message %lld in this stack", (long long)id);
	if (processed)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "user message %lld was already answered", (long long)id);
	st = store_prepare(c->s, "UPDATE user_messages SET response = ?2,"
			   " responded_at = ?3, processed = 1 WHERE id = ?1", err);
	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	bind_text(st, 2, content, len);
	stmt_bind_int(st, 3, c->now);
	return store_step_done(c->s, st, "answering the user message", err);
}

static int apply_mark_read(const struct apply_ctx *c, const json_t *action,
			   struct orch_error *err)
{
	int64_t id = opt_int(action, "message_id"), found;
	/* The messages the snapshot shows this stack: direct to it, or
	 * broadcast by another stack. */
	struct stmt *st = store_prepare(c->s, "SELECT id FROM messages WHERE id = ?1"
					 " AND (to_stack_id = ?2 OR (to_stack_id IS NULL"
					 "      AND from_stack_id IS DISTINCT FROM ?2))", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	rc = actions_query_int(c->s, st, &found, "reading the message", err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "no message %lld for this stack", (long long)id);
	st = store_prepare(c->s, "INSERT INTO message_reads (message_id,"
			   " stack_id, read_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", err);
	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, c->stack_id);
	stmt_bind_int(st, 3, c->now);
	return store_step_done(c->s, st, "marking the message read", err);
}

static int apply_recommend(const struct apply_ctx *c, const json_t *action,
			   struct orch_error *err)
{
	size_t len;
	const char *rec = opt_str(action, "recommendation", &len);
	json_t *mem = snapshot_memory(c->s, c->stack_id, "planner", err), *recs;
	int rc;

	if (!mem)
		return -1;
	/* Anything but an array reads as none, as snapshot_load() shows it. */
	recs = json_object_get(mem, KEY_RECOMMENDATIONS);
	if (!json_is_array(recs)) {
		recs = xjson(json_array());
		xjson_set(mem, KEY_RECOMMENDATIONS, recs);
	}
	xjson_append(recs, xjson(json_stringn(rec, len)));
	rc = actions_memory_write(c->s, c->stack_id, "planner", mem, c->now, err);
	json_decref(mem);
	return rc;
}

static int apply_remember(const struct apply_ctx *c, const json_t *action,
			  struct orch_error *err)
{
	size_t len;
	const char *key = opt_str(action, "key", &len);
	json_t *mem = snapshot_memory(c->s, c->stack_id, c->agent, err);
	int rc;

	if (!mem)
		return -1;
	xjson_set(mem, key, xjson(json_deep_copy(json_object_get(action, "value"))));
	rc = actions_memory_write(c->s, c->stack_id, c->agent, mem, c->now, err);
	json_decref(mem);
	return rc;
}

/* The vocabulary: README.md, "Actions". */
static const struct action_def action_defs[] = {
	{ "set_project", apply_set_project, 0,
	  { { "title", FIELD_TEXT, 1 }, { "description", FIELD_TEXT_OR_EMPTY, 1 } } },
	{ "set_phase", apply_set_phase, 0, { { "phase", FIELD_PHASE, 1 } } },
	{ "create_todo", apply_create_todo, 0,
	  { { "content", FIELD_TEXT, 1 }, { "priority", FIELD_PRIORITY, 0 } } },
	{ "update_todo", apply_update_todo, 1,
	  { { "id", FIELD_ID, 1 }, { "content", FIELD_TEXT, 0 },
	    { "priority", FIELD_PRIORITY, 0 }, { "status", FIELD_STATUS, 0 } } },
	{ "complete_todo", apply_complete_todo, 0, { { "id", FIELD_ID, 1 } } },
	{ "delete_todo", apply_delete_todo, 0, { { "id", FIELD_ID, 1 } } },
	{ "clear_todos", apply_clear_todos, 0, { { NULL, FIELD_TEXT, 0 } } },
	{ "write_artifact", apply_write_artifact, 0,
	  { { "content", FIELD_ARTIFACT, 1 },
	    { "artifact_type", FIELD_ARTIFACT_TYPE, 0 } } },
	{ "send_message", apply_send_message, 0,
	  { { "content", FIELD_TEXT, 1 }, { "to", FIELD_TO, 0 } } },
	{ "reply_user", apply_reply_user, 0,
	  { { "message_id", FIELD_ID, 1 }, { "content", FIELD_TEXT, 1 } } },
	{ "mark_read", apply_mark_read, 0, { { "message_id", FIELD_ID, 1 } } },
	{ "recommend", apply_recommend, 0,
	  { { "recommendation", FIELD_TEXT, 1 } } },
	{ "remember", apply_remember, 0,
	  { { "key", FIELD_KEY, 1 }, { "value", FIELD_VALUE, 1 } } },
};

#define ACTION_DEF_COUNT (sizeof(action_defs) / sizeof(action_defs[0]))

static const struct action_def *find_def(const char *type)
{
	size_t i;

	for (i = 0; i < ACTION_DEF_COUNT; i++)
		if (strcmp(action_defs[i].type, type) == 0)
			return &action_defs[i];
	return NULL;
}

/* ---- validation ------------------------------------------------------- */

/* String member KEY: NONEMPTY and at most MAX bytes, no NUL inside. */
static int check_string(const json_t *action, const char *key, int nonempty,
			size_t max, struct orch_error *err)
{
	const char *str;
	size_t len;

	if (doc_string(action, key, &str, err) != 0)
		return -1;
	len = json_string_length(json_object_get(action, key));
	if (nonempty && len == 0)
		return orch_error_set(err, ORCH_EX_DATAERR, "'%s' must not be empty", key);
	if (len > max)
		return orch_error_set(err, ORCH_EX_DATAERR, "'%s' is %zu bytes, at most %zu",
				      key, len, max);
	/* SQLite text and C strings both end at a NUL: refuse what would be
	 * cut short. */
	if (strlen(str) != len)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' must not contain NUL bytes", key);
	return 0;
}

static int check_artifact_type(const json_t *action, const char *key,
			       struct orch_error *err)
{
	const char *p;

	if (check_string(action, key, 1, MAX_ARTIFACT_TYPE, err) != 0)
		return -1;
	for (p = json_string_value(json_object_get(action, key)); *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'%s' may only hold a-z, 0-9, '.', '_' and '-'",
					      key);
	return 0;
}

static int check_key(const json_t *action, const char *key, struct orch_error *err)
{
	const char *str;
	size_t i;

	if (check_string(action, key, 1, MAX_KEY, err) != 0)
		return -1;
	str = json_string_value(json_object_get(action, key));
	for (i = 0; i < sizeof(kept_keys) / sizeof(kept_keys[0]); i++)
		if (strcmp(str, kept_keys[i]) == 0)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'%s' may not be '%s': orch keeps it", key, str);
	return 0;
}

/*
 * in_progress is orch's alone: it marks the todo a running builder holds,
 * and only a recovered cycle puts one back. A todo an agent set
 * in_progress would be claimed by no run and never picked again.
 */
static int check_status(const json_t *action, const char *key, struct orch_error *err)
{
	static const char *const statuses[] = {
		"pending", "completed", "cancelled",
	};
	const char *str;
	size_t i;

	if (doc_string(action, key, &str, err) != 0)
		return -1;
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(str, statuses[i]) == 0)
			return 0;
	if (strcmp(str, "in_progress") == 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' may not be 'in_progress': orch keeps it", key);
	return orch_error_set(err, ORCH_EX_DATAERR,
			      "'%s' must be pending, completed or cancelled", key);
}

/* Already known present and not null. */
static int check_to(const json_t *action, const char *key, struct orch_error *err)
{
	const json_t *v = json_object_get(action, key);

	if (json_is_string(v))
		return check_string(action, key, 1, ACTIONS_MAX_TEXT, err);
	if (json_is_integer(v) && json_integer_value(v) > 0)
		return 0;
	return orch_error_set(err, ORCH_EX_DATAERR,
			      "'%s' must be a stack name, a positive stack id or null", key);
}

static int check_value(const json_t *action, const char *key, struct orch_error *err)
{
	const json_t *v = json_object_get(action, key);
	size_t n;

	if (!v)
		return orch_error_set(err, ORCH_EX_DATAERR, "'%s' is missing", key);
	/* Memory goes into every later context: bound it like text. */
	n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n > ACTIONS_MAX_TEXT)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'%s' is %zu bytes as JSON, at most %d",
				      key, n, ACTIONS_MAX_TEXT);
	return 0;
}

static int check_field(const json_t *action, const struct field *f,
		       struct orch_error *err)
{
	const json_t *v = json_object_get(action, f->name);
	int64_t n;

	if (f->kind == FIELD_VALUE)
		return check_value(action, f->name, err);
	if ((!v || json_is_null(v)) && !f->required)
		return 0;
	switch (f->kind) {
	case FIELD_TEXT:
		return check_string(action, f->name, 1, ACTIONS_MAX_TEXT, err);
	case FIELD_TEXT_OR_EMPTY:
		return check_string(action, f->name, 0, ACTIONS_MAX_TEXT, err);
	case FIELD_ARTIFACT:
		return check_string(action, f->name, 1, ACTIONS_MAX_ARTIFACT, err);
	case FIELD_ARTIFACT_TYPE:
		return check_artifact_type(action, f->name, err);
	case FIELD_PHASE:
		return check_string(action, f->name, 1, MAX_PHASE, err);
	case FIELD_KEY:
		return check_key(action, f->name, err);
	case FIELD_ID:
		return doc_int(action, f->name, 1, INT64_MAX, &n, err);
	case FIELD_PRIORITY:
		return doc_int(action, f->name, 1, 5, &n, err);
	case FIELD_STATUS:
		return check_status(action, f->name, err);
	case FIELD_TO:
		return check_to(action, f->name, err);
	case FIELD_VALUE:
		break;
	}
	return 0;
}

/* Check ACTION against DEF; the message is not yet prefixed. */
static int check_action(const json_t *action, const struct action_def *def,
			struct orch_error *err)
{
	const struct field *f;
	const char *key;
	json_t *v;
	int given = 0;

	/* Unknown members first: a misspelt optional field ("prority") would
	 * otherwise pass silently as absent. */
	json_object_foreach((json_t *)action, key, v) {
		if (strcmp(key, "type") == 0)
			continue;
		for (f = def->fields; f->name; f++)
			if (strcmp(key, f->name) == 0)
				break;
		if (!f->name)
			return orch_error_set(err, ORCH_EX_DATAERR, "unknown field '%s'", key);
	}
	for (f = def->fields; f->name; f++) {
		if (check_field(action, f, err) != 0)
			return -1;
		v = json_object_get(action, f->name);
		if (!f->required && v && !json_is_null(v))
			given++;
	}
	if (def->needs_optional && !given) {
		char *names = NULL, *next;
		size_t n = 0, i = 0;

		for (f = def->fields; f->name; f++)
			if (!f->required)
				n++;
		for (f = def->fields; f->name; f++) {
			if (f->required)
				continue;
			i++;
			next = xasprintf("%s%s'%s'", names ? names : "",
					 i == 1 ? "" : i == n ? " or " : ", ", f->name);
			free(names);
			names = next;
		}
		orch_error_set(err, ORCH_EX_DATAERR, "nothing to change: give %s",
			       names ? names : "a field");
		free(names);
		return -1;
	}
	return 0;
}

/* The definition of ACTION, one of a validated document. */
static const struct action_def *def_of(const json_t *action)
{
	return find_def(json_string_value(json_object_get(action, "type")));
}

int actions_validate(const json_t *doc, struct orch_error *err)
{
	const struct action_def *def;
	const json_t *v;
	int64_t wait;
	json_t *actions, *action;
	const char *type;
	size_t i;

	if (!json_is_object(doc))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "expected a JSON object with an 'actions' array");
	if (doc_array(doc, "actions", &actions, err) != 0)
		return -1;
	if (json_array_size(actions) > ACTIONS_MAX_COUNT)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "actions: %zu actions, at most %d",
				      json_array_size(actions), ACTIONS_MAX_COUNT);
	v = json_object_get(doc, "thinking");
	if (v && !json_is_null(v) && !json_is_string(v))
		return orch_error_set(err, ORCH_EX_DATAERR, "'thinking' must be a string");
	v = json_object_get(doc, "usage");
	if (v && !json_is_null(v) && !json_is_object(v))
		return orch_error_set(err, ORCH_EX_DATAERR, "'usage' must be an object");
	/* The retry contract (orch-exec(1)): the least wait before the next run. */
	if (doc_opt_int(doc, "retry_after_ms", 0, ORCH_MAX_PAUSE_MS, 0, &wait, err) != 0)
		return -1;

	json_array_foreach(actions, i, action) {
		if (!json_is_object(action))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "action %zu: expected a JSON object", i + 1);
		if (doc_string(action, "type", &type, err) != 0)
			return orch_error_prefix(err, "action %zu", i + 1);
		if (!(def = find_def(type)))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "action %zu: unknown type '%s'", i + 1, type);
		if (check_action(action, def, err) != 0)
			return orch_error_prefix(err, "action %zu (%s)", i + 1, type);
	}
	return 0;
}

/* ---- applying --------------------------------------------------------- */

int actions_content_version(struct store *s, int64_t stack_id, int64_t *out,
			    struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT content_version FROM stacks"
					 " WHERE id = ?", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	rc = actions_query_int(s, st, out, "reading the stack", err);
	if (rc == 0)
		return orch_error_set(err, ORCH_EX_NOINPUT, "no stack with id %lld",
				      (long long)stack_id);
	return rc < 0 ? -1 : 0;
}

int actions_check_agent(const char *agent, struct orch_error *err)
{
	if (!agent || orch_agent_index(agent) < 0)
		return orch_error_set(err, ORCH_EX_DATAERR, "unknown agent '%s'",
				      agent ? agent : "");
	return 0;
}

int actions_apply(struct store *s, int64_t stack_id, const char *agent,
		  const json_t *doc, int64_t now, struct agent_task *task,
		  struct orch_error *err)
{
	struct apply_ctx c = { s, stack_id, agent, now, task };
	struct bounds_totals before, after;
	const struct action_def *def;
	const json_t *actions;
	json_t *action;
	size_t i;

	/* Validated again, cheaply, so no action below meets a missing or
	 * mistyped member, whatever the caller did. */
	if (actions_check_agent(agent, err) != 0 || actions_validate(doc, err) != 0)
		return -1;
	/* A stack removed while its agent ran: say so, not "FOREIGN KEY
	 * constraint failed". */
	if (actions_content_version(s, stack_id, &task->version_at_apply, err) != 0)
		return -1;
	if (bounds_read(s, stack_id, now, &before, err) != 0)
		return -1;
	actions = json_object_get(doc, "actions");
	json_array_foreach(actions, i, action) {
		def = def_of(action);
		if (def->apply(&c, action, err) != 0)
			return orch_error_prefix(err, "action %zu (%s)", i + 1, def->type);
	}
	/* Checked on the result, so a document that deletes as much as it
	 * adds is fine, whatever its order. */
	if (bounds_read(s, stack_id, now, &after, err) != 0)
		return -1;
	return bounds_check(&before, &after, err);
}

