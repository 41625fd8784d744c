/*
 * orch-stack history, graph, usage: what the cycles did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph.h"
#include "history.h"
#include "jsonio.h"
#include "orch.h"
#include "stack.h"
#include "term.h"
#include "xalloc.h"
#include "banned.h"

static int cycle_json(const struct history_cycle *c, void *arg)
{
	const struct stack_row *row = arg;
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *v = history_cycle_json(c, row->name, &err);

	if (!v)
		cli_die_error(&err);
	json_write(stdout, v, 0);
	json_decref(v);
	return 0;
}

static int cycle_line(const struct history_cycle *c, void *arg)
{
	char started[TERM_TIME_SIZE], *duration, *decision, *reason = NULL;
	const char *what;
	int used;

	(void)arg;
	term_utc(c->started_at, started);
	duration = c->has_ended ? xasprintf("%lld", (long long)(c->ended_at - c->started_at))
				: xstrdup("-");
	if (!c->decision)
		decision = xstrdup("-");
	else if (strcmp(c->decision, "pause") == 0 && c->has_pause)
		decision = xasprintf("pause %lld", (long long)c->pause_ms);
	else
		decision = xstrdup(c->decision);
	if (c->error && *c->error)
		what = reason = xasprintf("error: %s", c->error);
	else if (c->reason && *c->reason)
		what = c->reason;
	else
		what = "-";
	used = printf("%-5lld %-19s %8s %-9s %-10s ", (long long)c->cycle, started, duration,
		      c->status ? c->status : "", decision);
	term_cut(stdout, what, TERM_WIDTH - (used > 0 ? used : 0), 0);
	putchar('\n');
	free(duration);
	free(decision);
	free(reason);
	return 0;
}

int stack_history(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;

	stack_get(s, o->args[1], &row);
	if (!o->json)
		printf("%-5s %-19s %8s %-9s %-10s %s\n", "CYCLE", "STARTED", "DURATION",
		       "STATUS", "DECISION", "REASON");
	if (history_cycles(s, row.id, o->limit, o->json ? cycle_json : cycle_line, &row,
			   &err) != 0)
		cli_die_error(&err);
	stack_row_release(&row);
	return 0;
}

int stack_cycle(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t cycle = stack_number("cycle", o->args[2]), found;
	struct stack_row row;
	json_t *execution;
	int rc;

	stack_get(s, o->args[1], &row);
	rc = history_execution(s, &row, cycle, &execution, &found, &err);
	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no recorded execution for cycle %lld of stack '%s'",
			(long long)cycle, row.name);
	json_write(stdout, execution, 0);
	json_decref(execution);
	stack_row_release(&row);
	return 0;
}

int stack_graph(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	json_t *graph;
	int64_t cycle;
	int rc;

	stack_get(s, o->args[1], &row);
	rc = history_execution(s, &row, o->cycle, &graph, &cycle, &err);
	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0 && o->cycle)
		cli_die(ORCH_EX_NOINPUT, "no recorded graph for cycle %lld of stack '%s'",
			(long long)o->cycle, row.name);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no recorded graph for stack '%s'", row.name);
	if ((strcmp(o->format, "mermaid") == 0 ? graph_write_mermaid(stdout, graph, &err)
					       : graph_write_dot(stdout, graph, &err)) != 0) {
		json_decref(graph);
		if (err.status == ORCH_EX_DATAERR)
			orch_error_prefix(&err, "recorded graph for cycle %lld of stack '%s'",
					  (long long)cycle, row.name);
		cli_die_error(&err);
	}
	json_decref(graph);
	stack_row_release(&row);
	return 0;
}

/* The sums usage prints in its last line. */
struct usage_total {
	int json;                /* --json */
	int headed;              /* the table's header is out */
	struct history_usage sum; /* agent, model and day unused */
};

static void usage_line(struct usage_total *t, const char *agent, const char *model,
		       const char *day, const struct history_usage *u)
{
	/* MODEL NULL: the total's line. Not before the rows: a usage that is not JSON fails the query
	 * before it gives any. */
	if (!t->headed++)
		printf("%-12s %-12s %-10s %4s %4s %12s %10s %8s\n", "AGENT", "MODEL", "DAY",
		       "RUNS", "REQS", "PROMPT", "COMPLETION", "FAILED");
	term_cut(stdout, agent, 12, 1);
	putchar(' ');
	term_cut(stdout, !model ? "" : *model ? model : "-", 12, 1);
	printf(" %-10s %4lld %4lld %12lld %10lld %8lld\n", day, (long long)u->runs,
	       (long long)u->requests, (long long)u->prompt_tokens,
	       (long long)u->completion_tokens, (long long)u->failed_tokens);
}

static int usage_row(const struct history_usage *u, void *arg)
{
	struct usage_total *t = arg;
	struct history_usage *a = &t->sum;
	json_t *v;

	a->runs = history_tokens_add(a->runs, u->runs);
	a->failed_runs = history_tokens_add(a->failed_runs, u->failed_runs);
	a->requests = history_tokens_add(a->requests, u->requests);
	a->prompt_tokens = history_tokens_add(a->prompt_tokens, u->prompt_tokens);
	a->completion_tokens = history_tokens_add(a->completion_tokens, u->completion_tokens);
	a->cached_tokens = history_tokens_add(a->cached_tokens, u->cached_tokens);
	a->failed_tokens = history_tokens_add(a->failed_tokens, u->failed_tokens);
	if (!t->json) {
		usage_line(t, u->agent, u->model, u->day, u);
		return 0;
	}
	v = xjson(json_pack("{sssssssIsIsIsIsIsIsIsI}", "agent", u->agent, "model", u->model,
			    "day", u->day, "runs", (json_int_t)u->runs,
			    "failed_runs", (json_int_t)u->failed_runs,
			    "requests", (json_int_t)u->requests,
			    "prompt_tokens", (json_int_t)u->prompt_tokens,
			    "completion_tokens", (json_int_t)u->completion_tokens,
			    "cached_tokens", (json_int_t)u->cached_tokens,
			    "total_tokens",
			    (json_int_t)history_tokens_add(u->prompt_tokens, u->completion_tokens),
			    "failed_tokens", (json_int_t)u->failed_tokens));
	json_write(stdout, v, 0);
	json_decref(v);
	return 0;
}

int stack_usage(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct usage_total t;
	struct stack_row row;
	int one = o->nargs > 1;

	memset(&t, 0, sizeof(t));
	t.json = o->json;
	if (one)
		stack_get(s, o->args[1], &row);
	if (history_usage(s, one ? &row : NULL, o->since, usage_row, &t, &err) != 0)
		cli_die_error(&err);
	if (!o->json) {
		usage_line(&t, "total", NULL, "", &t.sum);
		printf("%lld tokens, %lld of the prompt cached, %lld spent in failed runs\n",
		       (long long)history_tokens_add(t.sum.prompt_tokens, t.sum.completion_tokens),
		       (long long)t.sum.cached_tokens, (long long)t.sum.failed_tokens);
	}
	if (one)
		stack_row_release(&row);
	return 0;
}
