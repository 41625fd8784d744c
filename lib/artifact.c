#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "escape.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

int artifact_write(struct store *s, int64_t stack_id, const char *type, size_t type_len,
		   const char *content, size_t len, int64_t now,
		   const struct artifact_origin *origin, struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"INSERT INTO artifacts (stack_id, version, type, content, created_at,"
		" execution_id, todo_id)"
		" SELECT ?1, COALESCE(MAX(version), 0) + 1, CAST(?2 AS TEXT), ?3, ?4,"
		" CAST(?5 AS BIGINT), CAST(?6 AS BIGINT)"
		" FROM artifacts WHERE stack_id = ?1", err);

	if (!st)
		return -1;
	if (!type) {
		type = "html";
		type_len = strlen(type);
	}
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_text_len(st, 2, type, type_len);
	stmt_bind_bytes(st, 3, content, len);
	stmt_bind_int(st, 4, now);
	if (origin && origin->execution_id > 0)
		stmt_bind_int(st, 5, origin->execution_id);
	if (origin && origin->todo_id > 0)
		stmt_bind_int(st, 6, origin->todo_id);
	return store_step_done(s, st, "writing the artifact", err);
}

struct versions_each {
	int (*fn)(const struct artifact_version *v, void *arg);
	void *arg;
};

static int version_row(struct stmt *st, void *arg)
{
	struct versions_each *e = arg;
	struct artifact_version v = {
		.version = stmt_int(st, 0),
		.type = store_column_text(st, 1),
		.size = stmt_int(st, 2),
		.created_at = stmt_int(st, 3),
		.cycle = stmt_int(st, 4),
		.todo_id = stmt_int(st, 5),
		.todo = store_column_text(st, 6),
	};

	if (!v.type)
		v.type = "";
	return e->fn(&v, e->arg);
}

int artifact_list(struct store *s, int64_t stack_id,
		  int (*fn)(const struct artifact_version *v, void *arg), void *arg,
		  struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"SELECT a.version, a.type, octet_length(a.content), a.created_at,"
		" COALESCE(e.cycle, 0), COALESCE(t.id, 0), t.content"
		" FROM artifacts a"
		" LEFT JOIN executions e ON e.id = a.execution_id"
		" LEFT JOIN todos t ON t.id = a.todo_id"
		" WHERE a.stack_id = ? ORDER BY a.version DESC", err);
	struct versions_each e = { fn, arg };

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	return store_each(s, st, version_row, &e, "reading the artifact's versions", err);
}

int artifact_read(struct store *s, int64_t stack_id, int64_t version, char **content,
		  size_t *len, int64_t *found, struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"SELECT version, content FROM artifacts"
		" WHERE stack_id = ?1 AND (?2 = 0 OR version = ?2)"
		" ORDER BY version DESC LIMIT 1", err);
	const void *blob;
	int rc;

	*content = NULL;
	*len = 0;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, version);
	rc = stmt_step(st);
	if (rc == STMT_ROW) {
		*found = stmt_int(st, 0);
		blob = stmt_blob(st, 1);
		*len = stmt_bytes(st, 1);
		*content = xmalloc(*len + 1);
		if (*len)
			memcpy(*content, blob, *len);
		(*content)[*len] = '\0';
	} else if (rc != STMT_DONE) {
		store_error(s, err, "reading the artifact");
	}
	store_finish(s, st);
	if (rc == STMT_ROW)
		return 1;
	return rc == STMT_DONE ? 0 : -1;
}

int artifact_is_binary(const char *content, size_t len)
{
	const unsigned char *p = (const unsigned char *)content, *end = p + len;
	int n;

	while (p < end) {
		n = escape_utf8_len(p, (size_t)(end - p));
		if (n == 0)
			return 1;
		if (n == 1 && (*p < 0x20 || *p == 0x7f) && *p != '\t' && *p != '\n' &&
		    *p != '\f' && *p != '\r')
			return 1;
		if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			return 1;
		p += n;
	}
	return 0;
}
