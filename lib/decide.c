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
	int planner_completed;
	char *failed_agents; /* owned: "builder, reviewer" */
};

static int count_nodes(const json_t *nodes, struct tally *t, struct orch_error *err)
{
	const char *agent, *status;
	size_t i;
	json_t *node;

	json_array_foreach(nodes, i, node) {
		if (!json_is_object(node))
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "'nodes[%zu]' must be an object", i);
		if (doc_string(node, "agent", &agent, err) != 0 ||
		    doc_string(node, "status", &status, err) != 0)
			return orch_error_prefix(err, "nodes[%zu]", i);
		if (orch_agent_index(agent) < 0)
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "nodes[%zu]: unknown agent '%s'", i, agent);
		if (strcmp(status, "completed") == 0) {
			t->completed++;
			if (strcmp(agent, "planner") == 0)
				t->planner_completed = 1;
		} else if (strcmp(status, "failed") == 0) {
			char *list = t->failed_agents
				? xasprintf("%s, %s", t->failed_agents, agent)
				: xstrdup(agent);
			free(t->failed_agents);
			t->failed_agents = list;
			t->failed++;
		} else if (strcmp(status, "skipped") == 0) {
			t->skipped++;
		} else {
			return orch_error_set(err, ORCH_EX_DATAERR,
					      "nodes[%zu]: 'status' must be completed, failed or skipped, not '%s'",
					      i, status);
		}
	}
	return 0;
}

json_t *decide(const json_t *execution, const char *current_state,
	       int64_t consecutive_failures, int64_t now,
	       const struct decide_rules *rules, struct decision_facts *facts,
	       struct orch_error *err)
{
	struct tally t = { 0, 0, 0, 0, NULL };
	json_t *stack, *nodes, *out = NULL;
	const char *action = "pause", *skip_reason = NULL, *name;
	int64_t pause = 0, max_priority, stack_id, execution_id;
	char *reason = NULL;
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
	    doc_int(execution, "max_priority", 0, 10, &max_priority, err) != 0 ||
	    doc_array(execution, "nodes", &nodes, err) != 0 ||
	    count_nodes(nodes, &t, err) != 0)
		goto out;

	if (!current_state) {
		action = "stop";
		reason = xstrdup("stack was deleted");
	} else if (strcmp(current_state, "running") != 0) {
		action = "stop";
		reason = xasprintf("stack is %s", current_state);
	} else if (!ran) {
		pause = rules->busy_pause;
		reason = xstrdup(skip_reason ? skip_reason : "nothing ran");
	} else if (json_array_size(nodes) == 0) {
		pause = max_priority >= 5 ? rules->idle_urgent
		      : max_priority >= 3 ? rules->idle_normal : rules->idle_quiet;
		if (pause > rules->idle_cap)
			pause = rules->idle_cap;
		reason = xasprintf("no agent has work (highest priority %lld)",
				   (long long)max_priority);
	} else if (t.failed > 0) {
		int64_t k = consecutive_failures + 1;

		pause = backoff(rules->failure_pause, k, rules->failure_cap);
		reason = xasprintf("%lld node%s failed (%s); %lld%s failed cycle in a row",
				   (long long)t.failed, t.failed == 1 ? "" : "s",
				   t.failed_agents, (long long)k, ordinal_suffix(k));
		facts->failed = 1;
	} else if (t.completed > 0 && t.planner_completed) {
		action = "continue";
		reason = xasprintf("%lld node%s completed, the planner among them",
				   (long long)t.completed, t.completed == 1 ? "" : "s");
	} else if (t.completed > 0) {
		pause = rules->progress_pause;
		reason = xasprintf("%lld node%s completed, the planner did not run",
				   (long long)t.completed, t.completed == 1 ? "" : "s");
	} else {
		pause = rules->nothing_pause;
		reason = xasprintf("every node was skipped (%lld)", (long long)t.skipped);
	}

	facts->stack_id = stack_id;
	facts->execution_id = execution_id;
	facts->record = ran && current_state && strcmp(current_state, "running") == 0;
	out = xjson(json_pack("{sssis O sI ss sI sI ss}",
			      "type", "orch.decision", "version", 1,
			      "stack", stack,
			      "execution_id", (json_int_t)execution_id,
			      "action", action,
			      "pause_ms", (json_int_t)pause,
			      "next_at", (json_int_t)(strcmp(action, "stop") == 0 ? 0 : now + pause),
			      "reason", reason));
	if (!execution_id)
		xjson_set(out, "execution_id", json_null());
out:
	free(t.failed_agents);
	free(reason);
	return out;
}
