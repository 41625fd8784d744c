/*
 * orch-stack artifact: what the team made, each version, and how two
 * versions differ.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "artifact.h"
#include "cli.h"
#include "diff.h"
#include "doc.h"
#include "escape.h"
#include "jsonio.h"
#include "orch.h"
#include "stack.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

/* The most artifact writes to a terminal without -o. */
#define TERMINAL_MAX (256 * 1024)

/* Version VERSION of ROW's artifact (0: the latest), or 66 naming it. */
static char *read_version(struct store *s, const struct stack_row *row, int64_t version,
			  size_t *len, int64_t *found)
{
	struct orch_error err = ORCH_ERROR_INIT;
	char *content;
	int rc = artifact_read(s, row->id, version, &content, len, found, &err);

	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0 && version)
		cli_die(ORCH_EX_NOINPUT, "no version %lld of the artifact of stack '%s'",
			(long long)version, row->name);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "stack '%s' has no artifact yet", row->name);
	return content;
}

int stack_artifact(struct store *s, const struct opts *o)
{
	struct stack_row row;
	int64_t version;
	size_t len;
	char *content;
	FILE *fp;

	stack_get(s, o->args[1], &row);
	content = read_version(s, &row, o->version, &len, &version);
	if (!o->output && isatty(STDOUT_FILENO) &&
	    (len > TERMINAL_MAX || artifact_is_binary(content, len))) {
		free(content);
		cli_die(ORCH_EX_USAGE, "version %lld of the artifact of stack '%s' is %s: "
			"not written to a terminal (-o FILE writes it to FILE, -o - here)",
			(long long)version, row.name,
			len > TERMINAL_MAX ? "large" : "binary, or holds control characters");
	}
	fp = stack_output(o);
	fwrite(content, 1, len, fp);
	free(content);
	stack_output_close(o, fp);
	stack_row_release(&row);
	return 0;
}

static int version_json(const struct artifact_version *v, void *arg)
{
	const struct stack_row *row = arg;
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *j = xjson(json_object());
	char *what = xasprintf("version %lld of the artifact of stack '%s'",
			       (long long)v->version, row->name);

	xjson_set(j, "version", xjson(json_integer(v->version)));
	if (doc_set_text(j, "type", v->type, what, &err) != 0)
		goto bad;
	xjson_set(j, "size", xjson(json_integer(v->size)));
	xjson_set(j, "created_at", xjson(json_integer(v->created_at)));
	xjson_set(j, "cycle", v->cycle ? xjson(json_integer(v->cycle)) : json_null());
	xjson_set(j, "todo_id", v->todo_id ? xjson(json_integer(v->todo_id)) : json_null());
	if (doc_set_text(j, "todo", v->todo, what, &err) != 0)
		goto bad;
	free(what);
	json_write(stdout, j, 0);
	json_decref(j);
	return 0;
bad:
	json_decref(j);
	free(what);
	cli_die_error(&err);
}

static int version_line(const struct artifact_version *v, void *arg)
{
	char when[TERM_TIME_SIZE], *todo = NULL;
	int used;

	(void)arg;
	used = printf("%7lld  %-19s %8lld  ", (long long)v->version,
		      term_utc(v->created_at, when), (long long)v->size);
	used += term_cut(stdout, v->type, 6, 1);
	if (v->cycle)
		used += printf("  %5lld  ", (long long)v->cycle);
	else
		used += printf("  %5s  ", "-");
	if (v->todo_id)
		todo = xasprintf("#%lld %s", (long long)v->todo_id, v->todo ? v->todo : "");
	term_cut(stdout, todo ? todo : "-", TERM_WIDTH - used, 0);
	putchar('\n');
	free(todo);
	return 0;
}

static int version_number(const struct artifact_version *v, void *arg)
{
	(void)arg;
	printf("%lld\n", (long long)v->version);
	return 0;
}

/* The versions: all of list's columns, --json, or the numbers alone. */
static int list_versions(struct store *s, const struct opts *o,
			 int (*fn)(const struct artifact_version *v, void *arg))
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;

	stack_get(s, o->args[2], &row);
	if (artifact_list(s, row.id, fn, &row, &err) != 0)
		cli_die_error(&err);
	stack_row_release(&row);
	return 0;
}

int stack_artifact_list(struct store *s, const struct opts *o)
{
	if (!o->json)
		printf("%7s  %-19s %8s  %-6s  %5s  %s\n", "VERSION", "CREATED", "SIZE",
		       "TYPE", "CYCLE", "TODO");
	return list_versions(s, o, o->json ? version_json : version_line);
}

int stack_artifact_versions(struct store *s, const struct opts *o)
{
	return list_versions(s, o, version_number);
}

int stack_artifact_diff(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t va = stack_number("version", o->args[3]), vb = stack_number("version", o->args[4]);
	struct diff_side a, b;
	struct stack_row row;
	char *out, *la, *lb;
	size_t out_len;
	int rc;

	stack_get(s, o->args[2], &row);
	a.data = read_version(s, &row, va, &a.len, &va);
	b.data = read_version(s, &row, vb, &b.len, &vb);
	a.label = la = xasprintf("%s version %lld", row.name, (long long)va);
	b.label = lb = xasprintf("%s version %lld", row.name, (long long)vb);
	rc = diff_unified(&a, &b, &out, &out_len, &err);
	free((char *)a.data);
	free((char *)b.data);
	free(la);
	free(lb);
	if (rc != 0)
		cli_die_error(&err);
	/* A patch for a file or a pipe, byte for byte; made harmless for a
	 * terminal, as everything an agent wrote is. */
	if (isatty(STDOUT_FILENO))
		escape_term(stdout, out, out_len, INT_MAX, ESCAPE_TERM_LINES);
	else
		fwrite(out, 1, out_len, stdout);
	free(out);
	stack_row_release(&row);
	return 0;
}
