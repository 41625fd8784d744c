/*
 * exec_node.c - running one node of a graph: its attempts (the context,
 * the command, retries), applying what it printed, its traces, and the
 * stack's orch.execution document once its last node has ended.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "budget.h"
#include "doc.h"
#include "estimate.h"
#include "exec_int.h"
#include "xalloc.h"
#include "banned.h"

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
	xjson_set(n->json, "effects", n->effects ? json_incref(n->effects) : json_null());
	xjson_set(n->json, "error", opt_string(n->error));
	xjson_set(n->json, "retry_after_ms", opt_int(n->retry_after_ms, n->retry_after_ms >= 0));
	if (n->budget)
		xjson_set(n->json, "budget", json_true());
}

/* Turn the stack's graph into its orch.execution document, in place. */
static json_t *execution_document(struct stack *st, int64_t duration_ms)
{
	json_t *doc = st->graph, *summary;
	int64_t succeeded = 0, failed = 0, skipped = 0, wait = -1;
	size_t i;

	for (i = 0; i < st->nnodes; i++) {
		const struct node *n = &st->nodes[i];

		node_to_json(n);
		if (n->retry_after_ms > wait)
			wait = n->retry_after_ms;
		succeeded += strcmp(n->status, "completed") == 0;
		failed += strcmp(n->status, "failed") == 0;
		skipped += strcmp(n->status, "skipped") == 0;
	}
	xjson_set(doc, "type", xjson(json_string("orch.execution")));
	xjson_set(doc, "execution_id", opt_int(st->claim.execution_id, st->claim.claimed));
	xjson_set(doc, "cycle", opt_int(st->claim.cycle, st->claim.claimed));
	xjson_set(doc, "ran", json_boolean(st->claim.claimed));
	xjson_set(doc, "skip_reason", opt_string(st->claim.skip_reason));
	/* The retry contract: orch-decide pauses the stack at least this. */
	xjson_set(doc, "retry_after_ms", opt_int(wait, wait >= 0));
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
	const char *broken = json_string_value(json_object_get(st->graph, "error"));
	size_t i;

	/* Detection could not read the stack's state: its cycle failed. */
	if (broken)
		return xasprintf("its state cannot be read: %s", broken);
	for (i = 0; i < st->nnodes; i++)
		if (strcmp(st->nodes[i].status, "failed") == 0)
			return xasprintf("%s: %s", st->nodes[i].agent,
					 st->nodes[i].error ? st->nodes[i].error : "failed");
	return NULL;
}

void exec_finish_stack(struct exec *e, struct stack *st)
{
	struct orch_error err = ORCH_ERROR_INIT;
	size_t i;
	int64_t duration = st->claim.claimed ? orch_mono_ms() - st->started_mono : 0;
	json_t *doc = execution_document(st, duration);
	char *error, *text = json_dumps(doc, JSON_COMPACT);

	st->done = 1;
	e->stacks_done++;
	e->total_nodes -= st->nnodes;
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
	if (!e->emit_failed && e->emit(doc, text, e->emit_arg) != 0) {
		e->emit_failed = 1;
		e->emit_errno = errno;
	}
	free(text);
	/* Handed on: a run of thousands of stacks keeps only the live ones.
	 * The nodes' borrowed strings go with it; nothing reads a done stack. */
	for (i = 0; i < st->nnodes; i++)
		exec_node_release(&st->nodes[i]);
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

void exec_node_set_state(struct node *n, enum node_state state)
{
	n->state = state;
	n->stack->stale = 1;
}

void exec_node_done(struct exec *e, struct node *n, const char *status,
		      char *error_owned)
{
	struct stack *st = n->stack;

	exec_node_set_state(n, NODE_DONE);
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
		exec_finish_stack(e, st);
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

void exec_attempt_failed(struct exec *e, struct node *n, char *msg,
			   int exit_status, int final)
{
	struct orch_error err = ORCH_ERROR_INIT;
	int64_t delay;

	trace_failure(e, n, exit_status, msg);
	if (actions_finish_failure(e->store, n->stack->id, n->agent, &n->task,
				   n->charged ? msg : NULL, e->cfg.park_after,
				   orch_now_ms(), &err) != 0) {
		char *both = xasprintf("%s; then %s", msg, err.msg);

		free(msg);
		msg = both;
		final = 1;
	}
	orch_error_release(&err);
	/* A wait longer than any backoff is the next cycle's: the node is
	 * not tried again before it, and orch-decide keeps the stack from
	 * running sooner. */
	if (final || n->attempts > e->cfg.retries || n->retry_after_ms > RETRY_DELAY_CAP_MS)
		final = 1;
	attempt_over(e, n, "failed", msg, final);
	if (final) {
		exec_node_done(e, n, "failed", msg);
		return;
	}
	free(msg);
	child_release(&n->child);
	free(n->context);
	free(n->trace_input);
	n->context = n->trace_input = NULL;
	exec_node_set_state(n, NODE_BACKOFF);
	delay = retry_delay(e, n->attempts);
	n->not_before = orch_mono_ms() + (n->retry_after_ms > delay ? n->retry_after_ms : delay);
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

/* Whether DOC (validated) sends a message: the one action that writes
 * other stacks' rows (the message, and their state versions). */
static int sends_message(const json_t *doc)
{
	const json_t *action;
	const char *type;
	size_t i;

	json_array_foreach(json_object_get(doc, "actions"), i, action)
		if ((type = json_string_value(json_object_get(action, "type"))) &&
		    strcmp(type, "send_message") == 0)
			return 1;
	return 0;
}

/* Apply a successful run's actions and bookkeeping, with its trace, in
 * one transaction: the stack's own, unless it writes to other stacks.
 * 0, or -1 with ERR (rolled back). */
static int apply_output(struct exec *e, struct node *n, const json_t *doc,
			int exit_status, struct orch_error *err)
{
	struct store *s = e->store;
	struct cycle_trace t;
	int64_t now = orch_now_ms();

	if (actions_validate(doc, err) != 0 ||
	    actions_check_task(doc, n->agent, n->task.todo_id, n->task.user_message_id, err) != 0)
		return -1;
	if ((sends_message(doc) ? store_begin(s, err) : store_begin_stack(s, n->stack->id, err)) != 0)
		return -1;
	if (actions_apply(s, n->stack->id, n->agent, doc, now, &n->task, err) != 0 ||
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

void exec_attempt_ended(struct exec *e, struct node *n)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct child *c = &n->child;
	int exit_status = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
	json_error_t jerr;
	json_t *doc;
	char *msg;

	if (c->timed_out || c->out_overflow)
		exit_status = -1;
	/* What the agent was given counts this failure, unless the agent
	 * said the world failed it: the provider down (69) or busy (75). */
	n->charged = exit_status != ORCH_EX_UNAVAILABLE && exit_status != ORCH_EX_TEMPFAIL;
	if ((msg = child_failure(e, c))) {
		if (exit_status > 0)
			child_retry_after(c, &n->retry_after_ms);
		/* The retry contract: 65 and 69 will fail again on this input
		 * this cycle; 75, any other status or a signal may not. */
		exec_attempt_failed(e, n, msg, exit_status, exit_status == ORCH_EX_DATAERR ||
				    exit_status == ORCH_EX_UNAVAILABLE);
		return;
	}
	if (c->out.len == 0) {
		exec_attempt_failed(e, n, xstrdup("printed nothing on standard output"), exit_status, 0);
		return;
	}
	doc = json_loadb(c->out.data, c->out.len, 0, &jerr);
	if (!doc) {
		exec_attempt_failed(e, n, xasprintf("output is not JSON: line %d: %s",
					       jerr.line, jerr.text), exit_status, 0);
		return;
	}
	if (apply_output(e, n, doc, exit_status, &err) != 0) {
		/* Refused or invalid actions are the run's; a store that failed
		 * or was busy is not. */
		n->charged = err.status == ORCH_EX_DATAERR;
		msg = xstrdup(err.msg);
		orch_error_release(&err);
		json_decref(doc);
		exec_attempt_failed(e, n, msg, exit_status, 0);
		return;
	}
	/* Checked by actions_validate(): it cannot fail here. */
	doc_opt_int(doc, "retry_after_ms", 0, ORCH_MAX_PAUSE_MS, -1, &n->retry_after_ms, &err);
	orch_error_release(&err);
	free(n->result);
	n->result = actions_summary(json_object_get(doc, "actions"));
	json_decref(n->effects);
	n->effects = actions_effects(doc);
	json_decref(doc);
	attempt_over(e, n, "completed", n->result, 1);
	exec_node_done(e, n, "completed", NULL);
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

/*
 * The token budgets' gate (budget.h), with the context CTX built and
 * BYTES long: 1 to run, CTX told the tokens left when a limit applies; 0
 * when the run was refused (its claim given back, the node skipped) or
 * has failed.
 */
static int budget_gate(struct exec *e, struct node *n, json_t *ctx, size_t bytes)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct budget_status b;
	char *why;

	if (!e->cfg.budget)
		return 1;
	if (budget_check(e->store, e->cfg.budget, n->stack->id, orch_now_ms(), 0, &b, &err) != 0) {
		exec_attempt_failed(e, n, xstrdup(err.msg), -1, err.status == ORCH_EX_DATAERR);
		orch_error_release(&err);
		return 0;
	}
	if (!(why = budget_refusal(&b, estimate_prompt_tokens(bytes)))) {
		if (b.binding)
			xjson_set(ctx, "tokens_left", xjson(json_integer((json_int_t)b.left)));
		return 1;
	}
	/* Refused before it cost anything: what it claimed goes back
	 * uncounted, and orch-decide holds the stack to the budget. */
	if (actions_finish_failure(e->store, n->stack->id, n->agent, &n->task, NULL,
				   e->cfg.park_after, orch_now_ms(), &err) != 0) {
		free(why);
		exec_attempt_failed(e, n, xstrdup(err.msg), -1, 1);
		orch_error_release(&err);
		return 0;
	}
	n->attempts--;
	n->budget = 1;
	exec_node_done(e, n, "skipped", why);
	return 0;
}

int exec_start_node(struct exec *e, struct node *n)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack *st = n->stack;
	json_t *ctx = NULL;
	int rc, in_process = e->cfg.turns && e->cfg.in_process[n->agent_index];

	/* Out of descriptors with children running: one of them ending
	 * frees some, so the node waits as it would for a -j slot. A turn
	 * in this process needs none of its own. */
	rc = in_process ? 0 : child_prepare(&n->child, &err);
	if (rc != 0 && err.status == ORCH_EX_TEMPFAIL && e->nrunning > 0) {
		orch_error_release(&err);
		return 1;
	}
	n->attempts++;
	n->attempt_started_at = orch_now_ms();
	n->attempt_started_mono = orch_mono_ms();
	if (n->attempts == 1) {
		n->started_at = n->attempt_started_at;
		n->started_mono = orch_mono_ms();
	}
	memset(&n->task, 0, sizeof(n->task));
	n->charged = 0;
	n->retry_after_ms = -1;
	if (rc != 0) {
		exec_attempt_failed(e, n, xstrdup(err.msg), -1, 0);
		orch_error_release(&err);
		return 0;
	}
	rc = context_build(e->store, st->id, n->agent, n->reason, n->attempt_started_at,
			   st->claim.execution_id, st->claim.cycle, &n->task, &ctx, &err);
	if (rc == 0) {
		exec_node_done(e, n, "skipped", xstrdup(strcmp(n->agent, "builder") == 0
			? "no pending todo left" : "nothing left to do"));
		return 0;
	}
	if (rc < 0) {
		/* The stack's data cannot be read (65): no retry will change
		 * that; the stack backs off until a person repairs it. */
		exec_attempt_failed(e, n, xstrdup(err.msg), -1, err.status == ORCH_EX_DATAERR);
		orch_error_release(&err);
		return 0;
	}
	n->context = json_dumps(ctx, JSON_COMPACT);
	if (n->context && e->cfg.budget) {
		size_t bytes = strlen(n->context);

		free(n->context);
		n->context = NULL;
		/* Refused or failed, N is done, and its stack may be gone
		 * with it: nothing of either is touched after. */
		if (!budget_gate(e, n, ctx, bytes)) {
			json_decref(ctx);
			return 0;
		}
		n->context = json_dumps(ctx, JSON_COMPACT);
	}
	n->trace_input = n->context ? trace_input(ctx, n->context) : NULL;
	json_decref(ctx);
	if (!n->context || !n->trace_input) {
		exec_attempt_failed(e, n, xstrdup("out of memory writing the context"), -1, 1);
		return 0;
	}
	if (strlen(n->context) > ORCH_MAX_DOCUMENT) {
		exec_attempt_failed(e, n, xasprintf("context larger than %d bytes",
					       ORCH_MAX_DOCUMENT), -1, 1);
		return 0;
	}
	if (in_process) {
		n->job = turns_start(e->cfg.turns, n->agent_index, n->context, strlen(n->context));
		e->nturns++;
		/* Its first request is made now, and sent with the next few
		 * (exec_run()). */
		turns_step(n->job, &n->job_wake);
		e->unsent++;
	} else if (child_start(&n->child, e->cfg.argv[n->agent_index],
			       e->cfg.env[n->agent_index], n->context, strlen(n->context),
			       ORCH_MAX_CHILD_OUTPUT, e->cfg.timeout_ms, e->cfg.kill_after_ms,
			       &err) != 0) {
		/* A command that cannot be run will not run on a retry. */
		exec_attempt_failed(e, n, xstrdup(err.msg), -1, err.status == ORCH_EX_UNAVAILABLE);
		orch_error_release(&err);
		return 0;
	}
	exec_node_set_state(n, NODE_RUNNING);
	e->running[e->nrunning++] = n;
	attempt_started(e, n);
	if (++st->running > st->max_parallel)
		st->max_parallel = st->running;
	return 0;
}
