/*
 * usage_sql.h - what a run and a request cost, in SQL, for the two places
 * that sum it: history_usage() (history.c), over what is kept, and
 * retention (retention.c), into usage_days, over what it prunes. Each
 * macro is a SELECT of the columns
 *
 *   stack_id, agent, model, day, runs, failed_runs, requests,
 *   p (prompt), c (completion), k (cached), f (spent in failed runs)
 *
 * over the rows WHERE (SQL text about r, a llm_requests row, or t, a
 * traces row) selects. orch-agent's requests count each (a failed run's
 * when its trace failed or, with no trace, its turn did); a run's own
 * usage counts only when none of its requests was recorded, and its model
 * is its last request's, else its usage's. Counts beyond belief
 * (TRACES_TOKENS_MAX) count as none.
 */
#ifndef ORCH_USAGE_SQL_H
#define ORCH_USAGE_SQL_H

#include "traces.h"

/* A request's count COL, as a run's usage is read (TRACES_TOKENS). */
#define USAGE_REQ_TOKENS(col)                                                  \
	"(CASE WHEN " col " BETWEEN 0 AND " TRACES_STR(TRACES_TOKENS_MAX)        \
	" THEN " col " ELSE 0 END)"

#define USAGE_OF_REQUESTS(where)                                               \
	"SELECT stack_id, agent, model, date(started_at / 1000, 'unixepoch') AS day," \
	" 0 AS runs, 0 AS failed_runs, 1 AS requests, p, c, k,"                 \
	" CASE WHEN coalesce((SELECT CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END" \
	"   FROM traces t WHERE t.stack_id = r.stack_id AND t.agent = r.agent"  \
	"   AND t.started_at = r.run_at LIMIT 1), CASE WHEN run_ok = 0 THEN 1 ELSE 0 END) = 1" \
	" THEN p + c ELSE 0 END AS f"                                          \
	" FROM (SELECT *, " USAGE_REQ_TOKENS("prompt_tokens") " AS p,"          \
	"  " USAGE_REQ_TOKENS("completion_tokens") " AS c,"                     \
	"  " USAGE_REQ_TOKENS("cached_tokens") " AS k FROM llm_requests r"      \
	"  WHERE " where ") AS r"

#define USAGE_OF_RUNS(where)                                                   \
	"SELECT stack_id, agent, coalesce(rm, um, '') AS model,"                \
	" date(started_at / 1000, 'unixepoch') AS day, 1 AS runs, failed AS failed_runs," \
	" 0 AS requests, CASE WHEN rm IS NULL THEN p ELSE 0 END AS p,"          \
	" CASE WHEN rm IS NULL THEN c ELSE 0 END AS c, 0 AS k,"                 \
	" CASE WHEN rm IS NULL AND failed = 1 THEN p + c ELSE 0 END AS f"       \
	" FROM (SELECT t.stack_id, t.agent, t.started_at,"                      \
	"  CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END AS failed,"          \
	"  (SELECT q.model FROM llm_requests q WHERE q.stack_id = t.stack_id"   \
	"   AND q.agent = t.agent AND q.run_at = t.started_at"                  \
	"   ORDER BY q.seq DESC LIMIT 1) AS rm,"                                \
	"  CASE WHEN json_valid(t.usage) AND json_type(t.usage, '$.model') = 'text'" \
	"   THEN json_extract(t.usage, '$.model') END AS um,"                   \
	"  " TRACES_TOKENS("t.usage", "prompt_tokens") " AS p,"                 \
	"  " TRACES_TOKENS("t.usage", "completion_tokens") " AS c"              \
	"  FROM traces t WHERE " where ") AS t"

#endif
