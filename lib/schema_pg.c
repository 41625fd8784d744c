/* placeholder until the PostgreSQL schema lands */
#include "store_int.h"
const char *const schema_pg_v12 = "CREATE TABLE orch_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
