/*
 * store.h - the SQLite database that holds every stack's state.
 *
 * One file, WAL mode, foreign keys on, a busy timeout so overlapping
 * pipelines wait instead of failing, migrations by PRAGMA user_version.
 * The file (and its -wal and -shm companions, which SQLite creates with the
 * same mode) is 0600, in a 0700 directory when orch creates one.
 * Every statement is prepared; nothing is ever spliced into SQL.
 *
 * Schema (version 8): see the migration text in store.c, the one place it
 * is written down. Every time column is integer milliseconds since the
 * epoch. stacks.state_version is bumped by triggers whenever anything that
 * detection reads changes, which is what lets the detection cache promise
 * it never serves a result older than the state.
 */
#ifndef ORCH_STORE_H
#define ORCH_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sqlite3.h>

#include "error.h"

#define STORE_SCHEMA_VERSION 8

/* How many distinct statements a store keeps prepared. */
#define STORE_CACHE_SIZE 64

/* A statement kept prepared for the next store_prepare of the same SQL. */
struct store_cached {
	char *sql;          /* owned; the text it was prepared from */
	sqlite3_stmt *stmt; /* owned */
	int in_use;         /* 1 between store_prepare and store_finish */
};

/* How long, once a program has been told to stop (store_set_stop), it
 * still waits for another one's write lock, in all: the signal's bound. */
#define STORE_STOP_WAIT_MS 1000

struct store {
	sqlite3 *db;  /* owned */
	char *path;   /* owned; as opened */
	struct store_cached cache[STORE_CACHE_SIZE]; /* the first ncached used */
	int ncached;
	int busy_ms;             /* the busy timeout: the longest wait for a lock */
	int64_t busy_since;      /* monotonic ms the current wait began */
	int (*stopping)(void *); /* or NULL: whether the program is stopping */
	void *stopping_arg;      /* borrowed; handed to stopping */
	int64_t stop_deadline;   /* monotonic ms no wait passes once stopping, 0 before */
	char *wal;               /* owned: the -wal file's path, or NULL */
	dev_t dev, wal_dev;      /* the files opened: the database and its -wal */
	ino_t ino, wal_ino;      /* (wal_ino 0: there was no -wal) */
	int lost;                /* a commit found either replaced or gone */
};

enum store_flags {
	STORE_CREATE = 1 << 0, /* create the file (and directory) if missing */
};

/*
 * The database path: FLAG_VALUE if not NULL, else $ORCH_DB, else
 * ${XDG_DATA_HOME:-$HOME/.local/share}/orch/orch.db. Returns a new string,
 * or NULL with ERR set (66) when neither HOME nor XDG_DATA_HOME is set.
 */
char *store_default_path(const char *flag_value, struct orch_error *err);

/*
 * Open (and migrate) the database at PATH. Without STORE_CREATE a missing
 * file is error 66 "no database at 'PATH' (run 'orch-stack init')"; so is
 * a path that is not a regular file (/dev/null: SQLite would make a
 * journal beside it with the device's mode). A database from a newer
 * orch is error 65. Returns NULL with ERR set.
 *
 * Every commit first checks that the database file and its -wal are
 * still the ones opened (device and inode): a file deleted or replaced
 * while the store is open would take the commit's writes with it,
 * silently. Such a commit, and every one after it, is rolled back and
 * fails with error 66 ("the database 'PATH' was deleted or replaced
 * while in use: nothing more is written to it").
 */
struct store *store_open(const char *path, unsigned flags, struct orch_error *err);
void store_close(struct store *s);

/*
 * Fill ERR from the database's last error, prefixed with WHAT when it is
 * not NULL ("adding the todo: ..."): busy or locked, or a full disk or
 * quota, is 75; read-only, unopenable, or deleted or replaced while open
 * 66; corrupt 65; the rest 70. SQLite's own message already
 * says "database" ("database is locked"), so a generic step passes NULL.
 * Returns -1.
 */
int store_error(struct store *s, struct orch_error *err, const char *what);

/*
 * Prepare SQL; NULL with ERR set on failure. The caller hands the
 * statement back with store_finish, never sqlite3_finalize: statements
 * are kept prepared and reused, because compiling SQL was half of
 * orch-exec's work per agent run. A statement whose SQL is already in use
 * (a nested query) is prepared afresh and finalized by store_finish.
 */
sqlite3_stmt *store_prepare(struct store *s, const char *sql, struct orch_error *err);

/*
 * Done with ST from store_prepare (NULL is fine): reset, its bindings
 * cleared, and kept for the next use, or finalized if it is not kept.
 */
void store_finish(struct store *s, sqlite3_stmt *st);

/* The integer a PRAGMA (SQL, no parameters) answers, into *OUT. 0, or -1
 * with ERR set. */
int store_pragma(struct store *s, const char *sql, int64_t *out, struct orch_error *err);

/*
 * Step ST (prepared and bound) and finish it: 1 with its first column's
 * integer in *OUT when it gives a row, 0 when it gives none, or -1 with
 * ERR ("WHAT: ...").
 */
int store_query_int(struct store *s, sqlite3_stmt *st, int64_t *out, const char *what,
		    struct orch_error *err);

/* Run SQL that returns no rows (no parameters). 0 or -1 with ERR set. */
int store_exec(struct store *s, const char *sql, struct orch_error *err);

/*
 * Step ST, a prepared write, to its end and store_finish it (also on
 * failure).
 * 0, or -1 with ERR from the database's error, prefixed with WHAT.
 */
int store_step_done(struct store *s, sqlite3_stmt *st, const char *what,
		    struct orch_error *err);

/*
 * Step ST, a prepared query, calling ROW for each row until it returns
 * nonzero, and store_finish it (also on failure). Returns 0 when the rows
 * ran out, ROW's nonzero return when it stopped, or -1 with ERR from the
 * database's error, prefixed with WHAT.
 */
int store_each(struct store *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *arg),
	       void *arg, const char *what, struct orch_error *err);

/* A text column, NULL for NULL (borrowed: valid until the next step). */
const char *store_column_text(sqlite3_stmt *st, int col);

/*
 * Once STOPPING(ARG) returns nonzero (a signal came), waits for another
 * program's lock end STORE_STOP_WAIT_MS after the first wait that sees it,
 * all waits together, instead of at the busy timeout: what is recorded
 * after a signal is recorded at once or not at all (a cycle left running
 * is recovered by the next pipeline). It is asked between the sleeps of
 * a wait, which a signal cuts short.
 */
void store_set_stop(struct store *s, int (*stopping)(void *), void *arg);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or -1 with ERR set. */
int store_begin(struct store *s, struct orch_error *err);
int store_commit(struct store *s, struct orch_error *err);
void store_rollback(struct store *s);

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

/* The N ids IDS as a JSON array, "[1,2,3]", for json_each(?) in a query
 * over many stacks. A new string. */
char *store_id_list(const int64_t *ids, size_t n);

/* Copy sqlite3_column_text into a new string ("" for NULL). */
char *store_column_strdup(sqlite3_stmt *st, int col);

#endif
