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
#include "exec_int.h"
#include "jsonio.h"
#include "spawn.h"
#include "turns.h"
#include "xalloc.h"
#include "banned.h"

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
	e->fds = xreallocarray(NULL, 3 + 3 * (size_t)e->cfg.jobs, sizeof(*e->fds));
	e->rng = ((uint64_t)orch_mono_ms() << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
	return e;
}

void exec_node_release(struct node *n)
{
	if (n->job) {
		turns_end(n->job, &n->child);
		n->job = NULL;
	}
	child_release(&n->child);
	free(n->context);
	free(n->trace_input);
	free(n->result);
	free(n->error);
	json_decref(n->effects);
	n->context = n->trace_input = n->result = n->error = NULL;
	n->effects = NULL;
}

static void stack_free(struct stack *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->nnodes; i++)
		exec_node_release(&st->nodes[i]);
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
	/* Their agents are killed: what they left goes too. */
	spawn_reap_all(ORPHAN_WAIT_MS);
	free(e->stacks);
	free(e->running);
	free(e->slots);
	free(e->fds);
	orch_error_release(&e->first_error);
	free(e->stop_reason);
	orch_error_release(&e->input_error);
	json_reader_release(&e->in);
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
		st->nodes[i].retry_after_ms = -1;
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
	if (e->cfg.observe) {
		struct exec_event ev = { .kind = EXEC_STACK_QUEUED, .stack = st->name };

		e->cfg.observe(&ev, e->cfg.observe_arg);
	}
	return 0;
fail:
	stack_free(st);
	return -1;
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
			exec_node_done(e, n, "skipped", xasprintf("dependency '%s' %s", d->agent,
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

/* Whether standard output is a pipe whose reader has gone. */
static int output_gone(const struct exec *e)
{
	struct pollfd p = { STDOUT_FILENO, 0, 0 };

	return e->cfg.watch_stdout && poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLERR | POLLHUP));
}

/*
 * Whether the run must stop: a signal came (75), the output failed or
 * its reader went away (70). The first reason found is kept, in
 * e->stop_reason, for the nodes it stops and the exit.
 */
static int stopping(struct exec *e)
{
	int sig;

	if (e->stop_reason)
		return 1;
	if ((sig = spawn_interrupted()) != 0) {
		e->stop_status = ORCH_EX_TEMPFAIL;
		e->stop_reason = xasprintf("interrupted by signal %d (%s)", sig, strsignal(sig));
	} else if (e->emit_failed) {
		e->stop_status = ORCH_EX_SOFTWARE;
		e->stop_reason = xasprintf("write error on standard output: %s",
					   strerror(e->emit_errno));
	} else if (output_gone(e)) {
		e->stop_status = ORCH_EX_SOFTWARE;
		e->stop_reason = xstrdup("standard output closed: its reader is gone");
		/* Nothing more is written to it. */
		e->emit_failed = 1;
		e->emit_errno = EPIPE;
	}
	return e->stop_reason != NULL;
}

static int store_stopping(void *arg)
{
	return stopping(arg);
}

/* Why a node is stopped: the reason, as a node's error (new string). */
static char *stop_error(const struct exec *e)
{
	if (e->stop_status == ORCH_EX_TEMPFAIL)
		return xstrdup(e->stop_reason);
	return xasprintf("interrupted: %s", e->stop_reason);
}

/* In-process turns started between two sends of what they asked: each
 * send visits every request on the pool. */
#define SEND_BATCH 16

/* Send the requests of the in-process turns started since the last. */
static void send_turns(struct exec *e)
{
	if (!e->unsent)
		return;
	http_pool_work(turns_pool(e->cfg.turns));
	e->unsent = 0;
}

/* End N's in-process turn, if it has one: what it left is its child's. */
static void turn_over(struct exec *e, struct node *n)
{
	if (!n->job)
		return;
	turns_end(n->job, &n->child);
	n->job = NULL;
	e->nturns--;
}

/*
 * Step every in-process turn that can move on (its request ended, its
 * wait over), end those done or past the attempt's timeout, and lower
 * *WAKE to the soonest a turn needs a step again: now, when one ended,
 * for its node to be read.
 */
static void step_turns(struct exec *e, int64_t now, int64_t *wake)
{
	int64_t timeout_at, t;
	struct node *n;
	int i;

	for (i = 0; i < e->nrunning; i++) {
		n = e->running[i];
		if (!n->job)
			continue;
		timeout_at = e->cfg.timeout_ms > 0 ? n->attempt_started_mono + e->cfg.timeout_ms : -1;
		if (timeout_at >= 0 && now >= timeout_at) {
			/* As a child's timeout: killed, and said so. */
			turn_over(e, n);
			n->child.timed_out = 1;
			*wake = now;
			continue;
		}
		if (n->job_wake <= now && !turns_step(n->job, &n->job_wake)) {
			turn_over(e, n);
			*wake = now;
			continue;
		}
		t = n->job_wake; /* -1: it waits for its request */
		if (timeout_at >= 0 && (t < 0 || timeout_at < t))
			t = timeout_at;
		if (t >= 0 && (*wake < 0 || t < *wake))
			*wake = t;
	}
}

/* Stop everything (see stopping()): running agents are killed, waiting
 * nodes skipped, stacks not claimed let go, and every cycle recorded. */
static void interrupt_all(struct exec *e)
{
	size_t i, k;

	while (e->nrunning > 0) {
		struct node *n = e->running[0];

		child_kill(&n->child);
		turn_over(e, n);
		remove_running(e, 0);
		exec_attempt_failed(e, n, stop_error(e), -1, 1);
	}
	for (i = 0; i < e->nstacks; i++) {
		struct stack *st = e->stacks[i];

		if (st->done)
			continue;
		if (!st->claim_tried) {
			st->claim_tried = 1;
			st->claim.skip_reason = stop_error(e);
		}
		if (st->nnodes == 0)
			exec_finish_stack(e, st);
		for (k = 0; k < st->nnodes && !st->done; k++)
			if (st->nodes[k].state != NODE_DONE)
				exec_node_done(e, &st->nodes[k], "skipped", stop_error(e));
	}
}

/* When ST's graph was made (its created_at), 0 when it does not say. */
static int64_t planned_at(const struct stack *st)
{
	json_t *v = json_object_get(st->graph, "created_at");

	return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

/* Claim one stack's lease in a transaction of its own; a store error
 * skips the stack and is the run's first error, if none came before. */
static void claim_one(struct exec *e, struct stack *st, int64_t ttl)
{
	struct orch_error err = ORCH_ERROR_INIT;

	st->started_mono = orch_mono_ms();
	if (stopping(e)) {
		st->claim.skip_reason = stop_error(e);
		return;
	}
	if (cycle_begin(e->store, st->id, e->cfg.owner, ttl, planned_at(st), &st->claim, &err) != 0) {
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
 * stack's error stays that stack's), or 1, none of them claimed, when
 * the run is stopping: a signal that came while it waited for the lock
 * claims no cycle.
 */
static int claim_batch(struct exec *e, size_t from, size_t to, int64_t ttl)
{
	struct orch_error err = ORCH_ERROR_INIT;
	size_t i;

	if (store_begin_stacks(e->store, &err) != 0)
		goto fail;
	if (stopping(e)) {
		store_rollback(e->store);
		return 1;
	}
	for (i = from; i < to; i++) {
		if (e->stacks[i]->twin)
			continue;
		e->stacks[i]->started_mono = orch_mono_ms();
		if (cycle_claim_in(e->store, e->stacks[i]->id, e->cfg.owner, ttl,
				   planned_at(e->stacks[i]), &e->stacks[i]->claim, &err) != 0) {
			store_rollback(e->store);
			goto fail;
		}
	}
	if (store_commit(e->store, &err) != 0)
		goto fail;
	return 0;
fail:
	for (i = from; i < to; i++)
		if (!e->stacks[i]->twin)
			cycle_claim_release(&e->stacks[i]->claim);
	orch_error_release(&err);
	return -1;
}

/* A stack id and where it is in e->stacks, for finding twins. */
struct id_at {
	int64_t id;
	size_t at;
};

static int by_id_then_at(const void *a, const void *b)
{
	const struct id_at *x = a, *y = b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return (x->at > y->at) - (x->at < y->at);
}

/*
 * Skip each stack queued at FROM or later whose id comes earlier too,
 * among the live cycles and the new ones: a stack is never run twice at
 * once by this orch-exec (sorting keeps this O(n log n) for a run of
 * thousands of stacks).
 */
void exec_skip_twins(struct exec *e, size_t from)
{
	struct id_at *v = xreallocarray(NULL, e->nstacks + 1, sizeof(*v));
	size_t i, n = 0;

	for (i = 0; i < e->nstacks; i++)
		if (i >= from || (e->stacks[i]->claim.claimed && !e->stacks[i]->done))
			v[n++] = (struct id_at){ e->stacks[i]->id, i };
	qsort(v, n, sizeof(*v), by_id_then_at);
	for (i = 1; i < n; i++)
		if (v[i].id == v[i - 1].id && v[i].at >= from && !e->stacks[v[i].at]->twin) {
			e->stacks[v[i].at]->twin = 1;
			e->stacks[v[i].at]->claim.skip_reason =
				xstrdup("its cycle is already running in this orch-exec");
		}
	free(v);
}

/*
 * Claim the lease of the stacks queued next, CLAIM_BATCH to a
 * transaction, as long as fewer than jobs stacks claimed here are still
 * running: a stack is claimed when this process is about to run it, not
 * when its graph is read, so that pipelines on other hosts fed the same
 * due stacks share them instead of finding them all held by the first
 * (and a stack a pipeline will not reach for minutes stays free). Those
 * that will not run are handed on at once. A stack whose cycle this
 * orch-exec is already running is not run twice.
 */
static int claim_window(struct exec *e, int64_t ttl);

static void claim_new(struct exec *e, int64_t ttl)
{
	/* A stack passed over (held, or run, by another pipeline) gives its
	 * place back at once: fill it now, not after the next wake-up. */
	while (claim_window(e, ttl))
		;
}

/* claim_new()'s one pass over the places free: 1 when some stack it
 * tried was not claimed and more are queued, so another pass may claim. */
static int claim_window(struct exec *e, int64_t ttl)
{
	size_t i, k, from, to, end, active = 0;
	int rc, passed = 0;

	for (from = 0; from < e->nstacks && e->stacks[from]->claim_tried; from++)
		;
	if (from == e->nstacks)
		return 0;
	for (i = 0; i < from; i++)
		if (e->stacks[i]->claim.claimed && !e->stacks[i]->done)
			active++;
	if (active >= (size_t)e->cfg.jobs)
		return 0;
	end = from + ((size_t)e->cfg.jobs - active);
	if (end > e->nstacks)
		end = e->nstacks;
	exec_skip_twins(e, from);
	for (i = from; i < end; i++)
		e->stacks[i]->claim_tried = 1;
	for (i = from; i < end; i = to) {
		to = i + CLAIM_BATCH < end ? i + CLAIM_BATCH : end;
		if ((rc = claim_batch(e, i, to, ttl)) < 0)
			for (k = i; k < to; k++)
				if (!e->stacks[k]->twin)
					claim_one(e, e->stacks[k], ttl);
		if (rc > 0) {
			for (k = i; k < e->nstacks; k++)
				if (!e->stacks[k]->twin) {
					e->stacks[k]->claim_tried = 1;
					e->stacks[k]->claim.skip_reason = stop_error(e);
				}
			end = e->nstacks;
			passed = -1;
			break;
		}
	}
	for (i = from; i < end; i++) {
		struct stack *st = e->stacks[i];

		if (!st->claim.claimed) {
			for (k = 0; k < st->nnodes; k++) {
				exec_node_set_state(&st->nodes[k], NODE_DONE);
				st->nodes[k].status = "skipped";
				st->nodes[k].error = xstrdup(st->claim.skip_reason);
			}
			exec_finish_stack(e, st);
			if (passed >= 0)
				passed = 1;
		} else if (st->nnodes == 0) {
			exec_finish_stack(e, st);
			if (passed >= 0)
				passed = 1;
		}
	}
	return passed > 0 && end < e->nstacks;
}

/* Let the stacks that are done go: a run that reads for days keeps only
 * its live cycles. */
static void let_go(struct exec *e)
{
	size_t i, k;

	if (e->stacks_done == 0)
		return;
	for (i = k = 0; i < e->nstacks; i++) {
		if (e->stacks[i]->done)
			stack_free(e->stacks[i]);
		else
			e->stacks[k++] = e->stacks[i];
	}
	e->nstacks = k;
	e->stacks_done = 0;
}

/*
 * Queue the graphs the input has now, without waiting for more. At its
 * end, or at a document that is not a graph (its error kept for the
 * end of the run), reading stops; the stacks of that read not yet
 * claimed are dropped, so input given whole with a bad document in it
 * runs nothing, as before any agent has touched a stack.
 */
static void read_input(struct exec *e)
{
	json_t *doc;
	size_t i, k;
	int rc;

	while ((rc = json_reader_next(&e->in, &doc, &e->input_error)) == 1)
		if (exec_add(e, doc, &e->input_error) != 0) {
			orch_error_prefix(&e->input_error, "line %ld", e->in.doc_line);
			rc = -1;
			break;
		}
	if (rc == 2)
		return;
	e->reading = 0;
	if (rc == 0)
		return;
	for (i = k = 0; i < e->nstacks; i++) {
		if (e->stacks[i]->claim_tried) {
			e->stacks[k++] = e->stacks[i];
		} else {
			e->total_nodes -= e->stacks[i]->nnodes;
			stack_free(e->stacks[i]);
		}
	}
	e->nstacks = k;
}

/* How long a lease lasts: exec.lease, renewed while the cycle runs, or,
 * without it, as long as the longest cycle the flags allow. */
static int64_t lease_ttl(const struct exec *e)
{
	int64_t per_attempt, per_node;

	if (e->cfg.lease_ms > 0)
		return e->cfg.lease_ms;
	if (e->cfg.timeout_ms <= 0)
		return INT64_MAX / 4;
	per_attempt = e->cfg.timeout_ms + e->cfg.kill_after_ms;
	per_node = per_attempt * (e->cfg.retries + 1) +
		   (int64_t)e->cfg.retries * RETRY_DELAY_CAP_MS;
	return ORCH_AGENT_COUNT * (per_node + e->cfg.wave_delay_ms) + 60000;
}

/*
 * Every third of the lease, push the expiry of every lease this process
 * holds a lease further: a host elsewhere takes a stack over only when
 * its holder stopped renewing (killed, powered off, cut off), however
 * long the cycle. A renewal that fails is tried again at the next turn
 * of the loop; the leases last two more thirds.
 */
static void renew_leases(struct exec *e, int64_t now, int64_t ttl, int64_t *wake)
{
	struct orch_error err = { 0 };

	if (e->cfg.lease_ms <= 0 || e->nstacks == e->stacks_done)
		return;
	if (now >= e->next_renew) {
		if (cycle_renew_leases(e->store, e->cfg.owner, orch_now_ms() + ttl, &err) == 0)
			e->next_renew = now + ttl / 3;
		orch_error_release(&err);
	}
	if (*wake < 0 || e->next_renew < *wake)
		*wake = e->next_renew;
}

int exec_run(struct exec *e, int in_fd, exec_emit_fn emit, void *arg,
	     struct orch_error *err)
{
	int sigfd, i, nfds, in_slot;
	int64_t now, wake, t, ttl = lease_ttl(e);
	struct node *n;

	e->emit = emit;
	e->emit_arg = arg;
	if ((sigfd = spawn_init(err)) < 0)
		return -1;
	store_set_stop(e->store, store_stopping, e);
	if (in_fd >= 0) {
		json_reader_init_fd(&e->in, in_fd, 1);
		e->reading = 1;
	}

	for (;;) {
		if (stopping(e)) {
			e->reading = 0;
			interrupt_all(e);
			break;
		}
		if (e->reading)
			read_input(e);
		claim_new(e, ttl);
		let_go(e);
		now = orch_mono_ms();
		wake = -1;
		renew_leases(e, now, ttl, &wake);
		/* N may be done, and its stack's nodes freed, once started:
		 * what was started is counted in E. In-process turns' first
		 * requests go out while the next nodes' contexts are built,
		 * not after the last. */
		while (e->nrunning < e->cfg.jobs && (n = pick_node(e, now, &wake))) {
			if (exec_start_node(e, n) != 0)
				break;
			if (e->unsent >= SEND_BATCH)
				send_turns(e);
		}
		send_turns(e);
		let_go(e);
		if (all_done(e) && !e->reading)
			break;
		if (e->nrunning == 0 && wake < 0 && !e->reading && !all_done(e))
			return orch_error_set(err, ORCH_EX_SOFTWARE,
					      "scheduler stalled with nodes left to run");

		e->fds[0] = (struct pollfd){ sigfd, POLLIN, 0 };
		nfds = 1;
		if (e->reading)
			e->fds[nfds++] = (struct pollfd){ in_fd, POLLIN, 0 };
		/* Its reader gone (POLLERR), the run stops at once. */
		if (e->cfg.watch_stdout && !e->emit_failed)
			e->fds[nfds++] = (struct pollfd){ STDOUT_FILENO, 0, 0 };
		in_slot = nfds - 1;
		for (i = 0; i < e->nrunning; i++) {
			t = child_check_time(&e->running[i]->child, now);
			if (t > 0 && (wake < 0 || t < wake))
				wake = t;
			nfds += child_poll_fds(&e->running[i]->child, e->fds + nfds);
		}
		/* The turns just started send their first request. */
		if (e->nturns)
			step_turns(e, now, &wake);
		t = wake < 0 ? -1 : wake > now ? wake - now : 0;
		if (t > 60000 || t < 0)
			t = 60000;
		/* With turns in this process, their pool's sockets are waited
		 * for in the same call. */
		if ((e->nturns ? http_pool_wait(turns_pool(e->cfg.turns), e->fds, nfds, (int)t)
		     : poll(e->fds, (nfds_t)nfds, wake < 0 ? -1 : (int)t)) < 0 &&
		    errno != EINTR)
			return orch_error_set(err, ORCH_EX_SOFTWARE, "poll: %s", strerror(errno));
		if (e->nturns) {
			http_pool_work(turns_pool(e->cfg.turns));
			wake = -1;
			step_turns(e, orch_mono_ms(), &wake);
		}
		if (e->fds[0].revents)
			spawn_drain_signal();
		for (i = 0; i < e->nrunning; i++) {
			child_handle(&e->running[i]->child, e->fds + 1 + in_slot,
				     nfds - 1 - in_slot);
			child_reap(&e->running[i]->child);
			child_check_time(&e->running[i]->child, orch_mono_ms());
		}
		/* What an agent that ended left running is ended with it. */
		if (e->fds[0].revents)
			spawn_reap_orphans();
		for (i = e->nrunning - 1; i >= 0; i--) {
			n = e->running[i];
			if (!child_done(&n->child))
				continue;
			remove_running(e, i);
			exec_attempt_ended(e, n);
		}
	}
	spawn_reap_all(ORPHAN_WAIT_MS);
	/* The last document's write failed, after the loop. */
	if (e->emit_failed)
		stopping(e);
	if (e->stop_reason)
		return orch_error_set(err, e->stop_status, "%s", e->stop_reason);
	if (e->input_error.status)
		return orch_error_set(err, e->input_error.status, "%s", e->input_error.msg);
	if (e->first_error.status)
		return orch_error_set(err, e->first_error.status, "%s", e->first_error.msg);
	return 0;
}
