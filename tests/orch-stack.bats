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
	assert_output --partial "a-very-long-s..."
	run -0 orch-stack names
	assert_equal "$output" "$(printf 'a-very-long-stack-name-that-goes-on-and-on-and-on\nalpha')"
}

@test "list: when each stack runs next, and its failure streak, which the backoff grows with" {
	orch-stack init
	for s in idle due later failing paused; do orch-stack create "$s"; done
	for s in due later failing paused; do orch-stack --now $T start "$s"; done
	orch-stack pause paused
	sql "UPDATE stacks SET next_run_at = $T + 14 * 60000 + 5000 WHERE name = 'later';
	     UPDATE stacks SET next_run_at = $T + 3 * 3600000, consecutive_failures = 3,
	                       total_cycles = 3 WHERE name = 'failing';
	     UPDATE todos SET status = status"
	orch-stack todo add due "x"
	orch-stack say due "hi"
	run -0 --separate-stderr orch-stack --now $T list
	assert_equal "$stderr" ""
	assert_equal "$output" "ID    NAME             STATE   PHASE      CYCLES   TODOS MSGS NEXT RUN
1     idle             idle    planning        0     0/0    0 -
2     due              running planning        0     1/1    1 due
3     later            running planning        0     0/0    0 in 14m
4     failing          running planning        3     0/0    0 in 3h, 3 failed
5     paused           paused  planning        0     0/0    0 -"
	run -0 orch-stack --now $((T + 4 * 3600000)) list
	assert_line --index 4 "4     failing          running planning        3     0/0    0 due, 3 failed"
	run -0 orch-stack list --json
	assert_equal "$(jq -c 'select(.name == "failing") | [.consecutive_failures, .next_run_at, .total_cycles]' <<<"$output")" \
		"[3,$((T + 3 * 3600000)),3]"
}

@test "show: a stack that fails every cycle for the same cause says so once, with the fix" {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack start alpha
	# The default agents are orch-agent, and no key is set.
	local i
	for i in 1 2; do
		orch-detect --all --force | orch-graph | orch-exec --retries 0 | orch-decide >/dev/null
	done
	run -0 --separate-stderr orch-stack show alpha
	assert_equal "$stderr" ""
	assert_line --index 4 "cycles         2 (the last 2 failed)"
	assert_equal "${lines[14]}" "problem        the last 2 cycles failed: no API key: the agents cannot ask a"
	assert_equal "${lines[15]}" "               model"
	assert_equal "${lines[16]}" "fix            export ORCH_LLM_API_KEY or GROQ_API_KEY where the loop runs"
	assert_equal "$(grep -c '^problem' <<<"$output")" "1"
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	[[ $output == *"'orch-stack start alpha' runs it at once" ]] || fail "$output"
	# One success ends the streak, and the message.
	run_cycle
	run -0 orch-stack show alpha
	refute_output --partial "problem"
}

@test "show: an agent that cannot be run, or one error again and again, is named with its fix" {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack create beta --idea "a clock"
	orch-stack create gamma --idea "a calendar"
	printf '#!/bin/sh\nexit 0\n' >"$BATS_TEST_TMPDIR/noexec"
	printf '#!/bin/sh\necho "quota exhausted" >&2\nexit 1\n' >"$BATS_TEST_TMPDIR/broke"
	chmod +x "$BATS_TEST_TMPDIR/broke"
	orch-stack start alpha
	local i
	for i in 1 2 3; do
		run_cycle --agent planner="$BATS_TEST_TMPDIR/noexec" --retries 0
	done
	run -0 orch-stack show alpha
	assert_line "problem        the last 3 cycles failed: the agent command"
	assert_line "               '$BATS_TEST_TMPDIR/noexec' is not executable"
	assert_line "fix            chmod +x '$BATS_TEST_TMPDIR/noexec', or set"
	assert_line "               agent.planner in ~/.config/orch/config to a command that runs;"
	orch-stack stop alpha
	orch-stack start beta
	for i in 1 2; do
		run_cycle --agent planner=no-such-agent-command --retries 0
	done
	run -0 orch-stack show beta
	assert_line "problem        the last 2 cycles failed: the agent command"
	assert_line "               'no-such-agent-command' cannot be run (No such file or directory)"
	assert_line "fix            install it or put its directory on PATH where the loop runs, or"
	assert_line "               set agent.planner in ~/.config/orch/config ('orch-stack config'"
	orch-stack stop beta
	orch-stack start gamma
	for i in 1 2; do
		run_cycle --agent planner="$BATS_TEST_TMPDIR/broke" --retries 0
	done
	run -0 orch-stack show gamma
	assert_line "problem        the last 2 cycles failed: the same error each time: exit status"
	assert_line "               1: quota exhausted"
	assert_line "fix            'orch-stack log gamma --failed' shows each failed run whole, its"
	# Two causes are no one cause: nothing is said.
	run_cycle --agent planner=no-such-agent-command --retries 0
	run -0 orch-stack show gamma
	refute_output --partial "problem"
}

@test "rm deletes the stack and everything it holds" {
	orch-stack init
	orch-stack create alpha --idea x
	orch-stack todo add alpha t
	orch-stack rm alpha
	assert_equal "$(sql "SELECT (SELECT count(*) FROM stacks) + (SELECT count(*) FROM todos) + (SELECT count(*) FROM projects)")" "0"
}

@test "rm of a stack that did everything a stack does: 0, its rows gone, the others' kept" {
	orch-stack init
	busy_world
	# What alpha holds and what it left in beta's world.
	assert_equal "$(sql "SELECT count(*) > 0 FROM artifacts WHERE execution_id IS NOT NULL AND todo_id IS NOT NULL")" 1
	assert_equal "$(sql "SELECT count(*) > 0 FROM message_reads r JOIN messages m ON m.id = r.message_id
	                     WHERE m.from_stack_id = 1 AND r.stack_id = 2")" 1
	assert_equal "$(sql "SELECT count(*) FROM detect_cache")" 2
	local beta_before
	beta_before=$(sql "SELECT (SELECT count(*) FROM todos WHERE stack_id = 2), (SELECT count(*) FROM traces WHERE stack_id = 2),
	                          (SELECT count(*) FROM artifacts WHERE stack_id = 2), (SELECT count(*) FROM executions WHERE stack_id = 2),
	                          (SELECT count(*) FROM messages WHERE to_stack_id = 2)")
	run -0 --separate-stderr orch-stack rm alpha
	assert_equal "$stderr" ""
	assert_equal "$(sql "PRAGMA foreign_key_check")" ""
	assert_equal "$(sql "SELECT (SELECT count(*) FROM todos WHERE stack_id = 1) + (SELECT count(*) FROM traces WHERE stack_id = 1)
	                     + (SELECT count(*) FROM executions WHERE stack_id = 1) + (SELECT count(*) FROM artifacts WHERE stack_id = 1)
	                     + (SELECT count(*) FROM memory WHERE stack_id = 1) + (SELECT count(*) FROM detect_cache WHERE stack_id = 1)
	                     + (SELECT count(*) FROM agent_runs WHERE stack_id = 1) + (SELECT count(*) FROM message_reads WHERE stack_id = 1)
	                     + (SELECT count(*) FROM messages WHERE to_stack_id = 1 OR from_stack_id = 1)")" 0
	# What alpha told beta stays beta's, from no one now.
	assert_equal "$(sql "SELECT (SELECT count(*) FROM todos WHERE stack_id = 2), (SELECT count(*) FROM traces WHERE stack_id = 2),
	                        (SELECT count(*) FROM artifacts WHERE stack_id = 2), (SELECT count(*) FROM executions WHERE stack_id = 2),
	                        (SELECT count(*) FROM messages WHERE to_stack_id = 2)")" "$beta_before"
	assert_equal "$(sql "SELECT count(*) > 0 FROM messages WHERE to_stack_id = 2 AND from_stack_id IS NULL")" 1
	run -0 --separate-stderr orch-stack rm beta
	assert_equal "$stderr" ""
	assert_equal "$(sql "SELECT (SELECT count(*) FROM stacks) + (SELECT count(*) FROM traces) + (SELECT count(*) FROM executions)
	                     + (SELECT count(*) FROM messages WHERE to_stack_id IS NOT NULL)")" 0
	assert_equal "$(sql "PRAGMA integrity_check")" "ok"
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
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack say STACK TEXT [--from SENDER] [--wait [--timeout MS]]"
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
	     INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version)
	     VALUES (1, 'planner', 3, $T, $T, 0)"
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
	engine_is_sqlite || return 0 # PostgreSQL text is always UTF-8
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

@test "graph --format mermaid draws it for Mermaid; the reasons of failures are on the nodes" {
	orch-stack init
	add_graphs
	run -0 --separate-stderr orch-stack graph alpha --format mermaid
	assert_equal "$stderr" ""
	assert_line --index 1 'title: "alpha"'
	assert_line --index 3 "flowchart LR"
	refute_output --partial "timed out"
	run -0 orch-stack graph alpha --cycle 1 --format mermaid
	assert_output --partial "failed in 30000 ms, 3 attempts<br>timed out"
	run -0 orch-stack graph alpha --cycle 1 --format dot
	assert_output --partial 'skipped\na dependency failed"'
	run -64 --separate-stderr orch-stack graph alpha --format png
	assert_equal "${stderr_lines[0]}" "orch-stack: --format: 'png' is not dot or mermaid"
	run -64 --separate-stderr orch-stack history alpha --format dot
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--format' does not apply to 'history'"
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

# Traces of alpha (stack 1) and beta (stack 2) on two UTC days; T is
# 2026-11-25 01:02:03, D is one day.
D=86400000
add_traces() {
	orch-stack create alpha
	orch-stack create beta
	sql "INSERT INTO traces (stack_id, agent, attempt, started_at, ended_at, status, usage) VALUES
	     (1, 'builder', 1, $T, $T + 1, 'failed', NULL),
	     (1, 'builder', 2, $T + 10, $T + 11, 'completed',
	      '{\"prompt_tokens\": 1200, \"completion_tokens\": 3400, \"model\": \"m\", \"provider\": \"groq\", \"latency_ms\": 900}'),
	     (1, 'planner', 1, $T + 20, $T + 21, 'completed', '{\"prompt_tokens\": 500, \"completion_tokens\": 60}'),
	     (1, 'reviewer', 1, $T + $D, $T + $D + 1, 'completed', '{\"prompt_tokens\": 7, \"completion_tokens\": \"lots\"}'),
	     (1, 'planner', 1, $T + $D, $T + $D + 1, 'completed', '{\"prompt_tokens\": 123456789012, \"completion_tokens\": 1}'),
	     (2, 'planner', 1, $T, $T + 1, 'completed', '{\"prompt_tokens\": 99, \"completion_tokens\": 99}')"
}

@test "usage sums tokens per agent, model and UTC day, in 80 columns, with a total" {
	orch-stack init
	add_traces
	run -0 --separate-stderr orch-stack usage alpha
	assert_equal "$stderr" ""
	# A run that did not say its model is "-"; the failed builder attempt
	# reported nothing and cost nothing it could say.
	assert_equal "$output" "AGENT        MODEL        DAY        RUNS REQS       PROMPT COMPLETION   FAILED
planner      -            2026-11-25    1    0          500         60        0
planner      -            2026-11-26    1    0 123456789012          1        0
builder      -            2026-11-25    1    0            0          0        0
builder      m            2026-11-25    1    0         1200       3400        0
reviewer     -            2026-11-26    1    0            7          0        0
total                                   5    0 123456790719       3461        0
123456794180 tokens, 0 of the prompt cached, 0 spent in failed runs"
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	run -0 orch-stack usage 2
	assert_line --index 1 "planner      -            2026-11-25    1    0           99         99        0"
	# Every stack: alpha's and beta's planner runs of 2026-11-25 together.
	run -0 orch-stack usage
	assert_line --index 1 "planner      -            2026-11-25    2    0          599        159        0"
}

@test "usage --json prints one object a row; --since drops earlier runs" {
	orch-stack init
	add_traces
	run -0 --separate-stderr orch-stack usage alpha --json --since $((T + 15))
	assert_equal "$stderr" ""
	assert_equal "$output" '{"agent":"planner","model":"","day":"2026-11-25","runs":1,"failed_runs":0,"requests":0,"prompt_tokens":500,"completion_tokens":60,"cached_tokens":0,"total_tokens":560,"failed_tokens":0}
{"agent":"planner","model":"","day":"2026-11-26","runs":1,"failed_runs":0,"requests":0,"prompt_tokens":123456789012,"completion_tokens":1,"cached_tokens":0,"total_tokens":123456789013,"failed_tokens":0}
{"agent":"reviewer","model":"","day":"2026-11-26","runs":1,"failed_runs":0,"requests":0,"prompt_tokens":7,"completion_tokens":0,"cached_tokens":0,"total_tokens":7,"failed_tokens":0}'
	run -0 orch-stack usage alpha --since $((T + D))
	assert_equal "${#lines[@]}" "5"
	assert_line --index 3 "total                                   2    0 123456789019          1        0"
	run -64 --separate-stderr orch-stack usage alpha --since -1
	assert_equal "${stderr_lines[0]}" "orch-stack: --since: '-1' is not a whole number from 0 to 9223372036854775807"
}

@test "usage of a stack with no runs: the header and a zero total, or nothing" {
	orch-stack init
	orch-stack create alpha
	run -0 orch-stack usage alpha
	assert_equal "$output" "AGENT        MODEL        DAY        RUNS REQS       PROMPT COMPLETION   FAILED
total                                   0    0            0          0        0
0 tokens, 0 of the prompt cached, 0 spent in failed runs"
	run -0 --separate-stderr orch-stack usage alpha --json
	assert_equal "$output" ""
	run -66 --separate-stderr orch-stack usage nope
	assert_equal "$stderr" "orch-stack: no stack 'nope'"
	run -64 --separate-stderr orch-stack usage alpha beta
	assert_equal "${stderr_lines[0]}" "orch-stack: unexpected argument 'beta'"
	run -64 --separate-stderr orch-stack history alpha --since 5
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--since' does not apply to 'history'"
}

@test "usage: a recorded usage that is not JSON exits 65" {
	orch-stack init
	add_traces
	sql "UPDATE traces SET usage = '{broken' WHERE id = 3"
	run -65 --separate-stderr orch-stack usage alpha
	assert_equal "$output" ""
	assert_equal "$stderr" "orch-stack: usage of trace 3 of stack 'alpha' is not valid JSON"
	run -0 orch-stack usage beta
}

@test "usage: counts beyond belief count as none, and no sum overflows" {
	orch-stack init
	orch-stack create alpha
	local max=9223372036854775807
	# What an agent may report: the largest count believed (10^12), one
	# past it, INT64_MAX, past INT64_MAX, negative, fractional.
	sql "INSERT INTO traces (stack_id, agent, attempt, started_at, ended_at, status, usage) VALUES
	     (1, 'planner', 1, $T, $T, 'completed', '{\"prompt_tokens\": 1000000000000, \"completion_tokens\": $max}'),
	     (1, 'planner', 1, $T + 1, $T + 1, 'completed', '{\"prompt_tokens\": 1000000000001, \"completion_tokens\": $max}'),
	     (1, 'planner', 1, $T + 2, $T + 2, 'completed', '{\"prompt_tokens\": 99999999999999999999, \"completion_tokens\": -5}'),
	     (1, 'builder', 1, $T + 3, $T + 3, 'completed', '{\"prompt_tokens\": $max, \"completion_tokens\": 1.5}'),
	     (1, 'builder', 1, $T + 4, $T + 4, 'completed', '{\"prompt_tokens\": $max, \"completion_tokens\": 2}')"
	run -0 --separate-stderr orch-stack usage alpha
	assert_equal "$stderr" ""
	assert_equal "$output" "AGENT        MODEL        DAY        RUNS REQS       PROMPT COMPLETION   FAILED
planner      -            2026-11-25    3    0 1000000000000          0        0
builder      -            2026-11-25    2    0            0          2        0
total                                   5    0 1000000000000          2        0
1000000000002 tokens, 0 of the prompt cached, 0 spent in failed runs"
	run -0 --separate-stderr orch-stack log alpha --json
	assert_equal "$stderr" ""
	assert_equal "$(jq -c '[.prompt_tokens, .completion_tokens]' <<<"$output" | tr '\n' ' ')" \
		'[0,2] [0,0] [0,0] [0,0] [1000000000000,0] '
	run -0 --separate-stderr orch-stack report alpha -o "$BATS_TEST_TMPDIR/r.html"
	assert_equal "$stderr" ""
}

@test "usage counts what a real cycle recorded from an agent's output" {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack todo add alpha "build it"
	orch-stack start alpha
	cat >"$BATS_TEST_TMPDIR/counting-builder" <<'AGENT'
#!/bin/sh
builder | jq -c '.usage = {prompt_tokens: 40, completion_tokens: 2, model: "m", provider: "p", latency_ms: 5}'
AGENT
	chmod +x "$BATS_TEST_TMPDIR/counting-builder"
	run -0 bash -c "orch-detect --all | orch-graph | orch-exec --agent builder='$BATS_TEST_TMPDIR/counting-builder' \
		--agent planner=planner --agent communicator=communicator --agent reviewer=reviewer | orch-decide"
	run -0 orch-stack usage alpha --json
	assert_equal "$(jq -c '[.agent, .model, .runs, .prompt_tokens, .completion_tokens]' <<<"$output" | tr '\n' ' ')" \
		'["builder","m",1,40,2] '
}

@test "config prints every known key with its default when there is no file" {
	run -0 --separate-stderr orch-stack config
	assert_equal "$stderr" ""
	assert_equal "$output" "KEY                                  VALUE                             ORIGIN
agent.planner                        orch-agent --role planner         default
agent.builder                        orch-agent --role builder         default
agent.communicator                   orch-agent --role communicator    default
agent.reviewer                       orch-agent --role reviewer        default
exec.jobs                            8                                 default
exec.timeout                         600000                            default
exec.kill_after                      5000                              default
exec.retries                         1                                 default
exec.park_after                      5                                 default
exec.retry_delay                     1000                              default
exec.wave_delay                      0                                 default
exec.lease                           60000                             default
exec.in_process                      1                                 default
exec.pass_env                                                          default
detect.planning_interval             300000                            default
detect.review_interval               180000                            default
detect.strategic_length              100                               default
detect.strategic_keywords            feature, add, change project,     default
                                     different, instead, modify
detect.high_priority                 3                                 default
detect.review_min_completed          2                                 default
detect.unchanged_interval            0                                 default
detect.done_phases                   done                              default
priority.planner.no_project          10                                default
priority.planner.no_todos            9                                 default
priority.planner.recommendations     8                                 default
priority.planner.strategic           7                                 default
priority.planner.stale               4                                 default
priority.builder.high                8                                 default
priority.builder.normal              6                                 default
priority.communicator.user_message   10                                default
priority.communicator.stack_message  7                                 default
priority.reviewer.completed          6                                 default
priority.reviewer.artifact           6                                 default
priority.reviewer.stale              4                                 default
pause.busy                           1000                              default
pause.idle_urgent                    1000                              default
pause.idle_normal                    5000                              default
pause.idle_quiet                     10000                             default
pause.idle_cap                       3600000                           default
pause.failure                        5000                              default
pause.failure_cap                    300000                            default
pause.progress                       1000                              default
pause.nothing                        5000                              default
retain.cycles                        200                               default
retain.age                           2592000000                        default
retain.versions                      100                               default
budget.daily_tokens                  0                                 default
budget.total_tokens                  0                                 default
budget.stack_daily_tokens            0                                 default
budget.stack_total_tokens            0                                 default
llm.base_url                         https://api.groq.com/openai/v1    default
llm.model                            llama-3.3-70b-versatile           default
llm.fallbacks                                                          default
llm.timeout                          120000                            default
llm.deadline                         300000                            default
llm.retries                          3                                 default
llm.backoff                          1000                              default
llm.artifact_chars                   50000                             default
llm.shared_quota                     1                                 default
llm.max_tokens_by_model                                                default
llm.planner.model                                                      default
llm.planner.temperature              0.8                               default
llm.planner.max_tokens               8000                              default
llm.builder.model                                                      default
llm.builder.temperature              0.7                               default
llm.builder.max_tokens               16000                             default
llm.communicator.model                                                 default
llm.communicator.temperature         0.7                               default
llm.communicator.max_tokens          2000                              default
llm.reviewer.model                                                     default
llm.reviewer.temperature             0.5                               default
llm.reviewer.max_tokens              4000                              default"
	# It fits 80 columns: the one value wider than its column is wrapped
	# onto a line of its own, not cut.
	assert_equal "$(awk 'length($0) > 80' <<<"$output")" ""
	[ ! -e "$ORCH_DB" ] || fail "config opened the database"
}

@test "config shows each value's file and line; unknown keys are flagged" {
	mkdir -p "$HOME/.config/orch"
	local f=$HOME/.config/orch/config
	printf '%s\n' '# mine' 'exec.timeout = 300000' 'agent.builder = my-builder --fast' \
		'detect.sleepy = yes' '' 'exec.timeout = 200000' >"$f"
	run -0 --separate-stderr orch-stack config
	assert_equal "$stderr" "orch-stack: $f:4: unknown key 'detect.sleepy'"
	assert_line --index 2 "agent.builder                        my-builder --fast                 $f:3"
	assert_line --index 6 "exec.timeout                         200000                            $f:6"
	# Unknown keys come last, after every known one (the JSON rows).
	assert_equal "${lines[-1]}" "detect.sleepy                        yes                               $f:4 (unknown key)"
	# A line per setting, the header, and the one default wrapped.
	assert_equal "${#lines[@]}" "$(($(orch-stack config --json | wc -l) + 2))"
	run -0 --separate-stderr orch-stack config --json
	assert_equal "$(jq -c 'select(.origin != "default")' <<<"$output")" \
		"{\"key\":\"agent.builder\",\"value\":\"my-builder --fast\",\"origin\":\"$f:3\",\"known\":true}
{\"key\":\"exec.timeout\",\"value\":\"200000\",\"origin\":\"$f:6\",\"known\":true}
{\"key\":\"detect.sleepy\",\"value\":\"yes\",\"origin\":\"$f:4\",\"known\":false}"
	assert_equal "$(jq -s 'map(select(.known | not) | .key) | join(" ")' <<<"$output")" '"detect.sleepy"'
	(($(jq -s length <<<"$output") > 50)) || fail "too few settings: $output"
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/xdg
	run -0 --separate-stderr orch-stack config
	assert_line --index 6 "exec.timeout                         600000                            default"
}

@test "config --config FILE: that file, which must exist" {
	local f=$BATS_TEST_TMPDIR/orch.conf
	echo 'exec.jobs = 2' >"$f"
	run -0 orch-stack config --config "$f" --json
	assert_equal "$(jq -r 'select(.key == "exec.jobs") | "\(.value) \(.origin)"' <<<"$output")" "2 $f:1"
	run -66 --separate-stderr orch-stack config --config "$BATS_TEST_TMPDIR/none"
	assert_equal "$stderr" "orch-stack: cannot open configuration file '$BATS_TEST_TMPDIR/none': No such file or directory"
	assert_equal "$output" ""
	orch-stack init
	run -64 --separate-stderr orch-stack list --config "$f"
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--config' does not apply to 'list'"
	run -64 --separate-stderr orch-stack config extra
	assert_equal "${stderr_lines[0]}" "orch-stack: unexpected argument 'extra'"
}

@test "config: a value orch-exec would refuse is shown, warned about, exit 65" {
	local f=$BATS_TEST_TMPDIR/orch.conf
	printf '%s\n' 'exec.retries = 101' "agent.planner = 'unterminated" >"$f"
	run -65 --separate-stderr orch-stack config --config "$f"
	assert_equal "$stderr" "orch-stack: agent.planner ($f:2): unterminated quote in ''unterminated'
orch-stack: exec.retries = '101' ($f:1): expected a whole number from 0 to 100"
	assert_line --index 8 "exec.retries                         101                               $f:1"
	# orch-exec refuses the same file with the same words.
	run -65 --separate-stderr bash -c "orch-exec --config '$f' </dev/null"
	[[ $stderr == "orch-exec: exec.retries = '101' ($f:1)"* || $stderr == "orch-exec: agent.planner ($f:2)"* ]] || fail "$stderr"
	echo 'not a setting' >"$f"
	run -65 --separate-stderr orch-stack config --config "$f"
	assert_equal "$stderr" "orch-stack: $f:1: expected 'key = value'"
	assert_equal "$output" ""
}

@test "config: the agent commands shown are the ones orch-exec runs" {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack say alpha "hello"
	orch-stack start alpha
	mkdir -p "$HOME/.config/orch"
	local a
	for a in planner builder communicator reviewer; do
		echo "agent.$a = $ORCH_ROOT/examples/agents/$a"
	done >"$HOME/.config/orch/config"
	echo "agent.communicator = false" >>"$HOME/.config/orch/config"
	run -0 orch-stack config --json
	assert_equal "$(jq -r 'select(.key | startswith("agent.")) | .value' <<<"$output" | tr '\n' ' ')" \
		"$ORCH_ROOT/examples/agents/planner $ORCH_ROOT/examples/agents/builder false $ORCH_ROOT/examples/agents/reviewer "
	run -0 bash -c 'orch-detect --all | orch-graph | orch-exec --retries 0 | jq -r ".nodes[] | \"\(.agent) \(.status)\""'
	assert_equal "$output" "communicator failed
planner completed"
}

@test "config: the README's example file is accepted and each program uses its keys" {
	mkdir -p "$HOME/.config/orch"
	local f=$HOME/.config/orch/config
	# The indented block that starts with the file's name, de-indented.
	awk '/^    # ~\/.config\/orch\/config/ { on = 1 } on && !/^    / { exit } on { sub(/^    /, ""); print }' \
		"$ORCH_ROOT/README.md" >"$f"
	assert_equal "$(grep -c . "$f")" "11"
	run -0 --separate-stderr orch-stack config --json
	assert_equal "$stderr" ""
	assert_equal "$(jq -r 'select(.origin != "default") | "\(.key)=\(.value)"' <<<"$output" | tr '\n' ' ')" \
		"agent.builder=orch-agent --role builder --model llama-3.1-8b-instant exec.timeout=300000 detect.planning_interval=600000 detect.strategic_keywords=feature, add, redesign detect.unchanged_interval=86400000 priority.communicator.user_message=9 pause.failure_cap=900000 "
	# orch-detect and orch-decide read the same file.
	orch-stack init
	orch-stack create alpha --idea "a timer" >/dev/null
	orch-stack start alpha
	orch-stack todo add alpha "a start button" >/dev/null
	orch-stack say alpha "please REDESIGN it" >/dev/null
	run -0 bash -c "orch-detect --all | jq -c '[.agents.communicator.priority, .agents.planner.reason]'"
	assert_output '[9,"1 strategic user message since the last planning"]'
	# Nine failed cycles of alpha, as orch-exec recorded them, all in the
	# store before orch-decide runs (sqlite3 waits for no lock), recent
	# enough that retention keeps them.
	local i ids=() now
	now=$(date +%s%3N)
	for i in 1 2 3 4 5 6 7 8 9; do
		ids+=("$(sql "INSERT INTO executions (stack_id, cycle, status, started_at)
		              VALUES (1, $i, 'failed', $now) RETURNING id")")
	done
	run -0 bash -c "for id in ${ids[*]}; do
		jq -nc --argjson id \$id '{type: \"orch.execution\", version: 1, stack: {id: 1, name: \"alpha\"},
		         execution_id: \$id, ran: true, max_priority: 9, nodes: [{agent: \"builder\", status: \"failed\"}]}'
		done | orch-decide | jq -r .pause_ms | tail -n 1"
	assert_output "900000"
}

@test "config wraps a value wider than its column onto lines of its own, never cutting it" {
	local f=$BATS_TEST_TMPDIR/c v
	v="/opt/agents/a-builder-with-a-name-longer-than-the-column --model llama-3.1-8b-instant"
	echo "agent.builder = $v" >"$f"
	run -0 --separate-stderr orch-stack config --config "$f"
	assert_line --index 2 "$(printf '%-35s  %-32s  %s' agent.builder /opt/agents/a-builder-with-a-nam "$f:1")"
	assert_line --index 3 "$(printf '%-35s  %s' '' 'e-longer-than-the-column --model')"
	assert_line --index 4 "$(printf '%-35s  %s' '' 'llama-3.1-8b-instant')"
	assert_line --index 5 --regexp '^agent\.communicator +orch-agent --role communicator +default$'
	# --json has it whole, on one line.
	run -0 orch-stack config --config "$f" --json
	assert_equal "$(jq -r 'select(.key == "agent.builder") | .value' <<<"$output")" "$v"
}
