/*
 * estimate.h - what an agent run will cost before it runs, in tokens.
 *
 * No tokenizer fits every model orch may talk to, and none is a Debian
 * package: a prompt is taken as one token per ESTIMATE_BYTES_PER_TOKEN
 * bytes of its UTF-8 text, rounded up, which is the usual figure for
 * English and JSON under the BPE tokenizers of the Llama, GPT and Mixtral
 * families (text in other scripts takes more tokens a byte, so fewer
 * bytes a token, and the estimate is low there). The budgets (budget.h)
 * use it to refuse a run whose prompt alone would cross what is left.
 */
#ifndef ORCH_ESTIMATE_H
#define ORCH_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "orch.h"
#include "store.h"

#define ESTIMATE_BYTES_PER_TOKEN 4

/* The tokens a prompt of BYTES bytes is taken to be: at least 1 for a
 * prompt that is not empty, never overflowing. */
int64_t estimate_prompt_tokens(size_t bytes);

/*
 * What a run of an agent is expected to take, from the runs the store
 * recorded (traces, llm_requests): the median of the last
 * ESTIMATE_HISTORY_RUNS completed attempts, the median being robust to
 * the odd run that waited on a provider or wrote a long artifact. The
 * stack's own runs of that agent are used when it has at least
 * ESTIMATE_MIN_RUNS of them; else every stack's runs of that agent when
 * they are more; else what the stack has, perhaps none. A run's duration
 * is its trace's, from the start of the attempt (the context built) to
 * its actions applied, as an orch.execution node counts it. Its
 * completion tokens are those of orch-agent's requests of that run when
 * it recorded them (usage.h), else those of the usage its actions
 * document gave; a run with neither (a command agent that reports no
 * usage) has no count, and the median is of the runs that have one.
 */
#define ESTIMATE_HISTORY_RUNS 20
#define ESTIMATE_MIN_RUNS 3

struct estimate_expect {
	const char *source;        /* static: "stack", "agent" (every stack's
				      runs of the agent) or "none" */
	int64_t runs;              /* completed runs the figures are from */
	int has_duration;          /* runs > 0 */
	int64_t duration_ms;
	int has_completion;        /* some of those runs had a count */
	int64_t completion_tokens;
};

/*
 * The runs of AGENT: of stack STACK_ID, or of every stack when STACK_ID
 * is 0, into *OUT (its source "stack" or "agent", or "none" with no run).
 * 0, or -1 with ERR.
 */
int estimate_history(struct store *s, int64_t stack_id, const char *agent,
		     struct estimate_expect *out, struct orch_error *err);

/*
 * STACK's expectation for AGENT, with the fallback above: AGENT_WIDE is
 * estimate_history(s, 0, agent) when the caller has it (a dry run of
 * many stacks looks each agent up once), else NULL to have it read here.
 */
int estimate_expect(struct store *s, int64_t stack_id, const char *agent,
		    const struct estimate_expect *agent_wide,
		    struct estimate_expect *out, struct orch_error *err);

/* One node of a cycle for estimate_schedule(). */
struct estimate_node {
	int64_t wave;              /* from 0 */
	int64_t priority;          /* higher starts first among the ready */
	size_t deps[ORCH_AGENT_COUNT]; /* indexes of the nodes it waits for */
	size_t ndeps;
	int64_t duration_ms;       /* expected; 0 for a node that will not run */
	int64_t start_ms;          /* out: when it is expected to start */
};

/*
 * When each of the N nodes is expected to start, and when the cycle is
 * expected to end, as orch-exec schedules them: a node starts once its
 * dependencies have ended (with BARRIER, once every node of the earlier
 * waves has, and WAVE_DELAY_MS after) and one of JOBS slots is free,
 * the highest priority first among those ready, then the graph's order.
 * Other stacks' nodes competing for the slots are not counted: this is
 * the cycle's critical path when it has the slots it needs.
 */
int64_t estimate_schedule(struct estimate_node *nodes, size_t n, int jobs,
			  int barrier, int64_t wave_delay_ms);

#endif
