#!/usr/bin/env bats
# The README's first command runs examples/demo.sh: it must keep working.

load test_helper

@test "the demo runs the whole loop: detection, waves, agents, decisions" {
	export ORCH_DEMO_BIN=$TEST_BUILD/bin
	run -0 sh "$ORCH_ROOT/examples/demo.sh"
	assert_output --partial "communicator: priority 10 (1 unprocessed user message)"
	assert_output --partial "builder: priority 8 (1 pending todo (1 high priority)), after planner"
	assert_output --partial "wave 0: communicator + planner"
	assert_output --partial "wave 1: builder"
	# Nothing to review yet: no artifact, no todo done.
	assert_output --partial "reviewer: no work (nothing to review)"
	assert_output --partial "digraph"
	# Cycle 1: every agent ran and did its part.
	assert_output --partial "communicator: completed"
	assert_output --partial "(1 action: reply_user)"
	assert_output --partial "builder: completed"
	assert_output --partial "(1 action: write_artifact)"
	assert_output --partial "decision: continue (new work: 1 todo for the builder)"
	assert_output --partial "decision: continue (new work: 1 recommendation for the planner)"
	refute_output --partial "failed"
	assert_output --partial "artifact: version "
	assert_output --partial "unanswered user messages: 0"
	assert_output --regexp "CYCLE +STARTED"
	# Then the stack is finished, and quiet: nobody runs until a change.
	assert_output --regexp "decision: pause for [0-9]+ ms \(no agent has work \(highest priority 0\)"
	assert_output --partial "planner: no pending todos, and the plan is done"
	assert_output --partial "reviewer: nothing to review"
}
