#!/usr/bin/env bats
# The whole cycle, orch-detect --all | orch-graph | orch-exec | orch-decide,
# with the offline example agents, and the README's demo itself.

load test_helper

agents() {
	local a
	for a in planner builder communicator reviewer; do
		printf -- '--agent\n%s=%s\n' "$a" "$ORCH_ROOT/examples/agents/$a"
	done
}

cycle() {
	local -a flags
	mapfile -t flags < <(agents)
	orch-detect --all --force --no-cache | orch-graph | orch-exec "${flags[@]}" "$@" |
		tee "$BATS_TEST_TMPDIR/exec.json" | orch-decide
}

setup() {
	orch_test_env
	orch-stack init
	orch-stack create alpha --idea "a pomodoro timer"
	orch-stack say alpha "please add a dark mode instead"
	orch-stack start alpha
}

@test "first cycle: planner, communicator and reviewer run in one wave; planner ran so continue" {
	run -0 cycle
	assert_equal "$(jq -c '.waves' "$BATS_TEST_TMPDIR/exec.json")" '[["planner","communicator","reviewer"]]'
	assert_equal "$(jq -r '[.nodes[].status] | unique | join(",")' "$BATS_TEST_TMPDIR/exec.json")" "completed"
	assert_equal "$(jq -r .action <<<"$output")" "continue"
	# the planner made todos, the communicator answered, bookkeeping recorded
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE status = 'pending'")" "4"
	assert_equal "$(sql "SELECT processed FROM user_messages")" "1"
	assert_equal "$(sql "SELECT status || ' ' || decision FROM executions")" "completed continue"
	assert_equal "$(sql "SELECT total_cycles FROM stacks")" "1"
}

@test "second cycle: the builder takes the top todo and writes artifact version 1" {
	cycle >/dev/null
	run -0 cycle
	assert_equal "$(jq -c '.waves' "$BATS_TEST_TMPDIR/exec.json")" '[["builder"]]'
	assert_equal "$(sql "SELECT version FROM artifacts")" "1"
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE status = 'completed'")" "1"
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE status = 'in_progress'")" "0"
	assert_equal "$(jq -r '.action + " " + (.pause_ms | tostring)' <<<"$output")" "pause 1000"
}

@test "third cycle: builder then reviewer in dependency order, reviewer recommends to the planner" {
	cycle >/dev/null
	cycle >/dev/null
	run -0 cycle
	assert_equal "$(jq -c '.waves' "$BATS_TEST_TMPDIR/exec.json")" '[["builder"],["reviewer"]]'
	assert_equal "$(sql "SELECT data ->> '\$.reviewer_recommendations[0]' FROM memory WHERE agent = 'planner'")" \
		"version 2: add a footer with the date"
}

@test "a stack that is not running is not detected, and a paused one stops" {
	orch-stack pause alpha
	run -0 --separate-stderr bash -c 'orch-detect --all | wc -l'
	assert_equal "$output" "0"
}

@test "the README's demo runs to the end and shows every agent at work" {
	run -0 sh "$ORCH_ROOT/examples/demo.sh"
	assert_output --partial "waves: planner + communicator + reviewer"
	assert_output --partial "builder: completed"
	assert_output --partial "reviewer: completed"
	assert_output --partial "decision: continue"
	assert_output --partial "Nothing left to do"
}
