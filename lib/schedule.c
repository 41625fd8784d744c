#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "orch.h"
#include "schedule.h"
#include "xalloc.h"
#include "banned.h"

int schedule_wake(struct store *s, int64_t stack_id, int64_t now,
		  struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "UPDATE stacks SET wake_at = ?2,"
					 " next_run_at = CASE WHEN next_run_at < ?2 THEN next_run_at ELSE ?2 END"
					 " WHERE id = ?1 AND execution_state = 'running'", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, now);
	return store_step_done(s, st, "waking the stack", err);
}

int schedule_wake_all(struct store *s, int64_t except, int64_t now,
		      struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "UPDATE stacks SET wake_at = ?2,"
					 " next_run_at = CASE WHEN next_run_at < ?2 THEN next_run_at ELSE ?2 END"
					 " WHERE execution_state = 'running' AND id <> ?1", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, except);
	stmt_bind_int(st, 2, now);
	return store_step_done(s, st, "waking the stacks", err);
}

/* Whether execution ID is a cycle of STACK_ID that has a decision. */
static int schedule_decided(struct store *s, int64_t id, int64_t stack_id)
{
	struct stmt *st = store_prepare(s, "SELECT 1 FROM executions WHERE id = ?"
					 " AND stack_id = ? AND decision IS NOT NULL", NULL);
	int rc;

	if (!st)
		return 0;
	stmt_bind_int(st, 1, id);
	stmt_bind_int(st, 2, stack_id);
	rc = stmt_step(st) == STMT_ROW;
	store_finish(s, st);
	return rc;
}

int schedule_record(struct store *s, const struct schedule_decision *d,
		    struct orch_error *err)
{
	struct stmt *st = NULL;

	/* Nothing to check the document against: a decision for a cycle
	 * nobody recorded would move a stack for nothing. */
	if (!d->execution_id)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "stack %lld: the document has no execution_id: nothing recorded",
				      (long long)d->stack_id);
	if (store_begin_stack(s, d->stack_id, err) != 0)
		return -1;
	{
		/* Decided once only: a document read again (a replayed log, a
		 * second orch-decide) must not count the cycle twice. */
		if (!(st = store_prepare(s, "UPDATE executions SET decision = ?, pause_ms = ?,"
					 " next_at = ?, reason = ?, rule = ?"
					 " WHERE id = ? AND stack_id = ? AND decision IS NULL", err)))
			goto fail;
		stmt_bind_text(st, 1, d->action);
		stmt_bind_int(st, 2, d->pause_ms);
		stmt_bind_int(st, 3, d->next_at);
		stmt_bind_text(st, 4, d->reason);
		stmt_bind_text(st, 5, d->rule);
		stmt_bind_int(st, 6, d->execution_id);
		stmt_bind_int(st, 7, d->stack_id);
		if (store_step_done(s, st, "recording the decision", err) != 0)
			goto fail;
		/* Another stack's cycle, none, or one decided already: record
		 * nothing for anyone. */
		if (store_changes(s) != 1) {
			orch_error_set(err, ORCH_EX_DATAERR,
				       schedule_decided(s, d->execution_id, d->stack_id)
				       ? "execution %lld of stack %lld was decided already: nothing recorded"
				       : "execution %lld is not a cycle of stack %lld: nothing recorded",
				       (long long)d->execution_id, (long long)d->stack_id);
			goto fail;
		}
	}
	/* A wake during the cycle (after its work was detected) stands: the
	 * decision only knew the state it was detected on. */
	if (!(st = store_prepare(s, "UPDATE stacks SET next_run_at = CASE"
				 "   WHEN ?6 = 0 AND ?5 > 0 AND wake_at >= ?5 AND wake_at < ?1 THEN wake_at ELSE ?1 END,"
				 " total_cycles = total_cycles + 1,"
				 " consecutive_failures = CASE WHEN ?2 <> 0 THEN consecutive_failures + 1 ELSE 0 END,"
				 " last_executed_at = ?3 WHERE id = ?4", err)))
		goto fail;
	stmt_bind_int(st, 1, d->next_at);
	stmt_bind_int(st, 2, d->failed);
	stmt_bind_int(st, 3, d->now);
	stmt_bind_int(st, 4, d->stack_id);
	stmt_bind_int(st, 5, d->detected_at);
	stmt_bind_int(st, 6, d->floor);
	if (store_step_done(s, st, "recording the decision", err) != 0)
		goto fail;
	if (d->stop) {
		if (!(st = store_prepare(s, "UPDATE stacks SET execution_state = 'stopped',"
					 " stopped_at = ?2 WHERE id = ?1 AND execution_state = 'running'",
					 err)))
			goto fail;
		stmt_bind_int(st, 1, d->stack_id);
		stmt_bind_int(st, 2, d->now);
		if (store_step_done(s, st, "stopping the stack", err) != 0)
			goto fail;
	}
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

int schedule_earliest(struct store *s, int64_t *at, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT min(CASE WHEN " SCHEDULE_DUE_SQL("?1")
					 " AND next_run_at > ?1 THEN ?1 ELSE next_run_at END)"
					 " FROM stacks WHERE execution_state = 'running'", err);
	int rc;

	*at = -1;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, orch_now_ms());
	rc = stmt_step(st);
	if (rc == STMT_ROW && stmt_type(st, 0) != STMT_NULL)
		*at = stmt_int(st, 0);
	store_finish(s, st);
	return rc == STMT_ROW ? 0 : store_error(s, err, "reading the next run");
}

int schedule_running(struct store *s, int64_t now, struct schedule_entry **out,
		     size_t *n, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT id, next_run_at, total_cycles,"
					 " lease_owner, COALESCE(lease_expires_at, 0),"
					 " " CYCLE_LEASE_TAKEN_SQL ", " SCHEDULE_DUE_SQL("?1")
					 " FROM stacks WHERE execution_state = 'running'"
					 " ORDER BY id", err);
	const char *holder;
	size_t alloc = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, now);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		struct schedule_entry *e;

		if (*n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			*out = xreallocarray(*out, alloc, sizeof(**out));
		}
		e = &(*out)[(*n)++];
		e->id = stmt_int(st, 0);
		e->next_run_at = stmt_int(st, 1);
		e->total_cycles = stmt_int(st, 2);
		holder = stmt_text(st, 3);
		e->held = holder && *holder &&
			  cycle_lease_held(holder, stmt_int(st, 4),
					   stmt_int(st, 5), now);
		e->due = stmt_int(st, 6);
	}
	store_finish(s, st);
	if (rc != STMT_DONE) {
		free(*out);
		*out = NULL;
		*n = 0;
		return store_error(s, err, "listing the running stacks");
	}
	return 0;
}
