/*
 * orch-stack list, names, show: the stacks as they are now.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "budget.h"
#include "cli.h"
#include "escape.h"
#include "history.h"
#include "jsonio.h"
#include "orch.h"
#include "snapshot.h"
#include "stack.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

#define LABEL_WIDTH 15  /* the label column of show */

static int stack_json(const struct admin_stack *a, void *arg)
{
	json_t *v = xjson(json_pack("{sIsssssssIsIsIsIsIsIsI}",
		"id", (json_int_t)a->id, "name", a->name,
		"execution_state", a->execution_state, "phase", a->phase,
		"total_cycles", (json_int_t)a->total_cycles,
		"consecutive_failures", (json_int_t)a->consecutive_failures,
		"next_run_at", (json_int_t)a->next_run_at,
		"created_at", (json_int_t)a->created_at,
		"pending_todos", (json_int_t)a->pending_todos,
		"todos", (json_int_t)a->todos,
		"unprocessed_messages", (json_int_t)a->unprocessed_messages));

	(void)arg;
	json_write(stdout, v, 0);
	json_decref(v);
	return 0;
}

/* When A runs next, as list says it: "-", "due", "in 14m", and its
 * failure streak, which orch-decide's backoff grows with. New string. */
static char *next_run(const struct admin_stack *a, int64_t now)
{
	char span[TERM_TIME_SIZE], *when, *both;

	if (strcmp(a->execution_state, "running") != 0)
		return xstrdup("-");
	if (a->next_run_at <= now)
		when = xstrdup("due");
	else
		when = xasprintf("in %s", term_span(a->next_run_at - now, span));
	if (a->consecutive_failures == 0)
		return when;
	both = xasprintf("%s, %lld failed", when, (long long)a->consecutive_failures);
	free(when);
	return both;
}

static int stack_line(const struct admin_stack *a, void *arg)
{
	const struct opts *o = arg;
	char *todos = xasprintf("%lld/%lld", (long long)a->pending_todos, (long long)a->todos);
	char *next = next_run(a, o->now);

	printf("%-5lld ", (long long)a->id);
	term_cut(stdout, a->name, 16, 1);
	printf(" %-7s ", a->execution_state);
	term_cut(stdout, a->phase, 10, 1);
	printf(" %6lld %7s %4lld ", (long long)a->total_cycles, todos,
	       (long long)a->unprocessed_messages);
	term_cut(stdout, next, 18, 0);
	putchar('\n');
	free(todos);
	free(next);
	return 0;
}

int stack_list(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;

	if (!o->json)
		printf("%-5s %-16s %-7s %-10s %6s %7s %4s %s\n", "ID", "NAME", "STATE",
		       "PHASE", "CYCLES", "TODOS", "MSGS", "NEXT RUN");
	if (admin_list_stacks(s, o->json ? stack_json : stack_line, (void *)o, &err) != 0)
		cli_die_error(&err);
	return 0;
}

static int name_line(const char *name, void *arg)
{
	(void)arg;
	escape_term(stdout, name, strlen(name), INT_MAX, 0);
	putchar('\n');
	return 0;
}

int stack_names(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;

	(void)o;
	if (admin_list_names(s, name_line, NULL, &err) != 0)
		cli_die_error(&err);
	return 0;
}

/* One line of show: the label, then the value cut to fit. */
__attribute__((format(printf, 2, 3)))
static void show_line(const char *label, const char *fmt, ...)
{
	va_list ap;
	char *v;

	va_start(ap, fmt);
	v = xvasprintf(fmt, ap);
	va_end(ap);
	printf("%-*s", LABEL_WIDTH, label);
	term_cut(stdout, v, TERM_WIDTH - LABEL_WIDTH, 0);
	putchar('\n');
	free(v);
}

/* A label, then TEXT wrapped into the value column, never cut. */
static void show_wrapped(const char *label, const char *text)
{
	size_t len = strlen(text), piece, next;

	printf("%-*s", LABEL_WIDTH, label);
	do {
		piece = term_wrap(text, len, TERM_WIDTH - LABEL_WIDTH, &next);
		escape_term(stdout, text, piece, INT_MAX, 0);
		putchar('\n');
		text += next;
		len -= next;
		if (len)
			printf("%*s", LABEL_WIDTH, "");
	} while (len);
}

/* When the stack keeps failing for one cause, say so once, with the fix. */
static void show_problem(struct store *s, const struct stack_row *row)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct history_diagnosis d;
	char *why;
	int rc = history_diagnose(s, row, &d, &err);

	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		return;
	why = xasprintf("the last %lld cycles failed: %s", (long long)d.failures, d.cause);
	show_wrapped("problem", why);
	show_wrapped("fix", d.fix);
	free(why);
	history_diagnosis_release(&d);
}

/* Where the stack stands against its token budgets, when one applies
 * (the configuration file's and its own, lib/budget.h). */
static void show_budget(struct store *s, const struct stack_row *row,
			const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct budget_config cfg;
	struct budget_status b;
	char *why;

	/* A configuration file in error is the budget's problem, not the
	 * whole summary's. */
	if (config_load(&conf, NULL, &err) != 0 || budget_configure(&cfg, &conf, &err) != 0) {
		config_release(&conf);
		why = xasprintf("unknown: %s", err.msg);
		show_wrapped("budget", why);
		free(why);
		orch_error_release(&err);
		return;
	}
	config_release(&conf);
	if (budget_check(s, &cfg, row->id, o->now, 0, &b, &err) != 0)
		cli_die_error(&err);
	if (!b.binding)
		return;
	why = b.over ? budget_reason(&b)
		: xasprintf("%lld tokens left under %s %s token budget", (long long)b.left,
			    strcmp(b.binding->scope, "stack") == 0 ? "its" : "the store's",
			    b.binding->period);
	show_wrapped("budget", why);
	free(why);
}

static int64_t member_int(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static const char *member_text(const json_t *obj, const char *key)
{
	const char *t = json_string_value(json_object_get(obj, key));

	return t ? t : "";
}

/* A time in show, "2026-11-25 01:02:03 UTC", or "never" for 0. */
static const char *show_time(int64_t ms, char *buf, size_t size)
{
	char t[TERM_TIME_SIZE];

	if (ms == 0)
		return "never";
	snprintf(buf, size, "%s UTC", term_utc(ms, t));
	return buf;
}

static void show_summary(struct store *s, const struct stack_row *row,
			 const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *snap, *project, *artifact, *memory, *todos, *msgs;
	char when[TERM_TIME_SIZE + 8], parked[40] = "";

	if (!(snap = snapshot_load(s, row->id, &err)))
		cli_die_error(&err);
	/* The totals, not the windows the agents are shown. */
	todos = json_object_get(json_object_get(snap, "counts"), "todos");
	msgs = json_object_get(json_object_get(snap, "counts"), "user_messages");
	project = json_object_get(snap, "project");
	artifact = json_object_get(snap, "artifact");
	memory = json_object_get(snap, "memory");

	show_line("id", "%lld", (long long)row->id);
	show_line("name", "%s", row->name);
	show_line("state", "%s", row->execution_state);
	show_line("phase", "%s", row->phase);
	if (row->consecutive_failures > 0)
		show_line("cycles", "%lld (the last %lld failed)",
			  (long long)row->total_cycles,
			  (long long)row->consecutive_failures);
	else
		show_line("cycles", "%lld", (long long)row->total_cycles);
	if (strcmp(row->execution_state, "running") != 0)
		show_line("next run", "-");
	else if (row->next_run_at == 0)
		show_line("next run", "due");
	else
		show_line("next run", "%s%s",
			  show_time(row->next_run_at, when, sizeof(when)),
			  row->next_run_at <= o->now ? " (due)" : "");
	show_budget(s, row, o);
	show_line("project", "%s", json_is_object(project)
		  ? member_text(project, "title") : "-");
	show_line("description", "%s", json_is_object(project)
		  ? member_text(project, "description") : "-");
	if (member_int(todos, "parked"))
		snprintf(parked, sizeof(parked), ", %lld parked",
			 (long long)member_int(todos, "parked"));
	show_line("todos", "%lld pending, %lld in progress, %lld completed, %lld cancelled%s",
		  (long long)member_int(todos, "pending"),
		  (long long)member_int(todos, "in_progress"),
		  (long long)member_int(todos, "completed"),
		  (long long)member_int(todos, "cancelled"), parked);
	if (member_int(msgs, "parked"))
		show_line("user messages", "%lld unprocessed, %lld parked",
			  (long long)member_int(msgs, "unprocessed"),
			  (long long)member_int(msgs, "parked"));
	else
		show_line("user messages", "%lld unprocessed",
			  (long long)member_int(msgs, "unprocessed"));
	show_line("messages", "%lld unread", (long long)member_int(json_object_get(
		json_object_get(snap, "counts"), "messages"), "unread"));
	if (json_is_object(artifact))
		show_line("artifact", "version %lld, %lld bytes, %s, %s",
			  (long long)member_int(artifact, "version"),
			  (long long)member_int(artifact, "size"),
			  member_text(artifact, "type"),
			  show_time(member_int(artifact, "created_at"), when, sizeof(when)));
	else
		show_line("artifact", "-");
	show_line("last planning", "%s",
		  show_time(member_int(json_object_get(memory, "planner"),
				       "last_planning_time"), when, sizeof(when)));
	show_line("last review", "%s",
		  show_time(member_int(json_object_get(memory, "reviewer"),
				       "last_review_time"), when, sizeof(when)));
	json_decref(snap);
	show_problem(s, row);
}

int stack_show(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	json_t *snap;

	stack_get(s, o->args[1], &row);
	if (o->json) {
		if (!(snap = snapshot_load(s, row.id, &err)))
			cli_die_error(&err);
		json_write(stdout, snap, JSON_OUT_PRETTY);
		json_decref(snap);
	} else {
		show_summary(s, &row, o);
	}
	stack_row_release(&row);
	return 0;
}
