#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "doc.h"
#include "orch.h"
#include "schedule.h"
#include "snapshot.h"
#include "xalloc.h"
#include "banned.h"

int detect_due_stacks(struct store *s, int64_t now, unsigned flags,
		      int64_t **ids, size_t *n, struct orch_error *err)
{
	struct stmt *st;
	size_t alloc = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (flags & DETECT_FORCE)
		st = store_prepare(s, "SELECT id FROM stacks"
				   " WHERE execution_state = 'running' ORDER BY id", err);
	else
		st = store_prepare(s, "SELECT id FROM stacks"
				   " WHERE execution_state = 'running' AND " SCHEDULE_DUE_SQL("?1")
				   " ORDER BY id", err);
	if (!st)
		return -1;
	if (!(flags & DETECT_FORCE))
		stmt_bind_int(st, 1, now);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		if (*n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			*ids = xreallocarray(*ids, alloc, sizeof(**ids));
		}
		(*ids)[(*n)++] = stmt_int(st, 0);
	}
	store_finish(s, st);
	if (rc != STMT_DONE) {
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
static json_t *cached_status(struct stmt *st, int col)
{
	json_t *status;

	status = json_loadb(stmt_text(st, col),
			    stmt_bytes(st, col), 0, NULL);
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
	int own = !store_in_transaction(s);
	struct stmt *st = NULL;
	json_t *snap = NULL, *status = NULL;
	int64_t current;
	int rc = -1, step;

	*out = NULL;
	/* One read transaction: the state_version and the snapshot agree. */
	if (own && store_begin_read(s, err) != 0)
		return -1;
	st = store_prepare(s, "SELECT s.state_version, c.state_version,"
			   " c.computed_at, c.status FROM stacks s"
			   " LEFT JOIN detect_cache c ON c.stack_id = s.id AND c.rules = ?2"
			   " WHERE s.id = ?1", err);
	if (!st)
		goto out;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, rules->fingerprint);
	step = stmt_step(st);
	if (step == STMT_DONE) {
		rc = 0;
		goto out;
	}
	if (step != STMT_ROW) {
		store_error(s, err, "reading detection cache");
		goto out;
	}
	current = stmt_int(st, 0);
	if (ttl >= 0 && stmt_type(st, 1) != STMT_NULL &&
	    stmt_int(st, 1) == current &&
	    fresh(stmt_int(st, 2), now, ttl) &&
	    (status = cached_status(st, 3))) {
		*out = status;
		rc = 1;
		goto out;
	}
	store_finish(s, st);
	st = NULL;
	if (!(snap = snapshot_load(s, stack_id, err)) ||
	    !(status = detect_work_status(snap, now, rules, err))) {
		struct stack_row row;

		/* Bad data is this stack's fault alone: its error status. */
		if (err->status != ORCH_EX_DATAERR)
			goto out;
		if ((step = store_get_stack(s, stack_id, &row, NULL)) != 1) {
			rc = step;
			goto out;
		}
		status = detect_error_status(stack_row_header(&row), now, err->msg);
		stack_row_release(&row);
		orch_error_release(err);
	}
	*version = current;
	*out = status;
	rc = 1;
out:
	store_finish(s, st);
	if (own)
		store_rollback(s);
	json_decref(snap);
	return rc;
}

int detect_cache_put(struct store *s, int64_t stack_id, int64_t version,
		     int64_t rules, const json_t *status, struct orch_error *err)
{
	struct stmt *st = NULL;
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
			   " (stack_id, state_version, computed_at, status, rules)"
			   " SELECT id, ?2, ?3, ?4, ?5 FROM stacks WHERE id = ?1"
			   " ON CONFLICT (stack_id) DO UPDATE SET"
			   "  state_version = excluded.state_version,"
			   "  computed_at = excluded.computed_at,"
			   "  status = excluded.status,"
			   "  rules = excluded.rules"
			   " WHERE excluded.state_version >= detect_cache.state_version",
			   err);
	if (!st)
		goto out;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, version);
	stmt_bind_int(st, 3, computed_at);
	stmt_bind_text(st, 4, text);
	stmt_bind_int(st, 5, rules);
	if (stmt_step(st) != STMT_DONE) {
		store_error(s, err, "writing detection cache");
		goto out;
	}
	rc = 0;
out:
	store_finish(s, st);
	free(text);
	return rc;
}

/* --- detect_stacks(): the set-based path --- */

enum batch_kind {
	BATCH_GONE,     /* no such stack */
	BATCH_CACHED,   /* served from the cache: out[i] is set */
	BATCH_COMPUTE,  /* the facts are gathered by the queries */
	BATCH_SLOW,     /* a value of the wrong type: detect_stack() */
};

/* One batch: the stacks asked for and what is found about each. */
struct batch {
	const int64_t *ids;          /* borrowed: the stacks, ascending */
	size_t n;                    /* entries in ids */
	unsigned char *kind;         /* owned: enum batch_kind per stack */
	struct detect_facts *facts;  /* owned: per stack */
	json_t **header;             /* owned: per stack, for BATCH_COMPUTE */
	const struct detect_rules *rules; /* borrowed */
	size_t last;                 /* the index batch_find() found last */
};

/* The index of stack ID in B, or B->n. */
static size_t batch_find(struct batch *b, int64_t id)
{
	size_t lo = 0, hi = b->n, mid;

	if (b->last < b->n && b->ids[b->last] == id)
		return b->last;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (b->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < b->n && b->ids[lo] == id)
		return b->last = lo;
	return b->n;
}

/*
 * The batch's SQL is the same on both engines but for two things: the
 * stacks' ids as a table "b" (bound as a JSON array at ?1), and the
 * checks that send a stack to detect_stack() for its precise error. A
 * SQLite column holds any type, so those check the types; PostgreSQL's
 * columns are typed and NOT NULL where these read them, leaving the
 * ranges.
 */
#define BATCH_IDS_SQLITE "(" STORE_IDS_SQLITE("?1") ") b"
#define BATCH_IDS_PG "(" STORE_IDS_PG("?1") ") b"

#define STACKS_SQL(IDS, WELL_TYPED) \
	"SELECT s.id, s.name, s.phase, s.execution_state," \
	" s.created_at, s.state_version," \
	" c.state_version, c.computed_at, c.status," \
	" EXISTS (SELECT 1 FROM projects p WHERE p.stack_id = s.id)," \
	" mp.data, s.content_version," \
	" (SELECT a.created_at FROM artifacts a WHERE a.stack_id = s.id" \
	"   ORDER BY a.version DESC LIMIT 1)," \
	" " WELL_TYPED "," \
	" rp.started_at, rp.seen_version, rp.cycle," \
	" rr.started_at, rr.seen_version, rr.cycle" \
	" FROM stacks s" \
	" LEFT JOIN detect_cache c ON c.stack_id = s.id AND c.rules = ?2" \
	" LEFT JOIN memory mp ON mp.stack_id = s.id AND mp.agent = 'planner'" \
	" LEFT JOIN agent_runs rp ON rp.stack_id = s.id AND rp.agent = 'planner'" \
	" LEFT JOIN agent_runs rr ON rr.stack_id = s.id AND rr.agent = 'reviewer'" \
	" WHERE s.id IN (" IDS ") ORDER BY s.id"
#define STACKS_WELL_TYPED_SQLITE \
	"typeof(s.name) = 'text' AND typeof(s.phase) = 'text'" \
	" AND typeof(s.execution_state) = 'text'" \
	" AND typeof(s.created_at) = 'integer' AND s.created_at >= 0"
#define STACKS_WELL_TYPED_PG "s.created_at >= 0"

/*
 * The counts, one row per stack that has any (columns 1-4 and 6 are
 * facts, 5 the rows of a wrong type): todos (completed since the last
 * review as agent_runs has it), unanswered user messages, unread
 * inter-stack messages (broadcasts as all of them, less the stack's
 * own, less those it read). The stacks are the outer loop, so each
 * stack's last run is looked up once, and its rows by index.
 */
#define TODOS_SQL(IDS, BAD) \
	"SELECT b.value, count(*) FILTER (WHERE t.status = 'pending')," \
	" count(*) FILTER (WHERE t.status = 'pending' AND t.priority > 0)," \
	" count(*) FILTER (WHERE t.status = 'pending' AND t.priority > 0 AND t.priority >= ?2)," \
	" count(*) FILTER (WHERE t.status = 'completed'" \
	"   AND t.completed_at > COALESCE(r.started_at, 0))," \
	" count(*) FILTER (WHERE " BAD ")," \
	" count(*) FILTER (WHERE t.status = 'completed')" \
	" FROM " IDS \
	" LEFT JOIN agent_runs r ON r.stack_id = b.value AND r.agent = 'reviewer'" \
	" JOIN todos t ON t.stack_id = b.value" \
	" GROUP BY b.value"
#define TODOS_BAD_SQLITE \
	"typeof(t.status) <> 'text' OR typeof(t.priority) <> 'integer'" \
	" OR (t.completed_at IS NOT NULL AND (typeof(t.completed_at) <> 'integer'" \
	"     OR t.completed_at < 0))"
#define TODOS_BAD_PG "t.completed_at < 0"

#define USER_MESSAGES_SQL(IDS, BAD) \
	"SELECT b.value, count(*), 0, 0, 0, count(*) FILTER (WHERE " BAD "), 0" \
	" FROM " IDS " JOIN user_messages m ON m.stack_id = b.value" \
	"  AND m.processed = 0 AND m.parked_at IS NULL GROUP BY b.value"
#define USER_MESSAGES_BAD_SQLITE "typeof(m.content) <> 'text'"
#define USER_MESSAGES_BAD_PG "FALSE"

#define MESSAGES_SQL(IDS) \
	"SELECT b.value," \
	" (SELECT count(*) FROM messages m WHERE m.to_stack_id = b.value" \
	"   AND NOT EXISTS (SELECT 1 FROM message_reads r" \
	"        WHERE r.message_id = m.id AND r.stack_id = b.value))" \
	" + (SELECT count(*) FROM messages WHERE to_stack_id IS NULL)" \
	" - (SELECT count(*) FROM messages m WHERE m.to_stack_id IS NULL" \
	"     AND m.from_stack_id = b.value)" \
	" - (SELECT count(*) FROM message_reads r JOIN messages m ON m.id = r.message_id" \
	"     WHERE r.stack_id = b.value AND m.to_stack_id IS NULL" \
	"       AND m.from_stack_id IS DISTINCT FROM b.value)," \
	" 0, 0, 0, 0, 0 FROM " IDS

/* The user messages since the planner's last planning, answered or not
 * (through user_messages_recent): their text, for the strategic rule,
 * and whether a value is of the wrong type. */
#define RECENT_SQL(IDS, BAD) \
	"SELECT b.value, m.content, " BAD \
	" FROM " IDS \
	" LEFT JOIN agent_runs r ON r.stack_id = b.value AND r.agent = 'planner'" \
	" JOIN user_messages m ON m.stack_id = b.value" \
	"  AND m.created_at > COALESCE(r.started_at, 0)"
#define RECENT_BAD_SQLITE \
	"typeof(m.content) <> 'text' OR typeof(m.created_at) <> 'integer'" \
	" OR m.created_at < 0"
#define RECENT_BAD_PG "m.created_at < 0"

/*
 * The planner's memory row (column COL of ST) as snapshot_load() and the
 * rules read it: *RECS, the length of reviewer_recommendations (0 unless
 * an array). 0, or -1 when the rules would fail on it (not an object).
 */
static int batch_recommendations(struct stmt *st, int col, size_t *recs)
{
	json_t *mem, *v;
	int rc = 0;

	*recs = 0;
	if (stmt_type(st, col) == STMT_NULL)
		return 0;
	mem = json_loadb(stmt_text(st, col),
			 stmt_bytes(st, col), 0, NULL);
	if (!json_is_object(mem))
		rc = -1;
	else if (json_is_array(v = json_object_get(mem, "reviewer_recommendations")))
		*recs = json_array_size(v);
	json_decref(mem);
	return rc;
}

/* An agent's last run, columns COL.. of ST: started_at, seen_version,
 * cycle (all NULL when it never ran). 0, or -1 when the rules would fail
 * on it (a negative time, a seen_version below -1). */
static int batch_last_run(struct stmt *st, int col, int64_t *time,
			  int64_t *seen, int64_t *cycle)
{
	if (stmt_type(st, col) == STMT_NULL)
		return 0;
	*time = stmt_int(st, col);
	*seen = stmt_int(st, col + 1);
	*cycle = stmt_type(st, col + 2) == STMT_NULL
		 ? 0 : stmt_int(st, col + 2);
	return *time < 0 || *seen < -1 || *cycle < 0 ? -1 : 0;
}

/* The stacks themselves, their cache entries, projects, memory and latest
 * artifacts. */
static int batch_stacks(struct store *s, struct batch *b, const char *ids_json,
			int64_t now, int64_t ttl, json_t **out, int64_t *versions,
			struct orch_error *err)
{
	struct stmt *st;
	struct detect_facts *f;
	size_t i;
	int rc;

	st = store_prepare(s, store_sql(s, STACKS_SQL(STORE_IDS_SQLITE("?1"), STACKS_WELL_TYPED_SQLITE),
					  STACKS_SQL(STORE_IDS_PG("?1"), STACKS_WELL_TYPED_PG)), err);
	if (!st)
		return -1;
	stmt_bind_text(st, 1, ids_json);
	stmt_bind_int(st, 2, b->rules->fingerprint);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		if ((i = batch_find(b, stmt_int(st, 0))) == b->n)
			continue;
		versions[i] = stmt_int(st, 5);
		if (ttl >= 0 && stmt_type(st, 6) != STMT_NULL &&
		    stmt_int(st, 6) == versions[i] &&
		    fresh(stmt_int(st, 7), now, ttl) &&
		    (out[i] = cached_status(st, 8))) {
			b->kind[i] = BATCH_CACHED;
			continue;
		}
		f = &b->facts[i];
		detect_facts_init(f, now);
		f->created_at = stmt_int(st, 4);
		f->has_project = stmt_int(st, 9);
		f->content_version = stmt_int(st, 11);
		f->plan_done = stmt_type(st, 2) == STMT_TEXT &&
			       detect_plan_done(stmt_text(st, 2), b->rules);
		b->kind[i] = BATCH_SLOW;
		if (stmt_int(st, 0) < 1 || !stmt_int(st, 13) ||
		    f->content_version < 0 ||
		    batch_recommendations(st, 10, &f->recommendations) != 0 ||
		    batch_last_run(st, 14, &f->last_planning_time, &f->seen_version[0],
				   &f->seen_cycle[0]) != 0 ||
		    batch_last_run(st, 17, &f->last_review_time, &f->seen_version[3],
				   &f->seen_cycle[3]) != 0)
			continue;
		switch (stmt_type(st, 12)) {
		case STMT_NULL:
			break;
		case STMT_INTEGER:
			f->has_artifact = 1;
			f->artifact_created_at = stmt_int(st, 12);
			if (f->artifact_created_at >= 0)
				break;
			/* fall through */
		default:
			continue;
		}
		b->header[i] = xjson(json_pack("{sIsssssssI}",
			"id", (json_int_t)stmt_int(st, 0),
			"name", stmt_text(st, 1),
			"phase", stmt_text(st, 2),
			"execution_state", stmt_text(st, 3),
			"created_at", (json_int_t)f->created_at));
		b->kind[i] = BATCH_COMPUTE;
	}
	store_finish(s, st);
	if (rc != STMT_DONE)
		return store_error(s, err, "reading stacks");
	return 0;
}

/* The counts of the stacks to compute (COMPUTE_JSON, an array of ids). */
static int batch_counts(struct store *s, struct batch *b, const char *compute_json,
			struct orch_error *err)
{
	static const char *const sqlite[] = {
		TODOS_SQL(BATCH_IDS_SQLITE, TODOS_BAD_SQLITE),
		USER_MESSAGES_SQL(BATCH_IDS_SQLITE, USER_MESSAGES_BAD_SQLITE),
		MESSAGES_SQL(BATCH_IDS_SQLITE),
	};
	static const char *const pg[] = {
		TODOS_SQL(BATCH_IDS_PG, TODOS_BAD_PG),
		USER_MESSAGES_SQL(BATCH_IDS_PG, USER_MESSAGES_BAD_PG),
		MESSAGES_SQL(BATCH_IDS_PG),
	};
	struct detect_facts *f;
	struct stmt *st;
	size_t q, i;
	int rc;

	for (q = 0; q < sizeof(sqlite) / sizeof(sqlite[0]); q++) {
		if (!(st = store_prepare(s, store_sql(s, sqlite[q], pg[q]), err)))
			return -1;
		stmt_bind_text(st, 1, compute_json);
		if (q == 0)
			stmt_bind_int(st, 2, b->rules->high_priority);
		while ((rc = stmt_step(st)) == STMT_ROW) {
			if ((i = batch_find(b, stmt_int(st, 0))) == b->n ||
			    b->kind[i] != BATCH_COMPUTE)
				continue;
			f = &b->facts[i];
			if (stmt_int(st, 5) != 0) {
				b->kind[i] = BATCH_SLOW;
				continue;
			}
			if (q == 0) {
				f->pending = (size_t)stmt_int(st, 1);
				f->pending_positive = (size_t)stmt_int(st, 2);
				f->pending_high = (size_t)stmt_int(st, 3);
				f->completed_since_review = (size_t)stmt_int(st, 4);
				f->has_completed = stmt_int(st, 6) > 0;
			} else if (q == 1) {
				f->user_messages = (size_t)stmt_int(st, 1);
			} else {
				f->stack_messages = (size_t)stmt_int(st, 1);
			}
		}
		store_finish(s, st);
		if (rc != STMT_DONE)
			return store_error(s, err, "counting work");
	}
	return 0;
}

/* The strategic user messages since each stack's last planning: the
 * rule is the configuration's (length, keywords), so it runs here. */
static int batch_strategic(struct store *s, struct batch *b, const char *compute_json,
			   struct orch_error *err)
{
	struct stmt *st;
	size_t i;
	int rc;

	st = store_prepare(s, store_sql(s, RECENT_SQL(BATCH_IDS_SQLITE, RECENT_BAD_SQLITE),
					RECENT_SQL(BATCH_IDS_PG, RECENT_BAD_PG)), err);
	if (!st)
		return -1;
	stmt_bind_text(st, 1, compute_json);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		if ((i = batch_find(b, stmt_int(st, 0))) == b->n ||
		    b->kind[i] != BATCH_COMPUTE)
			continue;
		if (stmt_int(st, 2) != 0)
			b->kind[i] = BATCH_SLOW;
		else if (detect_is_strategic(stmt_text(st, 1), stmt_bytes(st, 1), b->rules))
			b->facts[i].strategic++;
	}
	store_finish(s, st);
	if (rc != STMT_DONE)
		return store_error(s, err, "reading recent user messages");
	return 0;
}

/* ids[i] for every i of kind KIND (all when KIND < 0), as a JSON array. */
static char *batch_ids(const struct batch *b, int kind)
{
	int64_t *some = xreallocarray(NULL, b->n ? b->n : 1, sizeof(*some));
	size_t i, n = 0;
	char *text;

	for (i = 0; i < b->n; i++)
		if (kind < 0 || b->kind[i] == kind)
			some[n++] = b->ids[i];
	text = store_id_list(some, n);
	free(some);
	return text;
}

int detect_stacks(struct store *s, const int64_t *ids, size_t n, int64_t now,
		  const struct detect_rules *rules, int64_t ttl, json_t **out,
		  int64_t *versions, size_t *done, struct orch_error *err)
{
	int own = !store_in_transaction(s);
	struct batch b;
	char *all = NULL, *compute = NULL;
	size_t i;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	b.ids = ids;
	b.n = n;
	b.rules = rules;
	b.kind = xcalloc(n ? n : 1, sizeof(*b.kind));
	b.facts = xcalloc(n ? n : 1, sizeof(*b.facts));
	b.header = xcalloc(n ? n : 1, sizeof(*b.header));
	*done = 0;
	for (i = 0; i < n; i++) {
		out[i] = NULL;
		versions[i] = 0;
	}
	if (own && store_begin_read(s, err) != 0)
		goto out;
	all = batch_ids(&b, -1);
	if (batch_stacks(s, &b, all, now, ttl, out, versions, err) != 0)
		goto out;
	compute = batch_ids(&b, BATCH_COMPUTE);
	if (batch_counts(s, &b, compute, err) != 0 ||
	    batch_strategic(s, &b, compute, err) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (b.kind[i] == BATCH_COMPUTE) {
			out[i] = detect_status_from_facts(b.header[i], &b.facts[i], rules);
			b.header[i] = NULL;
		} else if (b.kind[i] == BATCH_SLOW &&
			   detect_stack(s, ids[i], now, rules, ttl, &out[i],
					&versions[i], err) < 0) {
			*done = i;
			goto out;
		}
	}
	*done = n;
	rc = 0;
out:
	if (rc != 0)
		for (i = *done; i < n; i++) {
			json_decref(out[i]);
			out[i] = NULL;
		}
	if (own)
		store_rollback(s);
	for (i = 0; i < n; i++)
		json_decref(b.header[i]);
	free(b.header);
	free(b.facts);
	free(b.kind);
	free(all);
	free(compute);
	return rc;
}
