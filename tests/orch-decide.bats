#!/usr/bin/env bats
# orch-decide: continue, pause or stop, and what it records.

load test_helper

# execution [MAX_PRIORITY] [NODE...]: an orch.execution document for stack 1
# (alpha), where each NODE is AGENT:STATUS or AGENT:STATUS:EFFECT=N (what
# the node did for the other agents: todos_created, recommendations, ...).
# When the store has stack 1, the document is a cycle of it recorded
# there (a new executions row), as orch-exec would have left it.
execution() {
	local max=${1:-0} nodes="" n agent status effects id=null
	shift || true
	# orch-test-sql, not sql: this runs in bash -c too, where only this
	# function is declared. (sqlite3 would make a missing file.)
	if { [[ $ORCH_DB == postgresql://* ]] || [ -e "$ORCH_DB" ]; } &&
	   [ "$(orch-test-sql "SELECT count(*) FROM stacks WHERE id = 1" 2>/dev/null)" = 1 ]; then
		id=$(orch-test-sql "INSERT INTO executions (stack_id, cycle, status, started_at)
		     VALUES (1, (SELECT COALESCE(MAX(cycle), 0) + 1 FROM executions WHERE stack_id = 1),
		             'completed', 900) RETURNING id")
	fi
	for n in "$@"; do
		IFS=: read -r agent status effects <<<"$n"
		effects=${effects:+"{\"${effects%%=*}\":${effects##*=}}"}
		nodes+="${nodes:+,}{\"agent\":\"$agent\",\"status\":\"$status\",\"effects\":${effects:-null}}"
	done
	printf '{"type":"orch.execution","version":1,"stack":{"id":1,"name":"alpha","phase":"planning","execution_state":"running","created_at":1},"execution_id":%s,"cycle":null,"ran":true,"skip_reason":null,"max_priority":%s,"nodes":[%s]}\n' "$id" "$max" "$nodes"
}

# decide_pure ARGS...: "action pause_ms" for the document on stdin.
decide_pure() {
	orch-decide --no-db --now 1000 | jq -r '"\(.action) \(.pause_ms)"'
}

# check_at MS: the document on stdin with its next periodic check at MS.
check_at() {
	jq -c --argjson t "$1" '.next_check_at = $t'
}

@test "no nodes: a change wakes it, so it pauses pause.idle_cap (an hour)" {
	run -0 bash -c "$(declare -f execution); execution 0 | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.rule) \(.reason)"' <<<"$output")" \
		"pause 3600000 idle no agent has work (highest priority 0); a change wakes it"
}

@test "no nodes: until the next periodic check, within the floor of the highest priority" {
	assert_equal "$(execution 0 | check_at 61000 | decide_pure)" "pause 60000"
	run -0 bash -c "$(declare -f execution check_at); execution 0 | check_at 61000 | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r .reason <<<"$output")" \
		"no agent has work (highest priority 0); the next periodic check is due in 60000 ms"
	# A check a millisecond away waits for the floor, both sides of 5 and 3.
	assert_equal "$(execution 10 | check_at 1001 | decide_pure)" "pause 1000"
	assert_equal "$(execution 5 | check_at 1001 | decide_pure)" "pause 1000"
	assert_equal "$(execution 4 | check_at 1001 | decide_pure)" "pause 5000"
	assert_equal "$(execution 3 | check_at 1001 | decide_pure)" "pause 5000"
	assert_equal "$(execution 2 | check_at 1001 | decide_pure)" "pause 10000"
	assert_equal "$(execution 0 | check_at 1001 | decide_pure)" "pause 10000"
	# One past the cap is the cap.
	assert_equal "$(execution 0 | check_at 3601001 | decide_pure)" "pause 3600000"
}

@test "a failed node pauses 5000, whatever else completed" {
	assert_equal "$(execution 8 planner:completed builder:failed | decide_pure)" "pause 5000"
}

@test "new work for another agent: continue at once" {
	run -0 bash -c "$(declare -f execution); execution 9 planner:completed:todos_created=3 builder:completed | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.next_at) \(.rule) \(.reason)"' <<<"$output")" \
		"continue 0 1000 new_work new work: 3 todos for the builder"
	assert_equal "$(execution 8 builder:completed:todos_reopened=1 | decide_pure)" "continue 0"
	run -0 bash -c "$(declare -f execution); execution 6 reviewer:completed:recommendations=1 | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.reason)"' <<<"$output")" \
		"continue new work: 1 recommendation for the planner"
	# An artifact, a reply or a message to another stack is no work for
	# another agent of this stack.
	assert_equal "$(execution 8 builder:completed:artifacts=1 communicator:completed:replies=1 | decide_pure)" "pause 1000"
	assert_equal "$(execution 8 communicator:completed:messages_sent=2 | decide_pure)" "pause 1000"
}

@test "the planner ran and created nothing: pause, do not continue" {
	run -0 bash -c "$(declare -f execution); execution 9 planner:completed:todos_created=0 | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.rule) \(.reason)"' <<<"$output")" \
		"pause 1000 progress 1 node completed, no new work for another agent"
	assert_equal "$(execution 9 planner:completed | decide_pure)" "pause 1000"
}

@test "nodes completed with no new work: pause 1000" {
	assert_equal "$(execution 8 builder:completed | decide_pure)" "pause 1000"
	assert_equal "$(execution 8 planner:skipped builder:completed | decide_pure)" "pause 1000"
}

@test "woken: a write after the work was detected continues at once, whatever the cycle did" {
	orch-stack init
	make_stack alpha >/dev/null
	sql "UPDATE stacks SET wake_at = 900"
	# Detected at 800, woken at 900: the message came during the cycle.
	run -0 bash -c "$(declare -f execution); execution 0 | jq -c '.detected_at = 800' | orch-decide --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.rule)"' <<<"$output")" "continue 0 woken"
	assert_equal "$(sql 'SELECT next_run_at FROM stacks')" "900"
	# Detected after the wake: the cycle saw it; the usual rules apply.
	run -0 bash -c "$(declare -f execution); execution 0 | jq -c '.detected_at = 950' | orch-decide --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.rule)"' <<<"$output")" "pause idle"
	# A failing stack woken during its cycle runs again at once too.
	run -0 bash -c "$(declare -f execution); execution 8 builder:failed | jq -c '.detected_at = 900' | orch-decide --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.rule)"' <<<"$output")" "continue woken"
	assert_equal "$(sql 'SELECT consecutive_failures FROM stacks')" "1"
}

@test "a wake the cycle's detection already saw does not shorten the pause" {
	orch-stack init
	make_stack alpha >/dev/null
	# Woken at 950, detected at 960: the cycle had the wake's work.
	sql "UPDATE stacks SET wake_at = 950"
	run -0 bash -c "$(declare -f execution); execution 0 | jq -c '.detected_at = 960' | orch-decide --now 1000"
	assert_equal "$(sql 'SELECT next_run_at FROM stacks')" "3601000"
	sql "UPDATE stacks SET wake_at = 970"
	run -0 bash -c "$(declare -f execution); execution 0 | jq -c '.detected_at = 960' | orch-decide --now 1000"
	assert_equal "$(jq -r .rule <<<"$output")" "woken"
}

@test "every node skipped: pause 5000" {
	assert_equal "$(execution 8 builder:skipped | decide_pure)" "pause 5000"
}

@test "a stack that is not running, or was deleted, stops" {
	run -0 bash -c "$(declare -f execution); execution 8 planner:completed | sed 's/\"running\"/\"paused\"/' | orch-decide --no-db"
	assert_equal "$(jq -r '"\(.action) \(.reason)"' <<<"$output")" "stop stack is paused"
	orch-stack init
	run -0 bash -c "$(declare -f execution); execution 8 planner:completed | orch-decide"
	assert_equal "$(jq -r '"\(.action) \(.reason) \(.recorded)"' <<<"$output")" "stop stack was deleted false"
}

@test "another pipeline held the stack: pause 1000, nothing recorded" {
	orch-stack init
	make_stack alpha >/dev/null
	run -0 bash -c "$(declare -f execution); execution 0 | jq -c '.ran = false | .skip_reason = \"stack is being run by another pipeline\"' | orch-decide --now 5"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.recorded) \(.reason)"' <<<"$output")" \
		"pause 1000 false stack is being run by another pipeline"
	assert_equal "$(sql 'SELECT total_cycles, next_run_at FROM stacks')" "0|0"
}

@test "failed cycles in a row back off exponentially from 5000, capped at 300000" {
	orch-stack init
	make_stack alpha >/dev/null
	local pauses
	pauses=$(for round in 1 2 3 4 5 6 7 8; do
		execution 8 builder:failed | orch-decide --now 1000 | jq -r .pause_ms
	done | tr '\n' ' ')
	assert_equal "$pauses" "5000 10000 20000 40000 80000 160000 300000 300000 "
	run -0 bash -c "$(declare -f execution); execution 8 builder:failed | orch-decide --now 1000"
	assert_equal "$(sql 'SELECT consecutive_failures, total_cycles FROM stacks')" "9|9"
	assert_output --partial "9th failed cycle in a row"
	# one good cycle ends the streak
	run -0 bash -c "$(declare -f execution); execution 8 builder:completed | orch-decide --now 1000"
	assert_equal "$(sql 'SELECT consecutive_failures FROM stacks')" "0"
	run -0 bash -c "$(declare -f execution); execution 8 builder:failed | orch-decide --now 1000"
	assert_equal "$(jq -r .pause_ms <<<"$output")" "5000"
}

@test "retry contract: an agent's retry_after_ms is the least pause, whatever the cycle did, and a wake does not shorten it" {
	run -0 bash -c "$(declare -f execution); execution 8 builder:failed | jq -c '.retry_after_ms = 600000 | .nodes[0].retry_after_ms = 600000' | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.next_at) \(.rule)"' <<<"$output")" "pause 600000 601000 retry_after"
	assert_equal "$(jq -r .reason <<<"$output")" \
		"builder asked to wait 600 s (retry_after_ms); 1 node failed (builder); 1st failed cycle in a row"
	# Even new work waits; a wait shorter than the rule's pause changes nothing.
	run -0 bash -c "$(declare -f execution); execution 8 planner:completed:todos_created=2 | jq -c '.retry_after_ms = 1500' | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms) \(.rule) \(.reason)"' <<<"$output")" \
		"pause 1500 retry_after an agent asked to wait 1500 ms (retry_after_ms); new work: 2 todos for the builder"
	assert_equal "$(execution 8 builder:failed | jq -c '.retry_after_ms = 10' | decide_pure)" "pause 5000"
	assert_equal "$(execution 8 builder:failed | jq -c '.retry_after_ms = null' | decide_pure)" "pause 5000"
	# Stored: a wake during the cycle does not bring the stack sooner.
	orch-stack init
	make_stack alpha >/dev/null
	sql "UPDATE stacks SET wake_at = 900"
	run -0 bash -c "$(declare -f execution); execution 8 builder:failed | jq -c '.detected_at = 800 | .retry_after_ms = 600000' | orch-decide --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.rule)"' <<<"$output")" "pause retry_after"
	assert_equal "$(sql 'SELECT next_run_at, consecutive_failures FROM stacks')" "601000|1"
	assert_equal "$(sql 'SELECT rule FROM executions')" "retry_after"
	# A stopped stack stays stopped.
	run -0 bash -c "$(declare -f execution); execution 8 | jq -c '.retry_after_ms = 5000 | .stack.execution_state = \"paused\"' | orch-decide --no-db --now 1000"
	assert_equal "$(jq -r '"\(.action) \(.rule)"' <<<"$output")" "stop not_running"
	run -65 --separate-stderr bash -c "$(declare -f execution); execution 8 | jq -c '.retry_after_ms = -5' | orch-decide --no-db --now 1000"
	assert_equal "$stderr" "orch-decide: line 1: 'retry_after_ms' must be an integer from 0 to 604800000"
}

@test "retry contract: a stack whose agent keeps exiting 69 backs off, doubling, instead of spinning" {
	orch-stack init
	orch-stack create alpha --idea "an idea"
	orch-stack start alpha
	mkdir -p "$BATS_TEST_TMPDIR/agents"
	printf '#!/bin/sh\ncat >/dev/null; echo "no API key: set GROQ_API_KEY" >&2; exit 69\n' >"$BATS_TEST_TMPDIR/agents/nokey"
	chmod +x "$BATS_TEST_TMPDIR/agents/nokey"
	local i
	for i in 1 2 3 4; do
		orch-detect --all --force | orch-graph |
			orch-exec --retries 3 --agent planner="$BATS_TEST_TMPDIR/agents/nokey" |
			orch-decide --now $((i * 1000000)) >/dev/null
	done
	assert_equal "$(sql "SELECT group_concat(pause_ms, ' ') FROM (SELECT pause_ms FROM executions ORDER BY id) AS e")" \
		"5000 10000 20000 40000"
	# One attempt per cycle: 69 is not retried.
	assert_equal "$(sql 'SELECT count(*) FROM traces')" "4"
}

@test "a decision is recorded on the cycle's row and the stack" {
	orch-stack init
	make_stack alpha >/dev/null
	sql "INSERT INTO executions (id, stack_id, cycle, status, started_at) VALUES (7, 1, 1, 'completed', 900)"
	run -0 bash -c "$(declare -f execution); execution 8 builder:completed | jq -c '.execution_id = 7' | orch-decide --now 1000"
	assert_equal "$(jq -r .recorded <<<"$output")" "true"
	assert_equal "$(sql 'SELECT decision, pause_ms, next_at, reason FROM executions WHERE id = 7')" \
		"pause|1000|2000|1 node completed, no new work for another agent"
	assert_equal "$(sql 'SELECT next_run_at, total_cycles, last_executed_at FROM stacks')" "2000|1|1000"
}

@test "a cycle of another stack, none, or one decided already is refused, said, and records nothing; the rest go on" {
	orch-stack init
	make_stack alpha >/dev/null
	make_stack beta >/dev/null
	sql "INSERT INTO executions (id, stack_id, cycle, status, started_at) VALUES (7, 2, 1, 'completed', 900)"
	local good before
	good=$(execution 8 builder:completed)
	before=$(sql 'SELECT * FROM stacks; SELECT * FROM executions')
	# Another stack's cycle (a reused id), one that is not there, and no
	# id at all: each one said, none recorded, and the run goes on.
	run -0 --separate-stderr bash -c "{ jq -c '.execution_id = 7' <<<'$good'; jq -c '.execution_id = 99' <<<'$good';
		jq -c '.execution_id = null' <<<'$good'; } | orch-decide --now 1000"
	assert_equal "$stderr" "orch-decide: execution 7 is not a cycle of stack 1: nothing recorded
orch-decide: execution 99 is not a cycle of stack 1: nothing recorded
orch-decide: stack 1: the document has no execution_id: nothing recorded"
	assert_equal "$(jq -r .recorded <<<"$output" | tr '\n' ' ')" "false false false "
	assert_equal "$(sql 'SELECT * FROM stacks; SELECT * FROM executions')" "$before"
	# A document read twice (a replayed log) counts once.
	run -0 --separate-stderr bash -c "printf '%s\n%s\n' '$good' '$good' | orch-decide --now 1000"
	assert_equal "$(jq -r .recorded <<<"$output" | tr '\n' ' ')" "true false "
	assert_equal "$stderr" "orch-decide: execution $(jq .execution_id <<<"$good") of stack 1 was decided already: nothing recorded"
	assert_equal "$(sql 'SELECT total_cycles FROM stacks WHERE id = 1')" "1"
}

@test "--no-db reads and writes no database, not even a missing one" {
	run -0 bash -c "$(declare -f execution); execution 3 | orch-decide --no-db"
	[ ! -e "$ORCH_DB" ]
}

@test "--wait sleeps until the earliest next run, then exits 0" {
	orch-stack init
	make_stack alpha >/dev/null
	local now start end
	now=$(($(date +%s%3N)))
	start=$(date +%s%3N)
	run -0 bash -c "$(declare -f execution); execution 8 builder:completed | orch-decide --wait --now $now"
	end=$(date +%s%3N)
	(( end - start >= 900 )) || fail "woke after $((end - start)) ms"
	(( end - start < 3000 )) || fail "slept $((end - start)) ms"
}

@test "--wait exits 1 at once when no stack is left running" {
	orch-stack init
	make_stack alpha paused >/dev/null
	run -1 bash -c "$(declare -f execution); execution 8 builder:completed | sed 's/\"running\"/\"paused\"/' | orch-decide --wait"
	assert_equal "$(jq -r .action <<<"$output")" "stop"
	run -1 orch-decide --wait </dev/null
	assert_output ""
}

@test "--wait with no input waits for the earliest running stack in the store" {
	orch-stack init
	make_stack alpha >/dev/null
	local now start end
	now=$(date +%s%3N)
	start=$now
	sql "UPDATE stacks SET next_run_at = $((now + 1000))"
	run -0 orch-decide --wait --now "$now" </dev/null
	end=$(date +%s%3N)
	(( end - start >= 900 )) || fail "woke after $((end - start)) ms"
}

@test "golden: a pretty decision" {
	run -0 --separate-stderr bash -c "orch-decide --no-db --now 1000 --pretty < '$FIXTURES/orch-decide/failed.in.json'"
	diff -u "$FIXTURES/orch-decide/failed.out.json" <(echo "$output")
}

@test "bad input: exact status and message" {
	run -65 --separate-stderr bash -c 'echo "{\"type\":\"orch.graph\",\"version\":1}" | orch-decide --no-db'
	assert_equal "$stderr" "orch-decide: line 1: expected an orch.execution document, got 'orch.graph'"
	run -65 --separate-stderr bash -c "$(declare -f execution); { execution 1; execution 11; } | orch-decide --no-db"
	assert_equal "$stderr" "orch-decide: line 2: 'max_priority' must be an integer from 0 to 10"
	assert_equal "${#lines[@]}" "1"
	run -65 --separate-stderr bash -c "$(declare -f execution); execution 1 builder:done | orch-decide --no-db"
	assert_equal "$stderr" "orch-decide: line 1: nodes[0]: 'status' must be completed, failed or skipped, not 'done'"
	run -65 --separate-stderr bash -c "$(declare -f execution); execution 1 boss:failed | orch-decide --no-db"
	assert_equal "$stderr" "orch-decide: line 1: nodes[0]: unknown agent 'boss'"
	run -65 --separate-stderr bash -c 'printf "{\"type\":" | orch-decide --no-db'
	assert_equal "$stderr" "orch-decide: line 1: unexpected end of input inside a document"
	run -65 --separate-stderr bash -c 'echo "[1]" | orch-decide --no-db'
	assert_equal "$stderr" "orch-decide: line 1: expected a JSON object"
}

@test "bad usage and missing inputs: exact status and message" {
	run -66 --separate-stderr orch-decide --no-db /nonexistent.json
	assert_equal "$stderr" "orch-decide: cannot open '/nonexistent.json': No such file or directory"
	run -66 --separate-stderr orch-decide </dev/null
	assert_equal "$stderr" "orch-decide: no database at '$ORCH_DB' (run 'orch-stack init')"
	run -64 --separate-stderr orch-decide --now soon
	assert_equal "${stderr_lines[0]}" "orch-decide: --now: 'soon' is not a whole number from 0 to 4611686018427387903"
	run -64 --separate-stderr orch-decide --db x --no-db
	assert_equal "${stderr_lines[0]}" "orch-decide: --db and --no-db cannot be used together"
	run -64 --separate-stderr orch-decide a b
	assert_equal "${stderr_lines[0]}" "orch-decide: unexpected argument 'b'"
}

@test "config: every pause comes from the file; a key it does not set keeps its default" {
	mkdir -p "$HOME/.config/orch"
	printf '%s\n' 'pause.idle_urgent = 11' 'pause.idle_normal = 22' 'pause.idle_quiet = 33' \
		'pause.progress = 44' 'pause.nothing = 55' 'pause.failure = 66' >"$HOME/.config/orch/config"
	assert_equal "$(execution 9 | check_at 1001 | decide_pure)" "pause 11"
	assert_equal "$(execution 4 | check_at 1001 | decide_pure)" "pause 22"
	assert_equal "$(execution 1 | check_at 1001 | decide_pure)" "pause 33"
	assert_equal "$(execution 8 builder:completed | decide_pure)" "pause 44"
	assert_equal "$(execution 8 builder:skipped | decide_pure)" "pause 55"
	assert_equal "$(execution 8 builder:failed | decide_pure)" "pause 66"
	assert_equal "$(execution 0 | jq -c '.ran = false' | decide_pure)" "pause 1000"
	# The caps: an idle pause above pause.idle_cap is cut to it, and the
	# failure backoff stops at pause.failure_cap.
	printf '%s\n' 'pause.idle_quiet = 90000' 'pause.idle_cap = 20000' 'pause.busy = 7' \
		'pause.failure = 100' 'pause.failure_cap = 250' >"$HOME/.config/orch/config"
	assert_equal "$(execution 0 | decide_pure)" "pause 20000"
	assert_equal "$(execution 0 | jq -c '.ran = false' | decide_pure)" "pause 7"
	orch-stack init
	make_stack alpha >/dev/null
	assert_equal "$(for r in 1 2 3 4; do execution 8 builder:failed | orch-decide --now 1000 | jq -r .pause_ms; done | tr '\n' ' ')" \
		"100 200 250 250 "
}

@test "config: --config FILE; a bad value exits 65 before reading any input" {
	local f=$BATS_TEST_TMPDIR/c
	echo 'pause.nothing = 12' >"$f"
	assert_equal "$(execution 8 builder:skipped | orch-decide --no-db --config "$f" --now 1 | jq .pause_ms)" "12"
	printf '%s\n' '' 'pause.failure_cap = -1' >"$f"
	run -65 --separate-stderr bash -c "$(declare -f execution); execution 0 | orch-decide --no-db --config '$f'"
	assert_equal "$stderr" "orch-decide: pause.failure_cap = '-1' ($f:2): expected a whole number from 0 to 604800000"
	assert_equal "$output" ""
	run -66 --separate-stderr orch-decide --no-db --config "$BATS_TEST_TMPDIR/none" </dev/null
	assert_equal "$stderr" "orch-decide: cannot open configuration file '$BATS_TEST_TMPDIR/none': No such file or directory"
	run -64 --separate-stderr orch-decide --config
	assert_equal "${stderr_lines[0]}" "orch-decide: option '--config' needs a value"
}
