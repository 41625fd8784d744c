#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "doc.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

int decide_rules_configure(struct decide_rules *r, const struct config *c,
			   struct orch_error *err)
{
	const struct {
		const char *key;
		int64_t *member;
	} keys[] = {
		{ "pause.busy", &r->busy_pause },
		{ "pause.idle_urgent", &r->idle_urgent },
		{ "pause.idle_normal", &r->idle_normal },
		{ "pause.idle_quiet", &r->idle_quiet },
		{ "pause.idle_cap", &r->idle_cap },
		{ "pause.failure", &r->failure_pause },
		{ "pause.failure_cap", &r->failure_cap },
		{ "pause.progress", &r->progress_pause },
		{ "pause.nothing", &r->nothing_pause },
	};
	size_t i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (config_number(c, keys[i].key, keys[i].member, err) != 0)
			return -1;
	return 0;
}

/* PAUSE doubled K-1 times, never above CAP (and never overflowing). */
static int64_t backoff(int64_t pause, int64_t k, int64_t cap)
{
	while (--k > 0 && pause < cap)
		pause *= 2;
	return pause < cap ? pause : cap;
}

static const char *ordinal_suffix(int64_t n)
{
	if (n % 100 >= 11 && n % 100 <= 13)
		return "th";
	switch (n % 10) {
	case 1: return "st";
	case 2: return "nd";
	case 3: return "rd";
	default: return "th";
	}
}

struct tally {
	int64_t completed, failed, skipped;
	int64_t todos;           /* created or reopened by completed nodes */
	int64_t recommendations; /* made by completed nodes */
	char *failed_agents;     /* owned: "builder, reviewer" */
	int64_t wait;            /* the longest retry_after_ms of a node, -1 none */
	const char *waiter;      /* borrowed: the node's agent that asked it */
	int64_t budget;          /* skipped nodes a token budget refused */
	const char *refusal;     /* borrowed: the first one's error */
};

/* A completed node's effects: what it gave the builder and the planner.
 * Absent or null (an older orch-exec, a node that did not complete) is
 * nothing. */
static int count_effects(const json_t *node, size_t i, struct tally *t,
			 struct orch_error *err)
{
	static const char *const builder_work[] = { "todos_created", "todos_reopened" };
	const json_t *effects = json_object_get(node, "effects");
	int64_t n;
	size_t k;

	if (!effects || json_is_null(effects))
		return 0;
	if (!json_is_object(effects))
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "'nodes[%zu].effects' must be an object or null", i);
	for (k = 0; k < sizeof(builder_work) / sizeof(builder_work[0]); k++) {
		if (doc_opt_int(effects, builder_work[k], 0, INT32_MAX, 0, &n, err) != 0)
			return orch_error_prefix(err, "nodes[%zu].effects", i);
		t->todos += n;
	}
	if (doc_opt_int(effects, "recommendations", 0, INT32_MAX, 0, &n, err) != 0)
		return orch_error_prefix(err, "nodes[%zu].effects", i);
	t->recommendations += n;
	return 0;
}

static int count_nodes(const json_t *nodes, struct tally *t, struct orch_error *err)
{
	const char *agent, *status;
	size_t i;
	json_t *node;

	int64_t wait;

	json_array_foreach(nodes, i, node) {
		if (!json_is_object(node))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'nodes[%zu]' must be an object", i);
		if (doc_string(node, "agent", &agent, err) != 0 ||
		    doc_string(node, "status", &status, err) != 0 ||
		    doc_opt_int(node, "retry_after_ms", 0, ORCH_MAX_PAUSE_MS, -1, &wait, err) != 0)
			return orch_error_prefix(err, "nodes[%zu]", i);
		if (orch_agent_index(agent) < 0)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "nodes[%zu]: unknown agent '%s'", i, agent);
		if (wait > t->wait) {
			t->wait = wait;
			t->waiter = agent;
		}
		if (strcmp(status, "completed") == 0) {
			t->completed++;
			if (count_effects(node, i, t, err) != 0)
				return -1;
		} else if (strcmp(status, "failed") == 0) {
			char *list = t->failed_agents
				? xasprintf("%s, %s", t->failed_agents, agent)
				: xstrdup(agent);
			free(t->failed_agents);
			t->failed_agents = list;
			t->failed++;
		} else if (strcmp(status, "skipped") == 0) {
			t->skipped++;
			if (json_is_true(json_object_get(node, "budget"))) {
				if (!t->budget++)
					t->refusal = json_string_value(json_object_get(node, "error"));
			}
		} else {
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "nodes[%zu]: 'status' must be completed, failed or skipped, not '%s'",
					      i, status);
		}
	}
	return 0;
}

/* "N THING" or "N THINGs". */
static const char *plural(int64_t n)
{
	return n == 1 ? "" : "s";
}

/*
 * The pause of a stack where no agent had work: until its next periodic
 * check, NEXT_CHECK (0: none, a change will wake it), within the floor of
 * MAX_PRIORITY's idle pause and the cap. The reason says which.
 */
static int64_t idle_pause(const struct decide_rules *r, int64_t max_priority,
			  int64_t next_check, int64_t now, char **reason)
{
	int64_t floor = max_priority >= 5 ? r->idle_urgent
		      : max_priority >= 3 ? r->idle_normal : r->idle_quiet;
	int64_t pause;

	if (next_check > 0 && next_check - now < r->idle_cap) {
		pause = next_check > now ? next_check - now : 0;
		if (pause < floor)
			pause = floor;
		*reason = xasprintf("no agent has work (highest priority %lld);"
				    " the next periodic check is due in %lld ms",
				    (long long)max_priority, (long long)(next_check - now));
	} else {
		pause = r->idle_cap;
		*reason = xasprintf("no agent has work (highest priority %lld);"
				    " a change wakes it", (long long)max_priority);
	}
	return pause < r->idle_cap ? pause : r->idle_cap;
}

json_t *decide(const json_t *execution, const struct decide_stack *now_stack,
	       int64_t now, const struct decide_rules *rules,
	       struct decision_facts *facts, struct orch_error *err)
{
	struct tally t = { 0, 0, 0, 0, 0, NULL, -1, NULL, 0, NULL };
	json_t *stack, *nodes, *out = NULL;
	const char *action = "pause", *skip_reason = NULL, *broken = NULL, *name, *rule;
	const char *state = now_stack->state;
	int64_t pause = 0, max_priority, stack_id, execution_id, detected_at, next_check, wait;
	char *reason = NULL, *waited;
	int ran;

	memset(facts, 0, sizeof(*facts));
	if (doc_check_type(execution, "orch.execution", err) != 0 ||
	    doc_object(execution, "stack", &stack, err) != 0)
		goto out;
	/* Named in full: nodes have an "id" too. */
	if (doc_int(stack, "id", 1, INT64_MAX, &stack_id, err) != 0 ||
	    doc_string(stack, "name", &name, err) != 0) {
		orch_error_prefix(err, "stack");
		goto out;
	}
	if (doc_bool(execution, "ran", &ran, err) != 0 ||
	    doc_opt_string(execution, "skip_reason", NULL, &skip_reason, err) != 0 ||
	    doc_opt_int(execution, "execution_id", 1, INT64_MAX, 0, &execution_id, err) != 0 ||
	    doc_opt_int(execution, "detected_at", 0, INT64_MAX, 0, &detected_at, err) != 0 ||
	    doc_opt_int(execution, "next_check_at", 0, INT64_MAX, 0, &next_check, err) != 0 ||
	    doc_opt_string(execution, "error", NULL, &broken, err) != 0 ||
	    doc_opt_int(execution, "retry_after_ms", 0, ORCH_MAX_PAUSE_MS, -1, &wait, err) != 0 ||
	    doc_int(execution, "max_priority", 0, 10, &max_priority, err) != 0 ||
	    doc_array(execution, "nodes", &nodes, err) != 0 ||
	    count_nodes(nodes, &t, err) != 0)
		goto out;

	facts->failed = ran && t.failed > 0;
	if (!state) {
		action = "stop";
		rule = "deleted";
		reason = xstrdup("stack was deleted");
	} else if (strcmp(state, "running") != 0) {
		action = "stop";
		rule = "not_running";
		reason = xasprintf("stack is %s", state);
	} else if (!ran) {
		rule = "busy";
		pause = rules->busy_pause;
		reason = xstrdup(skip_reason ? skip_reason : "nothing ran");
	} else if (now_stack->budget_until &&
		   (now_stack->budget_reason || t.budget > 0)) {
		/* Over a limit, or too close to it for the runs it has: until
		 * the limit resets; a raised budget (a write) wakes it. */
		rule = "budget";
		reason = xstrdup(now_stack->budget_reason ? now_stack->budget_reason
				 : t.refusal ? t.refusal : "too few tokens left for its runs");
		if (now_stack->budget_until < 0) {
			action = "stop";
			facts->stop = 1;
		} else {
			pause = now_stack->budget_until > now ? now_stack->budget_until - now : 0;
			if (pause > ORCH_MAX_PAUSE_MS)
				pause = ORCH_MAX_PAUSE_MS;
		}
	} else if (broken) {
		int64_t k = now_stack->consecutive_failures + 1;

		/* A person repairs the stack's data (orch-stack todo rm, memory
		 * clear, ...); until then it backs off like any failure. */
		rule = "broken";
		pause = backoff(rules->failure_pause, k, rules->failure_cap);
		reason = xasprintf("its state cannot be read: %s; %lld%s failed cycle in a row",
				   broken, (long long)k, ordinal_suffix(k));
		facts->failed = 1;
	} else if (detected_at && now_stack->wake_at >= detected_at) {
		action = "continue";
		rule = "woken";
		reason = xstrdup("a message, a todo or a start came after its work was"
				 " detected");
	} else if (json_array_size(nodes) == 0) {
		rule = "idle";
		pause = idle_pause(rules, max_priority, next_check, now, &reason);
	} else if (t.failed > 0) {
		int64_t k = now_stack->consecutive_failures + 1;

		rule = "failed";
		pause = backoff(rules->failure_pause, k, rules->failure_cap);
		reason = xasprintf("%lld node%s failed (%s); %lld%s failed cycle in a row",
				   (long long)t.failed, plural(t.failed),
				   t.failed_agents, (long long)k, ordinal_suffix(k));
	} else if (t.todos > 0 || t.recommendations > 0) {
		action = "continue";
		rule = "new_work";
		if (t.todos > 0 && t.recommendations > 0)
			reason = xasprintf("new work: %lld todo%s for the builder, %lld"
					   " recommendation%s for the planner",
					   (long long)t.todos, plural(t.todos),
					   (long long)t.recommendations, plural(t.recommendations));
		else if (t.todos > 0)
			reason = xasprintf("new work: %lld todo%s for the builder",
					   (long long)t.todos, plural(t.todos));
		else
			reason = xasprintf("new work: %lld recommendation%s for the planner",
					   (long long)t.recommendations, plural(t.recommendations));
	} else if (t.completed > 0) {
		rule = "progress";
		pause = rules->progress_pause;
		reason = xasprintf("%lld node%s completed, no new work for another agent",
				   (long long)t.completed, plural(t.completed));
	} else {
		rule = "nothing";
		pause = rules->nothing_pause;
		reason = xasprintf("every node was skipped (%lld)", (long long)t.skipped);
	}
	/* The retry contract: what an agent (its provider) asked for is the
	 * least pause, whatever else the cycle did. */
	if (t.wait >= wait)
		wait = t.wait;
	else
		t.waiter = NULL;
	if (strcmp(action, "stop") != 0 && ran && wait > pause) {
		action = "pause";
		rule = "retry_after";
		pause = wait;
		facts->floor = 1;
		if (wait % 1000)
			waited = xasprintf("%s asked to wait %lld ms (retry_after_ms); %s",
					   t.waiter ? t.waiter : "an agent",
					   (long long)wait, reason);
		else
			waited = xasprintf("%s asked to wait %lld s (retry_after_ms); %s",
					   t.waiter ? t.waiter : "an agent",
					   (long long)(wait / 1000), reason);
		free(reason);
		reason = waited;
	}

	facts->stack_id = stack_id;
	facts->execution_id = execution_id;
	facts->detected_at = detected_at;
	facts->record = ran && state && strcmp(state, "running") == 0;
	facts->stop &= facts->record;
	out = xjson(json_pack("{sssis O sI ss sI sI ss ss}",
			      "type", "orch.decision", "version", 1,
			      "stack", stack,
			      "execution_id", (json_int_t)execution_id,
			      "action", action,
			      "pause_ms", (json_int_t)pause,
			      "next_at", (json_int_t)(strcmp(action, "stop") == 0 ? 0 : now + pause),
			      "rule", rule,
			      "reason", reason));
	if (!execution_id)
		xjson_set(out, "execution_id", json_null());
out:
	free(t.failed_agents);
	free(reason);
	return out;
}
