#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "usage_sql.h"
#include "orch.h"
#include "traces.h"
#include "xalloc.h"
#include "banned.h"

struct cycles_each {
	int (*fn)(const struct history_cycle *c, void *arg);
	void *arg;
};

static int cycle_row(struct stmt *st, void *arg)
{
	struct cycles_each *e = arg;
	struct history_cycle c = {
		.execution_id = stmt_int(st, 0),
		.cycle = stmt_int(st, 1),
		.status = store_column_text(st, 2),
		.started_at = stmt_int(st, 3),
		.has_ended = stmt_type(st, 4) != STMT_NULL,
		.ended_at = stmt_int(st, 4),
		.decision = store_column_text(st, 5),
		.has_pause = stmt_type(st, 6) != STMT_NULL,
		.pause_ms = stmt_int(st, 6),
		.has_next = stmt_type(st, 7) != STMT_NULL,
		.next_at = stmt_int(st, 7),
		.reason = store_column_text(st, 8),
		.error = store_column_text(st, 9),
		.summary = store_column_text(st, 10),
		.summary_len = stmt_bytes(st, 10),
	};

	return e->fn(&c, e->arg);
}

int history_cycles(struct store *s, int64_t stack_id, int64_t limit,
		   int (*fn)(const struct history_cycle *c, void *arg), void *arg,
		   struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"SELECT id, cycle, status, started_at, ended_at, decision, pause_ms,"
		" next_at, reason, error, summary FROM executions"
		" WHERE stack_id = ? ORDER BY cycle DESC, id DESC LIMIT ?", err);
	struct cycles_each e = { fn, arg };

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, limit);
	return store_each(s, st, cycle_row, &e, "reading the history", err);
}

static json_t *int_or_null(int has, int64_t v)
{
	return has ? xjson(json_integer(v)) : json_null();
}

json_t *history_cycle_json(const struct history_cycle *c, const char *stack_name,
			   struct orch_error *err)
{
	const char *names[4] = { "status", "decision", "reason", "error" };
	const char *values[4] = { c->status, c->decision, c->reason, c->error };
	json_t *texts[4], *v, *summary = json_null();
	json_error_t jerr;
	size_t i, j;

	for (i = 0; i < 4; i++) {
		if (!values[i]) {
			texts[i] = json_null();
			continue;
		}
		if ((texts[i] = json_string(values[i])))
			continue;
		for (j = 0; j < i; j++)
			json_decref(texts[j]);
		orch_error_set(err, ORCH_EX_DATAERR, "%s of cycle %lld of stack '%s' is not valid UTF-8",
			       names[i], (long long)c->cycle, stack_name);
		return NULL;
	}
	if (c->summary && !(summary = json_loadb(c->summary, c->summary_len,
						 JSON_DECODE_ANY, &jerr))) {
		for (j = 0; j < 4; j++)
			json_decref(texts[j]);
		orch_error_set(err, ORCH_EX_DATAERR,
			       "summary of cycle %lld of stack '%s' is not valid JSON: %s",
			       (long long)c->cycle, stack_name, jerr.text);
		return NULL;
	}
	v = xjson(json_object());
	xjson_set(v, "execution_id", xjson(json_integer(c->execution_id)));
	xjson_set(v, "cycle", xjson(json_integer(c->cycle)));
	xjson_set(v, "status", texts[0]);
	xjson_set(v, "started_at", xjson(json_integer(c->started_at)));
	xjson_set(v, "ended_at", int_or_null(c->has_ended, c->ended_at));
	xjson_set(v, "duration_ms", int_or_null(c->has_ended, c->ended_at - c->started_at));
	xjson_set(v, "decision", texts[1]);
	xjson_set(v, "pause_ms", int_or_null(c->has_pause, c->pause_ms));
	xjson_set(v, "next_at", int_or_null(c->has_next, c->next_at));
	xjson_set(v, "reason", texts[2]);
	xjson_set(v, "error", texts[3]);
	xjson_set(v, "summary", summary);
	return v;
}

int history_execution(struct store *s, const struct stack_row *stack, int64_t cycle,
		      json_t **out, int64_t *found, struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"SELECT e.cycle, g.graph FROM executions e"
		" JOIN graphs g ON g.execution_id = e.id"
		" WHERE e.stack_id = ?1 AND (?2 = 0 OR e.cycle = ?2)"
		" ORDER BY e.cycle DESC, e.id DESC LIMIT 1", err);
	json_error_t jerr;
	int rc;

	*out = NULL;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack->id);
	stmt_bind_int(st, 2, cycle);
	rc = stmt_step(st);
	if (rc == STMT_ROW) {
		*found = stmt_int(st, 0);
		*out = json_loadb(store_column_text(st, 1) ? store_column_text(st, 1) : "",
				  stmt_bytes(st, 1), 0, &jerr);
		if (!*out)
			orch_error_set(err, ORCH_EX_DATAERR,
				       "recorded graph for cycle %lld of stack '%s' is not valid JSON: %s",
				       (long long)*found, stack->name, jerr.text);
	} else if (rc != STMT_DONE) {
		store_error(s, err, "reading the graph");
	}
	store_finish(s, st);
	if (rc == STMT_DONE)
		return 0;
	return *out ? 1 : -1;
}

struct usage_each {
	int (*fn)(const struct history_usage *u, void *arg);
	void *arg;
};

/*
 * A sum of token counts comes as its millions and its rest, summed apart:
 * each part stays far from SQLite's integer limit (whose overflow is an
 * error, not a wrap), and they are joined here, stopping at INT64_MAX.
 */
#define TOKENS_SPLIT 1000000
#define TOKENS_SUM(x) "sum(" x " / 1000000), sum(" x " % 1000000)"

static int64_t tokens_join(struct stmt *st, int col)
{
	int64_t hi = stmt_int(st, col), lo = stmt_int(st, col + 1);

	if (hi < 0 || lo < 0)
		return 0;
	if (hi > (INT64_MAX - lo) / TOKENS_SPLIT)
		return INT64_MAX;
	return hi * TOKENS_SPLIT + lo;
}

int64_t history_tokens_add(int64_t a, int64_t b)
{
	if (a < 0)
		a = 0;
	if (b < 0)
		b = 0;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int usage_row(struct stmt *st, void *arg)
{
	struct usage_each *e = arg;
	struct history_usage u = {
		.agent = store_column_text(st, 0),
		.model = store_column_text(st, 1),
		.day = store_column_text(st, 2),
		.runs = stmt_int(st, 3),
		.failed_runs = stmt_int(st, 4),
		.requests = stmt_int(st, 5),
		.prompt_tokens = tokens_join(st, 6),
		.completion_tokens = tokens_join(st, 8),
		.cached_tokens = tokens_join(st, 10),
		.failed_tokens = tokens_join(st, 12),
	};

	if (!u.agent)
		u.agent = "";
	if (!u.model)
		u.model = "";
	if (!u.day)
		u.day = "";
	return e->fn(&u, e->arg);
}

int history_usage(struct store *s, const struct stack_row *stack, int64_t since,
		  int (*fn)(const struct history_usage *u, void *arg), void *arg,
		  struct orch_error *err)
{
	struct usage_each e = { fn, arg };
	int64_t stack_id = stack ? stack->id : 0;
	struct stmt *st = store_prepare(s,
		"SELECT id, stack_id FROM traces WHERE (?1 = 0 OR stack_id = ?1)"
		" AND started_at >= ?2 AND usage IS NOT NULL AND NOT json_valid(usage) LIMIT 1",
		err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, since);
	rc = stmt_step(st);
	if (rc == STMT_ROW && stack)
		orch_error_set(err, ORCH_EX_DATAERR,
			       "usage of trace %lld of stack '%s' is not valid JSON",
			       (long long)stmt_int(st, 0), stack->name);
	else if (rc == STMT_ROW)
		orch_error_set(err, ORCH_EX_DATAERR,
			       "usage of trace %lld of stack %lld is not valid JSON",
			       (long long)stmt_int(st, 0),
			       (long long)stmt_int(st, 1));
	else if (rc != STMT_DONE)
		store_error(s, err, "reading the usage");
	store_finish(s, st);
	if (rc != STMT_DONE)
		return -1;
	/* Three sources: usage_sql.h's two, and the days retention pruned. */
	st = store_prepare(s,
		"SELECT agent, model, day, sum(runs), sum(failed_runs), sum(requests), "
		TOKENS_SUM("p") ", " TOKENS_SUM("c") ", " TOKENS_SUM("k") ", " TOKENS_SUM("f")
		" FROM (" USAGE_OF_REQUESTS("(?1 = 0 OR r.stack_id = ?1) AND r.started_at >= ?2")
		"  UNION ALL " USAGE_OF_RUNS("(?1 = 0 OR t.stack_id = ?1) AND t.started_at >= ?2")
		"  UNION ALL SELECT stack_id, agent, model, day, runs, failed_runs, requests,"
		"   prompt_tokens, completion_tokens, cached_tokens, failed_tokens"
		"  FROM usage_days WHERE (?1 = 0 OR stack_id = ?1)"
		"   AND day >= date(?2 / 1000, 'unixepoch')) AS used"
		" GROUP BY agent, model, day"
		" ORDER BY CASE agent WHEN 'planner' THEN 0 WHEN 'builder' THEN 1"
		" WHEN 'communicator' THEN 2 WHEN 'reviewer' THEN 3 ELSE 4 END, agent, model, day",
		err);
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, since);
	return store_each(s, st, usage_row, &e, "reading the usage", err);
}

/* ---- why a stack keeps failing ---------------------------------------- */

/* The most recent cycles history_diagnose() reads. */
#define DIAGNOSE_CYCLES 20

void history_diagnosis_release(struct history_diagnosis *d)
{
	free(d->cause);
	free(d->fix);
	d->cause = d->fix = NULL;
}

/* An execution error without its "AGENT: " prefix (borrowed from ERROR),
 * and the agent it names ("NAME" when none). */
static const char *error_detail(const char *error, const char **agent)
{
	size_t i, n;

	*agent = "NAME";
	for (i = 0; i < ORCH_AGENT_COUNT; i++) {
		n = strlen(orch_agents[i]);
		if (strncmp(error, orch_agents[i], n) == 0 && strncmp(error + n, ": ", 2) == 0) {
			*agent = orch_agents[i];
			return error + n + 2;
		}
	}
	return error;
}

/* The quoted word after MARK in S ("cannot run 'x'": x), new, or NULL. */
static char *quoted_after(const char *s, const char *mark)
{
	const char *p = strstr(s, mark), *end;

	if (!p)
		return NULL;
	p += strlen(mark);
	if (!(end = strchr(p, '\'')))
		return NULL;
	return xstrndup(p, (size_t)(end - p));
}

/*
 * The cause of one failed cycle's ERROR, as a key two cycles share when
 * their cause is the same, with its words for a person. New strings.
 */
static void classify(const char *error, const char *stack, char **key,
		     char **cause, char **fix)
{
	const char *agent, *detail = error_detail(error, &agent), *p;
	char *what;

	if ((p = strstr(detail, "no API key"))) {
		const char *set = strstr(p, ": set ");

		what = xstrdup(set ? set + 6 : "ORCH_LLM_API_KEY or GROQ_API_KEY");
		*key = xasprintf("key %s", what);
		*cause = xstrdup("no API key: the agents cannot ask a model");
		*fix = xasprintf("export %s where the loop runs (README, \"With a real model\"), "
				 "or give each agent a command of your own with agent.NAME in "
				 "~/.config/orch/config; then 'orch-stack start %s' runs it at once",
				 what, stack);
	} else if ((what = quoted_after(detail, "cannot run '")) &&
		   strstr(detail, "Permission denied")) {
		*key = xasprintf("noexec %s", what);
		*cause = xasprintf("the agent command '%s' is not executable", what);
		*fix = xasprintf("chmod +x '%s', or set agent.%s in ~/.config/orch/config "
				 "to a command that runs; then 'orch-stack start %s'", what, agent,
				 stack);
	} else if (what) {
		*key = xasprintf("missing %s", what);
		p = strstr(detail, "': ");
		*cause = xasprintf("the agent command '%s' cannot be run (%s)", what,
				   p ? p + 3 : detail);
		*fix = xasprintf("install it or put its directory on PATH where the loop runs, "
				 "or set agent.%s in ~/.config/orch/config ('orch-stack config' "
				 "shows each agent's command); then 'orch-stack start %s'", agent,
				 stack);
	} else if (strncmp(detail, "timed out after ", 16) == 0) {
		what = NULL;
		*key = xstrdup("timeout");
		*cause = xasprintf("every run %s", detail);
		*fix = xasprintf("raise exec.timeout in ~/.config/orch/config, or see what the "
				 "agents did with 'orch-stack log %s --failed'", stack);
	} else {
		*key = xasprintf("same %s", detail);
		*cause = xasprintf("the same error each time: %s", detail);
		*fix = xasprintf("'orch-stack log %s --failed' shows each failed run whole, "
				 "its stderr included", stack);
	}
	free(what);
}

/* The failure streak as history_diagnose() reads it. */
struct streak {
	const char *stack;      /* borrowed: the stack's name */
	int64_t failures;       /* failed cycles so far, newest first */
	char *key;              /* owned: their shared cause, or NULL */
	char *cause;            /* owned */
	char *fix;              /* owned */
};

static int streak_row(struct stmt *st, void *arg)
{
	struct streak *k = arg;
	const char *status = store_column_text(st, 0), *error = store_column_text(st, 1);
	char *key, *cause, *fix;

	if (status && strcmp(status, "running") == 0)
		return 0;
	if (!status || strcmp(status, "failed") != 0 || !error || !*error)
		return 1;
	classify(error, k->stack, &key, &cause, &fix);
	if (k->key && strcmp(k->key, key) != 0) {
		free(key);
		free(cause);
		free(fix);
		return 1;
	}
	if (!k->key) {
		k->key = key;
		k->cause = cause;
		k->fix = fix;
	} else {
		free(key);
		free(cause);
		free(fix);
	}
	k->failures++;
	return 0;
}

int history_diagnose(struct store *s, const struct stack_row *stack,
		     struct history_diagnosis *d, struct orch_error *err)
{
	struct streak k = { stack->name, 0, NULL, NULL, NULL };
	struct stmt *st = store_prepare(s,
		"SELECT status, error FROM executions WHERE stack_id = ?"
		" ORDER BY cycle DESC, id DESC LIMIT ?", err);
	int rc;

	memset(d, 0, sizeof(*d));
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack->id);
	stmt_bind_int(st, 2, DIAGNOSE_CYCLES);
	rc = store_each(s, st, streak_row, &k, "reading the history", err);
	free(k.key);
	if (rc < 0 || k.failures < HISTORY_STREAK) {
		free(k.cause);
		free(k.fix);
		return rc < 0 ? -1 : 0;
	}
	d->failures = k.failures;
	d->cause = k.cause;
	d->fix = k.fix;
	return 1;
}
