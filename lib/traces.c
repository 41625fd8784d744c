#include <stdlib.h>
#include <string.h>

#include "doc.h"
#include "traces.h"
#include "xalloc.h"
#include "banned.h"

/* The columns both queries read, in struct traces_row's order. */
#define TRACE_COLUMNS(actions)                                                 \
	"t.id, COALESCE(t.execution_id, 0), COALESCE(e.cycle, 0), s.name, t.agent," \
	" t.attempt, t.status, t.started_at, t.ended_at, t.exit_status,"        \
	" " TRACES_TOKENS("t.usage", "prompt_tokens") ","                      \
	" " TRACES_TOKENS("t.usage", "completion_tokens") ","                  \
	" " actions ", t.error"

/* The types of a run's actions, in order, one space between: SQLite's
 * JSON functions, and PostgreSQL's (the output's "actions" an array, or
 * an object, whose values are taken in the order of their keys). */
#define ACTIONS_SQLITE                                                         \
	"CASE WHEN json_valid(t.output) THEN (SELECT group_concat(a.type, ' ')"  \
	"  FROM (SELECT json_extract(value, '$.type') AS type"                   \
	"        FROM json_each(t.output, '$.actions') ORDER BY key) a) END"
#define ACTIONS_PG                                                             \
	"COALESCE((SELECT string_agg(x.v ->> 'type', ' ' ORDER BY x.n)"         \
	"  FROM jsonb_array_elements(CASE WHEN jsonb_typeof("                    \
	"    orch_json_or_null(t.output) -> 'actions') = 'array'"                \
	"    THEN orch_json_or_null(t.output) -> 'actions' END) WITH ORDINALITY x(v, n)),"  \
	" (SELECT string_agg(y.v ->> 'type', ' ' ORDER BY y.k COLLATE \"C\")"    \
	"  FROM jsonb_each(CASE WHEN jsonb_typeof("                              \
	"    orch_json_or_null(t.output) -> 'actions') = 'object'"               \
	"    THEN orch_json_or_null(t.output) -> 'actions' END) y(k, v)))"

#define TRACE_FROM " FROM traces t JOIN stacks s ON s.id = t.stack_id" \
	" LEFT JOIN executions e ON e.id = t.execution_id"

struct traces_each {
	int (*fn)(const struct traces_row *t, void *arg);
	void *arg;
	int seen;       /* rows passed on */
};

static void read_row(struct stmt *st, struct traces_row *t)
{
	memset(t, 0, sizeof(*t));
	t->id = stmt_int(st, 0);
	t->execution_id = stmt_int(st, 1);
	t->cycle = stmt_int(st, 2);
	t->stack = store_column_text(st, 3);
	t->agent = store_column_text(st, 4);
	t->attempt = stmt_int(st, 5);
	t->status = store_column_text(st, 6);
	t->started_at = stmt_int(st, 7);
	t->ended_at = stmt_int(st, 8);
	t->has_exit_status = stmt_type(st, 9) != STMT_NULL;
	t->exit_status = stmt_int(st, 9);
	t->prompt_tokens = stmt_int(st, 10);
	t->completion_tokens = stmt_int(st, 11);
	t->actions = store_column_text(st, 12);
	t->error = store_column_text(st, 13);
	if (!t->stack)
		t->stack = "";
	if (!t->agent)
		t->agent = "";
	if (!t->status)
		t->status = "";
}

static int list_row(struct stmt *st, void *arg)
{
	struct traces_each *e = arg;
	struct traces_row t;

	read_row(st, &t);
	e->seen++;
	return e->fn(&t, e->arg);
}

/* TEXT as an FTS5 query every one of whose words must match: each a
 * quoted string, quotes doubled. NULL when it has no word. New string. */
static char *fts_query(const char *text)
{
	size_t n = strlen(text), i, j = 0;
	char *q = xreallocarray(NULL, 2 * n + 3 * (n / 2 + 1) + 1, 1);
	int in_word = 0;

	for (i = 0; i < n; i++) {
		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r') {
			if (in_word)
				q[j++] = '"';
			in_word = 0;
			continue;
		}
		if (!in_word) {
			if (j > 0)
				q[j++] = ' ';
			q[j++] = '"';
			in_word = 1;
		}
		if (text[i] == '"')
			q[j++] = '"';
		q[j++] = text[i];
	}
	if (in_word)
		q[j++] = '"';
	q[j] = '\0';
	if (j == 0) {
		free(q);
		return NULL;
	}
	return q;
}

int traces_list(struct store *s, const struct traces_filter *f,
		int (*fn)(const struct traces_row *t, void *arg), void *arg,
		struct orch_error *err)
{
#define LIST(actions, search)                                                   \
	"SELECT " TRACE_COLUMNS(actions) TRACE_FROM                               \
	" WHERE t.stack_id = ?1 AND (?2 = 0 OR e.cycle = ?2)"                     \
	" AND (CAST(?3 AS TEXT) IS NULL OR t.agent = ?3)"                         \
	" AND (?4 = 0 OR t.status = 'failed') AND t.started_at >= ?5"             \
	" AND (CAST(?6 AS TEXT) IS NULL OR t.id IN (" search "))"                 \
	" ORDER BY t.started_at DESC, t.id DESC LIMIT ?7"
	/* The words of the search, each to be found (lib/schema_pg.c's
	 * orch_search_query() takes them as fts_query() does). */
	struct stmt *st = store_prepare(s, store_sql(s,
		LIST(ACTIONS_SQLITE, "SELECT rowid FROM traces_fts WHERE traces_fts MATCH ?6"),
		LIST(ACTIONS_PG, "SELECT id FROM traces_fts WHERE doc @@ orch_search_query(?6)")),
		err);
#undef LIST
	struct traces_each e = { fn, arg, 0 };
	char *query = f->query && store_engine(s) == STORE_SQLITE ? fts_query(f->query)
		      : f->query ? xstrdup(f->query) : NULL;
	int rc;

	if (!st) {
		free(query);
		return -1;
	}
	stmt_bind_int(st, 1, f->stack_id);
	stmt_bind_int(st, 2, f->cycle);
	if (f->agent)
		stmt_bind_text(st, 3, f->agent);
	stmt_bind_int(st, 4, f->failed != 0);
	stmt_bind_int(st, 5, f->since);
	if (query)
		stmt_bind_text(st, 6, query);
	else if (f->query)
		stmt_bind_text(st, 6, "\"\"");
	stmt_bind_int(st, 7, f->limit > 0 ? f->limit : INT64_MAX);
	rc = store_each(s, st, list_row, &e, "reading the traces", err);
	free(query);
	return rc;
}

static int whole_row(struct stmt *st, void *arg)
{
	struct traces_each *e = arg;
	struct traces_row t;

	read_row(st, &t);
	t.input = store_column_text(st, 14);
	t.input_len = stmt_bytes(st, 14);
	t.output = store_column_text(st, 15);
	t.output_len = stmt_bytes(st, 15);
	t.stderr_text = store_column_text(st, 16);
	t.stderr_len = stmt_bytes(st, 16);
	t.stderr_dropped = stmt_int(st, 17);
	t.usage = store_column_text(st, 18);
	t.usage_len = stmt_bytes(st, 18);
	e->seen++;
	return e->fn(&t, e->arg);
}

int traces_get(struct store *s, int64_t id,
	       int (*fn)(const struct traces_row *t, void *arg), void *arg,
	       struct orch_error *err)
{
#define GET(actions) "SELECT " TRACE_COLUMNS(actions)                             \
	", t.input, t.output, t.stderr, t.stderr_dropped, t.usage" TRACE_FROM     \
	" WHERE t.id = ?"
	struct stmt *st = store_prepare(s, store_sql(s, GET(ACTIONS_SQLITE), GET(ACTIONS_PG)), err);
#undef GET
	struct traces_each e = { fn, arg, 0 };

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	if (store_each(s, st, whole_row, &e, "reading the trace", err) < 0)
		return -1;
	return e.seen > 0;
}

char *traces_result(const struct traces_row *t)
{
	char *copy, **words = NULL, *w, *out = NULL, *more;
	size_t n = 0, i, j, count, len;

	if (t->error && *t->error)
		return xstrdup(t->error);
	if (!t->actions || !*t->actions)
		return xstrdup(strcmp(t->status, "completed") == 0 ? "no actions" : "-");
	copy = xstrdup(t->actions);
	for (w = copy; *w; w += len + 1) {
		len = strcspn(w, " ");
		if (len > 0) {
			words = xreallocarray(words, n + 1, sizeof(*words));
			words[n++] = w;
		}
		if (w[len] == '\0')
			break;
		w[len] = '\0';
	}
	/* Each type once, in order of first appearance, with its count. */
	for (i = 0; i < n; i++) {
		if (!words[i])
			continue;
		for (count = 1, j = i + 1; j < n; j++)
			if (words[j] && strcmp(words[j], words[i]) == 0) {
				count++;
				words[j] = NULL;
			}
		if (count > 1)
			more = xasprintf("%s%s%s x%zu", out ? out : "", out ? ", " : "",
					 words[i], count);
		else
			more = xasprintf("%s%s%s", out ? out : "", out ? ", " : "", words[i]);
		free(out);
		out = more;
	}
	free(words);
	free(copy);
	return out ? out : xstrdup("no actions");
}

/* TEXT (LEN bytes) parsed when it is JSON, else as text; null for NULL. */
static void set_json_or_text(json_t *obj, const char *key, const char *text, size_t len)
{
	json_t *v;

	if (text && (v = json_loadb(text, len, JSON_DECODE_ANY, NULL))) {
		xjson_set(obj, key, v);
		return;
	}
	doc_set_bytes(obj, key, text, len);
}

json_t *traces_json(const struct traces_row *t, int whole)
{
	json_t *v = xjson(json_object()), *out;
	char *result = traces_result(t);

	xjson_set(v, "id", xjson(json_integer(t->id)));
	doc_set_bytes(v, "stack", t->stack, strlen(t->stack));
	xjson_set(v, "execution_id", t->execution_id ? xjson(json_integer(t->execution_id))
						     : json_null());
	xjson_set(v, "cycle", t->cycle ? xjson(json_integer(t->cycle)) : json_null());
	doc_set_bytes(v, "agent", t->agent, strlen(t->agent));
	xjson_set(v, "attempt", xjson(json_integer(t->attempt)));
	doc_set_bytes(v, "status", t->status, strlen(t->status));
	xjson_set(v, "started_at", xjson(json_integer(t->started_at)));
	xjson_set(v, "ended_at", xjson(json_integer(t->ended_at)));
	xjson_set(v, "duration_ms", xjson(json_integer(t->ended_at - t->started_at)));
	xjson_set(v, "exit_status", t->has_exit_status ? xjson(json_integer(t->exit_status))
						       : json_null());
	xjson_set(v, "prompt_tokens", xjson(json_integer(t->prompt_tokens)));
	xjson_set(v, "completion_tokens", xjson(json_integer(t->completion_tokens)));
	doc_set_bytes(v, "result", result, strlen(result));
	doc_set_bytes(v, "error", t->error, t->error ? strlen(t->error) : 0);
	free(result);
	if (!whole)
		return v;
	set_json_or_text(v, "input", t->input, t->input_len);
	set_json_or_text(v, "output", t->output, t->output_len);
	out = json_object_get(v, "output");
	xjson_set(v, "thinking", json_is_object(out) && json_is_string(json_object_get(out, "thinking"))
		  ? json_incref(json_object_get(out, "thinking")) : json_null());
	doc_set_bytes(v, "stderr", t->stderr_text, t->stderr_len);
	xjson_set(v, "stderr_dropped", xjson(json_integer(t->stderr_dropped)));
	set_json_or_text(v, "usage", t->usage, t->usage_len);
	return v;
}
