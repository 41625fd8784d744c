/*
 * copy.c - a whole store into an empty one, on either engine, verified
 * (copy.h). Tables and columns are named in the SQL here, never values:
 * the tables come from the list below, the columns from the stores' own
 * catalogs, which the copy checks against each other first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "escape.h"
#include "orch.h"
#include "strbuf.h"
#include "xalloc.h"
#include "banned.h"

/*
 * Every table of the schema, in an order the foreign keys accept: each
 * after every table it references (stacks first; todos and executions
 * before artifacts; messages before message_reads and message_failures;
 * executions before graphs, traces and llm_requests). A table added to
 * lib/schema.c must be added here too: copy_store refuses (70) a store
 * holding a table this list lacks, so the copy tests fail until it is.
 * Left out on purpose: SQLite's own tables (sqlite_*), the full-text
 * index traces_fts* (the destination's triggers build its own from the
 * traces), and PostgreSQL's orch_meta (the open writes it).
 *
 * The primary key orders the rows, integer columns first and then text
 * ones (every key here is so), which PostgreSQL compares byte by byte
 * (COLLATE "C"), as SQLite does, whatever the database's collation: the
 * checksums walk the rows in the same order on both engines. A table
 * whose key is "id" alone has it from an identity on PostgreSQL.
 */
static const struct copy_def {
	const char *name;
	const char *int_key;  /* the key's integer columns, or NULL */
	const char *text_key; /* then its text columns, or NULL */
} defs[] = {
	{ "stacks", "id", NULL },
	{ "projects", "stack_id", NULL },
	{ "todos", "id", NULL },
	{ "user_messages", "id", NULL },
	{ "messages", "id", NULL },
	{ "message_reads", "message_id, stack_id", NULL },
	{ "message_failures", "message_id, stack_id", NULL },
	{ "executions", "id", NULL },
	{ "graphs", "execution_id", NULL },
	{ "artifacts", "id", NULL },
	{ "memory", "stack_id", "agent" },
	{ "traces", "id", NULL },
	{ "detect_cache", "stack_id", NULL },
	{ "agent_runs", "stack_id", "agent" },
	{ "usage_days", "stack_id", "agent, model, day" },
	{ "llm_requests", "id", NULL },
	{ "stack_budgets", "stack_id", NULL },
	{ "provider_caps", NULL, "base_url, model, capability" },
	{ "provider_quota", NULL, "base_url, key_id" },
};

#define DEF_COUNT (sizeof(defs) / sizeof(defs[0]))

/* A table's columns as a store has them, sorted by name: the order every
 * statement here lists them in, so a store whose columns were added in
 * another order (SQLite's ALTER TABLE appends) still lines up. */
struct columns {
	char **names;  /* owned, each owned */
	int n;
	int *bytes;    /* owned: 1 for a bytea column (PostgreSQL), per name */
};

static void columns_release(struct columns *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c->bytes);
	memset(c, 0, sizeof(*c));
}

static const struct copy_def *find_def(const char *name)
{
	size_t i;

	for (i = 0; i < DEF_COUNT; i++)
		if (strcmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* TABLE's columns in S, sorted, into C. 0, or -1 with ERR. */
static int table_columns(struct store *s, const char *table, struct columns *c,
			 struct orch_error *err)
{
	char *sql = xasprintf("SELECT * FROM %s WHERE 1 = 0", table);
	struct stmt *st = store_prepare(s, sql, err);
	int i, n;

	free(sql);
	memset(c, 0, sizeof(*c));
	if (!st)
		return orch_error_prefix(err, "reading table '%s'", table);
	n = stmt_column_count(st);
	if (n <= 0) {
		store_error(s, err, NULL);
		store_finish(s, st);
		return orch_error_prefix(err, "reading table '%s'", table);
	}
	c->names = xcalloc((size_t)n, sizeof(*c->names));
	c->bytes = xcalloc((size_t)n, sizeof(*c->bytes));
	for (i = 0; i < n; i++)
		c->names[i] = xstrdup(stmt_column_name(st, i));
	c->n = n;
	store_finish(s, st);
	qsort(c->names, (size_t)n, sizeof(*c->names), by_name);
	return 0;
}

/* "a, b, c" of C, or "?, ?, ?" with MARKS. A new string. */
static char *column_list(const struct columns *c, int marks)
{
	struct strbuf sb = STRBUF_INIT;
	int i;

	for (i = 0; i < c->n; i++) {
		if (i)
			strbuf_add(&sb, ", ", 2);
		if (marks)
			strbuf_add(&sb, "?", 1);
		else
			strbuf_add(&sb, c->names[i], strlen(c->names[i]));
	}
	return sb.buf;
}

/* DEF's key as an ORDER BY list for S's engine. A new string. */
static char *order_by(const struct copy_def *def, const struct store *s)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p, *end;

	if (def->int_key)
		strbuf_add(&sb, def->int_key, strlen(def->int_key));
	for (p = def->text_key; p && *p; p = *end ? end + 2 : end) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		if (sb.len)
			strbuf_add(&sb, ", ", 2);
		strbuf_add(&sb, p, (size_t)(end - p));
		if (store_engine(s) == STORE_POSTGRES)
			strbuf_add(&sb, " COLLATE \"C\"", 12);
	}
	return sb.buf;
}

/* The SELECT of DEF's rows in key order, in S. A new string. */
static char *select_rows(const struct copy_def *def, const struct columns *c,
			 const struct store *s)
{
	char *cols = column_list(c, 0), *order = order_by(def, s), *sql;

	sql = xasprintf("SELECT %s FROM %s ORDER BY %s", cols, def->name, order);
	free(cols);
	free(order);
	return sql;
}

/* Add "TAG<len>:" and LEN bytes of V to H. */
static void hash_item(struct sha256 *h, char tag, const void *v, size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%c%zu:", tag, len);

	sha256_add(h, head, (size_t)n);
	sha256_add(h, v, len);
}

/* Column COL of ST's row into H: NULL is "N"; an integer "I" and its
 * decimal text; text and bytes alike "S" and their bytes (SQLite keeps an
 * artifact as text, PostgreSQL as bytea: the same bytes); a float "F" and
 * its shortest exact text. Each length-prefixed, so no two rows meet. */
static void hash_value(struct sha256 *h, struct stmt *st, int col)
{
	char num[40];
	const void *p;
	int n;

	switch (stmt_type(st, col)) {
	case STMT_NULL:
		sha256_add(h, "N", 1);
		break;
	case STMT_INTEGER:
		n = snprintf(num, sizeof(num), "%" PRId64, stmt_int(st, col));
		hash_item(h, 'I', num, (size_t)n);
		break;
	case STMT_FLOAT:
		n = snprintf(num, sizeof(num), "%.17g", stmt_double(st, col));
		hash_item(h, 'F', num, (size_t)n);
		break;
	default:
		p = stmt_blob(st, col); /* before stmt_bytes: SQLite's rule */
		hash_item(h, 'S', p, stmt_bytes(st, col));
	}
}

struct checksum_ctx {
	struct sha256 h;
	int ncols;
	int64_t rows;
};

static int checksum_row(struct stmt *st, void *arg)
{
	struct checksum_ctx *c = arg;
	int i;

	sha256_add(&c->h, "R", 1);
	for (i = 0; i < c->ncols; i++)
		hash_value(&c->h, st, i);
	c->rows++;
	return 0;
}

int copy_checksum(struct store *s, const char *table, int64_t *rows,
		  char hex[2 * SHA256_LEN + 1], struct orch_error *err)
{
	const struct copy_def *def = find_def(table);
	struct checksum_ctx c;
	struct columns cols;
	unsigned char digest[SHA256_LEN];
	struct stmt *st;
	char *sql;
	int i, rc;

	if (!def)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "no table '%s' to checksum", table);
	if (table_columns(s, table, &cols, err) != 0)
		return -1;
	sql = select_rows(def, &cols, s);
	memset(&c, 0, sizeof(c));
	sha256_init(&c.h);
	c.ncols = cols.n;
	columns_release(&cols);
	st = store_prepare(s, sql, err);
	free(sql);
	if (!st)
		return -1;
	rc = store_each(s, st, checksum_row, &c, "reading the rows", err);
	if (rc != 0)
		return orch_error_prefix(err, "checksum of '%s'", table);
	sha256_final(&c.h, digest);
	for (i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	*rows = c.rows;
	return 0;
}

/* S's schema version into *OUT. */
static int schema_version(struct store *s, int64_t *out, struct orch_error *err)
{
	struct stmt *st;

	if (store_engine(s) == STORE_SQLITE)
		return store_pragma(s, "PRAGMA user_version", out, err);
	st = store_prepare(s, "SELECT CAST(value AS BIGINT) FROM orch_meta"
			   " WHERE key = 'schema_version'", err);
	if (!st)
		return -1;
	*out = 0;
	return store_query_int(s, st, out, "reading the schema version", err) < 0 ? -1 : 0;
}

static int unknown_table(struct stmt *st, void *arg)
{
	char **name = arg;

	if (find_def(stmt_text(st, 0)))
		return 0;
	*name = xstrdup(stmt_text(st, 0));
	return 1;
}

/* Whether S holds only tables the copy knows (defs' comment): 0, or -1
 * with ERR (70 for one it does not). */
static int known_tables(struct store *s, struct orch_error *err)
{
	static const char lite[] =
		"SELECT name FROM sqlite_master WHERE type = 'table'"
		" AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
		" AND name NOT LIKE 'traces\\_fts%' ESCAPE '\\' ORDER BY name";
	static const char pg[] =
		"SELECT CAST(table_name AS TEXT) FROM information_schema.tables"
		" WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
		" AND table_name <> 'orch_meta'"
		" AND table_name NOT LIKE 'traces\\_fts%' ESCAPE '\\' ORDER BY 1";
	struct stmt *st = store_prepare(s, store_engine(s) == STORE_SQLITE ? lite : pg, err);
	char *name = NULL;
	int rc;

	if (!st)
		return -1;
	rc = store_each(s, st, unknown_table, &name, "listing the tables", err);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		orch_error_set(err, ORCH_EX_SOFTWARE,
			       "'%s' has a table this orch cannot copy: '%s'", store_name(s), name);
		free(name);
		return -1;
	}
	return 0;
}

/* Mark the bytea columns of TABLE in C, a PostgreSQL destination's. */
static int mark_bytes(struct store *s, const char *table, struct columns *c,
		      struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT CAST(column_name AS TEXT)"
					" FROM information_schema.columns"
					" WHERE table_schema = current_schema()"
					" AND table_name = ? AND data_type = 'bytea'", err);
	int i, rc;

	if (!st)
		return -1;
	stmt_bind_text(st, 1, table);
	while ((rc = stmt_step(st)) == STMT_ROW)
		for (i = 0; i < c->n; i++)
			if (strcmp(c->names[i], stmt_text(st, 0)) == 0)
				c->bytes[i] = 1;
	if (rc != STMT_DONE)
		store_error(s, err, "reading the columns");
	store_finish(s, st);
	return rc == STMT_DONE ? 0 : -1;
}

/* Whether the LEN bytes at V are text PostgreSQL can hold: UTF-8 without
 * NUL. Its engine would put U+FFFD in place of the rest (store_pg.c). */
static int pg_can_hold(const char *v, size_t len)
{
	const unsigned char *u = (const unsigned char *)v;
	size_t i = 0;
	int n;

	while (i < len) {
		if (!u[i] || (n = escape_utf8_len(u + i, len - i)) == 0)
			return 0;
		i += (size_t)n;
	}
	return 1;
}

/* copy_rows()'s state, for each row. */
struct rows_ctx {
	struct store *dst;       /* borrowed */
	const char *table;       /* borrowed */
	const struct columns *cols; /* the destination's, bytea marked */
	const char *insert;      /* borrowed: the INSERT's SQL */
	int64_t rows;            /* copied so far */
	struct orch_error *err;  /* borrowed: set when a row fails */
};

static int copy_row(struct stmt *src, void *arg)
{
	struct rows_ctx *c = arg;
	struct stmt *ins = store_prepare(c->dst, c->insert, c->err);
	const char *v;
	size_t len;
	int i;

	if (!ins)
		return 1;
	for (i = 0; i < c->cols->n; i++) {
		switch (stmt_type(src, i)) {
		case STMT_NULL:
			stmt_bind_null(ins, i + 1);
			break;
		case STMT_INTEGER:
			stmt_bind_int(ins, i + 1, stmt_int(src, i));
			break;
		case STMT_FLOAT:
			orch_error_set(c->err, ORCH_EX_DATAERR, "%s.%s holds a floating-point"
				       " number, which orch never writes", c->table,
				       c->cols->names[i]);
			store_finish(c->dst, ins);
			return 1;
		default:
			/* Zero bytes: SQLite's blob pointer is NULL, which would
			 * bind NULL in place of "". */
			v = stmt_blob(src, i);
			len = stmt_bytes(src, i);
			if (!v)
				v = "";
			if (c->cols->bytes[i] || stmt_type(src, i) == STMT_BLOB) {
				stmt_bind_bytes(ins, i + 1, v, len);
				break;
			}
			if (store_engine(c->dst) == STORE_POSTGRES && !pg_can_hold(v, len)) {
				orch_error_set(c->err, ORCH_EX_DATAERR,
					       "%s.%s: row %" PRId64 " holds text PostgreSQL cannot"
					       " (a NUL byte or ill-formed UTF-8)", c->table,
					       c->cols->names[i], c->rows + 1);
				store_finish(c->dst, ins);
				return 1;
			}
			stmt_bind_text_len(ins, i + 1, v, len);
		}
	}
	if (store_step_done(c->dst, ins, NULL, c->err) != 0)
		return 1;
	c->rows++;
	return 0;
}

/* DEF's rows from SRC into DST, both in their transactions. */
static int copy_rows(struct store *src, struct store *dst, const struct copy_def *def,
		     const struct columns *cols, int64_t *rows, struct orch_error *err)
{
	struct rows_ctx c = { dst, def->name, cols, NULL, 0, err };
	char *names = column_list(cols, 0), *marks = column_list(cols, 1);
	char *insert = xasprintf("INSERT INTO %s (%s) VALUES (%s)", def->name, names, marks);
	char *select = select_rows(def, cols, src);
	struct stmt *st = store_prepare(src, select, err);
	int rc = -1;

	c.insert = insert;
	if (st) {
		rc = store_each(src, st, copy_row, &c, "reading the rows", err);
		if (rc != 0)
			orch_error_prefix(err, "copying '%s'", def->name);
	}
	*rows = c.rows;
	free(select);
	free(insert);
	free(marks);
	free(names);
	return rc == 0 ? 0 : -1;
}

/* How many rows TABLE holds in S, into *N. */
static int count_rows(struct store *s, const char *table, int64_t *n, struct orch_error *err)
{
	char *sql = xasprintf("SELECT count(*) FROM %s", table);
	struct stmt *st = store_prepare(s, sql, err);

	free(sql);
	*n = 0;
	if (!st)
		return -1;
	return store_query_int(s, st, n, "counting the rows", err) < 0 ? -1 : 0;
}

/* Whether DST holds no row at all: 0, or -1 with ERR (65). */
static int dest_empty(struct store *dst, struct orch_error *err)
{
	int64_t n;
	size_t i;

	for (i = 0; i < DEF_COUNT; i++) {
		if (count_rows(dst, defs[i].name, &n, err) != 0)
			return -1;
		if (n && i == 0)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "destination '%s' is not empty (%" PRId64 " stack%s)",
					      store_name(dst), n, n == 1 ? "" : "s");
		if (n)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "destination '%s' is not empty (%" PRId64 " row%s in %s)",
					      store_name(dst), n, n == 1 ? "" : "s", defs[i].name);
	}
	return 0;
}

static int put_versions(struct stmt *src, void *arg)
{
	struct rows_ctx *c = arg;
	struct stmt *up = store_prepare(c->dst, "UPDATE stacks SET state_version = ?,"
					" content_version = ? WHERE id = ?", c->err);

	if (!up)
		return 1;
	stmt_bind_int(up, 1, stmt_int(src, 1));
	stmt_bind_int(up, 2, stmt_int(src, 2));
	stmt_bind_int(up, 3, stmt_int(src, 0));
	return store_step_done(c->dst, up, "setting a stack's versions", c->err) != 0;
}

/*
 * The triggers bumped each stack's state_version and content_version for
 * every child row inserted: give them back the source's. An UPDATE of
 * these two columns alone fires no trigger.
 */
static int restore_versions(struct store *src, struct store *dst, struct orch_error *err)
{
	struct rows_ctx c = { dst, "stacks", NULL, NULL, 0, err };
	struct stmt *st = store_prepare(src, "SELECT id, state_version, content_version"
					" FROM stacks ORDER BY id", err);

	if (!st)
		return -1;
	return store_each(src, st, put_versions, &c, "reading the stacks' versions", err)
	       == 0 ? 0 : -1;
}

/*
 * The id TABLE's next row would get past in S, into *OUT: its sequence's
 * last value (SQLite's sqlite_sequence, PostgreSQL's identity), which
 * runs ahead of max(id) once the newest rows were deleted, or max(id).
 */
static int high_water(struct store *s, const char *table, int64_t *out,
		      struct orch_error *err)
{
	char *sql = xasprintf("SELECT COALESCE(max(id), 0) FROM %s", table);
	struct stmt *st = store_prepare(s, sql, err);
	int64_t seq = 0;

	free(sql);
	if (!st || store_query_int(s, st, out, "reading the ids", err) < 0)
		return -1;
	if (store_engine(s) == STORE_SQLITE)
		st = store_prepare(s, "SELECT seq FROM sqlite_sequence WHERE name = ?", err);
	else
		st = store_prepare(s, "SELECT COALESCE(pg_sequence_last_value(CAST("
				   "pg_get_serial_sequence(?, 'id') AS regclass)), 0)", err);
	if (!st)
		return -1;
	stmt_bind_text(st, 1, table);
	if (store_query_int(s, st, &seq, "reading the ids", err) < 0)
		return -1;
	if (seq > *out)
		*out = seq;
	return 0;
}

/*
 * Ids are never used twice (lib/schema.c, migration 8): give each of
 * DST's id sequences the source's high water, which explicit ids do not
 * set (PostgreSQL's identities stay at 1; SQLite's AUTOINCREMENT follows
 * them to max(id), short of the ids of rows deleted since). On SQLite,
 * only the tables with AUTOINCREMENT have a sequence.
 */
static int move_sequences(struct store *src, struct store *dst, struct orch_error *err)
{
	static const char lite_add[] =
		"INSERT INTO sqlite_sequence (name, seq) SELECT ?1, 0 WHERE EXISTS ("
		"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1"
		" AND sql LIKE '%AUTOINCREMENT%') AND NOT EXISTS ("
		"SELECT 1 FROM sqlite_sequence WHERE name = ?1)";
	static const char lite_set[] =
		"UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1 AND seq < ?2";
	static const char pg_set[] =
		"SELECT setval(pg_get_serial_sequence(?, 'id'), ?)";
	struct stmt *st;
	int64_t hw, v;
	size_t i;

	for (i = 0; i < DEF_COUNT; i++) {
		if (!defs[i].int_key || strcmp(defs[i].int_key, "id") != 0)
			continue;
		if (high_water(src, defs[i].name, &hw, err) != 0)
			return -1;
		if (hw == 0)
			continue;
		if (store_engine(dst) == STORE_SQLITE) {
			if (!(st = store_prepare(dst, lite_add, err)))
				return -1;
			stmt_bind_text(st, 1, defs[i].name);
			if (store_step_done(dst, st, "moving the ids on", err) != 0)
				return -1;
		}
		if (!(st = store_prepare(dst, store_engine(dst) == STORE_SQLITE ? lite_set : pg_set,
					 err)))
			return -1;
		stmt_bind_text(st, 1, defs[i].name);
		stmt_bind_int(st, 2, hw);
		if ((store_engine(dst) == STORE_SQLITE
		     ? store_step_done(dst, st, "moving the ids on", err)
		     : store_query_int(dst, st, &v, "moving the ids on", err)) < 0)
			return orch_error_prefix(err, "%s", defs[i].name);
	}
	return 0;
}

/* Same names in both, as sorted. */
static int same_columns(const struct columns *a, const struct columns *b)
{
	int i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return 0;
	return 1;
}

/* Both stores' schemas: the version this orch writes, only known tables,
 * the same columns. Fills COLS (the destination's, per def). */
static int check_schemas(struct store *src, struct store *dst, struct columns *cols,
			 struct orch_error *err)
{
	struct store *both[2] = { src, dst };
	struct columns theirs;
	int64_t v;
	size_t i;
	int k;

	for (k = 0; k < 2; k++) {
		if (schema_version(both[k], &v, err) != 0)
			return -1;
		if (v != STORE_SCHEMA_VERSION)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'%s' has schema version %" PRId64 ", not %d",
					      store_name(both[k]), v, STORE_SCHEMA_VERSION);
		if (known_tables(both[k], err) != 0)
			return -1;
	}
	for (i = 0; i < DEF_COUNT; i++) {
		if (table_columns(dst, defs[i].name, &cols[i], err) != 0)
			return -1;
		if (store_engine(dst) == STORE_POSTGRES &&
		    mark_bytes(dst, defs[i].name, &cols[i], err) != 0)
			return -1;
		if (table_columns(src, defs[i].name, &theirs, err) != 0)
			return -1;
		k = same_columns(&theirs, &cols[i]);
		columns_release(&theirs);
		if (!k)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "table '%s' has other columns in '%s' than in '%s'",
					      defs[i].name, store_name(src), store_name(dst));
	}
	return 0;
}

/* The copy itself, in DST's write transaction: 0 committed, or -1. */
static int copy_all(struct store *src, struct store *dst, const struct columns *cols,
		    struct copy_report *rep, struct orch_error *err)
{
	size_t i;

	if (store_begin(dst, err) != 0)
		return -1;
	if (dest_empty(dst, err) != 0)
		goto fail;
	for (i = 0; i < DEF_COUNT; i++) {
		if (copy_rows(src, dst, &defs[i], &cols[i], &rep->tables[i].rows, err) != 0)
			goto fail;
		rep->rows += rep->tables[i].rows;
	}
	if (restore_versions(src, dst, err) != 0)
		goto fail;
	if (move_sequences(src, dst, err) != 0)
		goto fail;
	return store_commit(dst, err);
fail:
	store_rollback(dst);
	return -1;
}

/* Each table counted and checksummed on both: 0 when all agree. */
static int verify(struct store *src, struct store *dst, struct copy_report *rep,
		  struct orch_error *err)
{
	struct copy_table *t;
	size_t i;
	int bad = 0;

	for (i = 0; i < rep->ntables; i++) {
		t = &rep->tables[i];
		if (copy_checksum(src, t->name, &t->rows, t->sum, err) != 0 ||
		    copy_checksum(dst, t->name, &t->dest_rows, t->dest_sum, err) != 0)
			return -1;
		t->verified = 1;
		t->ok = t->rows == t->dest_rows && strcmp(t->sum, t->dest_sum) == 0;
		if (t->ok || bad++)
			continue;
		if (t->rows != t->dest_rows)
			orch_error_set(err, ORCH_EX_SOFTWARE,
				       "copy of %s differs: %" PRId64 " row%s in '%s', %" PRId64
				       " in '%s'", t->name, t->rows, t->rows == 1 ? "" : "s",
				       store_name(src), t->dest_rows, store_name(dst));
		else
			orch_error_set(err, ORCH_EX_SOFTWARE,
				       "copy of %s differs: checksums differ over %" PRId64 " row%s",
				       t->name, t->rows, t->rows == 1 ? "" : "s");
	}
	return bad ? -1 : 0;
}

int copy_store(struct store *src, struct store *dst, struct copy_report *rep,
	       struct orch_error *err)
{
	struct columns *cols = xcalloc(DEF_COUNT, sizeof(*cols));
	size_t i;
	int rc = -1;

	memset(rep, 0, sizeof(*rep));
	rep->tables = xcalloc(DEF_COUNT, sizeof(*rep->tables));
	rep->ntables = DEF_COUNT;
	for (i = 0; i < DEF_COUNT; i++)
		rep->tables[i].name = defs[i].name;
	if (check_schemas(src, dst, cols, err) != 0)
		goto out;
	/* One snapshot of the source for the copy and its verification. */
	if (store_begin_read(src, err) != 0)
		goto out;
	if (copy_all(src, dst, cols, rep, err) == 0 && store_begin_read(dst, err) == 0) {
		rc = verify(src, dst, rep, err);
		store_rollback(dst);
	}
	store_rollback(src);
out:
	for (i = 0; i < DEF_COUNT; i++)
		columns_release(&cols[i]);
	free(cols);
	return rc;
}

void copy_report_release(struct copy_report *rep)
{
	free(rep->tables);
	memset(rep, 0, sizeof(*rep));
}
