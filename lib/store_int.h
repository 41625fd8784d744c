/*
 * store_int.h - inside the store: what lib/store.c shares with its two
 * engines, lib/store_sqlite.c and lib/store_pg.c. Nothing else includes it.
 */
#ifndef ORCH_STORE_INT_H
#define ORCH_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

/* store_open_side's open: the database as it is, never created or
 * migrated. */
#define STORE_SIDE (1u << 8)

/* How many distinct statements a store keeps prepared. */
#define STORE_CACHE_SIZE 64

struct pg_conn;   /* lib/store_pg.c */
struct pg_stmt;

struct stmt {
	struct store *s;      /* borrowed */
	sqlite3_stmt *lite;   /* owned, SQLite */
	struct pg_stmt *pg;   /* owned, PostgreSQL */
};

/* A statement kept prepared for the next store_prepare of the same SQL. */
struct store_cached {
	char *sql;          /* owned; the text it was prepared from */
	struct stmt *stmt;  /* owned */
	int in_use;         /* 1 between store_prepare and store_finish */
};

struct store {
	enum store_engine engine;
	char *path;              /* owned; as opened (a URI: without its password) */
	struct store_cached cache[STORE_CACHE_SIZE]; /* the first ncached used */
	int ncached;
	int busy_ms;             /* the busy timeout: the longest wait for a lock */
	int64_t busy_since;      /* monotonic ms the current wait began */
	int (*stopping)(void *); /* or NULL: whether the program is stopping */
	void *stopping_arg;      /* borrowed; handed to stopping */
	int64_t stop_deadline;   /* monotonic ms no wait passes once stopping, 0 before */
	/* SQLite */
	sqlite3 *db;             /* owned */
	char *wal;               /* owned: the -wal file's path, or NULL */
	dev_t dev, wal_dev;      /* the files opened: the database and its -wal */
	ino_t ino, wal_ino;      /* (wal_ino 0: there was no -wal) */
	int lost;                /* a commit found either replaced or gone */
	/* PostgreSQL */
	struct pg_conn *pg;      /* owned */
	char *uri;               /* owned: the URI as given, password and all */
};

/* The busy timeout: ORCH_BUSY_TIMEOUT_MS when set, else the default. */
int store_busy_timeout(int *ms, struct orch_error *err);

/* The schema (lib/schema.c): SQLite's text I (from 0) brings a database
 * of schema version I to I + 1. PostgreSQL was first supported at
 * version 12: schema_pg_v12 makes that whole schema at once, and text I
 * of schema_pg brings 12 + I to 13 + I. */
extern const char *const schema_sqlite[];
extern const int schema_sqlite_count;
extern const char *const schema_pg_v12;
extern const char *const schema_pg[];
extern const int schema_pg_count;

/* SQLite engine (lib/store_sqlite.c). */
int lite_open(struct store *s, unsigned flags, struct orch_error *err);
int lite_open_plain(struct store *s, int busy_ms, struct orch_error *err);
void lite_close(struct store *s);
int lite_error(struct store *s, struct orch_error *err, const char *what);
int lite_is_constraint(const struct store *s);
struct stmt *lite_prepare(struct store *s, const char *sql, struct orch_error *err);
int lite_exec(struct store *s, const char *sql, struct orch_error *err);
int lite_in_transaction(struct store *s);

/* PostgreSQL engine (lib/store_pg.c). */
int pg_open(struct store *s, const char *uri, unsigned flags, struct orch_error *err);
void pg_close(struct store *s);
int pg_error(struct store *s, struct orch_error *err, const char *what);
int pg_is_constraint(const struct store *s);
struct stmt *pg_prepare(struct store *s, const char *sql, struct orch_error *err);
void pg_reset(struct pg_stmt *p);
void pg_free(struct pg_stmt *p);
int pg_exec(struct store *s, const char *sql, struct orch_error *err);
/* The write lock a transaction takes at BEGIN (see store_pg.c); zero is
 * the one that keeps no writer out by itself. */
enum pg_lock {
	PG_LOCK_SHARED, /* shared: stacks are taken one by one (pg_take_stack) */
	PG_LOCK_STACK,  /* shared, and one stack's own lock, waited for */
	PG_LOCK_ALL,    /* the store's write lock: no other writer */
};
int pg_begin(struct store *s, enum pg_lock lock, int64_t stack_id, struct orch_error *err);
int pg_take_stack(struct store *s, int64_t stack_id, struct orch_error *err);
int pg_in_transaction(struct store *s);
int64_t pg_changes(struct store *s);
void pg_bind(struct pg_stmt *p, int i, int type, const void *v, size_t len);
enum stmt_result pg_step(struct pg_stmt *p);
enum stmt_type pg_type(struct pg_stmt *p, int col);
const char *pg_text(struct pg_stmt *p, int col);
size_t pg_bytes(struct pg_stmt *p, int col);
int pg_column_count(struct pg_stmt *p);
int pg_param_count(struct pg_stmt *p);
int pg_listen(struct store *s, struct orch_error *err);
int pg_notified(struct store *s, struct orch_error *err);
const char *pg_column_name(struct pg_stmt *p, int col);

#endif
