/*
 * store.h - the database that holds every stack's state, on either of two
 * engines: SQLite (a path: the default, one host) or PostgreSQL (a
 * postgresql:// URI: many hosts, lib/store_pg.c).
 *
 * The seam is a thin statement layer, not operations named for what they
 * do: modules keep their own SQL, written once in the subset both engines
 * speak (`?` placeholders, COALESCE, CASE, ON CONFLICT ... DO UPDATE,
 * RETURNING, IS DISTINCT FROM, CAST(? AS TEXT) where a parameter's type
 * cannot be inferred), bind typed values and read typed columns through
 * stmt_*(). That keeps each module reading as it did (its queries beside
 * the code that needs them) and the engines small: the PostgreSQL engine
 * numbers the placeholders ($1, $2 ...), sends integers as int8 and text as
 * text, and reads booleans as 0 and 1. The few statements where the
 * dialects part (SQLite's json_each and fts5, PRAGMAs) are chosen with
 * store_engine(). Operations named for what they do would have put ~120
 * queries, and the knowledge of what each module needs, in one file.
 *
 * SQLite: one file, WAL mode, foreign keys on, a busy timeout so
 * overlapping pipelines wait instead of failing, migrations by PRAGMA
 * user_version. The file (and its -wal and -shm companions, which SQLite
 * creates with the same mode) is 0600, in a 0700 directory when orch
 * creates one. PostgreSQL: the schema version is in orch_meta; a write
 * transaction takes the store's write lock (an advisory lock), so writes
 * are serialised as SQLite's BEGIN IMMEDIATE serialises them; every wait
 * for a lock is bounded by the busy timeout (lock_timeout) and ends in 75.
 * Every statement is prepared; nothing is ever spliced into SQL.
 *
 * Schema: see the migration text in lib/schema.c, the one place it is
 * written down for both engines. Every time column is integer milliseconds
 * since the epoch. stacks.state_version is bumped by triggers whenever
 * anything that detection reads changes, which is what lets the detection
 * cache promise it never serves a result older than the state.
 */
#ifndef ORCH_STORE_H
#define ORCH_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* The schema version this orch writes: one past the last migration. */
#define STORE_SCHEMA_VERSION 12

/* How long, once a program has been told to stop (store_set_stop), it
 * still waits for another one's write lock, in all: the signal's bound. */
#define STORE_STOP_WAIT_MS 1000

struct store;   /* an open database: lib/store_int.h */
struct stmt;    /* a prepared statement of one */

enum store_engine {
	STORE_SQLITE,
	STORE_POSTGRES,
};

enum store_flags {
	STORE_CREATE = 1 << 0, /* create the file (and directory) if missing */
};

/*
 * The database: FLAG_VALUE if not NULL, else $ORCH_DB, else
 * ${XDG_DATA_HOME:-$HOME/.local/share}/orch/orch.db. Returns a new string,
 * or NULL with ERR set (66) when neither HOME nor XDG_DATA_HOME is set.
 */
char *store_default_path(const char *flag_value, struct orch_error *err);

/* Whether the database named NAME is a PostgreSQL URI (postgresql:// or
 * postgres://) rather than a SQLite path. */
int store_name_is_postgres(const char *name);

/*
 * Open (and migrate) the database at PATH, a file or a PostgreSQL URI.
 * SQLite: without STORE_CREATE a missing file is error 66 "no database at
 * 'PATH' (run 'orch-stack init')"; so is a path that is not a regular file
 * (/dev/null: SQLite would make a journal beside it with the device's
 * mode). PostgreSQL: a server that cannot be reached or refuses the
 * connection is 69; an empty database is given the schema (the database
 * itself is the administrator's to create). A database from a newer orch
 * is error 65. Returns NULL with ERR set.
 *
 * SQLite: every commit first checks that the database file and its -wal are
 * still the ones opened (device and inode): a file deleted or replaced
 * while the store is open would take the commit's writes with it,
 * silently. Such a commit, and every one after it, is rolled back and
 * fails with error 66 ("the database 'PATH' was deleted or replaced
 * while in use: nothing more is written to it").
 */
struct store *store_open(const char *path, unsigned flags, struct orch_error *err);
void store_close(struct store *s);

/* Which engine S runs on. */
enum store_engine store_engine(const struct store *s);

/* The database as named when opened (a PostgreSQL URI without its
 * password), for messages. Borrowed. */
const char *store_name(const struct store *s);

/* The database as given to store_open, for the programs orch starts
 * (a PostgreSQL URI with its password, if it has one: never print it).
 * Borrowed. */
const char *store_location(const struct store *s);

/*
 * Fill ERR from the database's last error, prefixed with WHAT when it is
 * not NULL ("adding the todo: ..."): busy or locked, a lock timeout, a
 * serialization failure or deadlock, or a full disk or quota, is 75;
 * read-only, unopenable, or deleted or replaced while open 66; a server
 * gone 69; corrupt 65; the rest 70. SQLite's own message already says
 * "database" ("database is locked"), so a generic step passes NULL.
 * Returns -1.
 */
int store_error(struct store *s, struct orch_error *err, const char *what);

/* Whether the last error was a constraint (UNIQUE, CHECK, foreign key). */
int store_error_is_constraint(const struct store *s);

/*
 * Prepare SQL; NULL with ERR set on failure. The caller hands the
 * statement back with store_finish: statements are kept prepared and
 * reused, because compiling SQL was half of orch-exec's work per agent
 * run. A statement whose SQL is already in use (a nested query) is
 * prepared afresh and freed by store_finish.
 */
struct stmt *store_prepare(struct store *s, const char *sql, struct orch_error *err);

/*
 * Done with ST from store_prepare (NULL is fine): reset, its bindings
 * cleared, and kept for the next use, or freed if it is not kept.
 */
void store_finish(struct store *s, struct stmt *st);

/* Bind parameter I (from 1). stmt_bind_text copies V (NULL binds NULL);
 * stmt_bind_text_len and stmt_bind_bytes borrow it until the statement is
 * finished. stmt_bind_bytes binds LEN bytes that may hold anything (an
 * artifact): text on SQLite, as it always was, bytea on PostgreSQL. */
void stmt_bind_int(struct stmt *st, int i, int64_t v);
void stmt_bind_text(struct stmt *st, int i, const char *v);
void stmt_bind_text_len(struct stmt *st, int i, const char *v, size_t len);
void stmt_bind_bytes(struct stmt *st, int i, const void *v, size_t len);
void stmt_bind_null(struct stmt *st, int i);

/* How many parameters ST's SQL has. */
int stmt_param_count(struct stmt *st);

enum stmt_result {
	STMT_ERROR = -1, /* the store's last error says why */
	STMT_DONE = 0,
	STMT_ROW = 1,
};

/* Run ST to its next row. */
enum stmt_result stmt_step(struct stmt *st);

enum stmt_type {
	STMT_NULL,
	STMT_INTEGER, /* also a boolean, 0 or 1 */
	STMT_FLOAT,
	STMT_TEXT,
	STMT_BLOB,
};

/* Column COL (from 0) of the current row. Text and bytes are borrowed
 * until the next step; stmt_text is NULL for NULL; stmt_bytes is the
 * length of stmt_text's or stmt_blob's value. */
enum stmt_type stmt_type(struct stmt *st, int col);
int64_t stmt_int(struct stmt *st, int col);
double stmt_double(struct stmt *st, int col);
const char *stmt_text(struct stmt *st, int col);
const void *stmt_blob(struct stmt *st, int col);
size_t stmt_bytes(struct stmt *st, int col);
int stmt_column_count(struct stmt *st);
const char *stmt_column_name(struct stmt *st, int col);

/* The rows the last INSERT, UPDATE or DELETE changed. */
int64_t store_changes(struct store *s);

/* Whether a transaction is open (store_begin without its end). */
int store_in_transaction(struct store *s);

/* The integer a PRAGMA (SQL, no parameters) answers, into *OUT. 0, or -1
 * with ERR set. SQLite only. */
int store_pragma(struct store *s, const char *sql, int64_t *out, struct orch_error *err);

/*
 * Step ST (prepared and bound) and finish it: 1 with its first column's
 * integer in *OUT when it gives a row, 0 when it gives none, or -1 with
 * ERR ("WHAT: ...").
 */
int store_query_int(struct store *s, struct stmt *st, int64_t *out, const char *what,
		    struct orch_error *err);

/* Run SQL that returns no rows (no parameters). 0 or -1 with ERR set. */
int store_exec(struct store *s, const char *sql, struct orch_error *err);

/*
 * Step ST, a prepared write, to its end and store_finish it (also on
 * failure).
 * 0, or -1 with ERR from the database's error, prefixed with WHAT.
 */
int store_step_done(struct store *s, struct stmt *st, const char *what,
		    struct orch_error *err);

/*
 * Step ST, a prepared query, calling ROW for each row until it returns
 * nonzero, and store_finish it (also on failure). Returns 0 when the rows
 * ran out, ROW's nonzero return when it stopped, or -1 with ERR from the
 * database's error, prefixed with WHAT.
 */
int store_each(struct store *s, struct stmt *st, int (*row)(struct stmt *st, void *arg),
	       void *arg, const char *what, struct orch_error *err);

/* A text column, NULL for NULL (borrowed: valid until the next step). */
const char *store_column_text(struct stmt *st, int col);

/*
 * Once STOPPING(ARG) returns nonzero (a signal came), waits for another
 * program's lock end STORE_STOP_WAIT_MS after the first wait that sees it,
 * all waits together, instead of at the busy timeout: what is recorded
 * after a signal is recorded at once or not at all (a cycle left running
 * is recovered by the next pipeline). It is asked between the sleeps of
 * a wait, which a signal cuts short.
 */
void store_set_stop(struct store *s, int (*stopping)(void *), void *arg);

/*
 * PostgreSQL: listen for other connections' commits (the schema's
 * trigger on stacks announces every change detection reads); returns
 * the descriptor to poll, or -1 with ERR. store_notified: 1 when another
 * connection committed since the last call, 0 when not, -1 with ERR.
 */
int store_listen(struct store *s, struct orch_error *err);
int store_notified(struct store *s, struct orch_error *err);

/* The statement text for S's engine, where the dialects part. */
const char *store_sql(const struct store *s, const char *sqlite, const char *postgres);

/* A set of ids bound as a JSON array (store_id_list) at parameter P, as
 * a subquery's text, per engine: IN (STORE_IDS_SQLITE("?1")). */
#define STORE_IDS_SQLITE(p) "SELECT value FROM json_each(" p ")"
#define STORE_IDS_PG(p) \
	"SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(" p " AS JSON))"

/* Begin a read transaction: one snapshot for all its queries (SQLite:
 * BEGIN; PostgreSQL: REPEATABLE READ). */
int store_begin_read(struct store *s, struct orch_error *err);

/* Begin a write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN
 * and the store's write lock), COMMIT, ROLLBACK. 0 or -1 with ERR set. */
int store_begin(struct store *s, struct orch_error *err);
int store_commit(struct store *s, struct orch_error *err);
void store_rollback(struct store *s);

/*
 * Begin a write transaction that writes the rows of stack STACK_ID only
 * (its row in stacks, and its rows in the tables under it; it may read
 * anything): on PostgreSQL the store's write lock shared and the stack's
 * own lock, so that such transactions on different stacks run at once
 * while store_begin's still run alone. SQLite: store_begin.
 */
int store_begin_stack(struct store *s, int64_t stack_id, struct orch_error *err);

/*
 * Begin a write transaction that writes the rows of the stacks it takes
 * with store_take_stack, and otherwise only rows each written by one
 * statement that needs no lock to keep its meaning (orch-detect's cache:
 * an entry never replaces a newer one). SQLite: store_begin.
 *
 * store_take_stack: 1 when the transaction has STACK_ID's lock (it took
 * it, or the transaction is store_begin's), 0 when another transaction
 * holds it (it is not waited for), -1 with ERR. SQLite: always 1.
 */
int store_begin_stacks(struct store *s, struct orch_error *err);
int store_take_stack(struct store *s, int64_t stack_id, struct orch_error *err);

/*
 * A stack as addressed on a command line or in a document: by name, or by
 * id when REF is all digits and no stack has that name.
 */
struct stack_row {
	int64_t id;
	char *name;             /* owned */
	char *phase;            /* owned */
	char *execution_state;  /* owned: idle, running, paused, stopped */
	int64_t created_at;
	int64_t started_at;     /* 0 when never */
	int64_t paused_at;      /* 0 when never */
	int64_t stopped_at;     /* 0 when never */
	int64_t last_executed_at; /* 0 when never */
	int64_t next_run_at;
	int64_t total_cycles;
	int64_t consecutive_failures;
	int64_t state_version;
	int64_t content_version; /* bumped by what agents react to (migration 4) */
	int64_t wake_at;        /* the last write that made it due at once, 0 never */
};

/* 1 found, 0 no such stack, -1 error. ROW is filled on 1. */
int store_find_stack(struct store *s, const char *ref, struct stack_row *row,
		     struct orch_error *err);
int store_get_stack(struct store *s, int64_t id, struct stack_row *row,
		    struct orch_error *err);
void stack_row_release(struct stack_row *row);

/* {"id","name","phase","execution_state","created_at"}: the stack header
 * every pipeline document carries. */
#include <jansson.h>
json_t *stack_row_header(const struct stack_row *row);

/* The N ids IDS as a JSON array, "[1,2,3]", for STORE_IDS_IN in a query
 * over many stacks. A new string. */
char *store_id_list(const int64_t *ids, size_t n);

/* Copy a text column into a new string ("" for NULL). */
char *store_column_strdup(struct stmt *st, int col);

#endif
