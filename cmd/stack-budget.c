/*
 * stack-budget.c - orch-stack budget: a stack's token budgets, what it
 * has spent against each and what is left (lib/budget.h); and setting its
 * own limits. A stack name holds only letters, digits, '.', '_' and '-',
 * so it is printed as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "cli.h"
#include "config.h"
#include "jsonio.h"
#include "stack.h"
#include "xalloc.h"
#include "banned.h"

/* Where line I's limit comes from: the stack's own, the configuration
 * key that sets it, or nothing. */
static const char *source_of(size_t i, const struct budget_own *own,
			     const struct budget_line *l)
{
	static const char *const keys[] = {
		"budget.stack_daily_tokens", "budget.stack_total_tokens",
		"budget.daily_tokens", "budget.total_tokens",
	};

	if ((i == 0 && own->daily >= 0) || (i == 1 && own->total >= 0))
		return "own";
	return l->limit ? keys[i] : "none";
}

static int64_t left_of(const struct budget_line *l)
{
	return l->spent < l->limit ? l->limit - l->spent : 0;
}

static void print_text(const struct stack_row *row, const struct budget_status *b,
		       const struct budget_own *own)
{
	size_t i;

	printf("%-6s %-6s %15s %15s %15s  %-9s  %s\n", "SCOPE", "PERIOD", "LIMIT", "SPENT",
	       "LEFT", "RESETS", "SET BY");
	for (i = 0; i < 4; i++) {
		const struct budget_line *l = &b->lines[i];

		printf("%-6s %-6s ", l->scope, l->period);
		if (l->limit)
			printf("%15lld %15lld %15lld", (long long)l->limit, (long long)l->spent,
			       (long long)left_of(l));
		else
			printf("%15s %15lld %15s", "none", (long long)l->spent, "-");
		printf("  %-9s  %s\n", l->resets_at ? "00:00 UTC" : "never", source_of(i, own, l));
	}
	if (b->over) {
		char *why = budget_reason(b);

		printf("%s: %s\n", row->name, why);
		free(why);
	} else if (b->binding) {
		printf("%s: %lld tokens left before %s %s token budget is reached\n",
		       row->name, (long long)b->left,
		       strcmp(b->binding->scope, "stack") == 0 ? "its" : "the store's",
		       b->binding->period);
	} else {
		printf("%s: no token budget applies\n", row->name);
	}
}

static void print_json(const struct stack_row *row, const struct budget_status *b,
		       const struct budget_own *own)
{
	json_t *out = xjson(json_pack("{ss sI s[]}", "stack", row->name,
				      "stack_id", (json_int_t)row->id, "limits"));
	json_t *limits = json_object_get(out, "limits"), *one, *status;
	size_t i;

	for (i = 0; i < 4; i++) {
		const struct budget_line *l = &b->lines[i];

		one = xjson(json_pack("{ss ss sI ss}", "scope", l->scope, "period", l->period,
				      "spent", (json_int_t)l->spent,
				      "set_by", source_of(i, own, l)));
		xjson_set(one, "limit", l->limit ? xjson(json_integer(l->limit)) : json_null());
		xjson_set(one, "left", l->limit ? xjson(json_integer(left_of(l))) : json_null());
		xjson_set(one, "resets_at", l->resets_at ? xjson(json_integer(l->resets_at))
			  : json_null());
		xjson_append(limits, one);
	}
	status = budget_json(b);
	xjson_set(out, "over", json_boolean(b->over));
	xjson_set(out, "binding", status ? status : json_null());
	json_write(stdout, out, 0);
	json_decref(out);
}

int stack_budget(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct config conf = CONFIG_INIT;
	struct budget_config cfg;
	struct budget_status b;
	struct budget_own own;
	struct stack_row row;

	if (config_load(&conf, o->config, &err) != 0 || budget_configure(&cfg, &conf, &err) != 0)
		cli_die_error(&err);
	config_release(&conf);
	stack_get(s, o->args[1], &row);
	if (budget_get_own(s, row.id, &own, &err) != 0)
		cli_die_error(&err);
	if (o->given & (F_DAILY | F_TOTAL)) {
		if (o->given & F_DAILY)
			own.daily = o->daily;
		if (o->given & F_TOTAL)
			own.total = o->total;
		if (budget_set_own(s, row.id, &own, o->now, &err) != 0)
			cli_die_error(&err);
	}
	if (budget_check(s, &cfg, row.id, o->now, 1, &b, &err) != 0)
		cli_die_error(&err);
	if (o->json)
		print_json(&row, &b, &own);
	else
		print_text(&row, &b, &own);
	stack_row_release(&row);
	return 0;
}
