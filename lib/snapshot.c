#include <string.h>

#include "orch.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

/* A column as JSON: integer, text, or null. New reference, or NULL when
 * the text is not UTF-8 (stored by something that is not orch: bad data,
 * which the caller names). */
static json_t *column_json(struct stmt *st, int col)
{
	switch (stmt_type(st, col)) {
	case STMT_NULL:
		return json_null();
	case STMT_INTEGER:
		return xjson(json_integer(stmt_int(st, col)));
	case STMT_FLOAT:
		return xjson(json_real(stmt_double(st, col)));
	default:
		/* json_stringn refuses ill-formed UTF-8 (and nothing else). */
		return json_stringn(stmt_text(st, col),
				    stmt_bytes(st, col));
	}
}

/*
 * Run SQL bound to STACK_ID (and ARG as ?2) and collect each row as an
 * object whose keys are the result column names; a column named
 * "processed" is a boolean. New reference, or NULL with ERR set: a text
 * that is not UTF-8 is 65 naming it, "'content' of todo 7 is not valid
 * UTF-8" (WHAT: "todo"), so one bad row is its stack's fault alone.
 */
static json_t *rows2(struct store *s, const char *sql, const char *what,
		     int64_t stack_id, int64_t arg, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, sql, err);
	json_t *out, *v;
	int rc, i, n;

	if (!st)
		return NULL;
	stmt_bind_int(st, 1, stack_id);
	if (stmt_param_count(st) >= 2)
		stmt_bind_int(st, 2, arg);
	out = xjson(json_array());
	n = stmt_column_count(st);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		json_t *row = xjson(json_object());

		xjson_append(out, row);
		for (i = 0; i < n; i++) {
			const char *name = stmt_column_name(st, i);

			if (strcmp(name, "processed") == 0) {
				xjson_set(row, name, json_boolean(stmt_int(st, i)));
			} else if ((v = column_json(st, i))) {
				xjson_set(row, name, v);
			} else {
				if (json_object_get(row, "id"))
					orch_error_set(err, ORCH_EX_DATAERR,
						       "'%s' of %s %lld is not valid UTF-8", name, what,
						       (long long)json_integer_value(json_object_get(row, "id")));
				else
					orch_error_set(err, ORCH_EX_DATAERR,
						       "'%s' of the %s is not valid UTF-8", name, what);
				store_finish(s, st);
				json_decref(out);
				return NULL;
			}
		}
	}
	store_finish(s, st);
	if (rc != STMT_DONE) {
		json_decref(out);
		store_error(s, err, "reading snapshot");
		return NULL;
	}
	return out;
}

static json_t *rows(struct store *s, const char *sql, const char *what,
		    int64_t stack_id, struct orch_error *err)
{
	return rows2(s, sql, what, stack_id, 0, err);
}

/* The first row of SQL as an object, json null when there is none. */
static json_t *first_row(struct store *s, const char *sql, const char *what,
			 int64_t stack_id, struct orch_error *err)
{
	json_t *all = rows(s, sql, what, stack_id, err), *one;

	if (!all)
		return NULL;
	one = json_array_size(all) ? json_incref(json_array_get(all, 0)) : json_null();
	json_decref(all);
	return one;
}

json_t *snapshot_memory(struct store *s, int64_t stack_id, const char *agent,
			struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT data FROM memory"
					 " WHERE stack_id = ? AND agent = ?", err);
	json_t *mem = NULL;
	json_error_t jerr;
	int rc;

	if (!st)
		return NULL;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_text(st, 2, agent);
	rc = stmt_step(st);
	if (rc == STMT_ROW) {
		mem = json_loadb(stmt_text(st, 0),
				 stmt_bytes(st, 0), 0, &jerr);
		if (!json_is_object(mem)) {
			json_decref(mem);
			mem = NULL;
			orch_error_set(err, ORCH_EX_DATAERR,
				       "memory of agent '%s' is not a JSON object", agent);
		}
	} else if (rc == STMT_DONE) {
		mem = xjson(json_object());
	} else {
		store_error(s, err, "reading memory");
	}
	store_finish(s, st);
	return mem;
}

/*
 * The members the detection rules read, which orch keeps: the planner's
 * recommendations (an array, [] when none), and the start of the
 * planner's and the reviewer's last successful runs (LAST_RUNS, from
 * agent_runs) as last_planning_time and last_review_time, 0 when never.
 */
static void memory_kept(json_t *mem, const char *agent, const json_t *last_runs)
{
	json_t *run = json_object_get(last_runs, agent);
	json_t *at = json_object_get(run, "started_at");

	if (strcmp(agent, "planner") == 0) {
		if (!json_is_array(json_object_get(mem, "reviewer_recommendations")))
			xjson_set(mem, "reviewer_recommendations", json_array());
		xjson_set(mem, "last_planning_time",
			  json_is_integer(at) ? json_incref(at) : xjson(json_integer(0)));
	} else if (strcmp(agent, "reviewer") == 0) {
		xjson_set(mem, "last_review_time",
			  json_is_integer(at) ? json_incref(at) : xjson(json_integer(0)));
	}
}

/* {"planner": {"cycle","started_at","ended_at","seen_version"} or null, ...}:
 * each agent's last successful run. New reference, or NULL with ERR. */
static json_t *last_runs(struct store *s, int64_t stack_id, struct orch_error *err)
{
	json_t *all = rows(s, "SELECT agent, cycle, started_at, ended_at, seen_version"
			   " FROM agent_runs WHERE stack_id = ?", "agent run", stack_id, err);
	json_t *out, *run;
	size_t i;
	int a;

	if (!all)
		return NULL;
	out = xjson(json_object());
	for (a = 0; a < ORCH_AGENT_COUNT; a++)
		xjson_set(out, orch_agents[a], json_null());
	json_array_foreach(all, i, run) {
		const char *name = json_string_value(json_object_get(run, "agent"));
		int k = name ? orch_agent_index(name) : -1;

		/* The name is the key now; deleting it frees the string. */
		if (k >= 0) {
			json_object_del(run, "agent");
			xjson_set(out, orch_agents[k], json_incref(run));
		}
	}
	json_decref(all);
	return out;
}

json_t *snapshot_artifact_content(struct store *s, int64_t stack_id,
				  struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT content FROM artifacts"
					 " WHERE stack_id = ? ORDER BY version DESC LIMIT 1",
					 err);
	json_t *out = NULL;
	int rc;

	if (!st)
		return NULL;
	stmt_bind_int(st, 1, stack_id);
	rc = stmt_step(st);
	if (rc == STMT_ROW) {
		out = json_stringn((const char *)stmt_blob(st, 0),
				   stmt_bytes(st, 0));
		if (!out)
			orch_error_set(err, ORCH_EX_DATAERR,
				       "the latest artifact is not valid UTF-8");
	} else if (rc == STMT_DONE)
		out = json_null();
	else
		store_error(s, err, "reading artifact");
	store_finish(s, st);
	return out;
}

#define STR_(x) #x
#define STR(x) STR_(x)

#define USER_MESSAGE_COLUMNS "id, sender, content, created_at, processed," \
	" response, responded_at, attempts, last_error, parked_at"

/* How many of the user messages MSGS are work: not processed, not parked. */
static int64_t unprocessed(const json_t *msgs)
{
	const json_t *m;
	int64_t n = 0;
	size_t i;

	json_array_foreach(msgs, i, m)
		n += !json_is_true(json_object_get(m, "processed")) &&
		     json_is_null(json_object_get(m, "parked_at"));
	return n;
}

/*
 * The stack's totals, whatever the windows show: {"todos": {each status:
 * count}, "user_messages": {"unprocessed", "parked"}, "messages":
 * {"unread"}}. New reference, or NULL with ERR.
 */
static json_t *counts(struct store *s, int64_t stack_id, struct orch_error *err)
{
	json_t *row = first_row(s, "SELECT"
		" count(*) FILTER (WHERE status = 'pending') AS pending,"
		" count(*) FILTER (WHERE status = 'in_progress') AS in_progress,"
		" count(*) FILTER (WHERE status = 'parked') AS parked,"
		" count(*) FILTER (WHERE status = 'completed') AS completed,"
		" count(*) FILTER (WHERE status = 'cancelled') AS cancelled,"
		" (SELECT count(*) FROM user_messages WHERE stack_id = ?1"
		"   AND processed = 0 AND parked_at IS NULL) AS unprocessed,"
		" (SELECT count(*) FROM user_messages WHERE stack_id = ?1"
		"   AND processed = 0 AND parked_at IS NOT NULL) AS parked_messages,"
		" (SELECT count(*) FROM messages m"
		"   WHERE (m.to_stack_id = ?1 OR (m.to_stack_id IS NULL"
		"          AND m.from_stack_id IS DISTINCT FROM ?1))"
		"   AND NOT EXISTS (SELECT 1 FROM message_reads r"
		"        WHERE r.message_id = m.id AND r.stack_id = ?1)) AS unread"
		" FROM todos WHERE stack_id = ?1", "stack", stack_id, err);
	json_t *out;

	if (!row)
		return NULL;
	out = xjson(json_pack("{s{sOsOsOsOsO}s{sOsO}s{sO}}",
		"todos", "pending", json_object_get(row, "pending"),
		"in_progress", json_object_get(row, "in_progress"),
		"parked", json_object_get(row, "parked"),
		"completed", json_object_get(row, "completed"),
		"cancelled", json_object_get(row, "cancelled"),
		"user_messages", "unprocessed", json_object_get(row, "unprocessed"),
		"parked", json_object_get(row, "parked_messages"),
		"messages", "unread", json_object_get(row, "unread")));
	json_decref(row);
	return out;
}

/* Member A.B of OBJ as an integer. */
static int64_t count_of(const json_t *obj, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(obj, a), b));
}

/*
 * What SNAP's windows left out, counted from its "counts" so an agent
 * knows it is there: {"todos": closed todos, "user_messages": unprocessed
 * ones, "messages": unread inter-stack ones}. New reference.
 */
static json_t *omitted(const json_t *snap)
{
	const json_t *c = json_object_get(snap, "counts"), *t;
	int64_t closed_shown = 0;
	size_t i;

	json_array_foreach(json_object_get(snap, "todos"), i, t) {
		const char *status = json_string_value(json_object_get(t, "status"));

		closed_shown += status && (strcmp(status, "completed") == 0 ||
					   strcmp(status, "cancelled") == 0);
	}
	return xjson(json_pack("{sIsIsI}",
		"todos", (json_int_t)(count_of(c, "todos", "completed") +
				      count_of(c, "todos", "cancelled") - closed_shown),
		"user_messages", (json_int_t)(count_of(c, "user_messages", "unprocessed") -
				unprocessed(json_object_get(snap, "user_messages"))),
		"messages", (json_int_t)(count_of(c, "messages", "unread") -
			(int64_t)json_array_size(json_object_get(snap, "messages")))));
}

static json_t *load(struct store *s, int64_t stack_id, struct orch_error *err)
{
	struct stack_row row;
	json_t *snap, *part, *memory, *runs;
	int64_t planned;
	int i, rc;

	rc = store_get_stack(s, stack_id, &row, err);
	if (rc <= 0) {
		if (rc == 0)
			orch_error_set(err, ORCH_EX_NOINPUT, "no stack with id %lld",
				       (long long)stack_id);
		return NULL;
	}
	snap = xjson(json_pack("{sssi}", "type", "orch.snapshot", "version", 1));
	xjson_set(snap, "stack", stack_row_header(&row));
	xjson_set(snap, "content_version", xjson(json_integer(row.content_version)));
	stack_row_release(&row);
	if (!(runs = last_runs(s, stack_id, err)))
		goto fail;
	xjson_set(snap, "last_runs", runs);
	planned = json_integer_value(json_object_get(json_object_get(runs, "planner"),
						     "started_at"));

	if (!(part = first_row(s, "SELECT title, description FROM projects"
			       " WHERE stack_id = ?", "project", stack_id, err)))
		goto fail;
	xjson_set(snap, "project", part);
	/* Every open todo; of the closed ones, only the newest: they only
	 * pile up, and every context carries them. */
	if (!(part = rows(s, "SELECT id, content, status, priority, created_at,"
			  " completed_at, attempts, last_error FROM todos"
			  " WHERE stack_id = ?1 AND (status IN ('pending', 'in_progress', 'parked')"
			  "   OR id IN (SELECT id FROM todos WHERE stack_id = ?1"
			  "     AND status IN ('completed', 'cancelled')"
			  "     ORDER BY COALESCE(completed_at, created_at) DESC, id DESC"
			  "     LIMIT " STR(SNAPSHOT_CLOSED_TODOS) "))"
			  " ORDER BY id", "todo", stack_id, err)))
		goto fail;
	xjson_set(snap, "todos", part);
	/* The communicator's (the oldest unprocessed, not parked) and the
	 * planner's (the newest since its last planning, answered or not). */
	if (!(part = rows2(s, "SELECT * FROM (SELECT " USER_MESSAGE_COLUMNS
			   "   FROM user_messages WHERE stack_id = ?1 AND processed = 0"
			   "   AND parked_at IS NULL ORDER BY id"
			   "   LIMIT " STR(SNAPSHOT_USER_MESSAGES) ") AS oldest"
			   " UNION SELECT * FROM (SELECT " USER_MESSAGE_COLUMNS
			   "   FROM user_messages WHERE stack_id = ?1 AND created_at > ?2"
			   "   ORDER BY id DESC LIMIT " STR(SNAPSHOT_USER_MESSAGES) ") AS newest"
			   " ORDER BY id", "user message", stack_id, planned, err)))
		goto fail;
	xjson_set(snap, "user_messages", part);
	/* The oldest unread, within a count and a byte budget (the first is
	 * shown whatever its size: each is bounded on its own). */
	if (!(part = rows(s, "SELECT id, from_stack_id, content, created_at FROM ("
			  " SELECT m.id, m.from_stack_id, m.content, m.created_at,"
			  "  row_number() OVER w AS n,"
			  "  sum(octet_length(m.content)) OVER w AS upto"
			  " FROM messages m"
			  " WHERE (m.to_stack_id = ?1 OR (m.to_stack_id IS NULL"
			  "        AND m.from_stack_id IS DISTINCT FROM ?1))"
			  "   AND NOT EXISTS (SELECT 1 FROM message_reads r"
			  "        WHERE r.message_id = m.id AND r.stack_id = ?1)"
			  " WINDOW w AS (ORDER BY m.id)) AS unread"
			  " WHERE n <= " STR(SNAPSHOT_MESSAGES)
			  "   AND (n = 1 OR upto <= " STR(SNAPSHOT_MESSAGE_BYTES) ")"
			  " ORDER BY id", "message", stack_id, err)))
		goto fail;
	xjson_set(snap, "messages", part);
	if (!(part = counts(s, stack_id, err)))
		goto fail;
	xjson_set(snap, "counts", part);
	xjson_set(snap, "omitted", omitted(snap));
	if (!(part = first_row(s, "SELECT version, type, created_at,"
			       " octet_length(content) AS size FROM artifacts"
			       " WHERE stack_id = ? ORDER BY version DESC LIMIT 1",
			       "artifact", stack_id, err)))
		goto fail;
	xjson_set(snap, "artifact", part);

	memory = xjson(json_object());
	xjson_set(snap, "memory", memory);
	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		json_t *mem = snapshot_memory(s, stack_id, orch_agents[i], err);

		if (!mem)
			goto fail;
		memory_kept(mem, orch_agents[i], runs);
		xjson_set(memory, orch_agents[i], mem);
	}
	return snap;
fail:
	json_decref(snap);
	return NULL;
}

json_t *snapshot_load(struct store *s, int64_t stack_id, struct orch_error *err)
{
	int own = !store_in_transaction(s);
	json_t *snap;

	/* A read transaction, unless the caller has one: every part of the
	 * document sees one state. */
	if (own && store_begin_read(s, err) != 0)
		return NULL;
	snap = load(s, stack_id, err);
	if (own)
		store_rollback(s);
	return snap;
}
