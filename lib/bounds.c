/*
 * bounds.c - the totals a stack may hold, read and checked around an
 * agent's actions (bounds.h).
 */
#include <stdio.h>
#include <string.h>

#include "bounds.h"
#include "banned.h"

/* The planner's memory member that holds the reviewers' advice. */
#define RECOMMENDATIONS_PATH "$.reviewer_recommendations"

int bounds_read(struct store *s, int64_t stack_id, int64_t now,
		struct bounds_totals *t, struct orch_error *err)
{
	struct stmt *st;
	int rc, i;

	memset(t, 0, sizeof(*t));
	st = store_prepare(s,
		"SELECT"
		" (SELECT count(*) FROM todos WHERE stack_id = ?1"
		"   AND status IN ('pending', 'in_progress', 'parked')),"
		" (SELECT COALESCE(sum(octet_length(content)), 0) FROM todos"
		"   WHERE stack_id = ?1 AND status IN ('pending', 'in_progress', 'parked')),"
		" (SELECT count(*) FROM messages WHERE from_stack_id = ?1"
		"   AND created_at > ?2),"
		" (SELECT CASE WHEN json_valid(data)"
		"   AND json_type(data, '" RECOMMENDATIONS_PATH "') = 'array'"
		"   THEN json_array_length(data, '" RECOMMENDATIONS_PATH "') ELSE 0 END"
		"   FROM memory WHERE stack_id = ?1 AND agent = 'planner')", err);
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, now - 3600 * 1000);
	if ((rc = stmt_step(st)) == STMT_ROW) {
		t->open_todos = stmt_int(st, 0);
		t->open_todo_bytes = stmt_int(st, 1);
		t->sent_last_hour = stmt_int(st, 2);
		t->recommendations = stmt_int(st, 3);
	}
	store_finish(s, st);
	if (rc != STMT_ROW)
		return store_error(s, err, "reading the stack's totals");

	if (!(st = store_prepare(s, "SELECT agent, octet_length(data)"
				 " FROM memory WHERE stack_id = ?", err)))
		return -1;
	stmt_bind_int(st, 1, stack_id);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		const char *agent = stmt_text(st, 0);

		if (agent && (i = orch_agent_index(agent)) >= 0)
			t->memory_bytes[i] = stmt_int(st, 1);
	}
	store_finish(s, st);
	if (rc != STMT_DONE)
		return store_error(s, err, "reading the stack's memory");
	return 0;
}

/* -1 with ERR when total AFTER passes LIMIT and grew from BEFORE. */
static int over(int64_t before, int64_t after, int64_t limit, const char *what,
		struct orch_error *err)
{
	if (after <= limit || after <= before)
		return 0;
	return orch_error_set(err, ORCH_EX_DATAERR, "refused: the stack would have"
			      " %lld %s, at most %lld", (long long)after, what,
			      (long long)limit);
}

int bounds_check(const struct bounds_totals *b, const struct bounds_totals *a,
		 struct orch_error *err)
{
	char what[64];
	int i;

	if (over(b->open_todos, a->open_todos, BOUND_OPEN_TODOS,
		 "open todos (pending, in progress or parked)", err) ||
	    over(b->open_todo_bytes, a->open_todo_bytes, BOUND_OPEN_TODO_BYTES,
		 "bytes of open todos", err) ||
	    over(b->recommendations, a->recommendations, BOUND_RECOMMENDATIONS,
		 "recommendations waiting for the planner", err) ||
	    over(b->sent_last_hour, a->sent_last_hour, BOUND_SENT_PER_HOUR,
		 "messages sent in the last hour", err))
		return -1;
	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		snprintf(what, sizeof(what), "bytes of %s memory", orch_agents[i]);
		if (over(b->memory_bytes[i], a->memory_bytes[i], BOUND_MEMORY_BYTES, what, err))
			return -1;
	}
	return 0;
}
