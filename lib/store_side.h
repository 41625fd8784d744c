/*
 * store_side.h - the store as orch-agent opens it: on the side of the
 * programs that own it. Only a database that already exists is opened;
 * it is never created or migrated (orch-agent runs fine without one), a
 * lock is waited for only briefly, and the caller reads and writes only
 * the one table it asks for.
 */
#ifndef ORCH_STORE_SIDE_H
#define ORCH_STORE_SIDE_H

#include "error.h"
#include "store.h"

/*
 * The database at PATH (NULL: $ORCH_DB, else store_default_path()'s),
 * opened read-write with a busy timeout of BUSY_MS, when it holds TABLE.
 * NULL with ERR saying why not: no such file (66), a database that cannot
 * be opened, or one of a schema without TABLE (66, "any orch-stack
 * command brings it up to date"). Close it with store_close().
 */
struct store *store_open_side(const char *path, int busy_ms, const char *table,
			      struct orch_error *err);

#endif
