#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions.h"
#include "cycle.h"
#include "doc.h"
#include "exec.h"
#include "spawn.h"
#include "xalloc.h"
#include "banned.h"

#define RETRY_DELAY_CAP_MS 60000
/* Stacks claimed per write transaction: enough to share its cost, few
 * enough that another pipeline waits for the lock only a few ms. */
#define CLAIM_BATCH 128

enum node_state {
	NODE_WAITING,  /* for its dependencies, its wave, or a free slot */
	NODE_BACKOFF,  /* failed; the next attempt waits until not_before */
	NODE_RUNNING,  /* its child is running */
	NODE_DONE,     /* status says how it ended */
};

struct stack;

struct node {
	struct stack *stack;     /* borrowed: the stack it belongs to */
	json_t *json;            /* borrowed from stack->graph: the node object */
	const char *agent;       /* borrowed from json */
	int agent_index;         /* in orch_agents */
	int64_t priority;        /* 0-10 */
	const char *reason;      /* borrowed from json */
	int64_t wave;            /* dependency level */
	size_t deps[ORCH_AGENT_COUNT]; /* indexes into stack->nodes */
	size_t ndeps;            /* entries used in deps */
	enum node_state state;
	const char *status;      /* static string once done: completed, failed, skipped */
	int attempts;            /* runs started */
	int64_t not_before;      /* monotonic ms; a retry waits till then */
	int64_t started_at;      /* wall ms of the first attempt, 0 before */
	int64_t ended_at;        /* wall ms it ended, 0 before */
	int64_t started_mono;    /* monotonic ms of the first attempt */
	int64_t ended_mono;      /* monotonic ms it ended */
	int64_t attempt_started_at; /* wall ms of the current attempt */
	int64_t attempt_started_mono; /* monotonic ms of the current attempt */
	int slot;                /* lane of the running attempt, -1 when none */
	struct child child;      /* the current attempt's process */
	struct agent_task task;  /* what the current attempt was given */
	char *context;           /* owned: the context as sent, or NULL */
	char *trace_input;       /* owned: the context as recorded, or NULL */
	char *result;            /* owned: what it did, for people, or NULL */
	char *error;             /* owned: why it failed or was skipped, or NULL */
};

struct stack {
	json_t *graph;           /* owned: the input, becomes the orch.execution */
	int64_t id;              /* the stack's id */
	const char *name;        /* borrowed from graph */
	struct node *nodes;      /* owned: in the graph's node order */
	size_t nnodes;           /* entries in nodes */
	int64_t nwaves;          /* 1 + the highest wave */
	int64_t wave_left[ORCH_AGENT_COUNT];    /* nodes of each wave not yet done */
	int64_t wave_open_at[ORCH_AGENT_COUNT]; /* monotonic ms each wave may start */
	struct cycle_claim claim;  /* the lease and the execution row */
	size_t finished;         /* nodes done */
	int running;             /* nodes running now */
	int max_parallel;        /* most nodes running at once */
	int64_t started_mono;    /* when its cycle began */
	int done;                /* recorded and handed on */
	/* What pick_node last found, so it need not look at every node of
	 * every stack for each start: a node's readiness changes only when a
	 * node of its own stack changes state, or when time passes. */
	int stale;               /* a node changed state since the last look */
	struct node *ready;      /* borrowed: the best node ready then, or NULL */
	int64_t look_again_at;   /* monotonic ms a gate opens (retry, wave), or -1 */
};

struct exec {
	struct store *store;     /* borrowed */
	struct exec_config cfg;  /* copied; its pointers borrowed */
	struct stack **stacks;   /* owned: in input order */
	size_t nstacks;          /* entries used */
	size_t stacks_done;      /* of them, recorded and handed on */
	size_t alloc;            /* entries allocated */
	size_t total_nodes;      /* over all stacks, against ORCH_MAX_NODES */
	struct node **running;   /* owned array of borrowed nodes now running */
	struct node **slots;     /* owned: lane i's running node, or NULL; jobs entries */
	int nrunning;            /* entries used in running */
	struct pollfd *fds;      /* owned: poll() set, room for 1 + 3 * jobs */
	uint64_t rng;            /* xorshift state for retry jitter */
	exec_emit_fn emit;       /* where finished stacks go */
	void *emit_arg;          /* its argument */
	struct orch_error first_error; /* the first failure to record a cycle */
	int emit_failed;         /* emit returned nonzero: stop */
};

struct exec *exec_new(struct store *s, const struct exec_config *cfg)
{
	struct exec *e = xcalloc(1, sizeof(*e));

	e->store = s;
	e->cfg = *cfg;
	if (e->cfg.jobs < 1)
		e->cfg.jobs = 1;
	if (e->cfg.wave_delay_ms > 0)
		e->cfg.barrier = 1;
	e->running = xreallocarray(NULL, (size_t)e->cfg.jobs, sizeof(*e->running));
	e->slots = xcalloc((size_t)e->cfg.jobs, sizeof(*e->slots));
	e->fds = xreallocarray(NULL, 1 + 3 * (size_t)e->cfg.jobs, sizeof(*e->fds));
	e->rng = ((uint64_t)orch_mono_ms() << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
	return e;
}

static void node_release(struct node *n)
{
	child_release(&n->child);
	free(n->context);
	free(n->trace_input);
	free(n->result);
	free(n->error);
	n->context = n->trace_input = n->result = n->error = NULL;
}

static void stack_free(struct stack *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->nnodes; i++)
		node_release(&st->nodes[i]);
	free(st->nodes);
	cycle_claim_release(&st->claim);
	json_decref(st->graph);
	free(st);
}

void exec_free(struct exec *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->nstacks; i++)
		stack_free(e->stacks[i]);
	free(e->stacks);
	free(e->running);
	free(e->slots);
	free(e->fds);
	orch_error_release(&e->first_error);
	free(e);
}

/* --- reading a graph --- */

static int node_index(const struct stack *st, const char *agent)
{
	size_t i;

	for (i = 0; i < st->nnodes; i++)
		if (strcmp(st->nodes[i].agent, agent) == 0)
			return (int)i;
	return -1;
}

static int read_node(struct stack *st, size_t i, json_t *obj, struct orch_error *err)
{
	struct node *n = &st->nodes[i];

	if (!json_is_object(obj))
		return orch_error_set(err, ORCH_EX_DATAERR, "'nodes[%zu]' must be an object", i);
	n->stack = st;
	n->json = obj;
	if (doc_string(obj, "agent", &n->agent, err) != 0 ||
	    doc_int(obj, "priority", 0, 10, &n->priority, err) != 0 ||
	    doc_string(obj, "reason", &n->reason, err) != 0 ||
	    doc_int(obj, "wave", 0, ORCH_AGENT_COUNT - 1, &n->wave, err) != 0)
		return orch_error_prefix(err, "nodes[%zu]", i);
	if ((n->agent_index = orch_agent_index(n->agent)) < 0)
		return orch_error_set(err, ORCH_EX_DATAERR, "nodes[%zu]: unknown agent '%s'",
				      i, n->agent);
	/* st->nnodes is I here: only the nodes before this one are searched. */
	if (node_index(st, n->agent) >= 0)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "nodes[%zu]: agent '%s' has two nodes", i, n->agent);
	return 0;
}

/* Second pass, once every node is known: deps must name earlier waves,
 * which also rules out any cycle. */
static int read_deps(struct stack *st, size_t i, struct orch_error *err)
{
	struct node *n = &st->nodes[i];
	json_t *deps, *d;
	size_t k;
	int j;

	if (doc_array(n->json, "deps", &deps, err) != 0)
		return orch_error_prefix(err, "nodes[%zu]", i);
	if (json_array_size(deps) > ORCH_AGENT_COUNT)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "nodes[%zu]: 'deps' has more than %d entries", i,
				      ORCH_AGENT_COUNT);
	json_array_foreach(deps, k, d) {
		if (!json_is_string(d))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "nodes[%zu]: 'deps[%zu]' must be a string", i, k);
		j = node_index(st, json_string_value(d));
		if (j < 0 || st->nodes[j].wave >= n->wave)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "nodes[%zu]: 'deps' names '%s', which is not a node of an earlier wave",
					      i, json_string_value(d));
		n->deps[n->ndeps++] = (size_t)j;
	}
	return 0;
}

int exec_add(struct exec *e, json_t *graph, struct orch_error *err)
{
	struct stack *st = xcalloc(1, sizeof(*st));
	json_t *stack, *nodes;
	int64_t max_priority;
	size_t i;

	st->graph = graph;
	if (doc_check_type(graph, "orch.graph", err) != 0 ||
	    doc_object(graph, "stack", &stack, err) != 0 ||
	    doc_int(stack, "id", 1, INT64_MAX, &st->id, err) != 0 ||
	    doc_string(stack, "name", &st->name, err) != 0 ||
	    doc_int(graph, "max_priority", 0, 10, &max_priority, err) != 0 ||
	    doc_array(graph, "nodes", &nodes, err) != 0)
		goto fail;
	if (json_array_size(nodes) > ORCH_AGENT_COUNT) {
		orch_error_set(err, ORCH_EX_DATAERR, "'nodes' has %zu entries, more than the %d agents",
			       json_array_size(nodes), ORCH_AGENT_COUNT);
		goto fail;
	}
	if (e->total_nodes + json_array_size(nodes) > ORCH_MAX_NODES) {
		orch_error_set(err, ORCH_EX_DATAERR, "more than %d nodes in the input",
			       ORCH_MAX_NODES);
		goto fail;
	}
	st->nodes = xcalloc(json_array_size(nodes) + 1, sizeof(*st->nodes));
	for (i = 0; i < json_array_size(nodes); i++) {
		child_init(&st->nodes[i].child);
		st->nodes[i].slot = -1;
	}
	for (i = 0; i < json_array_size(nodes); i++) {
		st->nnodes = i;
		if (read_node(st, i, json_array_get(nodes, i), err) != 0)
			goto fail;
	}
	st->nnodes = json_array_size(nodes);
	for (i = 0; i < st->nnodes; i++) {
		if (read_deps(st, i, err) != 0)
			goto fail;
		st->wave_left[st->nodes[i].wave]++;
		if (st->nodes[i].wave + 1 > st->nwaves)
			st->nwaves = st->nodes[i].wave + 1;
	}
	e->total_nodes += st->nnodes;
	if (e->nstacks == e->alloc) {
		e->alloc = e->alloc ? e->alloc * 2 : 16;
		e->stacks = xreallocarray(e->stacks, e->alloc, sizeof(*e->stacks));
	}
	st->stale = 1;
	e->stacks[e->nstacks++] = st;
	return 0;
fail:
	stack_free(st);
	return -1;
}

/* --- the output document --- */

static json_t *opt_string(const char *s)
{
	return s ? xjson(json_string(s)) : json_null();
}

static json_t *opt_int(int64_t v, int present)
{
	return present ? xjson(json_integer(v)) : json_null();
}

static void node_to_json(const struct node *n)
{
	int ran = n->attempts > 0;

	xjson_set(n->json, "status", xjson(json_string(n->status)));
	xjson_set(n->json, "attempts", xjson(json_integer(n->attempts)));
	xjson_set(n->json, "started_at", opt_int(n->started_at, ran));
	xjson_set(n->json, "ended_at", opt_int(n->ended_at, ran));
	xjson_set(n->json, "duration_ms", opt_int(n->ended_mono - n->started_mono, ran));
	xjson_set(n->json, "result", opt_string(n->result));
	xjson_set(n->json, "error", opt_string(n->error));
}

/* Turn the stack's graph into its orch.execution document, in place. */
static json_t *execution_document(struct stack *st, int64_t duration_ms)
{
	json_t *doc = st->graph, *summary;
	int64_t succeeded = 0, failed = 0, skipped = 0;
	size_t i;

	for (i = 0; i < st->nnodes; i++) {
		const struct node *n = &st->nodes[i];

		node_to_json(n);
		succeeded += strcmp(n->status, "completed") == 0;
		failed += strcmp(n->status, "failed") == 0;
		skipped += strcmp(n->status, "skipped") == 0;
	}
	xjson_set(doc, "type", xjson(json_string("orch.execution")));
	xjson_set(doc, "execution_id", opt_int(st->claim.execution_id, st->claim.claimed));
	xjson_set(doc, "cycle", opt_int(st->claim.cycle, st->claim.claimed));
	xjson_set(doc, "ran", json_boolean(st->claim.claimed));
	xjson_set(doc, "skip_reason", opt_string(st->claim.skip_reason));
	if (st->claim.abandoned_by)
		xjson_set(doc, "recovered", xjson(json_pack("{sssI}",
			"abandoned_by", st->claim.abandoned_by,
			"todos_returned", (json_int_t)st->claim.todos_returned)));
	summary = xjson(json_pack("{sIsisIsIsIsI}",
		"waves", (json_int_t)st->nwaves, "max_parallel", st->max_parallel,
		"succeeded", (json_int_t)succeeded, "failed", (json_int_t)failed,
		"skipped", (json_int_t)skipped, "duration_ms", (json_int_t)duration_ms));
	xjson_set(doc, "summary", summary);
	return doc;
}

/* The first failed node's error, for the execution row. New string or NULL. */
static char *cycle_error(const struct stack *st)
{
	size_t i;

	for (i = 0; i < st->nnodes; i++)
		if (strcmp(st->nodes[i].status, "failed") == 0)
			return xasprintf("%s: %s", st->nodes[i].agent,
					 st->nodes[i].error ? st->nodes[i].error : "failed");
	return NULL;
}

static void finish_stack(struct exec *e, struct stack *st)
{
	struct orch_error err = ORCH_ERROR_INIT;
	size_t i;
	int64_t duration = st->claim.claimed ? orch_mono_ms() - st->started_mono : 0;
	json_t *doc = execution_document(st, duration);
	char *error, *text = json_dumps(doc, JSON_COMPACT);

	st->done = 1;
	e->stacks_done++;
	if (st->claim.claimed) {
		error = cycle_error(st);
		if (!text)
			orch_error_set(&err, ORCH_EX_SOFTWARE, "out of memory");
		if (!text || cycle_end(e->store, st->id, st->claim.execution_id, e->cfg.owner,
				       error ? "failed" : "completed", error,
				       json_object_get(doc, "summary"), text, &err) != 0) {
			orch_error_prefix(&err, "stack '%s'", st->name);
			if (!e->first_error.status)
				orch_error_set(&e->first_error, err.status, "%s", err.msg);
			orch_error_release(&err);
		}
		free(error);
	}
	if (!e->emit_failed && e->emit(doc, text, e->emit_arg) != 0)
		e->emit_failed = 1;
	free(text);
	/* Handed on: a run of thousands of stacks keeps only the live ones.
	 * The nodes' borrowed strings go with it; nothing reads a done stack. */
	for (i = 0; i < st->nnodes; i++)
		node_release(&st->nodes[i]);
	free(st->nodes);
	st->nodes = NULL;
	st->nnodes = 0;
	json_decref(st->graph);
	st->graph = NULL;
}

/* --- running nodes --- */

static uint64_t next_random(struct exec *e)
{
	e->rng ^= e->rng << 13;
	e->rng ^= e->rng >> 7;
	e->rng ^= e->rng << 17;
	return e->rng;
}

/* Exponential backoff with jitter: half the delay fixed, half random. */
static int64_t retry_delay(struct exec *e, int failures)
{
	int64_t d = e->cfg.retry_delay_ms, cap = RETRY_DELAY_CAP_MS;
	int k;

	if (d <= 0)
		return 0;
	if (cap < d)
		cap = d;
	for (k = 1; k < failures && d < cap; k++)
		d *= 2;
	if (d > cap)
		d = cap;
	return d / 2 + (int64_t)(next_random(e) % (uint64_t)(d / 2 + 1));
}

/* Take the lowest free lane for N and tell the observer it started. */
static void attempt_started(struct exec *e, struct node *n)
{
	int i;

	for (i = 0; i < e->cfg.jobs && e->slots[i]; i++)
		;
	n->slot = i;
	e->slots[i] = n;
	if (e->cfg.observe) {
		struct exec_event ev = {
			.kind = EXEC_ATTEMPT_STARTED, .stack = n->stack->name,
			.agent = n->agent, .slot = n->slot, .attempt = n->attempts,
			.started_mono = n->attempt_started_mono,
		};
		e->cfg.observe(&ev, e->cfg.observe_arg);
	}
}

/* N's child has ended with STATUS: free its lane and say so. */
static void attempt_over(struct exec *e, struct node *n, const char *status,
			 const char *detail, int final)
{
	if (n->slot < 0)
		return;
	if (e->cfg.observe) {
		struct exec_event ev = {
			.kind = EXEC_ATTEMPT_ENDED, .stack = n->stack->name,
			.agent = n->agent, .slot = n->slot, .attempt = n->attempts,
			.started_mono = n->attempt_started_mono,
			.ended_mono = orch_mono_ms(), .status = status,
			.detail = detail, .final = final,
		};
		e->cfg.observe(&ev, e->cfg.observe_arg);
	}
	e->slots[n->slot] = NULL;
	n->slot = -1;
}

/* Every change of a node's state comes here: it is what tells pick_node
 * that the stack's last look (stack_look) is out of date. */
static void node_set_state(struct node *n, enum node_state state)
{
	n->state = state;
	n->stack->stale = 1;
}

static void node_done(struct exec *e, struct node *n, const char *status,
		      char *error_owned)
{
	struct stack *st = n->stack;

	node_set_state(n, NODE_DONE);
	n->status = status;
	free(n->error);
	n->error = error_owned;
	if (n->attempts > 0) {
		n->ended_at = orch_now_ms();
		n->ended_mono = orch_mono_ms();
	}
	child_release(&n->child);
	free(n->context);
	free(n->trace_input);
	n->context = n->trace_input = NULL;
	st->finished++;
	if (--st->wave_left[n->wave] == 0 && n->wave + 1 < ORCH_AGENT_COUNT)
		st->wave_open_at[n->wave + 1] = orch_mono_ms() + e->cfg.wave_delay_ms;
	if (st->finished == st->nnodes)
		finish_stack(e, st);
}

/* The trace row of N's current attempt. Its pointers are borrowed from N. */
static struct cycle_trace trace_of(const struct node *n, const char *status,
				   int exit_status, const char *error,
				   const json_t *usage)
{
	struct cycle_trace t = {
		.execution_id = n->stack->claim.execution_id,
		.stack_id = n->stack->id,
		.agent = n->agent,
		.attempt = n->attempts,
		.started_at = n->attempt_started_at,
		.ended_at = orch_now_ms(),
		.status = status,
		.exit_status = exit_status,
		.input = n->trace_input,
		.output = n->child.out.data,
		.output_len = n->child.out.len,
		.error = error,
		.usage = usage,
		.err_output = n->child.err.data,
		.err_output_len = n->child.err.len,
		.err_dropped = n->child.err_dropped,
	};

	return t;
}

/* Record a failed attempt, in its own transaction. */
static void trace_failure(struct exec *e, const struct node *n, int exit_status,
			  const char *error)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct cycle_trace t = trace_of(n, "failed", exit_status, error, NULL);

	/* A trace that cannot be written must not fail the node: the run
	 * itself happened. The cycle's recording will report the store. */
	if (cycle_trace(e->store, &t, &err) != 0 && !e->first_error.status)
		orch_error_set(&e->first_error, err.status, "stack '%s': %s",
			       n->stack->name, err.msg);
	orch_error_release(&err);
}

/*
 * An attempt failed with MSG (owned): record it, give the builder's todo
 * back, and retry after a backoff unless attempts are used up or the
 * failure will not change (FINAL).
 */
static void attempt_failed(struct exec *e, struct node *n, char *msg,
			   int exit_status, int final)
{
	struct orch_error err = ORCH_ERROR_INIT;

	trace_failure(e, n, exit_status, msg);
	if (actions_finish_failure(e->store, n->stack->id, n->agent, &n->task, &err) != 0) {
		char *both = xasprintf("%s; then %s", msg, err.msg);

		free(msg);
		msg = both;
		final = 1;
	}
	orch_error_release(&err);
	if (final || n->attempts > e->cfg.retries)
		final = 1;
	attempt_over(e, n, "failed", msg, final);
	if (final) {
		node_done(e, n, "failed", msg);
		return;
	}
	free(msg);
	child_release(&n->child);
	free(n->context);
	free(n->trace_input);
	n->context = n->trace_input = NULL;
	node_set_state(n, NODE_BACKOFF);
	n->not_before = orch_mono_ms() + retry_delay(e, n->attempts);
}

/* "3 actions: create_todo x2, set_phase", for people. New string. */
static char *actions_summary(const json_t *actions)
{
	const char *types[ACTIONS_MAX_COUNT];
	size_t counts[ACTIONS_MAX_COUNT], ntypes = 0, i, k, n = json_array_size(actions);
	char *out, *next;
	json_t *a;

	if (n == 0)
		return xstrdup("no actions");
	json_array_foreach(actions, i, a) {
		const char *t = json_string_value(json_object_get(a, "type"));

		for (k = 0; k < ntypes && strcmp(types[k], t) != 0; k++)
			;
		if (k == ntypes) {
			types[ntypes] = t;
			counts[ntypes++] = 0;
		}
		counts[k]++;
	}
	out = xasprintf("%zu action%s:", n, n == 1 ? "" : "s");
	for (k = 0; k < ntypes; k++) {
		if (counts[k] > 1)
			next = xasprintf("%s%s %s x%zu", out, k ? "," : "", types[k], counts[k]);
		else
			next = xasprintf("%s%s %s", out, k ? "," : "", types[k]);
		free(out);
		out = next;
	}
	return out;
}

/* Apply a successful run's actions and bookkeeping, with its trace, in
 * one transaction. 0, or -1 with ERR (rolled back). */
static int apply_output(struct exec *e, struct node *n, const json_t *doc,
			int exit_status, struct orch_error *err)
{
	struct store *s = e->store;
	struct cycle_trace t;
	int64_t now = orch_now_ms();

	if (actions_validate(doc, err) != 0)
		return -1;
	if (store_begin(s, err) != 0)
		return -1;
	if (actions_apply(s, n->stack->id, n->agent, &n->task, doc, now, err) != 0 ||
	    actions_finish_success(s, n->stack->id, n->agent, &n->task, now, err) != 0)
		goto fail;
	t = trace_of(n, "completed", exit_status, NULL, json_object_get(doc, "usage"));
	if (cycle_trace(s, &t, err) != 0)
		goto fail;
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

/* What went wrong with a finished child, as a new string, or NULL. */
static char *child_failure(struct exec *e, const struct child *c)
{
	char *line, *msg = NULL;
	int st = c->status;

	if (c->timed_out)
		return xasprintf("timed out after %lld ms", (long long)e->cfg.timeout_ms);
	if (c->out_overflow)
		return xasprintf("output larger than %d bytes", ORCH_MAX_CHILD_OUTPUT);
	line = child_last_stderr_line(c);
	if (WIFSIGNALED(st))
		msg = xasprintf("killed by signal %d (%s)%s%s", WTERMSIG(st),
				strsignal(WTERMSIG(st)), *line ? ": " : "", line);
	else if (WEXITSTATUS(st) != 0)
		msg = xasprintf("exit status %d%s%s", WEXITSTATUS(st), *line ? ": " : "", line);
	free(line);
	return msg;
}

static void attempt_ended(struct exec *e, struct node *n)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct child *c = &n->child;
	int exit_status = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
	json_error_t jerr;
	json_t *doc;
	char *msg;

	if (c->timed_out || c->out_overflow)
		exit_status = -1;
	if ((msg = child_failure(e, c))) {
		attempt_failed(e, n, msg, exit_status, 0);
		return;
	}
	if (c->out.len == 0) {
		attempt_failed(e, n, xstrdup("printed nothing on standard output"), exit_status, 0);
		return;
	}
	doc = json_loadb(c->out.data, c->out.len, 0, &jerr);
	if (!doc) {
		attempt_failed(e, n, xasprintf("output is not JSON: line %d: %s",
					       jerr.line, jerr.text), exit_status, 0);
		return;
	}
	if (apply_output(e, n, doc, exit_status, &err) != 0) {
		msg = xstrdup(err.msg);
		orch_error_release(&err);
		json_decref(doc);
		attempt_failed(e, n, msg, exit_status, 0);
		return;
	}
	free(n->result);
	n->result = actions_summary(json_object_get(doc, "actions"));
	json_decref(doc);
	attempt_over(e, n, "completed", n->result, 1);
	node_done(e, n, "completed", NULL);
}

/* The context as a trace keeps it: without the artifact's content, which
 * the artifacts table already holds. CONTEXT is CTX as text, which is
 * all a context without an artifact needs. New string. */
static char *trace_input(json_t *ctx, const char *context)
{
	json_t *content = json_object_get(ctx, "artifact_content");

	if (!json_is_string(content))
		return xstrdup(context);
	xjson_set(ctx, "artifact_content_bytes",
		  xjson(json_integer((json_int_t)json_string_length(content))));
	xjson_set(ctx, "artifact_content", json_null());
	return json_dumps(ctx, JSON_COMPACT);
}

static void start_node(struct exec *e, struct node *n)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack *st = n->stack;
	json_t *ctx = NULL;
	int rc;

	n->attempts++;
	n->attempt_started_at = orch_now_ms();
	n->attempt_started_mono = orch_mono_ms();
	if (n->attempts == 1) {
		n->started_at = n->attempt_started_at;
		n->started_mono = orch_mono_ms();
	}
	memset(&n->task, 0, sizeof(n->task));
	rc = context_build(e->store, st->id, n->agent, n->reason, n->attempt_started_at,
			   st->claim.execution_id, st->claim.cycle, &n->task, &ctx, &err);
	if (rc == 0) {
		node_done(e, n, "skipped", xstrdup(strcmp(n->agent, "builder") == 0
			? "no pending todo left" : "nothing left to do"));
		return;
	}
	if (rc < 0) {
		attempt_failed(e, n, xstrdup(err.msg), -1, 0);
		orch_error_release(&err);
		return;
	}
	n->context = json_dumps(ctx, JSON_COMPACT);
	n->trace_input = n->context ? trace_input(ctx, n->context) : NULL;
	json_decref(ctx);
	if (!n->context || !n->trace_input) {
		attempt_failed(e, n, xstrdup("out of memory writing the context"), -1, 1);
		return;
	}
	if (strlen(n->context) > ORCH_MAX_DOCUMENT) {
		attempt_failed(e, n, xasprintf("context larger than %d bytes",
					       ORCH_MAX_DOCUMENT), -1, 1);
		return;
	}
	if (child_start(&n->child, e->cfg.argv[n->agent_index], n->context,
			strlen(n->context), ORCH_MAX_CHILD_OUTPUT, e->cfg.timeout_ms,
			e->cfg.kill_after_ms, &err) != 0) {
		/* A command that cannot be run will not run on a retry. */
		attempt_failed(e, n, xstrdup(err.msg), -1, err.status == ORCH_EX_UNAVAILABLE);
		orch_error_release(&err);
		return;
	}
	node_set_state(n, NODE_RUNNING);
	e->running[e->nrunning++] = n;
	attempt_started(e, n);
	if (++st->running > st->max_parallel)
		st->max_parallel = st->running;
}

/* --- scheduling --- */

/*
 * Whether N may start now; 0 with *WAKE lowered to when it might, or
 * -1 when it never will (a dependency did not complete): then it is
 * skipped here.
 */
static int node_ready(struct exec *e, struct node *n, int64_t now, int64_t *wake)
{
	struct stack *st = n->stack;
	size_t i;
	int64_t w;

	if (n->state == NODE_BACKOFF) {
		if (now >= n->not_before)
			return 1;
		if (*wake < 0 || n->not_before < *wake)
			*wake = n->not_before;
		return 0;
	}
	for (i = 0; i < n->ndeps; i++) {
		const struct node *d = &st->nodes[n->deps[i]];

		if (d->state != NODE_DONE)
			return 0;
		if (strcmp(d->status, "completed") != 0) {
			node_done(e, n, "skipped", xasprintf("dependency '%s' %s", d->agent,
				strcmp(d->status, "failed") == 0 ? "failed" : "was skipped"));
			return -1;
		}
	}
	if (e->cfg.barrier) {
		for (w = 0; w < n->wave; w++)
			if (st->wave_left[w] > 0)
				return 0;
		if (n->wave > 0 && now < st->wave_open_at[n->wave]) {
			if (*wake < 0 || st->wave_open_at[n->wave] < *wake)
				*wake = st->wave_open_at[n->wave];
			return 0;
		}
	}
	return 1;
}

/* Look at ST's waiting nodes: its best ready one (highest priority, then
 * node order), and when a gate may open. May skip nodes, and so end ST. */
static void stack_look(struct exec *e, struct stack *st, int64_t now)
{
	size_t k;

	st->stale = 0; /* a skip below makes it stale again */
	st->ready = NULL;
	st->look_again_at = -1;
	for (k = 0; k < st->nnodes && !st->done; k++) {
		struct node *n = &st->nodes[k];

		if (n->state != NODE_WAITING && n->state != NODE_BACKOFF)
			continue;
		if (node_ready(e, n, now, &st->look_again_at) != 1)
			continue;
		if (!st->ready || n->priority > st->ready->priority)
			st->ready = n;
	}
	if (st->done)
		st->ready = NULL;
}

/* The waiting node to start next: highest priority, then input order. */
static struct node *pick_node(struct exec *e, int64_t now, int64_t *wake)
{
	struct node *best = NULL;
	size_t i;

	for (i = 0; i < e->nstacks; i++) {
		struct stack *st = e->stacks[i];

		if (st->done || !st->claim.claimed)
			continue;
		if (st->stale || (st->look_again_at >= 0 && now >= st->look_again_at))
			stack_look(e, st, now);
		if (st->done)
			continue;
		if (st->look_again_at >= 0 && (*wake < 0 || st->look_again_at < *wake))
			*wake = st->look_again_at;
		if (st->ready && (!best || st->ready->priority > best->priority))
			best = st->ready;
	}
	return best;
}

static int all_done(const struct exec *e)
{
	return e->stacks_done == e->nstacks;
}

static void remove_running(struct exec *e, int i)
{
	e->running[i]->stack->running--;
	e->running[i] = e->running[--e->nrunning];
}

/* Stop everything after a signal: running agents are killed, waiting
 * nodes skipped, and every cycle recorded. */
static void interrupt_all(struct exec *e, int sig)
{
	size_t i, k;

	while (e->nrunning > 0) {
		struct node *n = e->running[0];

		child_kill(&n->child);
		remove_running(e, 0);
		attempt_failed(e, n, xasprintf("interrupted by signal %d (%s)", sig,
					       strsignal(sig)), -1, 1);
	}
	for (i = 0; i < e->nstacks; i++) {
		struct stack *st = e->stacks[i];

		for (k = 0; k < st->nnodes && !st->done; k++)
			if (st->nodes[k].state != NODE_DONE)
				node_done(e, &st->nodes[k], "skipped",
					  xasprintf("interrupted by signal %d (%s)", sig,
						    strsignal(sig)));
	}
}

/* Claim one stack's lease in a transaction of its own; a store error
 * skips the stack and is the run's first error, if none came before. */
static void claim_one(struct exec *e, struct stack *st, int64_t ttl)
{
	struct orch_error err = ORCH_ERROR_INIT;

	st->started_mono = orch_mono_ms();
	if (cycle_begin(e->store, st->id, e->cfg.owner, ttl, &st->claim, &err) != 0) {
		st->claim.skip_reason = xasprintf("store: %s", err.msg);
		if (!e->first_error.status)
			orch_error_set(&e->first_error, err.status, "stack '%s': %s",
				       st->name, err.msg);
		orch_error_release(&err);
	}
}

/*
 * Claim stacks FROM..TO-1 in one write transaction: 0, or -1 with none
 * of them claimed (the caller then claims each on its own, so that one
 * stack's error stays that stack's).
 */
static int claim_batch(struct exec *e, size_t from, size_t to, int64_t ttl)
{
	struct orch_error err = ORCH_ERROR_INIT;
	size_t i;

	if (store_begin(e->store, &err) != 0)
		goto fail;
	for (i = from; i < to; i++) {
		e->stacks[i]->started_mono = orch_mono_ms();
		if (cycle_claim_in(e->store, e->stacks[i]->id, e->cfg.owner, ttl,
				   &e->stacks[i]->claim, &err) != 0) {
			store_rollback(e->store);
			goto fail;
		}
	}
	if (store_commit(e->store, &err) != 0)
		goto fail;
	return 0;
fail:
	for (i = from; i < to; i++)
		cycle_claim_release(&e->stacks[i]->claim);
	orch_error_release(&err);
	return -1;
}

/* Claim each stack's lease; hand on at once those that will not run. */
static void claim_all(struct exec *e, int64_t ttl)
{
	size_t i, k, to;

	for (i = 0; i < e->nstacks; i = to) {
		to = i + CLAIM_BATCH < e->nstacks ? i + CLAIM_BATCH : e->nstacks;
		if (claim_batch(e, i, to, ttl) != 0)
			for (k = i; k < to; k++)
				claim_one(e, e->stacks[k], ttl);
	}
	for (i = 0; i < e->nstacks; i++) {
		struct stack *st = e->stacks[i];

		if (!st->claim.claimed) {
			for (k = 0; k < st->nnodes; k++) {
				node_set_state(&st->nodes[k], NODE_DONE);
				st->nodes[k].status = "skipped";
				st->nodes[k].error = xstrdup(st->claim.skip_reason);
			}
			finish_stack(e, st);
		} else if (st->nnodes == 0) {
			finish_stack(e, st);
		}
	}
}

static int compare_ids(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int check_unique_stacks(const struct exec *e, struct orch_error *err)
{
	int64_t *ids = xreallocarray(NULL, e->nstacks + 1, sizeof(*ids));
	size_t i;
	int rc = 0;

	for (i = 0; i < e->nstacks; i++)
		ids[i] = e->stacks[i]->id;
	qsort(ids, e->nstacks, sizeof(*ids), compare_ids);
	for (i = 1; i < e->nstacks; i++)
		if (ids[i] == ids[i - 1]) {
			rc = orch_error_set(err, ORCH_EX_DATAERR,
					    "stack %lld has two graphs in the input",
					    (long long)ids[i]);
			break;
		}
	free(ids);
	return rc;
}

/* How long a lease must last for the longest cycle the flags allow. */
static int64_t lease_ttl(const struct exec *e)
{
	int64_t per_attempt, per_node;

	if (e->cfg.timeout_ms <= 0)
		return INT64_MAX / 4;
	per_attempt = e->cfg.timeout_ms + e->cfg.kill_after_ms;
	per_node = per_attempt * (e->cfg.retries + 1) +
		   (int64_t)e->cfg.retries * RETRY_DELAY_CAP_MS;
	return ORCH_AGENT_COUNT * (per_node + e->cfg.wave_delay_ms) + 60000;
}

int exec_run(struct exec *e, exec_emit_fn emit, void *arg, struct orch_error *err)
{
	int sigfd, i, nfds, sig = 0;
	int64_t now, wake, t;
	struct node *n;

	e->emit = emit;
	e->emit_arg = arg;
	if (check_unique_stacks(e, err) != 0)
		return -1;
	if ((sigfd = spawn_init(err)) < 0)
		return -1;
	claim_all(e, lease_ttl(e));

	while (!e->emit_failed) {
		if ((sig = spawn_interrupted()) != 0) {
			interrupt_all(e, sig);
			break;
		}
		now = orch_mono_ms();
		wake = -1;
		while (e->nrunning < e->cfg.jobs && (n = pick_node(e, now, &wake)))
			start_node(e, n);
		if (all_done(e))
			break;
		if (e->nrunning == 0 && wake < 0)
			return orch_error_set(err, ORCH_EX_SOFTWARE,
					      "scheduler stalled with nodes left to run");

		e->fds[0] = (struct pollfd){ sigfd, POLLIN, 0 };
		nfds = 1;
		for (i = 0; i < e->nrunning; i++) {
			t = child_check_time(&e->running[i]->child, now);
			if (t > 0 && (wake < 0 || t < wake))
				wake = t;
			nfds += child_poll_fds(&e->running[i]->child, e->fds + nfds);
		}
		t = wake < 0 ? -1 : wake > now ? wake - now : 0;
		if (poll(e->fds, (nfds_t)nfds, t > 60000 ? 60000 : (int)t) < 0 &&
		    errno != EINTR)
			return orch_error_set(err, ORCH_EX_SOFTWARE, "poll: %s", strerror(errno));
		if (e->fds[0].revents)
			spawn_drain_signal();
		for (i = 0; i < e->nrunning; i++) {
			child_handle(&e->running[i]->child, e->fds + 1, nfds - 1);
			child_reap(&e->running[i]->child);
			child_check_time(&e->running[i]->child, orch_mono_ms());
		}
		for (i = e->nrunning - 1; i >= 0; i--) {
			n = e->running[i];
			if (!child_done(&n->child))
				continue;
			remove_running(e, i);
			attempt_ended(e, n);
		}
	}
	if (e->emit_failed)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "write error on standard output");
	if (sig)
		return orch_error_set(err, ORCH_EX_TEMPFAIL, "interrupted by signal %d (%s)",
				      sig, strsignal(sig));
	if (e->first_error.status)
		return orch_error_set(err, e->first_error.status, "%s", e->first_error.msg);
	return 0;
}
