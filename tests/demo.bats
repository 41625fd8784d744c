#!/usr/bin/env bats
# The README's first command runs examples/demo.sh: it must keep working.

load test_helper

@test "the demo runs to the end and shows detection, waves and decisions" {
	export ORCH_DEMO_BIN=$TEST_BUILD/bin
	run -0 sh "$ORCH_ROOT/examples/demo.sh"
	assert_output --partial "communicator: priority 10 (1 unprocessed user message)"
	assert_output --partial "builder: priority 8 (1 pending todo (1 high priority)), after planner"
	assert_output --partial "wave 0: communicator + planner"
	assert_output --partial "wave 1: builder"
	assert_output --partial "wave 2: reviewer"
	assert_output --partial "digraph"
	assert_output --partial "builder completed: continue"
	assert_output --partial "builder failed: pause for 5000 ms"
}
