/*
 * fuzz_decide: decide() on any orch.execution, with the stack running,
 * paused, stopped or deleted, and a failure streak, a wake and a token
 * budget (none, applying, reached) taken from the input's size.
 */
#include <string.h>

#include "decide.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const states[] = { "running", "paused", "stopped", NULL };
	struct orch_error err = ORCH_ERROR_INIT;
	struct config none = CONFIG_INIT;
	struct decide_rules rules;
	struct decision_facts facts;
	struct decide_stack stack;
	json_t *in = fuzz_json(data, size), *d;

	if (!in)
		return 0;
	if (decide_rules_configure(&rules, &none, &err) != 0)
		__builtin_trap();
	memset(&stack, 0, sizeof(stack));
	stack.state = states[size % 4];
	stack.consecutive_failures = (int64_t)(size % 70);
	stack.wake_at = size % 3 ? 1700000000000 - (int64_t)(size % 5000) : 0;
	/* A token budget: none, a daily one (reached or not), a total one. */
	if (size % 5 == 1 || size % 5 == 2)
		stack.budget_until = 1700000000000 + (int64_t)(size % 86400000);
	else if (size % 5 == 3)
		stack.budget_until = -1;
	if (size % 5 != 1 && stack.budget_until)
		stack.budget_reason = "over its daily token budget: 2 of 1 tokens today";
	d = decide(in, &stack, 1700000000000, &rules, &facts, &err);
	if (!d && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	json_decref(d);
	json_decref(in);
	return 0;
}
