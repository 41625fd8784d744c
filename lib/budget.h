/*
 * budget.h - what a stack, and the whole store, may spend in tokens, per
 * UTC day and in total, and what is left.
 *
 * Four limits, each 0 for none: the store's daily and total budgets
 * (budget.daily_tokens, budget.total_tokens) over every stack's spending,
 * and each stack's (budget.stack_daily_tokens, budget.stack_total_tokens,
 * which `orch-stack budget STACK --daily N --total N` overrides for one
 * stack, kept in the stack_budgets table). Spending is what
 * `orch-stack usage` counts (history_usage(): every request orch-agent
 * sent, failed runs included, and the days retention pruned), prompt and
 * completion tokens alike; a deleted stack's spending goes with it.
 *
 * Where each limit acts (README.md, "Budgets"):
 *   orch-detect   a stack over a budget has no agent with work; the reason
 *                 says which budget and until when
 *   orch-exec     a run whose prompt alone (estimate.h) would cross what
 *                 is left is not started; one that starts is told the
 *                 tokens left (the context's "tokens_left"), which
 *                 orch-agent takes as its max_tokens ceiling
 *   orch-decide   rule "budget": a daily budget pauses the stack until
 *                 00:00 UTC, a total one stops it until a person raises
 *                 the budget and starts it again
 *
 * The check reads the store's usage each time it is asked (a stack's, and
 * every stack's at most once a second), so runs under way when a limit is
 * reached, which have not recorded their usage yet, finish over it.
 */
#ifndef ORCH_BUDGET_H
#define ORCH_BUDGET_H

#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"
#include "store.h"

#define BUDGET_DAY_MS 86400000
#define BUDGET_MAX_TOKENS INT64_C(1000000000000000) /* the largest limit: 10^15 */

/* The limits from the configuration file; 0 is none. */
struct budget_config {
	int64_t store_daily;
	int64_t store_total;
	int64_t stack_daily;  /* every stack's, unless it has its own */
	int64_t stack_total;
	/* The store's spending, summed over every stack, kept for
	 * BUDGET_STORE_CACHE_MS: one orch-detect --all over a thousand stacks
	 * sums it once, not once a stack. */
	int64_t store_spent[2];  /* daily, total */
	int64_t store_day;       /* the UTC day (ms) they were summed for */
	int64_t store_summed_at; /* monotonic ms, 0 never */
};

#define BUDGET_STORE_CACHE_MS 1000

/* C's budget.* keys into *OUT (0 each when unset), nothing summed yet.
 * 0, or -1 with ERR (65). */
int budget_configure(struct budget_config *out, const struct config *c,
		     struct orch_error *err);

/* One stack's own limits (stack_budgets): -1 where it follows the
 * configuration, 0 for none, else the limit. */
struct budget_own {
	int64_t daily;
	int64_t total;
};

/* STACK_ID's own limits into *OUT ({-1, -1} when it has none). 0, or -1
 * with ERR. */
int budget_get_own(struct store *s, int64_t stack_id, struct budget_own *out,
		   struct orch_error *err);

/*
 * Set STACK_ID's own limits to OWN (-1 keeps the configuration's), in one
 * transaction that also wakes the stack (schedule_wake): a raised budget
 * runs what was waiting at once. 0, or -1 with ERR.
 */
int budget_set_own(struct store *s, int64_t stack_id, const struct budget_own *own,
		   int64_t now, struct orch_error *err);

/* One limit and what has been spent against it. */
struct budget_line {
	const char *scope;   /* "stack" or "store" (static) */
	const char *period;  /* "daily" or "total" (static) */
	int64_t limit;       /* 0: none */
	int64_t spent;       /* tokens, counted even with no limit */
	int64_t resets_at;   /* the next 00:00 UTC for "daily", 0 for "total" */
};

/* Where a stack stands against its budgets at a time. */
struct budget_status {
	struct budget_line lines[4]; /* stack daily, stack total, store daily, store total */
	int64_t left;        /* tokens left under the tightest limit; INT64_MAX
				when no limit applies */
	int over;            /* a limit is reached: nothing runs */
	const struct budget_line *binding; /* the limit reached (a total one
					      before a daily one), else the
					      tightest; NULL when none applies */
};

/*
 * STACK_ID's standing at NOW under CFG and its own limits. With
 * WITH_SPENT 0 a limit that is not set is not summed (its spent is 0).
 * 0, or -1 with ERR (65 for usage the store cannot read).
 */
int budget_check(struct store *s, struct budget_config *cfg, int64_t stack_id,
		 int64_t now, int with_spent, struct budget_status *out,
		 struct orch_error *err);

/*
 * What a reached limit means, in words (new string): "over its daily token
 * budget: 12000 of 10000 tokens today; resets at 00:00 UTC". B->over must
 * be set.
 */
char *budget_reason(const struct budget_status *b);

/*
 * Why a run whose prompt is NEED tokens may not start under B (new
 * string): B is over, or leaves no more than NEED; NULL when it may.
 */
char *budget_refusal(const struct budget_status *b, int64_t need);

/*
 * B as JSON (new reference): {"over", "left" (null for no limit), and the
 * binding limit's "scope", "period", "limit", "spent", "resets_at" (null
 * for a total), with "reason" when over}; NULL when no limit applies.
 */
json_t *budget_json(const struct budget_status *b);

/*
 * A copy of the orch.work_status STATUS (new reference) with every agent
 * held by the reached limit of B: no work, priority 0, the reason saying
 * which budget holds what it would have done. B->over must be set.
 */
json_t *budget_hold(const json_t *status, const struct budget_status *b);

#endif
