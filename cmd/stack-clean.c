/*
 * orch-stack gc, todo rm, todo clear, messages clear, memory clear: what
 * retention prunes now, and what a person removes from a stack; todo
 * retry, messages retry: parked work given back.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "config.h"
#include "jsonio.h"
#include "orch.h"
#include "retention.h"
#include "stack.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

/* Rows of each kind gc prunes in one transaction: the loop's pipelines
 * wait for it at most that long between two. */
#define GC_BATCH 256
/* Pages of merging the search index in one transaction (about 1 MB). */
#define GC_TIDY_PAGES 1000

static void check(int rc, struct orch_error *err)
{
	if (rc != 0)
		cli_die_error(err);
}

/* What gc says of one stack (NAME NULL: of no stack). */
static void gc_line(const struct opts *o, const char *name, const struct retention_counts *c)
{
	json_t *v;

	if (o->json) {
		v = xjson(json_pack("{sosIsIsIsIsIsb}",
			"stack", name ? json_string(name) : json_null(),
			"cycles", (json_int_t)c->cycles, "runs", (json_int_t)c->runs,
			"versions", (json_int_t)c->versions, "messages", (json_int_t)c->messages,
			"cache", (json_int_t)c->cache, "dry_run", o->dry_run));
		json_write(stdout, v, 0);
		json_decref(v);
		return;
	}
	term_cut(stdout, name ? name : "(no stack)", 20, 1);
	printf(" %9lld %9lld %9lld %9lld %9lld\n", (long long)c->cycles, (long long)c->runs,
	       (long long)c->versions, (long long)c->messages, (long long)c->cache);
}

static void counts_add(struct retention_counts *to, const struct retention_counts *c)
{
	to->cycles += c->cycles;
	to->runs += c->runs;
	to->versions += c->versions;
	to->messages += c->messages;
	to->cache += c->cache;
}

static int64_t counts_sum(const struct retention_counts *c)
{
	return c->cycles + c->versions + c->messages + c->cache;
}

/* Prune stack ID (0: the rows of no stack) wholly into *ALL, GC_BATCH
 * rows of each kind a transaction; a dry run counts in one. */
static void gc_one(struct store *s, const struct retention_rules *r, const struct opts *o,
		   int64_t id, struct retention_counts *all)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct retention_counts batch;
	int64_t limit = o->dry_run ? 0 : GC_BATCH;

	memset(all, 0, sizeof(*all));
	do {
		memset(&batch, 0, sizeof(batch));
		check(id ? retention_prune_stack(s, r, id, o->now, limit, o->dry_run, &batch, &err)
			 : retention_prune_orphans(s, r, o->now, limit, o->dry_run, &batch, &err),
		      &err);
		counts_add(all, &batch);
	} while (!o->dry_run && counts_sum(&batch) > 0);
}

/* The names gc goes through: every stack's, by name. */
struct names {
	char **v;   /* owned, each owned */
	size_t n;
};

static int add_name(const char *name, void *arg)
{
	struct names *names = arg;

	names->v = xreallocarray(names->v, names->n + 1, sizeof(*names->v));
	names->v[names->n++] = xstrdup(name);
	return 0;
}

int stack_gc(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct retention_rules r;
	struct retention_counts total = { 0, 0, 0, 0, 0 }, one;
	struct names names = { NULL, 0 };
	size_t i;

	if (config_load(&conf, o->config, &err) != 0 || retention_configure(&r, &conf, &err) != 0)
		cli_die_error(&err);
	config_release(&conf);
	if (o->nargs > 1) {
		struct stack_row row;

		stack_get(s, o->args[1], &row);
		add_name(row.name, &names);
		stack_row_release(&row);
	} else
		check(admin_list_names(s, add_name, &names, &err), &err);
	if (!o->json)
		printf("%-20s %9s %9s %9s %9s %9s\n", "STACK", "CYCLES", "RUNS", "VERSIONS",
		       "MESSAGES", "CACHE");
	for (i = 0; i < names.n; i++) {
		gc_one(s, &r, o, stack_find(s, names.v[i]), &one);
		gc_line(o, names.v[i], &one);
		counts_add(&total, &one);
	}
	/* A whole gc also takes what belongs to no stack. */
	if (o->nargs == 1) {
		gc_one(s, &r, o, 0, &one);
		gc_line(o, NULL, &one);
		counts_add(&total, &one);
	}
	/* What was pruned leaves the full-text index holding deletion
	 * markers: merged away until it stops shrinking. */
	if (!o->dry_run && total.runs) {
		int64_t size = INT64_MAX, was;

		do {
			was = size;
			check(retention_tidy(s, GC_TIDY_PAGES, &size, &err), &err);
		} while (size < was);
	}
	if (!o->json)
		gc_line(o, "total", &total);
	for (i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	return 0;
}

int stack_todo_rm(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	int64_t id = stack_number("todo rm", o->args[3]);
	int rc;

	stack_get(s, o->args[2], &row);
	if ((rc = admin_todo_remove(s, row.id, id, &err)) < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no todo %lld in stack '%s'", (long long)id, row.name);
	stack_row_release(&row);
	return 0;
}

int stack_todo_retry(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	int64_t id = stack_number("todo retry", o->args[3]);
	int rc;

	stack_get(s, o->args[2], &row);
	if ((rc = admin_todo_retry(s, row.id, id, o->now, &err)) < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no todo %lld in stack '%s'", (long long)id, row.name);
	printf("todo %lld is pending again\n", (long long)id);
	stack_row_release(&row);
	return 0;
}

int stack_messages_retry(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	int64_t id = o->nargs > 3 ? stack_number("messages retry", o->args[3]) : 0, n;
	int rc;

	stack_get(s, o->args[2], &row);
	if ((rc = admin_messages_retry(s, row.id, id, o->now, &n, &err)) < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no message %lld in stack '%s'", (long long)id, row.name);
	printf("retrying %lld message%s\n", (long long)n, n == 1 ? "" : "s");
	stack_row_release(&row);
	return 0;
}

/* "removed N WHAT": what a clear did, on stdout. */
static void removed(int64_t n, const char *one, const char *many)
{
	printf("removed %lld %s\n", (long long)n, n == 1 ? one : many);
}

int stack_todo_clear(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t n;

	check(admin_todo_clear(s, stack_find(s, o->args[2]), o->status, &n, &err), &err);
	removed(n, "todo", "todos");
	return 0;
}

int stack_messages_clear(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t id = stack_find(s, o->args[2]), n, marked;

	if (o->stacks && o->unanswered)
		cli_usage_error(stack_usage_line, "--unanswered and --stacks do not go together");
	if (!o->stacks) {
		check(admin_messages_clear(s, id, o->unanswered, &n, &err), &err);
		removed(n, "message", "messages");
		return 0;
	}
	check(admin_stack_messages_clear(s, id, o->now, &n, &marked, &err), &err);
	printf("removed %lld message%s from other stacks, marked %lld broadcast%s read\n",
	       (long long)n, n == 1 ? "" : "s", (long long)marked, marked == 1 ? "" : "s");
	return 0;
}

int stack_memory_clear(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	const char *agent = o->nargs > 3 ? o->args[3] : NULL;
	int64_t n;

	if (agent && orch_agent_index(agent) < 0)
		cli_usage_error(stack_usage_line,
				"memory clear: '%s' is not planner, builder, communicator or reviewer",
				agent);
	check(admin_memory_clear(s, stack_find(s, o->args[2]), agent, &n, &err), &err);
	printf("removed the memory of %lld agent%s\n", (long long)n, n == 1 ? "" : "s");
	return 0;
}
