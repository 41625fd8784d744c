/*
 * stack-copy.c - orch-stack copy: the whole store into an empty one, on
 * either engine, and each table verified (lib/copy.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "copy.h"
#include "escape.h"
#include "jsonio.h"
#include "stack.h"
#include "xalloc.h"
#include "banned.h"

static const char *verdict(const struct copy_table *t)
{
	return !t->verified ? "-" : t->ok ? "ok" : "differs";
}

static void print_text(const struct copy_report *rep, struct store *dst, int done)
{
	const char *name = store_name(dst);
	char *shown = escape_term_dup(name, strlen(name), 0);
	size_t i;

	for (i = 0; i < rep->ntables; i++)
		printf("%-16s %10lld  %s\n", rep->tables[i].name,
		       (long long)rep->tables[i].rows, verdict(&rep->tables[i]));
	if (done)
		printf("%lld rows copied to '%s' and verified\n", (long long)rep->rows, shown);
	free(shown);
}

static void print_json(const struct copy_report *rep, struct store *src, struct store *dst,
		       int done)
{
	json_t *out = xjson(json_pack("{ss ss sI sb s[]}", "source", store_name(src),
				      "destination", store_name(dst), "rows",
				      (json_int_t)rep->rows, "ok", done, "tables"));
	json_t *tables = json_object_get(out, "tables");
	const struct copy_table *t;
	size_t i;

	for (i = 0; i < rep->ntables; i++) {
		t = &rep->tables[i];
		xjson_append(tables, xjson(json_pack("{ss sI sI ss ss sb}", "name", t->name,
						     "rows", (json_int_t)t->rows,
						     "dest_rows", (json_int_t)t->dest_rows,
						     "sha256", t->sum, "dest_sha256", t->dest_sum,
						     "ok", t->ok)));
	}
	json_write(stdout, out, 0);
	json_decref(out);
}

int stack_copy(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct copy_report rep;
	struct store *dst;
	int rc;

	if (!o->to)
		cli_usage_error(stack_usage_line, "usage: orch-stack copy --to DEST [--json]");
	dst = cli_open_store(o->to, STORE_CREATE);
	rc = copy_store(s, dst, &rep, &err);
	/* After a verification, even a failed one, the tables' verdicts. */
	if (rc == 0 || rep.tables[0].verified) {
		if (o->json)
			print_json(&rep, s, dst, rc == 0);
		else
			print_text(&rep, dst, rc == 0);
	}
	copy_report_release(&rep);
	store_close(dst);
	if (rc != 0) {
		fflush(stdout);
		cli_die_error(&err);
	}
	return 0;
}
