#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "doc.h"
#include "orch.h"
#include "store_int.h"
#include "xalloc.h"
#include "banned.h"

/* How long a program waits for another one's write lock before giving up
 * with 75, unless ORCH_BUSY_TIMEOUT_MS says otherwise. */
#define BUSY_TIMEOUT_MS 30000
#define BUSY_TIMEOUT_MAX_MS 3600000

int store_busy_timeout(int *ms, struct orch_error *err)
{
	const char *env = getenv("ORCH_BUSY_TIMEOUT_MS");
	char *end;
	long long v;

	*ms = BUSY_TIMEOUT_MS;
	if (!env || !*env)
		return 0;
	errno = 0;
	v = strtoll(env, &end, 10);
	if (*end || errno || v < 0 || v > BUSY_TIMEOUT_MAX_MS || !(*env >= '0' && *env <= '9'))
		return orch_error_set(err, ORCH_EX_USAGE,
				      "ORCH_BUSY_TIMEOUT_MS: '%s' is not a whole number from 0 to %d",
				      env, BUSY_TIMEOUT_MAX_MS);
	*ms = (int)v;
	return 0;
}

void store_set_stop(struct store *s, int (*stopping)(void *), void *arg)
{
	s->stopping = stopping;
	s->stopping_arg = arg;
}

char *store_default_path(const char *flag_value, struct orch_error *err)
{
	const char *env;

	if (flag_value)
		return xstrdup(flag_value);
	env = getenv("ORCH_DB");
	if (env && *env)
		return xstrdup(env);
	env = getenv("XDG_DATA_HOME");
	if (env && *env)
		return xasprintf("%s/orch/orch.db", env);
	env = getenv("HOME");
	if (env && *env)
		return xasprintf("%s/.local/share/orch/orch.db", env);
	orch_error_set(err, ORCH_EX_NOINPUT,
		       "no database path: set --db, ORCH_DB or HOME");
	return NULL;
}

int store_name_is_postgres(const char *name)
{
	return strncmp(name, "postgresql://", 13) == 0 || strncmp(name, "postgres://", 11) == 0;
}

enum store_engine store_engine(const struct store *s)
{
	return s->engine;
}

const char *store_name(const struct store *s)
{
	return s->path;
}

const char *store_location(const struct store *s)
{
	return s->uri ? s->uri : s->path;
}

struct store *store_open(const char *path, unsigned flags, struct orch_error *err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int rc;

	if (store_busy_timeout(&s->busy_ms, err) != 0) {
		free(s);
		return NULL;
	}
	if (store_name_is_postgres(path)) {
		s->engine = STORE_POSTGRES;
		rc = pg_open(s, path, flags, err);
	} else {
		s->engine = STORE_SQLITE;
		s->path = xstrdup(path);
		rc = lite_open(s, flags, err);
	}
	if (rc != 0) {
		store_close(s);
		return NULL;
	}
	return s;
}

void store_close(struct store *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < s->ncached; i++) {
		s->cache[i].in_use = 0;
		store_finish(s, s->cache[i].stmt);
		free(s->cache[i].sql);
	}
	s->ncached = 0;
	if (s->engine == STORE_POSTGRES)
		pg_close(s);
	else
		lite_close(s);
	free(s->path);
	free(s->uri);
	free(s);
}

int store_error(struct store *s, struct orch_error *err, const char *what)
{
	if (s && s->engine == STORE_POSTGRES)
		return pg_error(s, err, what);
	if (!s)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "%s%sno database",
				      what ? what : "", what ? ": " : "");
	return lite_error(s, err, what);
}

int store_error_is_constraint(const struct store *s)
{
	return s->engine == STORE_POSTGRES ? pg_is_constraint(s) : lite_is_constraint(s);
}

/* Free ST, kept or not. */
static void stmt_free(struct stmt *st)
{
	if (st->lite)
		sqlite3_finalize(st->lite);
	if (st->pg)
		pg_free(st->pg);
	free(st);
}

struct stmt *store_prepare(struct store *s, const char *sql, struct orch_error *err)
{
	struct store_cached *c;
	struct stmt *st;
	int i;

	for (i = 0; i < s->ncached; i++) {
		c = &s->cache[i];
		if (!c->in_use && strcmp(c->sql, sql) == 0) {
			c->in_use = 1;
			return c->stmt;
		}
	}
	st = s->engine == STORE_POSTGRES ? pg_prepare(s, sql, err) : lite_prepare(s, sql, err);
	if (!st)
		return NULL;
	if (s->ncached < STORE_CACHE_SIZE) {
		c = &s->cache[s->ncached++];
		c->sql = xstrdup(sql);
		c->stmt = st;
		c->in_use = 1;
	}
	return st;
}

void store_finish(struct store *s, struct stmt *st)
{
	int i;

	if (!st)
		return;
	for (i = 0; i < s->ncached; i++)
		if (s->cache[i].stmt == st && s->cache[i].in_use) {
			if (st->lite) {
				sqlite3_reset(st->lite);
				sqlite3_clear_bindings(st->lite);
			} else {
				pg_reset(st->pg);
			}
			s->cache[i].in_use = 0;
			return;
		}
	stmt_free(st);
}

/* --- statements: each call goes to its engine --- */

void stmt_bind_int(struct stmt *st, int i, int64_t v)
{
	if (st->lite)
		sqlite3_bind_int64(st->lite, i, v);
	else
		pg_bind(st->pg, i, STMT_INTEGER, &v, sizeof(v));
}

void stmt_bind_text(struct stmt *st, int i, const char *v)
{
	if (!v && st->lite)
		sqlite3_bind_null(st->lite, i);
	else if (st->lite)
		sqlite3_bind_text(st->lite, i, v, -1, SQLITE_TRANSIENT);
	else
		pg_bind(st->pg, i, STMT_TEXT, v, v ? strlen(v) : 0);
}

void stmt_bind_text_len(struct stmt *st, int i, const char *v, size_t len)
{
	if (len > INT_MAX)
		abort(); /* callers bound it: the store's largest value is 8 MiB */
	if (st->lite)
		sqlite3_bind_text(st->lite, i, v, (int)len, SQLITE_STATIC);
	else
		pg_bind(st->pg, i, STMT_TEXT, v, len);
}

void stmt_bind_bytes(struct stmt *st, int i, const void *v, size_t len)
{
	if (len > INT_MAX)
		abort();
	if (st->lite)
		sqlite3_bind_text(st->lite, i, v, (int)len, SQLITE_STATIC);
	else
		pg_bind(st->pg, i, STMT_BLOB, v, len);
}

void stmt_bind_null(struct stmt *st, int i)
{
	if (st->lite)
		sqlite3_bind_null(st->lite, i);
	else
		pg_bind(st->pg, i, STMT_NULL, NULL, 0);
}

enum stmt_result stmt_step(struct stmt *st)
{
	int rc;

	if (!st->lite)
		return pg_step(st->pg);
	rc = sqlite3_step(st->lite);
	return rc == SQLITE_ROW ? STMT_ROW : rc == SQLITE_DONE ? STMT_DONE : STMT_ERROR;
}

enum stmt_type stmt_type(struct stmt *st, int col)
{
	if (!st->lite)
		return pg_type(st->pg, col);
	switch (sqlite3_column_type(st->lite, col)) {
	case SQLITE_NULL:
		return STMT_NULL;
	case SQLITE_INTEGER:
		return STMT_INTEGER;
	case SQLITE_FLOAT:
		return STMT_FLOAT;
	case SQLITE_BLOB:
		return STMT_BLOB;
	default:
		return STMT_TEXT;
	}
}

/* PostgreSQL's text form of a number or a boolean as SQLite would give
 * it: a whole number, a number with a fraction cut towards zero, t and f
 * as 1 and 0. */
static int64_t text_int(const char *t)
{
	char *end;
	long long v;

	if (!t)
		return 0;
	if (t[0] == 't' && !t[1])
		return 1;
	errno = 0;
	v = strtoll(t, &end, 10);
	if (*end == '.' || *end == 'e' || *end == 'E')
		return (int64_t)strtod(t, NULL);
	return v;
}

int64_t stmt_int(struct stmt *st, int col)
{
	if (st->lite)
		return sqlite3_column_int64(st->lite, col);
	return text_int(pg_text(st->pg, col));
}

double stmt_double(struct stmt *st, int col)
{
	const char *t;

	if (st->lite)
		return sqlite3_column_double(st->lite, col);
	t = pg_text(st->pg, col);
	return t ? strtod(t, NULL) : 0.0;
}

const char *stmt_text(struct stmt *st, int col)
{
	if (st->lite)
		return (const char *)sqlite3_column_text(st->lite, col);
	return pg_text(st->pg, col);
}

const void *stmt_blob(struct stmt *st, int col)
{
	if (st->lite)
		return sqlite3_column_blob(st->lite, col);
	return pg_text(st->pg, col);
}

size_t stmt_bytes(struct stmt *st, int col)
{
	if (st->lite)
		return (size_t)sqlite3_column_bytes(st->lite, col);
	return pg_bytes(st->pg, col);
}

int stmt_param_count(struct stmt *st)
{
	return st->lite ? sqlite3_bind_parameter_count(st->lite) : pg_param_count(st->pg);
}

int stmt_column_count(struct stmt *st)
{
	return st->lite ? sqlite3_column_count(st->lite) : pg_column_count(st->pg);
}

const char *stmt_column_name(struct stmt *st, int col)
{
	return st->lite ? sqlite3_column_name(st->lite, col) : pg_column_name(st->pg, col);
}

int64_t store_changes(struct store *s)
{
	return s->engine == STORE_POSTGRES ? pg_changes(s) : sqlite3_changes(s->db);
}

int store_in_transaction(struct store *s)
{
	return s->engine == STORE_POSTGRES ? pg_in_transaction(s) : lite_in_transaction(s);
}

/* --- helpers over statements --- */

int store_step_done(struct store *s, struct stmt *st, const char *what,
		    struct orch_error *err)
{
	int rc = stmt_step(st);

	/* The error must be read before store_finish resets it. */
	if (rc != STMT_DONE)
		store_error(s, err, what);
	store_finish(s, st);
	return rc == STMT_DONE ? 0 : -1;
}

int store_each(struct store *s, struct stmt *st, int (*row)(struct stmt *st, void *arg),
	       void *arg, const char *what, struct orch_error *err)
{
	int rc, stop = 0;

	while ((rc = stmt_step(st)) == STMT_ROW)
		if ((stop = row(st, arg)) != 0)
			break;
	if (rc != STMT_ROW && rc != STMT_DONE)
		store_error(s, err, what);
	store_finish(s, st);
	if (stop)
		return stop;
	return rc == STMT_DONE ? 0 : -1;
}

const char *store_column_text(struct stmt *st, int col)
{
	return stmt_text(st, col);
}

int store_exec(struct store *s, const char *sql, struct orch_error *err)
{
	return s->engine == STORE_POSTGRES ? pg_exec(s, sql, err) : lite_exec(s, sql, err);
}

/* A write transaction: PostgreSQL's takes LOCK, SQLite's keeps every
 * other writer out whatever it writes. */
static int begin_write(struct store *s, enum pg_lock lock, int64_t stack_id,
		       struct orch_error *err)
{
	if (s->engine == STORE_POSTGRES)
		return pg_begin(s, lock, stack_id, err);
	return store_exec(s, "BEGIN IMMEDIATE", err);
}

int store_begin(struct store *s, struct orch_error *err)
{
	return begin_write(s, PG_LOCK_ALL, 0, err);
}

int store_begin_stack(struct store *s, int64_t stack_id, struct orch_error *err)
{
	return begin_write(s, PG_LOCK_STACK, stack_id, err);
}

int store_begin_stacks(struct store *s, struct orch_error *err)
{
	return begin_write(s, PG_LOCK_SHARED, 0, err);
}

int store_take_stack(struct store *s, int64_t stack_id, struct orch_error *err)
{
	/* SQLite's BEGIN IMMEDIATE already keeps every other writer out. */
	if (s->engine == STORE_POSTGRES)
		return pg_take_stack(s, stack_id, err);
	return 1;
}

int store_listen(struct store *s, struct orch_error *err)
{
	if (s->engine != STORE_POSTGRES)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "LISTEN: only on PostgreSQL");
	return pg_listen(s, err);
}

int store_notified(struct store *s, struct orch_error *err)
{
	if (s->engine != STORE_POSTGRES)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "LISTEN: only on PostgreSQL");
	return pg_notified(s, err);
}

const char *store_sql(const struct store *s, const char *sqlite, const char *postgres)
{
	return s->engine == STORE_POSTGRES ? postgres : sqlite;
}

int store_begin_read(struct store *s, struct orch_error *err)
{
	if (s->engine == STORE_POSTGRES)
		return pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ", err);
	return store_exec(s, "BEGIN", err);
}

int store_commit(struct store *s, struct orch_error *err)
{
	if (store_exec(s, "COMMIT", err) != 0) {
		store_rollback(s);
		return -1;
	}
	return 0;
}

void store_rollback(struct store *s)
{
	if (store_in_transaction(s))
		store_exec(s, "ROLLBACK", NULL);
}

int store_pragma(struct store *s, const char *sql, int64_t *out, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, sql, err);
	int rc;

	if (!st)
		return -1;
	rc = stmt_step(st);
	if (rc == STMT_ROW)
		*out = stmt_int(st, 0);
	else
		store_error(s, err, NULL);
	store_finish(s, st);
	return rc == STMT_ROW ? 0 : -1;
}

int store_query_int(struct store *s, struct stmt *st, int64_t *out, const char *what,
		    struct orch_error *err)
{
	int rc = stmt_step(st);

	if (rc == STMT_ROW)
		*out = stmt_int(st, 0);
	else if (rc != STMT_DONE)
		store_error(s, err, what); /* before store_finish resets it */
	store_finish(s, st);
	return rc == STMT_ROW ? 1 : rc == STMT_DONE ? 0 : -1;
}

char *store_id_list(const int64_t *ids, size_t n)
{
	size_t cap = 3 + (n ? n : 1) * 22, len = 0, i;
	char *text = xmalloc(cap);
	int w;

	text[len++] = '[';
	for (i = 0; i < n; i++) {
		/* 20 digits and a sign at most, and the comma: cap holds it. */
		w = snprintf(text + len, cap - len, "%s%lld", i ? "," : "", (long long)ids[i]);
		if (w < 0 || (size_t)w >= cap - len)
			abort();
		len += (size_t)w;
	}
	text[len++] = ']';
	text[len] = '\0';
	return text;
}

char *store_column_strdup(struct stmt *st, int col)
{
	const char *t = stmt_text(st, col);

	return xstrdup(t ? t : "");
}

#define STACK_COLUMNS                                                     \
	"id, name, phase, execution_state, created_at,"                    \
	" COALESCE(started_at, 0), COALESCE(paused_at, 0),"                \
	" COALESCE(stopped_at, 0), COALESCE(last_executed_at, 0),"         \
	" next_run_at, total_cycles, consecutive_failures, state_version,"  \
	" content_version, COALESCE(wake_at, 0)"

static int read_stack(struct store *s, struct stmt *st, struct stack_row *row,
		      struct orch_error *err)
{
	int rc = stmt_step(st);

	if (rc == STMT_DONE)
		return 0;
	if (rc != STMT_ROW)
		return store_error(s, err, "reading stack");
	memset(row, 0, sizeof(*row));
	row->id = stmt_int(st, 0);
	row->name = store_column_strdup(st, 1);
	row->phase = store_column_strdup(st, 2);
	row->execution_state = store_column_strdup(st, 3);
	row->created_at = stmt_int(st, 4);
	row->started_at = stmt_int(st, 5);
	row->paused_at = stmt_int(st, 6);
	row->stopped_at = stmt_int(st, 7);
	row->last_executed_at = stmt_int(st, 8);
	row->next_run_at = stmt_int(st, 9);
	row->total_cycles = stmt_int(st, 10);
	row->consecutive_failures = stmt_int(st, 11);
	row->state_version = stmt_int(st, 12);
	row->content_version = stmt_int(st, 13);
	row->wake_at = stmt_int(st, 14);
	return 1;
}

int store_get_stack(struct store *s, int64_t id, struct stack_row *row,
		    struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT " STACK_COLUMNS
					 " FROM stacks WHERE id = ?", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, id);
	rc = read_stack(s, st, row, err);
	store_finish(s, st);
	return rc;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int store_find_stack(struct store *s, const char *ref, struct stack_row *row,
		     struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT " STACK_COLUMNS
					 " FROM stacks WHERE name = ?", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_text(st, 1, ref);
	rc = read_stack(s, st, row, err);
	store_finish(s, st);
	if (rc != 0 || !all_digits(ref) || strlen(ref) > 18)
		return rc;
	return store_get_stack(s, strtoll(ref, NULL, 10), row, err);
}

void stack_row_release(struct stack_row *row)
{
	free(row->name);
	free(row->phase);
	free(row->execution_state);
	row->name = row->phase = row->execution_state = NULL;
}

json_t *stack_row_header(const struct stack_row *row)
{
	json_t *h = xjson(json_pack("{sI}", "id", (json_int_t)row->id));

	/* Lossy, never failing: a header must name the stack even when its
	 * row holds bytes that are not UTF-8 (orch never writes them). */
	doc_set_bytes(h, "name", row->name, strlen(row->name));
	doc_set_bytes(h, "phase", row->phase, strlen(row->phase));
	doc_set_bytes(h, "execution_state", row->execution_state,
		      strlen(row->execution_state));
	xjson_set(h, "created_at", xjson(json_integer(row->created_at)));
	return h;
}
