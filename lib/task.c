/*
 * task.c - the agent's task: what orch-exec gives it in its context
 * (context_build), what its answer must do for it (actions_check_task),
 * and what orch settles after the run (actions_finish_*). The vocabulary
 * of actions itself is lib/actions.c's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "actions_int.h"
#include "orch.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

/* ---- what a run must do ------------------------------------------------ */

/* Whether DOC holds an action of TYPE whose KEY is ID (any action of TYPE
 * when KEY is NULL), and, with NEED, whose member NEED is given. */
static int has_action(const json_t *doc, const char *type, const char *key,
		      int64_t id, const char *need)
{
	const json_t *a, *v;
	size_t i;

	json_array_foreach(json_object_get(doc, "actions"), i, a) {
		if (strcmp(json_string_value(json_object_get(a, "type")), type) != 0)
			continue;
		if (key && json_integer_value(json_object_get(a, key)) != id)
			continue;
		v = need ? json_object_get(a, need) : NULL;
		if (need && (!v || json_is_null(v)))
			continue;
		return 1;
	}
	return 0;
}

int actions_check_task(const json_t *doc, const char *agent, int64_t todo_id,
		       int64_t user_message_id, struct orch_error *err)
{
	if (strcmp(agent, "builder") == 0 && todo_id &&
	    !has_action(doc, "write_artifact", NULL, 0, NULL) &&
	    !has_action(doc, "complete_todo", "id", todo_id, NULL) &&
	    !has_action(doc, "delete_todo", "id", todo_id, NULL) &&
	    !has_action(doc, "update_todo", "id", todo_id, "status"))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "the builder did nothing for todo %lld: write the"
				      " artifact (write_artifact) or set the todo's status"
				      " (complete_todo, update_todo, delete_todo)",
				      (long long)todo_id);
	if (strcmp(agent, "communicator") == 0 && user_message_id &&
	    !has_action(doc, "reply_user", "message_id", user_message_id, NULL))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "the communicator did not reply to user message %lld"
				      " (reply_user)", (long long)user_message_id);
	return 0;
}

int actions_check_context(const json_t *doc, const json_t *ctx,
			  struct orch_error *err)
{
	const json_t *task = json_object_get(ctx, "task");
	const char *agent = json_string_value(json_object_get(ctx, "agent"));

	if (!agent)
		return 0;
	return actions_check_task(doc, agent,
		json_integer_value(json_object_get(json_object_get(task, "todo"), "id")),
		json_integer_value(json_object_get(json_object_get(task, "user_message"), "id")),
		err);
}

json_t *actions_effects(const json_t *doc)
{
	int64_t created = 0, reopened = 0, recs = 0, artifacts = 0, replies = 0, sent = 0;
	const json_t *a;
	const char *type, *status;
	size_t i;

	json_array_foreach(json_object_get(doc, "actions"), i, a) {
		type = json_string_value(json_object_get(a, "type"));
		status = json_string_value(json_object_get(a, "status"));
		if (!type)
			continue;
		created += strcmp(type, "create_todo") == 0;
		reopened += strcmp(type, "update_todo") == 0 && status &&
			    strcmp(status, "pending") == 0;
		recs += strcmp(type, "recommend") == 0;
		artifacts += strcmp(type, "write_artifact") == 0;
		replies += strcmp(type, "reply_user") == 0;
		sent += strcmp(type, "send_message") == 0;
	}
	return xjson(json_pack("{sIsIsIsIsIsI}", "todos_created", (json_int_t)created,
			       "todos_reopened", (json_int_t)reopened,
			       "recommendations", (json_int_t)recs,
			       "artifacts", (json_int_t)artifacts,
			       "replies", (json_int_t)replies,
			       "messages_sent", (json_int_t)sent));
}

/* ---- the context ------------------------------------------------------ */

/*
 * Claim the builder's todo: the highest priority pending one, oldest
 * first. 1 with *ID set, 0 when there is none, -1 with ERR.
 */
static int claim_todo(struct store *s, int64_t stack_id, int64_t *id,
		      struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT id FROM todos"
					 " WHERE stack_id = ? AND status = 'pending'"
					 " ORDER BY priority DESC, id LIMIT 1", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	rc = actions_query_int(s, st, id, "reading todos", err);
	if (rc <= 0)
		return rc;
	if (!(st = store_prepare(s, "UPDATE todos SET status = 'in_progress'"
				 " WHERE id = ?", err)))
		return -1;
	stmt_bind_int(st, 1, *id);
	if (store_step_done(s, st, "claiming the todo", err) != 0)
		return -1;
	return 1;
}

/* A new copy of the element of ARRAY whose "id" is ID, or NULL. */
static json_t *copy_by_id(const json_t *array, int64_t id)
{
	const json_t *v;
	size_t i;

	json_array_foreach(array, i, v)
		if (json_integer_value(json_object_get(v, "id")) == id)
			return xjson(json_deep_copy(v));
	return NULL;
}

/* N as a JSON integer, or null when 0. New reference. */
static json_t *int_or_null(int64_t n)
{
	return n ? xjson(json_integer(n)) : json_null();
}

/*
 * The communicator's task in T from SNAP: the oldest unprocessed user
 * message, and the oldest unread inter-stack messages. 1, or 0 when there
 * is neither.
 */
static int communicator_task(const json_t *snap, json_t *t, struct agent_task *task)
{
	const json_t *m;
	json_t *shown = xjson(json_array());
	size_t i;

	/* The snapshot lists the planner's answered and parked messages
	 * too; a parked message is nobody's work until a person retries it. */
	json_array_foreach(json_object_get(snap, "user_messages"), i, m)
		if (!json_is_true(json_object_get(m, "processed")) &&
		    !json_is_integer(json_object_get(m, "parked_at"))) {
			task->user_message_id = json_integer_value(json_object_get(m, "id"));
			xjson_set(t, "user_message", xjson(json_deep_copy(m)));
			break;
		}
	json_array_foreach(json_object_get(snap, "messages"), i, m) {
		if (task->nmessages == CONTEXT_MAX_STACK_MESSAGES)
			break;
		task->message_ids[task->nmessages++] = json_integer_value(json_object_get(m, "id"));
		xjson_append(shown, xjson(json_deep_copy(m)));
	}
	xjson_set(t, "messages", shown);
	return task->user_message_id || task->nmessages;
}

/* The planner's task in T from SNAP: the user messages since its last
 * planning, answered or not; and how many recommendations it is shown. */
static void planner_task(const json_t *snap, json_t *t, struct agent_task *task)
{
	const json_t *mem = json_object_get(json_object_get(snap, "memory"), "planner");
	int64_t since = json_integer_value(json_object_get(mem, "last_planning_time"));
	json_t *recent = xjson(json_array());
	const json_t *m;
	size_t i;

	json_array_foreach(json_object_get(snap, "user_messages"), i, m)
		if (json_integer_value(json_object_get(m, "created_at")) > since)
			xjson_append(recent, xjson(json_deep_copy(m)));
	xjson_set(t, "user_messages", recent);
	task->recommendations = json_array_size(json_object_get(mem, KEY_RECOMMENDATIONS));
}

/* The caller holds the transaction (a write one for the builder, whose
 * todo is claimed), and commits or rolls it back. */
int context_build_in(struct store *s, int64_t stack_id, const char *agent,
		     const char *reason, int64_t now, int64_t execution_id,
		     int64_t cycle, struct agent_task *task, json_t **out,
		     struct orch_error *err)
{
	struct agent_task claimed;
	json_t *doc = NULL, *snap = NULL, *t = NULL, *reason_json, *part;
	int builder, rc = -1;

	memset(task, 0, sizeof(*task));
	memset(&claimed, 0, sizeof(claimed));
	claimed.execution_id = execution_id;
	claimed.started_at = now;
	claimed.cycle = cycle;
	*out = NULL;
	if (actions_check_agent(agent, err) != 0)
		return -1;
	reason_json = reason ? json_string(reason) : json_null();
	if (!reason_json)
		return orch_error_set(err, ORCH_EX_DATAERR, "reason is not valid UTF-8");
	t = xjson(json_object());
	xjson_set(t, "reason", reason_json);

	builder = strcmp(agent, "builder") == 0;
	if (builder) {
		rc = claim_todo(s, stack_id, &claimed.todo_id, err);
		if (rc == 0) /* nothing pending, unless there is no stack */
			rc = actions_stack_exists(s, stack_id, err);
		if (rc <= 0)
			goto out;
		rc = -1;
	}
	if (!(snap = snapshot_load(s, stack_id, err)))
		goto out;

	if (builder) {
		part = copy_by_id(json_object_get(snap, "todos"), claimed.todo_id);
		if (!part) {
			orch_error_set(err, ORCH_EX_SOFTWARE,
				       "claimed todo %lld is not in the snapshot",
				       (long long)claimed.todo_id);
			goto out;
		}
		xjson_set(t, "todo", part);
	} else if (strcmp(agent, "communicator") == 0) {
		if (!communicator_task(snap, t, &claimed)) {
			rc = 0;
			goto out;
		}
	} else if (strcmp(agent, "planner") == 0) {
		planner_task(snap, t, &claimed);
	}
	claimed.version_shown = json_integer_value(json_object_get(snap, "content_version"));

	doc = xjson(json_pack("{sssisssI}", "type", "orch.context", "version", 1,
			      "agent", agent, "now", (json_int_t)now));
	xjson_set(doc, "execution_id", int_or_null(execution_id));
	xjson_set(doc, "cycle", int_or_null(cycle));
	xjson_set(doc, "task", t);
	t = NULL;
	xjson_set(doc, "snapshot", snap);
	snap = NULL;
	if (builder || strcmp(agent, "reviewer") == 0) {
		if (!(part = snapshot_artifact_content(s, stack_id, err)))
			goto out;
	} else {
		part = json_null();
	}
	xjson_set(doc, "artifact_content", part);
	*task = claimed;
	*out = doc;
	doc = NULL;
	rc = 1;
out:
	json_decref(doc);
	json_decref(snap);
	json_decref(t);
	return rc;
}

int context_build(struct store *s, int64_t stack_id, const char *agent,
		  const char *reason, int64_t now, int64_t execution_id,
		  int64_t cycle, struct agent_task *task, json_t **out,
		  struct orch_error *err)
{
	int builder = agent && strcmp(agent, "builder") == 0, rc;

	memset(task, 0, sizeof(*task));
	*out = NULL;
	/*
	 * One transaction for the claim and everything the document shows, so
	 * the snapshot has the todo in_progress and any failure before the
	 * commit leaves it pending. Others only read.
	 */
	if ((builder ? store_begin_stack(s, stack_id, err) : store_begin_read(s, err)) != 0)
		return -1; /* perhaps the caller's transaction: not ours to roll back */
	rc = context_build_in(s, stack_id, agent, reason, now, execution_id, cycle, task,
			      out, err);
	if (rc == 1 && store_commit(s, err) != 0) {
		json_decref(*out);
		*out = NULL;
		memset(task, 0, sizeof(*task));
		rc = -1;
	}
	store_rollback(s);
	return rc;
}

/* ---- after the run ---------------------------------------------------- */

/* Drop the first CONSUME reviewer recommendations of the planner's memory. */
static int consume_recommendations(struct store *s, int64_t stack_id, size_t consume,
				   int64_t now, struct orch_error *err)
{
	json_t *mem, *recs;
	int rc;

	if (!consume)
		return 0;
	if (!(mem = snapshot_memory(s, stack_id, "planner", err)))
		return -1;
	recs = json_object_get(mem, KEY_RECOMMENDATIONS);
	if (!json_is_array(recs)) {
		json_decref(mem);
		return 0;
	}
	if (consume > json_array_size(recs))
		consume = json_array_size(recs);
	while (consume--)
		json_array_remove(recs, 0);
	rc = actions_memory_write(s, stack_id, "planner", mem, now, err);
	json_decref(mem);
	return rc;
}

/* The inter-stack messages TASK showed the communicator, marked read. */
static int read_shown_messages(struct store *s, int64_t stack_id,
			       const struct agent_task *task, int64_t now,
			       struct orch_error *err)
{
	struct stmt *st;
	size_t i;

	for (i = 0; i < task->nmessages; i++) {
		if (!(st = store_prepare(s, "INSERT INTO message_reads"
					 " (message_id, stack_id, read_at)"
					 " SELECT id, ?2, ?3 FROM messages WHERE id = ?1"
					 " ON CONFLICT DO NOTHING", err)))
			return -1;
		stmt_bind_int(st, 1, task->message_ids[i]);
		stmt_bind_int(st, 2, stack_id);
		stmt_bind_int(st, 3, now);
		if (store_step_done(s, st, "marking the messages read", err) != 0)
			return -1;
	}
	return 0;
}

/*
 * AGENT's last run, with the content_version it leaves as seen: what the
 * stack is now, its own writes included, when nobody else wrote during
 * the run (the version at the apply is the one it was shown); else the
 * version it was shown, which the next detection finds changed.
 */
static int record_run(struct store *s, int64_t stack_id, const char *agent,
		      const struct agent_task *task, int64_t now, struct orch_error *err)
{
	struct stmt *st;
	int64_t seen;

	if (task->version_at_apply == task->version_shown) {
		if (actions_content_version(s, stack_id, &seen, err) != 0)
			return -1;
	} else {
		seen = task->version_shown;
	}
	if (!(st = store_prepare(s, "INSERT INTO agent_runs (stack_id, agent, cycle,"
				 " started_at, ended_at, seen_version)"
				 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
				 " ON CONFLICT (stack_id, agent) DO UPDATE SET"
				 " cycle = excluded.cycle, started_at = excluded.started_at,"
				 " ended_at = excluded.ended_at, seen_version = excluded.seen_version",
				 err)))
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_text(st, 2, agent);
	if (task->cycle)
		stmt_bind_int(st, 3, task->cycle);
	stmt_bind_int(st, 4, task->started_at);
	stmt_bind_int(st, 5, now);
	stmt_bind_int(st, 6, seen);
	return store_step_done(s, st, "recording the run", err);
}

int actions_finish_success(struct store *s, int64_t stack_id, const char *agent,
			   const struct agent_task *task, int64_t now,
			   struct orch_error *err)
{
	struct stmt *st;

	if (actions_check_agent(agent, err) != 0)
		return -1;
	if (strcmp(agent, "planner") == 0 &&
	    consume_recommendations(s, stack_id, task->recommendations, now, err) != 0)
		return -1;
	if (strcmp(agent, "builder") == 0 && task->todo_id) {
		/* actions_check_task() let it through: it wrote the artifact,
		 * or set the todo's status, which then stands. */
		if (!(st = store_prepare(s, "UPDATE todos SET status = 'completed',"
					 " completed_at = ?3 WHERE id = ?1"
					 " AND stack_id = ?2 AND status = 'in_progress'",
					 err)))
			return -1;
		stmt_bind_int(st, 1, task->todo_id);
		stmt_bind_int(st, 2, stack_id);
		stmt_bind_int(st, 3, now);
		if (store_step_done(s, st, "completing the builder's todo", err) != 0)
			return -1;
	}
	/* Its user message was answered by its reply_user. */
	if (strcmp(agent, "communicator") == 0 &&
	    read_shown_messages(s, stack_id, task, now, err) != 0)
		return -1;
	return record_run(s, stack_id, agent, task, now, err);
}

/*
 * A failed run's work, given back: the builder's todo to pending, and when
 * the failure was the run's (WHY) it counts against what the run was
 * given; after PARK_AFTER such failures (0: never) that work is parked
 * with WHY as its last error, and the stack moves on without it.
 */
static int give_back_todo(struct store *s, int64_t stack_id, int64_t todo_id,
			  const char *why, int64_t park_after, struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"UPDATE todos SET"
		" attempts = attempts + CASE WHEN CAST(?3 AS TEXT) IS NOT NULL THEN 1 ELSE 0 END,"
		" last_error = COALESCE(?3, last_error),"
		" status = CASE WHEN ?3 IS NOT NULL AND ?4 > 0 AND attempts + 1 >= ?4"
		"   THEN 'parked' ELSE 'pending' END"
		" WHERE id = ?1 AND stack_id = ?2 AND status = 'in_progress'", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, todo_id);
	stmt_bind_int(st, 2, stack_id);
	if (why)
		stmt_bind_text(st, 3, why);
	stmt_bind_int(st, 4, park_after);
	return store_step_done(s, st, "giving back the builder's todo", err);
}

/* The communicator's user message and inter-stack messages, charged with
 * a failure the same way; an inter-stack message parked is set aside as
 * read, with no answer. */
static int charge_messages(struct store *s, int64_t stack_id,
			   const struct agent_task *task, const char *why,
			   int64_t park_after, int64_t now, struct orch_error *err)
{
	struct stmt *st;
	size_t i;

	if (task->user_message_id) {
		if (!(st = store_prepare(s, "UPDATE user_messages SET attempts = attempts + 1,"
					 " last_error = ?3, parked_at = CASE WHEN ?4 > 0"
					 "   AND attempts + 1 >= ?4 THEN ?5 END"
					 " WHERE id = ?1 AND stack_id = ?2 AND processed = 0"
					 " AND parked_at IS NULL", err)))
			return -1;
		stmt_bind_int(st, 1, task->user_message_id);
		stmt_bind_int(st, 2, stack_id);
		stmt_bind_text(st, 3, why);
		stmt_bind_int(st, 4, park_after);
		stmt_bind_int(st, 5, now);
		if (store_step_done(s, st, "counting the user message's failure", err) != 0)
			return -1;
	}
	for (i = 0; i < task->nmessages; i++) {
		if (!(st = store_prepare(s, "INSERT INTO message_failures (message_id,"
					 " stack_id, attempts, last_error)"
					 " SELECT id, ?2, 1, ?3 FROM messages WHERE id = ?1"
					 " ON CONFLICT (message_id, stack_id) DO UPDATE SET"
					 " attempts = message_failures.attempts + 1, last_error = excluded.last_error",
					 err)))
			return -1;
		stmt_bind_int(st, 1, task->message_ids[i]);
		stmt_bind_int(st, 2, stack_id);
		stmt_bind_text(st, 3, why);
		if (store_step_done(s, st, "counting the message's failure", err) != 0)
			return -1;
		if (!(st = store_prepare(s, "INSERT INTO message_reads"
					 " (message_id, stack_id, read_at)"
					 " SELECT message_id, stack_id, ?3 FROM message_failures"
					 " WHERE message_id = ?1 AND stack_id = ?2"
					 " AND ?4 > 0 AND attempts >= ?4 ON CONFLICT DO NOTHING", err)))
			return -1;
		stmt_bind_int(st, 1, task->message_ids[i]);
		stmt_bind_int(st, 2, stack_id);
		stmt_bind_int(st, 3, now);
		stmt_bind_int(st, 4, park_after);
		if (store_step_done(s, st, "parking the message", err) != 0)
			return -1;
	}
	return 0;
}

int actions_finish_failure(struct store *s, int64_t stack_id, const char *agent,
			   const struct agent_task *task, const char *why,
			   int64_t park_after, int64_t now, struct orch_error *err)
{
	int builder, communicator;

	if (actions_check_agent(agent, err) != 0)
		return -1;
	builder = strcmp(agent, "builder") == 0 && task->todo_id;
	communicator = strcmp(agent, "communicator") == 0 && why &&
		(task->user_message_id || task->nmessages);
	if (!builder && !communicator)
		return 0;
	if (store_begin_stack(s, stack_id, err) != 0)
		return -1;
	if (builder && give_back_todo(s, stack_id, task->todo_id, why, park_after, err) != 0)
		goto fail;
	if (communicator && charge_messages(s, stack_id, task, why, park_after, now, err) != 0)
		goto fail;
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}
