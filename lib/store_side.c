#include <stdlib.h>
#include <sys/stat.h>

#include "orch.h"
#include "store_side.h"
#include "xalloc.h"
#include "banned.h"

struct store *store_open_side(const char *path, int busy_ms, const char *table,
			      struct orch_error *err)
{
	struct store *s = NULL;
	sqlite3_stmt *st;
	struct stat sb;
	char *p = store_default_path(path, err);
	int rc;

	if (!p)
		return NULL;
	if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		orch_error_set(err, ORCH_EX_NOINPUT, "no database at '%s'", p);
		free(p);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->path = p;
	/* Never SQLITE_OPEN_CREATE: orch-agent makes no database. */
	rc = sqlite3_open_v2(p, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		store_error(s, err, "cannot open database");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_timeout(s->db, busy_ms);
	if (!(st = store_prepare(s, "SELECT 1 FROM sqlite_master"
				 " WHERE type = 'table' AND name = ?", err)))
		goto fail;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_error(s, err, NULL);
	else if (rc == SQLITE_DONE)
		orch_error_set(err, ORCH_EX_NOINPUT, "the database '%s' is of a schema without"
			       " it (any orch-stack command brings it up to date)", p);
	store_finish(s, st);
	if (rc == SQLITE_ROW)
		return s;
fail:
	store_close(s);
	return NULL;
}
