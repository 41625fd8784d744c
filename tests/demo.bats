#!/usr/bin/env bats
# The README's first command runs examples/demo.sh: it must keep working;
# and the quick start after it does what the README says it does.

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

# quick_start: the README's Quick start, as lines: its code blocks' lines,
# four spaces of indent removed, from "## Quick start" to the next "## ".
quick_start() {
	awk '/^## Quick start/{on=1; next} /^## /{on=0} on && /^    /{sub(/^    /, ""); print}' \
		"$ORCH_ROOT/README.md"
}

# bounded LOOP: the README's "while PIPELINE; do :; done" run three times.
bounded() {
	sed 's/^while \(.*\); do :; done$/for i in 1 2 3; do \1 || break; done/' <<<"$1"
}

@test "README quick start without a key: the loop fails, and show says why and what to do, as written" {
	local readme cmd
	readme=$(quick_start)
	# The stack, by the README's commands (the key's line left out).
	while IFS= read -r cmd; do
		run -0 --separate-stderr bash -c "$cmd"
	done < <(grep -E '^orch-stack (init|create|start)' <<<"$readme")
	cmd=$(grep -m 1 '^while orch-detect' <<<"$readme")
	# Short failure pauses, so three failed cycles take a moment, not 35 s:
	# the commands are the README's, only the pauses are the test's.
	mkdir -p "$HOME/.config/orch"
	printf 'pause.failure = 100\n' >"$HOME/.config/orch/config"
	run -0 --separate-stderr bash -c "$(bounded "$cmd")"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r .action <<<"$output" | sort -u)" "pause"
	assert_equal "$(jq -r .reason <<<"$output" | tail -n 1)" "1 node failed (planner); 3rd failed cycle in a row"
	# What show says is what the README says it says.
	run -0 orch-stack show alpha
	assert_equal "$(sed -n '/^problem/,$p' <<<"$output")" \
		"$(sed -n '/^problem/,/runs it at once/p' <<<"$readme")"
}

@test "README quick start without a key: the offline team's loop, as written, works" {
	local readme cmd
	readme=$(quick_start)
	orch-stack init
	orch-stack create alpha --idea "a pomodoro timer web app"
	orch-stack start alpha
	cd "$ORCH_ROOT"
	cmd="$(grep -A1 '^team=' <<<"$readme")
$(bounded "$(grep '^while .*\$team' <<<"$readme")")"
	run -0 --separate-stderr bash -c "$cmd"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r .action <<<"$output" | head -n 1)" "continue"
	run -0 orch-stack show alpha
	refute_output --partial "problem"
	assert_output --partial "artifact       version "
}
