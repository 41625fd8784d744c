/*
 * schema_pg.h - the store's schema for PostgreSQL (15 and later), whole.
 *
 * SQLite's schema grows by numbered migrations (store.c); a PostgreSQL
 * database starts life at the version those migrations end at, created by
 * one text, and migrates from there. The tables, their columns (names,
 * order, meaning), keys, indexes and the triggers that keep
 * stacks.state_version and content_version are SQLite's; what differs,
 * and why, is said beside the text in schema_pg.c.
 */
#ifndef ORCH_SCHEMA_PG_H
#define ORCH_SCHEMA_PG_H

/* The schema version schema_pg_v12 creates; orch_meta's schema_version. */
#define SCHEMA_PG_VERSION 12

/*
 * The DDL of SQLite's schema at version 12: several statements separated
 * by ';', to be sent as one query (PQexec), which runs them in one
 * transaction, on an empty database. It fills orch_meta with
 * ('schema_version', '12'). Besides SQLite's tables it defines what the
 * queries of this engine call in place of SQLite's:
 *   orch_json_or_null(text) -> jsonb   json_valid() (NULL: not JSON)
 *   orch_search_query(text) -> tsquery traces.c's fts_query(), for
 *                                      traces_fts.doc @@ (NULL for NULL)
 * Its statements raise NOTICEs (a search with no word); the engine's
 * notice processor drops them.
 */
extern const char *const schema_pg_v12;

#endif
