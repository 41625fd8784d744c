/*
 * budget.c - token budgets (budget.h): the limits, what is spent against
 * them, and what a reached one means.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "history.h"
#include "orch.h"
#include "schedule.h"
#include "xalloc.h"
#include "banned.h"

int budget_configure(struct budget_config *out, const struct config *c,
		     struct orch_error *err)
{
	memset(out, 0, sizeof(*out));
	if (config_number(c, "budget.daily_tokens", &out->store_daily, err) != 0 ||
	    config_number(c, "budget.total_tokens", &out->store_total, err) != 0 ||
	    config_number(c, "budget.stack_daily_tokens", &out->stack_daily, err) != 0 ||
	    config_number(c, "budget.stack_total_tokens", &out->stack_total, err) != 0)
		return -1;
	return 0;
}

int budget_get_own(struct store *s, int64_t stack_id, struct budget_own *out,
		   struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT daily_tokens, total_tokens"
					 " FROM stack_budgets WHERE stack_id = ?", err);
	int rc;

	out->daily = out->total = -1;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	rc = stmt_step(st);
	if (rc == STMT_ROW) {
		if (stmt_type(st, 0) != STMT_NULL)
			out->daily = stmt_int(st, 0);
		if (stmt_type(st, 1) != STMT_NULL)
			out->total = stmt_int(st, 1);
	}
	store_finish(s, st);
	return rc == STMT_ROW || rc == STMT_DONE ? 0
		: store_error(s, err, "reading the stack's budget");
}

static void bind_own(struct stmt *st, int col, int64_t v)
{
	if (v < 0)
		stmt_bind_null(st, col);
	else
		stmt_bind_int(st, col, v);
}

int budget_set_own(struct store *s, int64_t stack_id, const struct budget_own *own,
		   int64_t now, struct orch_error *err)
{
	struct stmt *st;

	if (store_begin(s, err) != 0)
		return -1;
	if (own->daily < 0 && own->total < 0)
		st = store_prepare(s, "DELETE FROM stack_budgets WHERE stack_id = ?1", err);
	else
		st = store_prepare(s, "INSERT INTO stack_budgets (stack_id, daily_tokens,"
				   " total_tokens) VALUES (?1, ?2, ?3) ON CONFLICT (stack_id)"
				   " DO UPDATE SET daily_tokens = ?2, total_tokens = ?3", err);
	if (!st)
		goto fail;
	stmt_bind_int(st, 1, stack_id);
	if (own->daily >= 0 || own->total >= 0) {
		bind_own(st, 2, own->daily);
		bind_own(st, 3, own->total);
	}
	if (store_step_done(s, st, "setting the stack's budget", err) != 0 ||
	    schedule_wake(s, stack_id, now, err) != 0)
		goto fail;
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

/* The tokens spent (prompt and completion) by STACK (every stack's when
 * NULL) from SINCE on. */
struct spent {
	int64_t tokens;
};

static int add_usage(const struct history_usage *u, void *arg)
{
	struct spent *sp = arg;

	sp->tokens = history_tokens_add(sp->tokens,
					history_tokens_add(u->prompt_tokens, u->completion_tokens));
	return 0;
}

static int spent_since(struct store *s, const struct stack_row *stack, int64_t since,
		       int64_t *out, struct orch_error *err)
{
	struct spent sp = { 0 };

	if (history_usage(s, stack, since, add_usage, &sp, err) != 0)
		return -1;
	*out = sp.tokens;
	return 0;
}

/* The store's spending today (from DAY) and in total into CFG, unless
 * CFG has fresh sums of DAY. 0, or -1 with ERR. */
static int store_spent(struct store *s, struct budget_config *cfg, int64_t day,
		       struct orch_error *err)
{
	if (cfg->store_summed_at && cfg->store_day == day &&
	    orch_mono_ms() - cfg->store_summed_at < BUDGET_STORE_CACHE_MS)
		return 0;
	if (spent_since(s, NULL, day, &cfg->store_spent[0], err) != 0 ||
	    spent_since(s, NULL, 0, &cfg->store_spent[1], err) != 0)
		return -1;
	cfg->store_day = day;
	cfg->store_summed_at = orch_mono_ms();
	return 0;
}

int budget_check(struct store *s, struct budget_config *cfg, int64_t stack_id,
		 int64_t now, int with_spent, struct budget_status *out,
		 struct orch_error *err)
{
	int64_t day = now - now % BUDGET_DAY_MS;
	struct budget_own own;
	struct stack_row row;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	out->left = INT64_MAX;
	if (budget_get_own(s, stack_id, &own, err) != 0)
		return -1;
	out->lines[0] = (struct budget_line){ "stack", "daily",
		own.daily >= 0 ? own.daily : cfg->stack_daily, 0, day + BUDGET_DAY_MS };
	out->lines[1] = (struct budget_line){ "stack", "total",
		own.total >= 0 ? own.total : cfg->stack_total, 0, 0 };
	out->lines[2] = (struct budget_line){ "store", "daily", cfg->store_daily, 0,
		day + BUDGET_DAY_MS };
	out->lines[3] = (struct budget_line){ "store", "total", cfg->store_total, 0, 0 };
	/* Most stores set no budget: then this is one lookup by key. */
	for (i = 0; i < 4 && !with_spent && !out->lines[i].limit; i++)
		;
	if (i == 4)
		return 0;
	if ((rc = store_get_stack(s, stack_id, &row, err)) <= 0)
		return rc < 0 ? -1 : 0;
	rc = 0;
	if ((with_spent || out->lines[0].limit) &&
	    spent_since(s, &row, day, &out->lines[0].spent, err) != 0)
		rc = -1;
	else if ((with_spent || out->lines[1].limit) &&
		 spent_since(s, &row, 0, &out->lines[1].spent, err) != 0)
		rc = -1;
	else if ((with_spent || out->lines[2].limit || out->lines[3].limit) &&
		 store_spent(s, cfg, day, err) != 0)
		rc = -1;
	stack_row_release(&row);
	if (rc != 0)
		return -1;
	out->lines[2].spent = cfg->store_spent[0];
	out->lines[3].spent = cfg->store_spent[1];
	for (i = 0; i < 4; i++) {
		struct budget_line *l = &out->lines[i];
		int64_t left;

		if (!l->limit)
			continue;
		left = l->limit - l->spent;
		if (left <= 0) {
			/* A total limit outlasts a daily one: it decides. */
			if (!out->over || (!l->resets_at && out->binding->resets_at))
				out->binding = l;
			out->over = 1;
		}
		if (left < out->left) {
			out->left = left < 0 ? 0 : left;
			if (!out->over)
				out->binding = l;
		}
	}
	return 0;
}

char *budget_reason(const struct budget_status *b)
{
	const struct budget_line *l = b->binding;
	const char *whose = strcmp(l->scope, "stack") == 0 ? "its" : "the store's";

	if (l->resets_at)
		return xasprintf("over %s daily token budget: %lld of %lld tokens today;"
				 " resets at 00:00 UTC", whose, (long long)l->spent,
				 (long long)l->limit);
	return xasprintf("over %s total token budget: %lld of %lld tokens; raise it"
			 " (orch-stack budget) and start the stack again", whose,
			 (long long)l->spent, (long long)l->limit);
}

char *budget_refusal(const struct budget_status *b, int64_t need)
{
	if (!b->binding || (!b->over && b->left > need))
		return NULL;
	if (b->over)
		return budget_reason(b);
	return xasprintf("%lld tokens left under %s %s token budget, and its context alone"
			 " is about %lld", (long long)b->left,
			 strcmp(b->binding->scope, "stack") == 0 ? "its" : "the store's",
			 b->binding->period, (long long)need);
}

json_t *budget_json(const struct budget_status *b)
{
	const struct budget_line *l = b->binding;
	json_t *out;
	char *reason;

	if (!l)
		return NULL;
	out = xjson(json_pack("{sb sI ss ss sI sI}", "over", b->over,
			      "left", (json_int_t)b->left, "scope", l->scope,
			      "period", l->period, "limit", (json_int_t)l->limit,
			      "spent", (json_int_t)l->spent));
	xjson_set(out, "resets_at", l->resets_at ? xjson(json_integer(l->resets_at))
		  : json_null());
	if (b->over) {
		reason = budget_reason(b);
		xjson_set(out, "reason", xjson(json_string(reason)));
		free(reason);
	}
	return out;
}

json_t *budget_hold(const json_t *status, const struct budget_status *b)
{
	json_t *out = xjson(json_deep_copy(status));
	json_t *agents = json_object_get(out, "agents"), *a;
	const char *name, *was;
	char *why = budget_reason(b), *reason;

	json_object_foreach(agents, name, a) {
		if (!json_is_true(json_object_get(a, "has_work")))
			continue;
		was = json_string_value(json_object_get(a, "reason"));
		reason = xasprintf("%s; waiting: %s", why, was ? was : "work");
		xjson_set(a, "has_work", json_false());
		xjson_set(a, "priority", xjson(json_integer(0)));
		xjson_set(a, "reason", xjson(json_string(reason)));
		free(reason);
	}
	xjson_set(out, "budget", budget_json(b));
	free(why);
	return out;
}
