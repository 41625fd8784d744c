/*
 * orch-stack log: what every agent did, one line an attempt, or one
 * attempt whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonio.h"
#include "orch.h"
#include "spawn.h"
#include "stack.h"
#include "term.h"
#include "traces.h"
#include "xalloc.h"
#include "banned.h"

#define LABEL_WIDTH 13 /* the label column of log show */
#define INDENT 2       /* a section's text under its title */

static int trace_json(const struct traces_row *t, void *arg)
{
	const int *whole = arg;
	json_t *v = traces_json(t, *whole);

	json_write(stdout, v, *whole ? JSON_OUT_PRETTY : 0);
	json_decref(v);
	return 0;
}

static int trace_line(const struct traces_row *t, void *arg)
{
	char took[TERM_TIME_SIZE], *tokens, *result = traces_result(t);
	int used;

	(void)arg;
	term_duration(t->ended_at - t->started_at, took);
	if (t->prompt_tokens + t->completion_tokens > 0)
		tokens = xasprintf("%lld", (long long)(t->prompt_tokens + t->completion_tokens));
	else
		tokens = xstrdup("-");
	used = printf("%-6lld ", (long long)t->id);
	used += t->cycle ? printf("%5lld ", (long long)t->cycle) : printf("%5s ", "-");
	used += term_cut(stdout, t->agent, 12, 1);
	used += printf(" %3lld ", (long long)t->attempt);
	used += term_cut(stdout, t->status, 9, 1);
	used += printf(" %6s %6s ", took, tokens);
	term_cut(stdout, result, TERM_WIDTH - used, 0);
	putchar('\n');
	free(tokens);
	free(result);
	return 0;
}

int stack_log(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct traces_filter f = { 0 };
	int whole = 0;
	const char *p;

	if (o->query) {
		for (p = o->query; *p == ' ' || *p == '\t' || *p == '\n'; p++)
			;
		if (!*p)
			cli_usage_error(stack_usage_line, "-q: give at least one word to look for");
	}
	f.stack_id = stack_find(s, o->args[1]);
	f.cycle = o->cycle;
	f.agent = o->agent;
	f.failed = o->failed;
	f.since = o->since;
	f.query = o->query;
	f.limit = o->limit;
	if (!o->json)
		printf("%-6s %5s %-12s %3s %-9s %6s %6s %s\n", "ID", "CYCLE", "AGENT", "TRY",
		       "STATUS", "TIME", "TOKENS", "RESULT");
	if (traces_list(s, &f, o->json ? trace_json : trace_line, &whole, &err) != 0)
		cli_die_error(&err);
	return 0;
}

/* One line of log show: the label, then the value cut to fit. */
static void label(const char *name, const char *value)
{
	printf("%-*s", LABEL_WIDTH, name);
	term_cut(stdout, value, TERM_WIDTH - LABEL_WIDTH, 0);
	putchar('\n');
}

/* A section: its title, then TEXT indented; JSON pretty-printed whole. */
static void section(const char *title, const char *text, size_t len)
{
	json_t *v;
	char *pretty = NULL;

	if (!text || !len)
		return;
	printf("\n%s\n", title);
	if ((v = json_loadb(text, len, JSON_DECODE_ANY, NULL))) {
		pretty = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
		json_decref(v);
	}
	if (pretty)
		term_block(stdout, pretty, strlen(pretty), INDENT, 0);
	else
		term_block(stdout, text, len, INDENT, TERM_WIDTH);
	free(pretty);
}

static int trace_whole(const struct traces_row *t, void *arg)
{
	char when[TERM_TIME_SIZE], *v, *actions = NULL;
	json_t *out = NULL;

	(void)arg;
	v = xasprintf("%lld", (long long)t->id);
	label("trace", v);
	free(v);
	label("stack", t->stack);
	v = t->cycle ? xasprintf("%lld (execution %lld)", (long long)t->cycle,
				 (long long)t->execution_id) : xstrdup("-");
	label("cycle", v);
	free(v);
	label("agent", t->agent);
	v = xasprintf("%lld", (long long)t->attempt);
	label("attempt", v);
	free(v);
	label("status", t->status);
	v = t->has_exit_status ? xasprintf("%lld", (long long)t->exit_status)
			       : xstrdup("- (it did not exit by itself)");
	label("exit status", v);
	free(v);
	v = xasprintf("%s UTC", term_utc(t->started_at, when));
	label("started", v);
	free(v);
	v = xasprintf("%lld ms", (long long)(t->ended_at - t->started_at));
	label("duration", v);
	free(v);
	v = xasprintf("%lld prompt, %lld completion tokens", (long long)t->prompt_tokens,
		      (long long)t->completion_tokens);
	label("usage", v);
	free(v);
	v = traces_result(t);
	label(t->error && *t->error ? "error" : "result", v);
	free(v);
	section("context", t->input, t->input_len);
	if (t->output)
		out = json_loadb(t->output, t->output_len, 0, NULL);
	if (json_is_object(out)) {
		const char *thinking = json_string_value(json_object_get(out, "thinking"));

		if (thinking)
			section("thinking", thinking, strlen(thinking));
		if (json_object_get(out, "actions"))
			actions = json_dumps(json_object_get(out, "actions"), JSON_ENCODE_ANY);
		if (actions)
			section("actions", actions, strlen(actions));
	} else {
		section("output", t->output, t->output_len);
	}
	section("usage", t->usage, t->usage_len);
	json_decref(out);
	free(actions);
	if (t->stderr_dropped) {
		v = xasprintf("stderr (its last %d bytes: the %lld before them were not kept)",
			      SPAWN_MAX_STDERR, (long long)t->stderr_dropped);
		section(v, t->stderr_text, t->stderr_len);
		free(v);
	} else {
		section("stderr", t->stderr_text, t->stderr_len);
	}
	return 0;
}

int stack_log_show(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t id = stack_number("ID", o->args[2]);
	int whole = 1, rc;

	rc = traces_get(s, id, o->json ? trace_json : trace_whole, &whole, &err);
	if (rc < 0)
		cli_die_error(&err);
	if (rc == 0)
		cli_die(ORCH_EX_NOINPUT, "no trace %lld", (long long)id);
	return 0;
}
