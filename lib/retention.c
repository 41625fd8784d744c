#include <stdlib.h>
#include <string.h>

#include "orch.h"
#include "retention.h"
#include "traces.h"
#include "usage_sql.h"
#include "xalloc.h"
#include "banned.h"

int retention_configure(struct retention_rules *r, const struct config *c,
			struct orch_error *err)
{
	if (config_number(c, "retain.cycles", &r->cycles, err) != 0 ||
	    config_number(c, "retain.age", &r->age_ms, err) != 0 ||
	    config_number(c, "retain.versions", &r->versions, err) != 0)
		return -1;
	return 0;
}

/* Ids, as a victims query gives them. */
struct ids {
	int64_t *v; /* owned */
	size_t n;
	size_t alloc;
};

static int add_id(struct stmt *st, void *arg)
{
	struct ids *ids = arg;

	if (ids->n == ids->alloc) {
		ids->alloc = ids->alloc ? 2 * ids->alloc : 16;
		ids->v = xreallocarray(ids->v, ids->alloc, sizeof(*ids->v));
	}
	ids->v[ids->n++] = stmt_int(st, 0);
	return 0;
}

/* The ids ST selects, into IDS (emptied first); ST is finished. */
static int collect(struct store *s, struct stmt *st, struct ids *ids,
		   struct orch_error *err)
{
	ids->n = 0;
	return store_each(s, st, add_id, ids, "choosing what to prune", err);
}

/* A bound for LIMIT, none when LIMIT is 0 or less (SQLite reads a
 * negative one as none; PostgreSQL refuses it). */
static int64_t sql_limit(int64_t limit)
{
	return limit > 0 ? limit : INT64_MAX;
}

/* The OFFSET past the newest KEEP rows: none when all are kept. */
static int64_t sql_keep(int64_t keep)
{
	return keep > 0 ? keep : INT64_MAX;
}

/* Before this time is too old; nothing is when age is 0. */
static int64_t sql_before(const struct retention_rules *r, int64_t now)
{
	return r->age_ms > 0 && now > INT64_MIN + r->age_ms ? now - r->age_ms : INT64_MIN;
}

/* Run the one-id statement SQL (?1) for ID: 0, or -1 with ERR. */
static int by_id(struct store *s, const char *sql, int64_t id, const char *what,
		 struct orch_error *err)
{
	struct stmt *st = store_prepare(s, sql, err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	return store_step_done(s, st, what, err);
}

/* The count the one-id query SQL gives for ID, in *N. */
static int count_by_id(struct store *s, const char *sql, int64_t id, int64_t *n,
		       struct orch_error *err)
{
	struct stmt *st = store_prepare(s, sql, err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	return store_query_int(s, st, n, "counting what to prune", err) < 0 ? -1 : 0;
}

/* The saturating sum of two token counts, in SQL (usage_days keeps). */
#define SAT_ADD(col)                                                            \
	col " = CASE WHEN usage_days." col " > 9223372036854775807 - excluded." col \
	" THEN 9223372036854775807 ELSE usage_days." col " + excluded." col " END"

/* Cycle ID's runs' and requests' tokens, into usage_days: `orch-stack
 * usage` counts them once they are gone (usage_sql.h says how). */
static int keep_usage(struct store *s, int64_t id, struct orch_error *err)
{
	return by_id(s,
		"INSERT INTO usage_days (stack_id, agent, model, day, runs, failed_runs, requests,"
		" prompt_tokens, completion_tokens, cached_tokens, failed_tokens)"
		" SELECT stack_id, agent, model, day, sum(runs), sum(failed_runs), sum(requests),"
		"  sum(p), sum(c), sum(k), sum(f)"
		" FROM (" USAGE_OF_REQUESTS("r.execution_id = ?1")
		"  UNION ALL " USAGE_OF_RUNS("t.execution_id = ?1") ") AS pruned"
		" GROUP BY stack_id, agent, model, day"
		" ON CONFLICT (stack_id, agent, model, day) DO UPDATE SET"
		" runs = usage_days.runs + excluded.runs,"
		" failed_runs = usage_days.failed_runs + excluded.failed_runs,"
		" requests = usage_days.requests + excluded.requests, " SAT_ADD("prompt_tokens") ", "
		SAT_ADD("completion_tokens") ", " SAT_ADD("cached_tokens") ", "
		SAT_ADD("failed_tokens"),
		id, "keeping the usage of a pruned cycle", err);
}

/* STACK_ID's cycles that R no longer keeps. */
static int prune_cycles(struct store *s, const struct retention_rules *r,
			int64_t stack_id, int64_t now, int64_t limit, int dry,
			struct retention_counts *counts, struct orch_error *err)
{
	struct ids ids = { NULL, 0, 0 };
	struct stmt *st = store_prepare(s,
		"SELECT id FROM executions"
		" WHERE stack_id = ?1 AND status <> 'running'"
		"  AND cycle < (SELECT max(cycle) FROM executions WHERE stack_id = ?1)"
		"  AND (cycle <= (SELECT cycle FROM executions WHERE stack_id = ?1"
		"                 ORDER BY cycle DESC LIMIT 1 OFFSET ?2)"
		"       OR started_at < ?3)"
		" ORDER BY cycle LIMIT ?4", err);
	int64_t runs;
	size_t i;
	int rc = -1;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, sql_keep(r->cycles));
	stmt_bind_int(st, 3, sql_before(r, now));
	stmt_bind_int(st, 4, sql_limit(limit));
	if (collect(s, st, &ids, err) != 0)
		goto out;
	for (i = 0; i < ids.n; i++) {
		if (count_by_id(s, "SELECT count(*) FROM traces WHERE execution_id = ?1",
				ids.v[i], &runs, err) != 0)
			goto out;
		if (!dry && (keep_usage(s, ids.v[i], err) != 0 ||
			     by_id(s, "DELETE FROM executions WHERE id = ?1", ids.v[i],
				   "pruning a cycle", err) != 0))
			goto out;
		counts->cycles++;
		counts->runs += runs;
	}
	rc = 0;
out:
	free(ids.v);
	return rc;
}

/* Delete (unless DRY) the rows of TABLE whose ids ST selects; counts them
 * in *N. SQL_DELETE deletes one by id. */
static int prune_selected(struct store *s, struct stmt *st, const char *sql_delete,
			  int dry, int64_t *n, const char *what, struct orch_error *err)
{
	struct ids ids = { NULL, 0, 0 };
	size_t i;
	int rc = -1;

	if (collect(s, st, &ids, err) != 0)
		goto out;
	for (i = 0; i < ids.n; i++) {
		if (!dry && by_id(s, sql_delete, ids.v[i], what, err) != 0)
			goto out;
		(*n)++;
	}
	rc = 0;
out:
	free(ids.v);
	return rc;
}

static int prune_versions(struct store *s, const struct retention_rules *r,
			  int64_t stack_id, int64_t limit, int dry,
			  struct retention_counts *counts, struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"SELECT id FROM artifacts WHERE stack_id = ?1"
		"  AND version <= (SELECT version FROM artifacts WHERE stack_id = ?1"
		"                  ORDER BY version DESC LIMIT 1 OFFSET ?2)"
		" ORDER BY version LIMIT ?3", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, sql_keep(r->versions));
	stmt_bind_int(st, 3, sql_limit(limit));
	return prune_selected(s, st, "DELETE FROM artifacts WHERE id = ?1", dry,
			      &counts->versions, "pruning an artifact version", err);
}

#define DELETE_MESSAGE "DELETE FROM messages WHERE id = ?1"

/* The messages to STACK_ID alone that it has read, unless one of its
 * cycles is running: its agents may still name them. */
static int prune_received(struct store *s, int64_t stack_id, int64_t limit, int dry,
			  struct retention_counts *counts, struct orch_error *err)
{
	int64_t running;
	struct stmt *st;

	if (count_by_id(s, "SELECT count(*) FROM executions"
			" WHERE stack_id = ?1 AND status = 'running'", stack_id, &running,
			err) != 0)
		return -1;
	if (running)
		return 0;
	if (!(st = store_prepare(s,
		"SELECT m.id FROM messages m WHERE m.to_stack_id = ?1"
		"  AND EXISTS (SELECT 1 FROM message_reads r"
		"              WHERE r.message_id = m.id AND r.stack_id = ?1)"
		" ORDER BY m.id LIMIT ?2", err)))
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, sql_limit(limit));
	return prune_selected(s, st, DELETE_MESSAGE, dry, &counts->messages,
			      "pruning a message", err);
}

/* Broadcasts older than the age, of sender STACK_ID, or of deleted
 * senders when STACK_ID is 0. */
static int prune_broadcasts(struct store *s, const struct retention_rules *r,
			    int64_t stack_id, int64_t now, int64_t limit, int dry,
			    struct retention_counts *counts, struct orch_error *err)
{
	struct stmt *st;

	if (r->age_ms <= 0)
		return 0;
	if (!(st = store_prepare(s, stack_id
		? "SELECT id FROM messages WHERE to_stack_id IS NULL AND from_stack_id = ?1"
		  " AND created_at < ?2 ORDER BY id LIMIT ?3"
		: "SELECT id FROM messages WHERE to_stack_id IS NULL AND from_stack_id IS NULL"
		  " AND created_at < ?2 ORDER BY id LIMIT ?3", err)))
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, sql_before(r, now));
	stmt_bind_int(st, 3, sql_limit(limit));
	return prune_selected(s, st, DELETE_MESSAGE, dry, &counts->messages,
			      "pruning a broadcast", err);
}

/* Begin: a write transaction, or a read one for a DRY run. */
static int begin(struct store *s, int dry, struct orch_error *err)
{
	return dry ? store_begin_read(s, err) : store_begin(s, err);
}

/* End what begin() began: commit RC 0, else roll back. */
static int end(struct store *s, int rc, struct orch_error *err)
{
	if (rc != 0) {
		store_rollback(s);
		return -1;
	}
	return store_commit(s, err);
}

/* retention_prune_stack() inside the caller's transaction. */
static int prune_stack(struct store *s, const struct retention_rules *r,
		       int64_t stack_id, int64_t now, int64_t limit, int dry,
		       struct retention_counts *counts, struct orch_error *err)
{
	if (prune_cycles(s, r, stack_id, now, limit, dry, counts, err) != 0 ||
	    prune_versions(s, r, stack_id, limit, dry, counts, err) != 0 ||
	    prune_received(s, stack_id, limit, dry, counts, err) != 0 ||
	    prune_broadcasts(s, r, stack_id, now, limit, dry, counts, err) != 0)
		return -1;
	return 0;
}

int retention_prune_stack(struct store *s, const struct retention_rules *r,
			  int64_t stack_id, int64_t now, int64_t limit, int dry,
			  struct retention_counts *counts, struct orch_error *err)
{
	if (begin(s, dry, err) != 0)
		return -1;
	return end(s, prune_stack(s, r, stack_id, now, limit, dry, counts, err), err);
}

int retention_prune_orphans(struct store *s, const struct retention_rules *r,
			    int64_t now, int64_t limit, int dry,
			    struct retention_counts *counts, struct orch_error *err)
{
	struct stmt *st;
	int rc = -1;

	if (begin(s, dry, err) != 0)
		return -1;
	if (prune_broadcasts(s, r, 0, now, limit, dry, counts, err) != 0)
		goto out;
	/* The foreign key removes them with their stack; a database whose
	 * keys were once off may still hold some. */
	if (!(st = store_prepare(s, "SELECT stack_id FROM detect_cache c WHERE NOT EXISTS"
				 " (SELECT 1 FROM stacks WHERE id = c.stack_id) LIMIT ?1", err)))
		goto out;
	stmt_bind_int(st, 1, sql_limit(limit));
	if (prune_selected(s, st, "DELETE FROM detect_cache WHERE stack_id = ?1", dry,
			   &counts->cache, "pruning the detection cache", err) != 0)
		goto out;
	rc = 0;
out:
	return end(s, rc, err);
}

/*
 * Up to PAGES pages (of about 1,000 bytes) of work merging the full-text
 * index's segments into one: the runs a prune deleted stay in it as
 * deletion markers until their segment is merged with the one that holds
 * them, which FTS5's own merging does ever more rarely as the index ages
 * (a busy stack's index was four times its size after 1,000 cycles).
 * Nothing to do costs next to nothing. Inside the caller's transaction.
 */
static int tidy_index(struct store *s, int64_t pages, struct orch_error *err)
{
	struct stmt *st;
	int64_t moved;

	if (store_engine(s) == STORE_POSTGRES) {
		/* A GIN index keeps no deletion markers: its pending list, new
		 * entries not yet merged, is all there is to tidy. */
		st = store_prepare(s, "SELECT gin_clean_pending_list('traces_fts_doc')", err);
		return st && store_query_int(s, st, &moved, "tidying the search index", err) >= 0
		       ? 0 : -1;
	}
	st = store_prepare(s, "INSERT INTO traces_fts (traces_fts, rank) VALUES ('merge', ?1)",
			   err);
	if (!st)
		return -1;
	/* Negative: merge whatever segments there are, as 'optimize' would. */
	stmt_bind_int(st, 1, -pages);
	return store_step_done(s, st, "merging the search index", err);
}

int retention_tidy(struct store *s, int64_t pages, int64_t *size, struct orch_error *err)
{
	struct stmt *st;

	if (store_begin(s, err) != 0)
		return -1;
	if (tidy_index(s, pages, err) != 0 ||
	    !(st = store_prepare(s, store_sql(s, "SELECT count(*) FROM traces_fts_data",
					      "SELECT pg_relation_size('traces_fts_doc') / 8192"),
				 err)) ||
	    store_query_int(s, st, size, "measuring the search index", err) < 0)
		return end(s, -1, err);
	return end(s, 0, err);
}

int retention_after_decision(struct store *s, const struct retention_rules *r,
			     int64_t stack_id, int64_t now, struct orch_error *err)
{
	struct retention_counts counts = { 0, 0, 0, 0, 0 };
	int rc;

	/* Most decisions leave nothing to prune: look first, without a
	 * lock, and take the store's write lock (a broadcast pruned writes
	 * every stack's row) only when there is something. On PostgreSQL a
	 * cycle taking it every time made the hosts' cycles wait in turn. */
	if (store_begin_read(s, err) != 0)
		return -1;
	rc = prune_stack(s, r, stack_id, now, RETENTION_STEP, 1, &counts, err) != 0 ||
	     prune_broadcasts(s, r, 0, now, RETENTION_STEP, 1, &counts, err) != 0 ? -1 : 0;
	store_rollback(s);
	if (rc != 0)
		return -1;
	if (!counts.cycles && !counts.runs && !counts.versions && !counts.messages && !counts.cache)
		return 0;
	memset(&counts, 0, sizeof(counts));
	if (store_begin(s, err) != 0)
		return -1;
	/* And deleted stacks' broadcasts, by their index; not the cache,
	 * whose search reads every row (orch-stack gc's). */
	rc = prune_stack(s, r, stack_id, now, RETENTION_STEP, 0, &counts, err) != 0 ||
	     prune_broadcasts(s, r, 0, now, RETENTION_STEP, 0, &counts, err) != 0 ||
	     (counts.runs && tidy_index(s, RETENTION_TIDY_PAGES, err) != 0) ? -1 : 0;
	return end(s, rc, err);
}
