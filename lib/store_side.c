#include <stdlib.h>
#include <sys/stat.h>

#include "orch.h"
#include "store_int.h"
#include "store_side.h"
#include "xalloc.h"
#include "banned.h"

/* Whether the open store S has TABLE: 1, 0, or -1 with ERR. */
static int has_table(struct store *s, const char *table, struct orch_error *err)
{
	struct stmt *st;
	int64_t one;

	st = store_prepare(s, s->engine == STORE_POSTGRES
			   ? "SELECT 1 FROM information_schema.tables"
			     " WHERE table_schema = current_schema() AND table_name = ?"
			   : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", err);
	if (!st)
		return -1;
	stmt_bind_text(st, 1, table);
	return store_query_int(s, st, &one, NULL, err);
}

struct store *store_open_side(const char *path, int busy_ms, const char *table,
			      struct orch_error *err)
{
	struct store *s;
	struct stat sb;
	char *p = store_default_path(path, err);
	int rc;

	if (!p)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->busy_ms = busy_ms;
	if (store_name_is_postgres(p)) {
		s->engine = STORE_POSTGRES;
		rc = pg_open(s, p, STORE_SIDE, err);
		free(p);
	} else {
		s->path = p;
		if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			orch_error_set(err, ORCH_EX_NOINPUT, "no database at '%s'", p);
			goto fail;
		}
		rc = lite_open_plain(s, busy_ms, err);
	}
	if (rc != 0)
		goto fail;
	rc = has_table(s, table, err);
	if (rc == 0)
		orch_error_set(err, ORCH_EX_NOINPUT, "the database '%s' is of a schema without"
			       " it (any orch-stack command brings it up to date)", s->path);
	if (rc == 1)
		return s;
fail:
	store_close(s);
	return NULL;
}
