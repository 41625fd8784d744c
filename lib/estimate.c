/*
 * estimate.c - what a cycle will cost before it runs: tokens from bytes
 * (estimate.h says why a ratio), the runs a stack's history expects, and
 * when its nodes would end.
 */
#include <stdlib.h>
#include <string.h>

#include "estimate.h"
#include "traces.h"
#include "usage_sql.h"
#include "banned.h"

int64_t estimate_prompt_tokens(size_t bytes)
{
	/* Rounded up, so that a short prompt is never free; size_t fits
	 * int64_t on every platform orch builds on once divided. */
	return (int64_t)(bytes / ESTIMATE_BYTES_PER_TOKEN +
			 (bytes % ESTIMATE_BYTES_PER_TOKEN != 0));
}

/* ---- what the history expects ------------------------------------------- */

/* The last runs read: their durations, and the counts of those that
 * had one. */
struct runs_read {
	int64_t duration[ESTIMATE_HISTORY_RUNS];
	int64_t completion[ESTIMATE_HISTORY_RUNS];
	size_t n;
	size_t ncompletion;
};

static int run_row(struct stmt *st, void *arg)
{
	struct runs_read *r = arg;
	int64_t d = stmt_int(st, 0);

	/* A clock set back between start and end is a run of no time. */
	r->duration[r->n++] = d > 0 ? d : 0;
	if (stmt_type(st, 1) != STMT_NULL)
		r->completion[r->ncompletion++] = stmt_int(st, 1);
	return r->n == ESTIMATE_HISTORY_RUNS;
}

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The median of the N (> 0) values V, sorted in place; of an even count,
 * the mean of the middle two, rounded down. */
static int64_t median(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), by_value);
	if (n % 2)
		return v[n / 2];
	/* Halved apart: the sum of two large counts would overflow. */
	return v[n / 2 - 1] / 2 + v[n / 2] / 2 + (v[n / 2 - 1] % 2 + v[n / 2] % 2) / 2;
}

int estimate_history(struct store *s, int64_t stack_id, const char *agent,
		     struct estimate_expect *out, struct orch_error *err)
{
	/*
	 * A run's completion tokens: its requests' (those that said), as
	 * history_usage() counts them, else its usage's, else none (NULL).
	 * Of one stack the index traces_by_stack serves the order; of every
	 * stack the scan is once per agent per dry run.
	 */
	struct stmt *st = store_prepare(s,
		"SELECT t.ended_at - t.started_at,"
		" coalesce((SELECT sum(" USAGE_REQ_TOKENS("r.completion_tokens") ")"
		"   FROM llm_requests r WHERE r.stack_id = t.stack_id AND r.agent = t.agent"
		"   AND r.run_at = t.started_at AND r.completion_tokens IS NOT NULL),"
		"  CASE WHEN json_valid(t.usage)"
		"   AND json_type(t.usage, '$.completion_tokens') = 'integer'"
		"   THEN " TRACES_TOKENS("t.usage", "completion_tokens") " END)"
		" FROM traces t WHERE (?1 = 0 OR t.stack_id = ?1) AND t.agent = ?2"
		" AND t.status = 'completed' ORDER BY t.started_at DESC, t.id DESC LIMIT ?3",
		err);
	struct runs_read r;

	memset(out, 0, sizeof(*out));
	memset(&r, 0, sizeof(r));
	out->source = "none";
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_text(st, 2, agent);
	stmt_bind_int(st, 3, ESTIMATE_HISTORY_RUNS);
	if (store_each(s, st, run_row, &r, "reading the runs", err) < 0)
		return -1;
	if (r.n == 0)
		return 0;
	out->source = stack_id ? "stack" : "agent";
	out->runs = (int64_t)r.n;
	out->has_duration = 1;
	out->duration_ms = median(r.duration, r.n);
	if (r.ncompletion > 0) {
		out->has_completion = 1;
		out->completion_tokens = median(r.completion, r.ncompletion);
	}
	return 0;
}

int estimate_expect(struct store *s, int64_t stack_id, const char *agent,
		    const struct estimate_expect *agent_wide,
		    struct estimate_expect *out, struct orch_error *err)
{
	struct estimate_expect wide;

	if (estimate_history(s, stack_id, agent, out, err) != 0)
		return -1;
	if (out->runs >= ESTIMATE_MIN_RUNS)
		return 0;
	if (!agent_wide) {
		if (estimate_history(s, 0, agent, &wide, err) != 0)
			return -1;
		agent_wide = &wide;
	}
	/* Every stack's runs include this one's: more of them is another's. */
	if (agent_wide->runs > out->runs)
		*out = *agent_wide;
	return 0;
}

/* ---- when the nodes would end ------------------------------------------- */

/* Whether node I of NODES may start, and from when (*READY). */
static int node_ready(const struct estimate_node *nodes, size_t n, size_t i,
		      const int64_t *end, const char *done, int barrier,
		      int64_t wave_delay_ms, int64_t *ready)
{
	const struct estimate_node *x = &nodes[i];
	int64_t t = 0, last_wave_end = -1;
	size_t k;

	for (k = 0; k < x->ndeps; k++) {
		if (!done[x->deps[k]])
			return 0;
		if (end[x->deps[k]] > t)
			t = end[x->deps[k]];
	}
	if (barrier) {
		for (k = 0; k < n; k++) {
			if (nodes[k].wave >= x->wave)
				continue;
			if (!done[k])
				return 0;
			if (end[k] > t)
				t = end[k];
			if (nodes[k].wave == x->wave - 1 && end[k] > last_wave_end)
				last_wave_end = end[k];
		}
		/* The delay runs from the end of the wave before, when it has
		 * nodes (exec.c opens a wave as the one before it empties). */
		if (last_wave_end >= 0 && last_wave_end + wave_delay_ms > t)
			t = last_wave_end + wave_delay_ms;
	}
	*ready = t;
	return 1;
}

int64_t estimate_schedule(struct estimate_node *nodes, size_t n, int jobs,
			  int barrier, int64_t wave_delay_ms)
{
	int64_t end[ORCH_AGENT_COUNT], lane[ORCH_AGENT_COUNT], ready, start, last = 0;
	char done[ORCH_AGENT_COUNT];
	size_t i, step, best, nlanes, l, free_lane;
	int64_t best_start;

	if (n > ORCH_AGENT_COUNT)
		n = ORCH_AGENT_COUNT; /* a graph has one node per agent at most */
	if (wave_delay_ms > 0)
		barrier = 1;
	/* More slots than nodes are of no use to one cycle. */
	nlanes = jobs < 1 ? 1 : (size_t)jobs < n ? (size_t)jobs : n;
	memset(done, 0, sizeof(done));
	memset(lane, 0, sizeof(lane));
	for (step = 0; step < n; step++) {
		free_lane = 0;
		for (l = 1; l < nlanes; l++)
			if (lane[l] < lane[free_lane])
				free_lane = l;
		best = n;
		best_start = 0;
		for (i = 0; i < n; i++) {
			if (done[i] || !node_ready(nodes, n, i, end, done, barrier,
						   wave_delay_ms, &ready))
				continue;
			start = ready > lane[free_lane] ? ready : lane[free_lane];
			if (best == n || start < best_start ||
			    (start == best_start && nodes[i].priority > nodes[best].priority)) {
				best = i;
				best_start = start;
			}
		}
		if (best == n)
			break; /* deps only name earlier waves: cannot happen */
		nodes[best].start_ms = best_start;
		end[best] = best_start + (nodes[best].duration_ms > 0 ? nodes[best].duration_ms : 0);
		done[best] = 1;
		lane[free_lane] = end[best];
		if (end[best] > last)
			last = end[best];
	}
	return last;
}
