#!/usr/bin/env bats
# orch-stack: what each subcommand writes, prints, and refuses.

load test_helper

@test "init creates the database 0600 in a 0700 directory" {
	export ORCH_DB=$BATS_TEST_TMPDIR/new/dir/orch.db
	run -0 orch-stack init
	assert_equal "$(stat -c %a "$ORCH_DB")" "600"
	assert_equal "$(stat -c %a "$BATS_TEST_TMPDIR/new/dir")" "700"
	run -0 orch-stack init
}

@test "without a database every other subcommand exits 66" {
	run -66 --separate-stderr orch-stack list
	assert_equal "$stderr" "orch-stack: no database at '$ORCH_DB' (run 'orch-stack init')"
}

@test "create writes an idle stack and its project idea" {
	orch-stack init
	run -0 orch-stack --now 5000 create alpha --idea "a timer"
	assert_equal "$(sql "SELECT name, execution_state, phase, created_at FROM stacks")" "alpha|idle|planning|5000"
	assert_equal "$(sql "SELECT title, description FROM projects")" "alpha|a timer"
	run -65 --separate-stderr orch-stack create alpha
	assert_equal "$stderr" "orch-stack: stack 'alpha' already exists"
}

@test "create refuses bad names with 64" {
	orch-stack init
	run -64 --separate-stderr orch-stack create 123
	assert_equal "${stderr_lines[0]}" "orch-stack: stack name '123' must not be all digits"
	run -64 --separate-stderr orch-stack create "a b"
	assert_equal "${stderr_lines[0]}" "orch-stack: stack name 'a b' may only hold letters, digits, '.', '_' and '-'"
	run -64 --separate-stderr orch-stack create "$(printf 'x%.0s' {1..65})"
	[[ ${stderr_lines[0]} == *"must be 1 to 64 characters" ]]
	assert_equal "$(sql "SELECT count(*) FROM stacks")" "0"
}

@test "start, pause and stop set the state and its time; start makes the stack due" {
	orch-stack init
	orch-stack create alpha
	orch-stack --now 7000 start alpha
	assert_equal "$(sql "SELECT execution_state, started_at, next_run_at FROM stacks")" "running|7000|7000"
	orch-stack --now 8000 pause 1
	assert_equal "$(sql "SELECT execution_state, paused_at FROM stacks")" "paused|8000"
	orch-stack --now 9000 stop alpha
	assert_equal "$(sql "SELECT execution_state, stopped_at FROM stacks")" "stopped|9000"
	run -66 --separate-stderr orch-stack start beta
	assert_equal "$stderr" "orch-stack: no stack 'beta'"
}

@test "say and todo add write rows; todo list shows them" {
	orch-stack init
	orch-stack create alpha
	orch-stack say alpha "hello there" --from ann
	orch-stack todo add alpha "build it" --priority 5
	orch-stack todo add alpha "test it"
	assert_equal "$(sql "SELECT sender, content, processed FROM user_messages")" "ann|hello there|0"
	assert_equal "$(sql "SELECT content, priority, status FROM todos ORDER BY id" | tr '\n' ' ')" \
		"build it|5|pending test it|3|pending "
	run -0 orch-stack todo list alpha --json
	assert_equal "$(jq -s -c 'map([.content, .priority])' <<<"$output")" '[["build it",5],["test it",3]]'
	run -64 --separate-stderr orch-stack todo add alpha x --priority 6
	assert_equal "${stderr_lines[0]}" "orch-stack: --priority: '6' is not a whole number from 1 to 5"
}

@test "show --json prints the snapshot document" {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack todo add alpha "build it"
	orch-stack say alpha "hi"
	run -0 orch-stack show --json alpha
	assert_equal "$(jq -r '.type, .project.description, .todos[0].content, .user_messages[0].content, .artifact, (.memory | keys | join(","))' <<<"$output" | tr '\n' ' ')" \
		"orch.snapshot a timer build it hi null builder,communicator,planner,reviewer "
	run -0 bash -c 'orch-stack show --json alpha | orch-detect - | jq -r .agents.communicator.priority'
	assert_equal "$output" "10"
}

@test "list fits 80 columns and names lists names" {
	orch-stack init
	orch-stack create alpha
	orch-stack create a-very-long-stack-name-that-goes-on-and-on-and-on
	run -0 orch-stack list
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	assert_output --partial "a-very-long-stack..."
	run -0 orch-stack names
	assert_equal "$output" "$(printf 'a-very-long-stack-name-that-goes-on-and-on-and-on\nalpha')"
}

@test "rm deletes the stack and everything it holds" {
	orch-stack init
	orch-stack create alpha --idea x
	orch-stack todo add alpha t
	orch-stack rm alpha
	assert_equal "$(sql "SELECT (SELECT count(*) FROM stacks) + (SELECT count(*) FROM todos) + (SELECT count(*) FROM projects)")" "0"
}

@test "usage errors exit 64 with a message" {
	orch-stack init
	run -64 --separate-stderr orch-stack
	assert_equal "${stderr_lines[0]}" "orch-stack: no subcommand given"
	run -64 --separate-stderr orch-stack frobnicate
	assert_equal "${stderr_lines[0]}" "orch-stack: unknown subcommand 'frobnicate'"
	run -64 --separate-stderr orch-stack create
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack create NAME [--idea TEXT]"
	run -64 --separate-stderr orch-stack say alpha
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack say STACK TEXT [--from SENDER]"
	run -64 --separate-stderr orch-stack show
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack show [--json] STACK"
	run -64 --separate-stderr orch-stack history
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack history STACK [--limit N] [--json]"
	run -64 --separate-stderr orch-stack graph alpha 1
	assert_equal "${stderr_lines[0]}" "orch-stack: unexpected argument '1'"
}

@test "a flag the subcommand does not take exits 64" {
	orch-stack init
	orch-stack create alpha
	run -64 --separate-stderr orch-stack graph alpha --json
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--json' does not apply to 'graph'"
	assert_equal "${stderr_lines[1]}" "usage: orch-stack [--db PATH] [--now MS] SUBCOMMAND [ARG ...]"
	assert_equal "${stderr_lines[2]}" "Try 'orch-stack --help' for more information."
	run -64 --separate-stderr orch-stack show alpha --limit 3
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--limit' does not apply to 'show'"
	run -64 --separate-stderr orch-stack --cycle 1 list
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--cycle' does not apply to 'list'"
	run -64 --separate-stderr orch-stack todo add alpha x --from ann
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--from' does not apply to 'todo add'"
	assert_equal "$(sql "SELECT count(*) FROM todos")" "0"
}

# 2026-11-25 01:02:03 UTC, in ms.
T=1795568523000

@test "show prints a summary of the stack" {
	orch-stack init
	orch-stack --now $T create alpha --idea "a pomodoro timer"
	orch-stack create beta
	for t in one two three four five; do orch-stack todo add alpha "$t"; done
	sql "UPDATE todos SET status = 'in_progress' WHERE id = 2;
	     UPDATE todos SET status = 'completed', completed_at = 1 WHERE id IN (3, 4);
	     UPDATE todos SET status = 'cancelled' WHERE id = 5"
	orch-stack say alpha "hi"
	orch-stack say alpha "answered"
	sql "UPDATE user_messages SET processed = 1 WHERE content = 'answered'"
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at)
	     VALUES (2, 1, 'direct', 1), (2, NULL, 'broadcast', 2), (1, NULL, 'own', 3), (2, 1, 'read', 4);
	     INSERT INTO message_reads VALUES (4, 1, 5);
	     INSERT INTO artifacts (stack_id, version, type, content, created_at)
	     VALUES (1, 1, 'html', 'old version', 1), (1, 2, 'html', 'hello', $T);
	     INSERT INTO memory (stack_id, agent, data, updated_at)
	     VALUES (1, 'planner', '{\"last_planning_time\": $T}', 1)"
	orch-stack --now $T start alpha
	sql "UPDATE stacks SET total_cycles = 7, consecutive_failures = 2, next_run_at = $T + 60000 WHERE id = 1"
	run -0 --separate-stderr orch-stack --now $T show alpha
	assert_equal "$stderr" ""
	assert_equal "$output" "id             1
name           alpha
state          running
phase          planning
cycles         7 (the last 2 failed)
next run       2026-11-25 01:03:03 UTC
project        alpha
description    a pomodoro timer
todos          1 pending, 1 in progress, 2 completed, 1 cancelled
user messages  1 unprocessed
messages       2 unread
artifact       version 2, 5 bytes, html, 2026-11-25 01:02:03 UTC
last planning  2026-11-25 01:02:03 UTC
last review    never"
	run -0 orch-stack --now $((T + 60000)) show 1
	assert_line --index 5 "next run       2026-11-25 01:03:03 UTC (due)"
	sql "UPDATE stacks SET next_run_at = 0"
	run -0 orch-stack show alpha
	assert_line --index 5 "next run       due"
}

@test "show of a new stack: nothing yet, and not running" {
	orch-stack init
	orch-stack create gamma
	run -0 --separate-stderr orch-stack show gamma
	assert_equal "$output" "id             1
name           gamma
state          idle
phase          planning
cycles         0
next run       -
project        -
description    -
todos          0 pending, 0 in progress, 0 completed, 0 cancelled
user messages  0 unprocessed
messages       0 unread
artifact       -
last planning  never
last review    never"
	run -66 --separate-stderr orch-stack show delta
	assert_equal "$stderr" "orch-stack: no stack 'delta'"
	assert_equal "$output" ""
}

@test "show fits 80 columns: long text is cut, control characters are spaces" {
	orch-stack init
	local long x45
	long=$(printf 'x%.0s' {1..80})
	x45=$(printf 'x%.0s' {1..45})
	orch-stack create alpha --idea "$(printf 'tab\there\nnewline %s' "$long")"
	run -0 orch-stack show alpha
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	assert_line --index 7 "description    tab here newline ${x45}..."
	# Cut between characters, never inside one.
	orch-stack create beta --idea "$(printf '\u00e9%.0s' {1..70})"
	run -0 orch-stack show beta
	assert_line --index 7 "description    $(printf '\u00e9%.0s' {1..62})..."
}

# Four cycles of alpha (executions 1-4) and one of beta.
add_cycles() {
	sql "INSERT INTO executions (stack_id, cycle, status, started_at, ended_at, owner,
	                             decision, pause_ms, next_at, reason, error, summary) VALUES
	     (1, 1, 'completed', $T, $T + 31240, 'h:1', 'continue', NULL, $T + 31240,
	      'work remains', NULL, '{\"waves\": 3, \"succeeded\": 2}'),
	     (1, 2, 'failed', $T + 60000, $T + 61000, 'h:1', 'pause', 5000, $T + 66000,
	      'a node failed', 'timed out', NULL),
	     (1, 3, 'completed', $T + 120000, $T + 120500, 'h:1', 'stop', NULL, NULL,
	      'nothing to do', NULL, '{}'),
	     (1, 4, 'running', $T + 180000, NULL, 'h:1', NULL, NULL, NULL, NULL, NULL, NULL),
	     (2, 1, 'completed', $T, $T + 1, 'h:1', 'continue', NULL, NULL, 'beta', NULL, NULL)"
}

@test "history lists the stack's cycles, newest first" {
	orch-stack init
	orch-stack create alpha
	orch-stack create beta
	add_cycles
	run -0 --separate-stderr orch-stack history alpha
	assert_equal "$stderr" ""
	assert_equal "$output" "CYCLE STARTED             DURATION STATUS    DECISION   REASON
4     2026-11-25 01:05:03        - running   -          -
3     2026-11-25 01:04:03      500 completed stop       nothing to do
2     2026-11-25 01:03:03     1000 failed    pause 5000 error: timed out
1     2026-11-25 01:02:03    31240 completed continue   work remains"
	run -0 orch-stack history beta
	assert_equal "${#lines[@]}" "2"
	assert_line --index 1 "1     2026-11-25 01:02:03        1 completed continue   beta"
}

@test "history --limit keeps the newest N; out of range exits 64" {
	orch-stack init
	orch-stack create alpha
	orch-stack create beta
	add_cycles
	run -0 orch-stack history alpha --limit 2
	assert_equal "${#lines[@]}" "3"
	assert_line --index 1 --partial "4     2026-11-25 01:05:03"
	assert_line --index 2 --partial "3     2026-11-25 01:04:03"
	run -0 orch-stack history --json --limit 1 alpha
	assert_equal "$(jq -c .cycle <<<"$output")" "4"
	run -64 --separate-stderr orch-stack history alpha --limit 0
	assert_equal "${stderr_lines[0]}" "orch-stack: --limit: '0' is not a whole number from 1 to 100000"
	run -64 --separate-stderr orch-stack history alpha --limit 100001
	assert_equal "${stderr_lines[0]}" "orch-stack: --limit: '100001' is not a whole number from 1 to 100000"
	run -64 --separate-stderr orch-stack history alpha --limit
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--limit' needs a value"
}

@test "history --json prints one object a line, nulls where nothing is recorded" {
	orch-stack init
	orch-stack create alpha
	orch-stack create beta
	add_cycles
	run -0 --separate-stderr orch-stack history alpha --json
	assert_equal "${#lines[@]}" "4"
	assert_line --index 0 '{"execution_id":4,"cycle":4,"status":"running","started_at":1795568703000,"ended_at":null,"duration_ms":null,"decision":null,"pause_ms":null,"next_at":null,"reason":null,"error":null,"summary":null}'
	assert_line --index 2 '{"execution_id":2,"cycle":2,"status":"failed","started_at":1795568583000,"ended_at":1795568584000,"duration_ms":1000,"decision":"pause","pause_ms":5000,"next_at":1795568589000,"reason":"a node failed","error":"timed out","summary":null}'
	assert_line --index 3 '{"execution_id":1,"cycle":1,"status":"completed","started_at":1795568523000,"ended_at":1795568554240,"duration_ms":31240,"decision":"continue","pause_ms":null,"next_at":1795568554240,"reason":"work remains","error":null,"summary":{"waves":3,"succeeded":2}}'
}

@test "history of a stack with no cycles: the header alone, or nothing" {
	orch-stack init
	orch-stack create alpha
	run -0 --separate-stderr orch-stack history alpha
	assert_equal "$output" "CYCLE STARTED             DURATION STATUS    DECISION   REASON"
	run -0 --separate-stderr orch-stack history alpha --json
	assert_equal "$output" ""
	assert_equal "$stderr" ""
	run -66 --separate-stderr orch-stack history nope
	assert_equal "$stderr" "orch-stack: no stack 'nope'"
}

@test "history cuts a long reason to 80 columns" {
	orch-stack init
	orch-stack create alpha
	sql "INSERT INTO executions (stack_id, cycle, status, started_at, ended_at, decision, pause_ms, reason)
	     VALUES (1, 123456, 'completed', $T, $T + 99999999, 'pause', 3600000,
	             'a reason that is far too long to fit in what is left of the line')"
	run -0 orch-stack history alpha
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	assert_line --index 1 "123456 2026-11-25 01:02:03 99999999 completed pause 3600000 a reason that is ..."
}

@test "history --json: a summary that is not JSON, or text that is not UTF-8, exits 65" {
	orch-stack init
	orch-stack create alpha
	sql "INSERT INTO executions (stack_id, cycle, status, started_at, summary)
	     VALUES (1, 5, 'running', $T, '{broken')"
	run -65 --separate-stderr orch-stack history alpha --json
	[[ $stderr == "orch-stack: summary of cycle 5 of stack 'alpha' is not valid JSON: "* ]] || fail "$stderr"
	run -0 orch-stack history alpha
	assert_line --index 1 "5     2026-11-25 01:02:03        - running   -          -"
	sql "UPDATE executions SET summary = NULL, reason = CAST(X'61ff62' AS TEXT)"
	run -65 --separate-stderr orch-stack history alpha --json
	assert_equal "$stderr" "orch-stack: reason of cycle 5 of stack 'alpha' is not valid UTF-8"
	run -0 orch-stack history alpha
	assert_line --index 1 "5     2026-11-25 01:02:03        - running   -          a?b"
}

# Cycles 1 and 2 of alpha recorded graphs; cycle 3 is running and has none.
add_graphs() {
	orch-stack create alpha
	sql "INSERT INTO executions (stack_id, cycle, status, started_at) VALUES
	     (1, 1, 'failed', $T), (1, 2, 'completed', $T + 60000), (1, 3, 'running', $T + 120000)"
	jq -c '.cycle = 2 | .stack.name = "alpha" | .nodes[1].status = "completed"
	       | .nodes[1].attempts = 1 | .nodes[3].status = "completed"
	       | .nodes[3].duration_ms = 77' "$FIXTURES/orch-graph/executed.in.json" >"$BATS_TEST_TMPDIR/c2.json"
	sql "INSERT INTO graphs VALUES (1, readfile('$FIXTURES/orch-graph/executed.in.json')),
	                               (2, readfile('$BATS_TEST_TMPDIR/c2.json'))"
}

@test "graph draws the latest recorded cycle, or --cycle N, as DOT" {
	orch-stack init
	add_graphs
	run -0 --separate-stderr orch-stack graph alpha
	assert_equal "$stderr" ""
	assert_equal "$output" "$(orch-graph --format dot "$BATS_TEST_TMPDIR/c2.json")"
	assert_line --index 0 'digraph "alpha" {'
	assert_line --partial 'reviewer [label="reviewer\npriority 6\n2 todos completed since the last review\ncompleted in 77 ms"'
	run -0 orch-stack graph alpha --cycle 1
	assert_equal "$output" "$(cat "$FIXTURES/orch-graph/executed.out.dot")"
	run -0 orch-stack graph 1 --cycle 2
	assert_equal "$output" "$(orch-graph --format dot "$BATS_TEST_TMPDIR/c2.json")"
}

@test "graph: no recorded graph exits 66" {
	orch-stack init
	add_graphs
	orch-stack create beta
	run -66 --separate-stderr orch-stack graph alpha --cycle 3
	assert_equal "$stderr" "orch-stack: no recorded graph for cycle 3 of stack 'alpha'"
	assert_equal "$output" ""
	run -66 --separate-stderr orch-stack graph 1 --cycle 9
	assert_equal "$stderr" "orch-stack: no recorded graph for cycle 9 of stack 'alpha'"
	run -66 --separate-stderr orch-stack graph beta
	assert_equal "$stderr" "orch-stack: no recorded graph for stack 'beta'"
	run -66 --separate-stderr orch-stack graph gamma
	assert_equal "$stderr" "orch-stack: no stack 'gamma'"
	run -64 --separate-stderr orch-stack graph alpha --cycle 0
	assert_equal "${stderr_lines[0]}" "orch-stack: --cycle: '0' is not a whole number from 1 to 9223372036854775807"
}

@test "graph: a stored graph that does not parse, or is no graph, exits 65" {
	orch-stack init
	add_graphs
	sql "UPDATE graphs SET graph = 'not json{' WHERE execution_id = 2"
	run -65 --separate-stderr orch-stack graph alpha
	assert_equal "$output" ""
	[[ $stderr == "orch-stack: recorded graph for cycle 2 of stack 'alpha' is not valid JSON: "* ]] || fail "$stderr"
	sql "UPDATE graphs SET graph = '{\"type\":\"orch.execution\",\"version\":1}' WHERE execution_id = 2"
	run -65 --separate-stderr orch-stack graph alpha
	assert_equal "$output" ""
	assert_equal "$stderr" "orch-stack: recorded graph for cycle 2 of stack 'alpha': 'stack' must be an object"
	run -0 orch-stack graph alpha --cycle 1
}

@test "graph: a write error exits 70" {
	orch-stack init
	add_graphs
	run -70 --separate-stderr bash -c 'orch-stack graph alpha >/dev/full'
	[[ $stderr == "orch-stack: write error"* ]] || fail "$stderr"
}
