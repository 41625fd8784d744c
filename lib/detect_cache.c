#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "doc.h"
#include "orch.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

int detect_due_stacks(struct store *s, int64_t now, unsigned flags,
		      int64_t **ids, size_t *n, struct orch_error *err)
{
	sqlite3_stmt *st;
	size_t alloc = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (flags & DETECT_FORCE)
		st = store_prepare(s, "SELECT id FROM stacks"
				   " WHERE execution_state = 'running' ORDER BY id", err);
	else
		st = store_prepare(s, "SELECT id FROM stacks"
				   " WHERE execution_state = 'running' AND next_run_at <= ?"
				   " ORDER BY id", err);
	if (!st)
		return -1;
	if (!(flags & DETECT_FORCE))
		sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			*ids = xreallocarray(*ids, alloc, sizeof(**ids));
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return store_error(s, err, "listing stacks");
	}
	return 0;
}

static int fresh(int64_t computed_at, int64_t now, int64_t ttl)
{
	return computed_at >= 0 && computed_at <= now && now - computed_at < ttl;
}

/* The cached document in column COL of ST with "cached": true, or NULL
 * when it is not a work status (a miss, never an error). New reference. */
static json_t *cached_status(sqlite3_stmt *st, int col)
{
	json_t *status;

	status = json_loadb((const char *)sqlite3_column_text(st, col),
			    (size_t)sqlite3_column_bytes(st, col), 0, NULL);
	if (!status || doc_check_type(status, "orch.work_status", NULL) != 0) {
		json_decref(status);
		return NULL;
	}
	xjson_set(status, "cached", json_true());
	return status;
}

int detect_stack(struct store *s, int64_t stack_id, int64_t now,
		 const struct detect_rules *rules, int64_t ttl, json_t **out,
		 int64_t *version, struct orch_error *err)
{
	int own = sqlite3_get_autocommit(s->db);
	sqlite3_stmt *st = NULL;
	json_t *snap = NULL, *status = NULL;
	int64_t current;
	int rc = -1, step;

	*out = NULL;
	/* One read transaction: the state_version and the snapshot agree. */
	if (own && store_exec(s, "BEGIN", err) != 0)
		return -1;
	st = store_prepare(s, "SELECT s.state_version, c.state_version,"
			   " c.computed_at, c.status FROM stacks s"
			   " LEFT JOIN detect_cache c ON c.stack_id = s.id"
			   " WHERE s.id = ?", err);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, stack_id);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (step != SQLITE_ROW) {
		store_error(s, err, "reading detection cache");
		goto out;
	}
	current = sqlite3_column_int64(st, 0);
	if (ttl >= 0 && sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    sqlite3_column_int64(st, 1) == current &&
	    fresh(sqlite3_column_int64(st, 2), now, ttl) &&
	    (status = cached_status(st, 3))) {
		*out = status;
		rc = 1;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!(snap = snapshot_load(s, stack_id, err)) ||
	    !(status = detect_work_status(snap, now, rules, err))) {
		orch_error_prefix(err, "stack %lld", (long long)stack_id);
		goto out;
	}
	*version = current;
	*out = status;
	rc = 1;
out:
	sqlite3_finalize(st);
	if (own)
		store_rollback(s);
	json_decref(snap);
	return rc;
}

int detect_cache_put(struct store *s, int64_t stack_id, int64_t version,
		     const json_t *status, struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	int64_t computed_at;
	int rc = -1;

	if (doc_int(status, "computed_at", 0, INT64_MAX, &computed_at, err) != 0)
		return -1;
	if (!(text = json_dumps(status, JSON_COMPACT)))
		return orch_error_set(err, ORCH_EX_SOFTWARE,
				      "cannot encode the work status of stack %lld",
				      (long long)stack_id);
	/* A stack deleted meanwhile gets no entry; an older state never
	 * replaces a newer one filed by an overlapping run. */
	st = store_prepare(s, "INSERT INTO detect_cache"
			   " (stack_id, state_version, computed_at, status)"
			   " SELECT id, ?2, ?3, ?4 FROM stacks WHERE id = ?1"
			   " ON CONFLICT (stack_id) DO UPDATE SET"
			   "  state_version = excluded.state_version,"
			   "  computed_at = excluded.computed_at,"
			   "  status = excluded.status"
			   " WHERE excluded.state_version >= detect_cache.state_version",
			   err);
	if (!st)
		goto out;
	sqlite3_bind_int64(st, 1, stack_id);
	sqlite3_bind_int64(st, 2, version);
	sqlite3_bind_int64(st, 3, computed_at);
	sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_error(s, err, "writing detection cache");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	free(text);
	return rc;
}
