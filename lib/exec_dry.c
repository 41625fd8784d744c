/*
 * exec_dry.c - orch-exec --dry-run: what each stack's cycle would run
 * and cost, with the store left as it was (exec.h, exec_dry_run).
 *
 * The same context as a run's is had by doing a run's writes (the
 * lease, the execution row, the builder's todo claimed) in a write
 * transaction that is always rolled back: the cycle number, the skip
 * reasons and the snapshots are then the ones a run would have, from the
 * code that makes them, where a read-only imitation would drift from it.
 * The cost is the write lock, held for the few milliseconds one stack's
 * contexts take to build, as a run holds it to claim. The one effect
 * outside the store: claiming a cycle abandoned by an orch-exec that is
 * gone kills what its agents left running (cycle.c), which the next
 * orch-detect would kill anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "doc.h"
#include "estimate.h"
#include "exec_int.h"
#include "history.h"
#include "xalloc.h"
#include "banned.h"

/* What the dry run found for one node, beside its struct node. */
struct dry_node {
	const char *status;        /* static: run, skipped, failed */
	char *error;               /* owned: why skipped or failed, or NULL */
	int budget;                /* skipped: a token budget would refuse it */
	size_t prompt_bytes;       /* the context's bytes, when it runs */
	struct estimate_expect expect;
};

/* Every stack's runs of each agent, read once per dry run. */
struct dry_wide {
	int read[ORCH_AGENT_COUNT];
	struct estimate_expect v[ORCH_AGENT_COUNT];
};

/* The nodes' indexes in the order the scheduler would start them: by
 * wave, then highest priority, then the graph's order. */
static void start_order(const struct stack *st, size_t *order)
{
	size_t i, k, t;

	for (i = 0; i < st->nnodes; i++)
		order[i] = i;
	for (i = 1; i < st->nnodes; i++)
		for (k = i; k > 0; k--) {
			const struct node *a = &st->nodes[order[k - 1]], *b = &st->nodes[order[k]];

			if (a->wave < b->wave || (a->wave == b->wave && a->priority >= b->priority))
				break;
			t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
}

/* Node I's dependency that will not complete, or NULL. */
static const struct node *dep_not_run(const struct stack *st, const struct dry_node *dn,
				      size_t i)
{
	size_t k;

	for (k = 0; k < st->nodes[i].ndeps; k++)
		if (strcmp(dn[st->nodes[i].deps[k]].status, "run") != 0)
			return &st->nodes[st->nodes[i].deps[k]];
	return NULL;
}

/*
 * Build node I's context inside the stack's transaction, as
 * exec_start_node() would: DN[I] says whether it runs, and its size.
 * 0, or -1 with ERR for a store error that ends the dry run.
 */
static int dry_context(struct exec *e, struct stack *st, struct dry_node *dn, size_t i,
		       struct orch_error *err)
{
	struct orch_error cerr = ORCH_ERROR_INIT;
	const struct node *n = &st->nodes[i], *d;
	struct agent_task task;
	json_t *ctx;
	char *text;
	int rc;

	if ((d = dep_not_run(st, dn, i))) {
		dn[i].status = "skipped";
		dn[i].error = xasprintf("dependency '%s' %s", d->agent,
			strcmp(dn[d - st->nodes].status, "failed") == 0 ? "would fail" :
			"would be skipped");
		return 0;
	}
	rc = context_build_in(e->store, st->id, n->agent, n->reason, orch_now_ms(),
			      st->claim.execution_id, st->claim.cycle, &task, &ctx, &cerr);
	if (rc == 0) {
		dn[i].status = "skipped";
		dn[i].error = xstrdup(strcmp(n->agent, "builder") == 0
				      ? "no pending todo left" : "nothing left to do");
		return 0;
	}
	if (rc < 0) {
		/* The stack's data cannot be read: that node's run would fail;
		 * anything else is the store's, and ends the dry run. */
		if (cerr.status != ORCH_EX_DATAERR) {
			orch_error_set(err, cerr.status, "stack '%s': %s", st->name, cerr.msg);
			orch_error_release(&cerr);
			return -1;
		}
		dn[i].status = "failed";
		dn[i].error = xstrdup(cerr.msg);
		orch_error_release(&cerr);
		return 0;
	}
	text = json_dumps(ctx, JSON_COMPACT);
	json_decref(ctx);
	if (!text)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "out of memory writing the context");
	dn[i].prompt_bytes = strlen(text);
	free(text);
	if (dn[i].prompt_bytes > ORCH_MAX_DOCUMENT) {
		dn[i].status = "failed";
		dn[i].error = xasprintf("context larger than %d bytes", ORCH_MAX_DOCUMENT);
		return 0;
	}
	dn[i].status = "run";
	return 0;
}

/* ST's claim and contexts, in a write transaction rolled back whatever
 * happens. 0, or -1 with ERR. */
static int dry_claim_and_build(struct exec *e, struct stack *st, struct dry_node *dn,
			       struct orch_error *err)
{
	size_t order[ORCH_AGENT_COUNT], k;
	int rc = 0;

	if (!st->twin) {
		if (store_begin(e->store, err) != 0)
			return -1;
		/* The lease's length does not matter: it is never committed. */
		if (cycle_claim_in(e->store, st->id, e->cfg.owner, 60000, 0, &st->claim, err) != 0) {
			store_rollback(e->store);
			return orch_error_prefix(err, "stack '%s'", st->name);
		}
	}
	if (st->claim.claimed) {
		start_order(st, order);
		for (k = 0; k < st->nnodes && rc == 0; k++)
			rc = dry_context(e, st, dn, order[k], err);
	} else {
		for (k = 0; k < st->nnodes; k++) {
			dn[k].status = "skipped";
			dn[k].error = xstrdup(st->claim.skip_reason);
		}
	}
	store_rollback(e->store);
	return rc;
}

static json_t *opt_int(int64_t v, int present)
{
	return present ? xjson(json_integer(v)) : json_null();
}

/*
 * ST's token budgets, as exec_start_node() would find them before each
 * run (budget.h): a node whose context alone is not less than what is
 * left is skipped, as a run would skip it. Returns the stack's standing
 * (budget_json(), a new reference, or NULL when no limit applies) in
 * *OUT. 0, or -1 with ERR.
 */
static int dry_budget(struct exec *e, struct stack *st, struct dry_node *dn,
		      json_t **out, struct orch_error *err)
{
	struct budget_status b;
	char *why;
	size_t i;

	*out = NULL;
	if (!e->cfg.budget)
		return 0;
	if (budget_check(e->store, e->cfg.budget, st->id, orch_now_ms(), 0, &b, err) != 0)
		return orch_error_prefix(err, "stack '%s'", st->name);
	if (!b.binding)
		return 0;
	*out = budget_json(&b);
	for (i = 0; i < st->nnodes; i++) {
		if (strcmp(dn[i].status, "run") != 0 ||
		    !(why = budget_refusal(&b, estimate_prompt_tokens(dn[i].prompt_bytes))))
			continue;
		dn[i].status = "skipped";
		dn[i].budget = 1;
		dn[i].error = why;
	}
	return 0;
}

/* Each node's expectations, from its stack's history or every stack's. */
static int dry_expect(struct exec *e, struct stack *st, struct dry_node *dn,
		      struct dry_wide *wide, struct orch_error *err)
{
	size_t i;
	int a;

	for (i = 0; i < st->nnodes; i++) {
		if (strcmp(dn[i].status, "run") != 0)
			continue;
		a = st->nodes[i].agent_index;
		if (!wide->read[a]) {
			if (estimate_history(e->store, 0, st->nodes[i].agent, &wide->v[a], err) != 0)
				return -1;
			wide->read[a] = 1;
		}
		if (estimate_expect(e->store, st->id, st->nodes[i].agent, &wide->v[a],
				    &dn[i].expect, err) != 0)
			return -1;
	}
	return 0;
}

/* Turn ST's graph into its orch.estimate document, in place. */
static json_t *estimate_document(struct exec *e, struct stack *st, struct dry_node *dn)
{
	struct estimate_node sched[ORCH_AGENT_COUNT];
	int64_t prompt = 0, completion = 0, agent_ms = 0, critical;
	int64_t to_run = 0, unknown_tokens = 0, unknown_duration = 0, tokens;
	json_t *doc = st->graph, *history;
	size_t i, k;

	memset(sched, 0, sizeof(sched));
	for (i = 0; i < st->nnodes; i++) {
		const struct node *n = &st->nodes[i];
		int run = strcmp(dn[i].status, "run") == 0;

		sched[i].wave = n->wave;
		sched[i].priority = n->priority;
		sched[i].ndeps = n->ndeps;
		for (k = 0; k < n->ndeps; k++)
			sched[i].deps[k] = n->deps[k];
		if (!run)
			continue;
		to_run++;
		tokens = estimate_prompt_tokens(dn[i].prompt_bytes);
		prompt = history_tokens_add(prompt, tokens);
		if (dn[i].expect.has_completion)
			completion = history_tokens_add(completion, dn[i].expect.completion_tokens);
		else
			unknown_tokens++;
		if (dn[i].expect.has_duration) {
			sched[i].duration_ms = dn[i].expect.duration_ms;
			agent_ms += dn[i].expect.duration_ms;
		} else {
			unknown_duration++;
		}
	}
	critical = estimate_schedule(sched, st->nnodes, e->cfg.jobs, e->cfg.barrier,
				     e->cfg.wave_delay_ms);
	for (i = 0; i < st->nnodes; i++) {
		json_t *nj = st->nodes[i].json;
		const struct estimate_expect *x = &dn[i].expect;
		int run = strcmp(dn[i].status, "run") == 0;

		xjson_set(nj, "status", xjson(json_string(dn[i].status)));
		xjson_set(nj, "error", dn[i].error ? xjson(json_string(dn[i].error)) : json_null());
		xjson_set(nj, "prompt_bytes", opt_int((int64_t)dn[i].prompt_bytes, run));
		xjson_set(nj, "prompt_tokens",
			  opt_int(estimate_prompt_tokens(dn[i].prompt_bytes), run));
		xjson_set(nj, "completion_tokens", opt_int(x->completion_tokens,
							   run && x->has_completion));
		xjson_set(nj, "duration_ms", opt_int(x->duration_ms, run && x->has_duration));
		xjson_set(nj, "start_ms", opt_int(sched[i].start_ms, run));
		history = run ? xjson(json_pack("{sssI}", "source", x->source,
						"runs", (json_int_t)x->runs)) : json_null();
		xjson_set(nj, "history", history);
		if (dn[i].budget)
			xjson_set(nj, "budget", json_true());
	}
	xjson_set(doc, "type", xjson(json_string("orch.estimate")));
	xjson_set(doc, "cycle", opt_int(st->claim.cycle, st->claim.claimed));
	xjson_set(doc, "would_run", json_boolean(st->claim.claimed));
	xjson_set(doc, "skip_reason", st->claim.skip_reason ?
		  xjson(json_string(st->claim.skip_reason)) : json_null());
	xjson_set(doc, "totals", xjson(json_pack("{sIsIsIsIsIsIsIsIsi}",
		"nodes", (json_int_t)to_run,
		"prompt_tokens", (json_int_t)prompt,
		"completion_tokens", (json_int_t)completion,
		"tokens", (json_int_t)history_tokens_add(prompt, completion),
		"unknown_tokens", (json_int_t)unknown_tokens,
		"agent_ms", (json_int_t)agent_ms,
		"critical_path_ms", (json_int_t)critical,
		"unknown_duration", (json_int_t)unknown_duration,
		"jobs", e->cfg.jobs)));
	return doc;
}

int exec_dry_run(struct exec *e, int in_fd, exec_emit_fn emit, void *arg,
		 struct orch_error *err)
{
	struct dry_node dn[ORCH_AGENT_COUNT];
	struct dry_wide wide;
	json_t *doc, *budget;
	size_t i, k;
	int rc;

	/* Read whole first: input with a bad document in it estimates
	 * nothing, as it would run nothing. */
	json_reader_init_fd(&e->in, in_fd, 0);
	while ((rc = json_reader_next(&e->in, &doc, err)) == 1)
		if (exec_add(e, doc, err) != 0)
			return orch_error_prefix(err, "line %ld", e->in.doc_line);
	if (rc < 0)
		return -1;
	exec_skip_twins(e, 0);
	memset(&wide, 0, sizeof(wide));
	for (i = 0; i < e->nstacks; i++) {
		struct stack *st = e->stacks[i];

		memset(dn, 0, sizeof(dn));
		budget = NULL;
		rc = dry_claim_and_build(e, st, dn, err);
		if (rc == 0)
			rc = dry_budget(e, st, dn, &budget, err);
		if (rc == 0)
			rc = dry_expect(e, st, dn, &wide, err);
		if (rc == 0) {
			doc = estimate_document(e, st, dn);
			xjson_set(doc, "budget", budget ? budget : json_null());
			budget = NULL;
			if (emit(doc, NULL, arg) != 0)
				rc = orch_error_set(err, ORCH_EX_SOFTWARE,
						    "write error on standard output");
		}
		json_decref(budget);
		for (k = 0; k < ORCH_AGENT_COUNT; k++)
			free(dn[k].error);
		if (rc != 0)
			return -1;
	}
	return 0;
}
