#!/usr/bin/env bats
# orch-stack log and cycle: what every agent did, searched, one attempt
# whole, and each cycle's recorded orch.execution.

load test_helper

setup() {
	orch_test_env
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack create beta
	orch-stack todo add alpha "build the timer"
	orch-stack say alpha "hello"
	# Something done already, so the reviewer has work from the start.
	sql "INSERT INTO todos (stack_id, content, status, priority, created_at, completed_at)
	     VALUES (1, 'done before', 'completed', 3, 1, 2)"
	orch-stack start alpha
	# A builder that talks on stderr, with a terminal escape among it.
	cat >"$BATS_TEST_TMPDIR/noisy-builder" <<'AGENT'
#!/bin/sh
echo "provider groq failed: 503, trying openai" >&2
printf 'colour \033[31mred\033[0m\n' >&2
exec builder
AGENT
	# A reviewer that fails, saying why.
	cat >"$BATS_TEST_TMPDIR/failing-reviewer" <<'AGENT'
#!/bin/sh
cat >/dev/null
echo "reviewer: the quota is exhausted" >&2
exit 3
AGENT
	chmod +x "$BATS_TEST_TMPDIR/noisy-builder" "$BATS_TEST_TMPDIR/failing-reviewer"
}

# Cycle 1 of alpha: communicator, builder (noisy) complete; the reviewer
# fails twice. Cycle 2: the planner completes, the reviewer fails twice.
# One agent at a time, so the traces' ids are known.
two_cycles() {
	local i
	for i in 1 2; do
		run_cycle --agent builder="$BATS_TEST_TMPDIR/noisy-builder" \
			--agent reviewer="$BATS_TEST_TMPDIR/failing-reviewer" -j 1 --retry-delay 0
	done
}

# trace_of AGENT: the id of AGENT's latest trace.
trace_of() {
	orch-stack log alpha --agent "$1" --limit 1 --json | jq -r .id
}

@test "log: one line an attempt, newest first: cycle, agent, attempt, status, time, tokens, result" {
	two_cycles
	sql "UPDATE traces SET started_at = 1000 * id, ended_at = 1000 * id + 180;
	     UPDATE traces SET usage = '{\"prompt_tokens\": 500, \"completion_tokens\": 60}' WHERE agent = 'planner'"
	run -0 --separate-stderr orch-stack log alpha
	assert_equal "$stderr" ""
	assert_equal "$output" "ID     CYCLE AGENT        TRY STATUS      TIME TOKENS RESULT
7          2 reviewer       2 failed     180ms      - exit status 3: reviewer...
6          2 reviewer       1 failed     180ms      - exit status 3: reviewer...
5          2 planner        1 completed  180ms    560 set_phase
4          1 reviewer       2 failed     180ms      - exit status 3: reviewer...
3          1 reviewer       1 failed     180ms      - exit status 3: reviewer...
2          1 builder        1 completed  180ms      - write_artifact
1          1 communicator   1 completed  180ms      - reply_user"
	run -0 orch-stack log beta
	assert_output "ID     CYCLE AGENT        TRY STATUS      TIME TOKENS RESULT"
}

@test "log: --cycle, --agent, --failed, --limit, --since narrow it; --json gives each whole" {
	two_cycles
	sql "UPDATE traces SET started_at = 1000 * id, ended_at = 1000 * id + 5"
	run -0 orch-stack log alpha --cycle 1 --json
	assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "4 3 2 1 "
	run -0 orch-stack log alpha --agent reviewer --json
	assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "7 6 4 3 "
	run -0 orch-stack log alpha --failed --cycle 2 --json
	assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "7 6 "
	run -0 orch-stack log alpha --limit 2 --json
	assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "7 6 "
	run -0 orch-stack log alpha --since 5000 --json
	assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "7 6 5 "
	run -0 orch-stack log alpha --agent builder --json
	assert_equal "$output" '{"id":2,"stack":"alpha","execution_id":1,"cycle":1,"agent":"builder","attempt":1,"status":"completed","started_at":2000,"ended_at":2005,"duration_ms":5,"exit_status":0,"prompt_tokens":0,"completion_tokens":0,"result":"write_artifact","error":null}'
}

@test "log -q: every word must appear in the thinking, the actions, the error or the stderr" {
	two_cycles
	run -0 orch-stack log alpha -q "groq openai" --json
	assert_equal "$(jq -r .id <<<"$output")" "2"
	run -0 orch-stack log alpha -q "quota" --json
	assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "7 6 4 3 "
	run -0 orch-stack log alpha --query "quota" --cycle 2 --limit 1 --json
	assert_equal "$(jq -r .id <<<"$output")" "7"
	# The thinking, the actions.
	run -0 orch-stack log alpha -q "todo 1" --json
	assert_equal "$(jq -r .agent <<<"$output")" "builder"
	run -0 orch-stack log alpha -q "reply_user" --json
	assert_equal "$(jq -r .agent <<<"$output")" "communicator"
	# Words, not FTS5 syntax: quotes, operators, a dash are text.
	run -0 orch-stack log alpha -q 'groq AND "(NOT' --json
	assert_output ""
	run -0 orch-stack log alpha -q 'failed: 503' --json
	assert_equal "$(jq -r .id <<<"$output")" "2"
	run -0 orch-stack log alpha -q "nothing-like-this" --json
	assert_output ""
	# The index follows the rows: gone with their stack.
	orch-stack rm alpha
	if engine_is_sqlite; then
		assert_equal "$(sql "SELECT count(*) FROM traces_fts WHERE traces_fts MATCH 'quota'")" "0"
		assert_equal "$(sql "INSERT INTO traces_fts (traces_fts) VALUES ('integrity-check'); SELECT 'ok'")" "ok"
	else
		assert_equal "$(sql "SELECT count(*) FROM traces_fts WHERE doc @@ orch_search_query('quota')")" "0"
	fi
}

@test "log show: one attempt whole, its stderr made harmless" {
	two_cycles
	run -0 --separate-stderr orch-stack log show 2
	assert_equal "$stderr" ""
	assert_line --index 0 "trace        2"
	assert_line --index 1 "stack        alpha"
	assert_line --index 2 "cycle        1 (execution 1)"
	assert_line --index 3 "agent        builder"
	assert_line --index 5 "status       completed"
	assert_line --index 6 "exit status  0"
	assert_line "context"
	assert_line '    "type": "orch.context",'
	assert_line "thinking"
	assert_line "  todo 1: build the timer"
	assert_line "actions"
	assert_line '      "type": "write_artifact",'
	assert_line "stderr"
	assert_line "  provider groq failed: 503, trying openai"
	assert_line "  colour  [31mred [0m"
	[[ $output != *$'\033'* ]] || fail "an escape reached the output"
	run -0 orch-stack log show 7
	assert_line --index 5 "status       failed"
	assert_line --index 6 "exit status  3"
	assert_line --index 10 "error        exit status 3: reviewer: the quota is exhausted"
	assert_line "  reviewer: the quota is exhausted"
	run -0 orch-stack log show 2 --json
	assert_equal "$(jq -c '[.input.type, .output.actions[0].type, .thinking, .stderr, .stderr_dropped, .exit_status]' <<<"$output")" \
		'["orch.context","write_artifact","todo 1: build the timer","provider groq failed: 503, trying openai\ncolour \u001b[31mred\u001b[0m\n",0,0]'
}

@test "log show: an agent's stderr is kept to its last 64 KiB, on success and failure" {
	cat >"$BATS_TEST_TMPDIR/chatty" <<'AGENT'
#!/bin/sh
ctx=$(cat)
i=0
while [ $i -lt 3000 ]; do echo "line $i of chatter padded to be a good deal longer than it needs"; i=$((i + 1)); done >&2
echo "the last word" >&2
printf '%s' "$ctx" | communicator
AGENT
	chmod +x "$BATS_TEST_TMPDIR/chatty"
	run_cycle --agent communicator="$BATS_TEST_TMPDIR/chatty"
	local total
	total=$(sh -c 'i=0; while [ $i -lt 3000 ]; do echo "line $i of chatter padded to be a good deal longer than it needs"; i=$((i + 1)); done; echo "the last word"' | wc -c)
	run -0 orch-stack log show "$(trace_of communicator)" --json
	assert_equal "$(jq -r '.stderr | length' <<<"$output")" "65536"
	assert_equal "$(jq -r .stderr_dropped <<<"$output")" "$((total - 65536))"
	assert_equal "$(jq -r '.stderr | split("\n") | .[-2]' <<<"$output")" "the last word"
	run -0 orch-stack log show "$(trace_of communicator)"
	assert_line "stderr (its last 65536 bytes: the $((total - 65536)) before them were not kept)"
	# A failure keeps its tail too: the error names the last line.
	orch-stack say alpha "again"
	cat >"$BATS_TEST_TMPDIR/chatty-fail" <<'AGENT'
#!/bin/sh
cat >/dev/null
i=0
while [ $i -lt 3000 ]; do echo "noise $i padded out to a line of some length, like a log"; i=$((i + 1)); done >&2
echo "fatal: the real reason" >&2
exit 1
AGENT
	chmod +x "$BATS_TEST_TMPDIR/chatty-fail"
	run_cycle --agent communicator="$BATS_TEST_TMPDIR/chatty-fail" --retries 0
	run -0 orch-stack log alpha --agent communicator --failed --json
	assert_equal "$(jq -r .error <<<"$output")" "exit status 1: fatal: the real reason"
	run -0 orch-stack log show "$(jq -r .id <<<"$output")" --json
	assert_equal "$(jq -r '.stderr | length' <<<"$output")" "65536"
}

@test "cycle: the recorded orch.execution, for orch-graph, orch-decide and jq" {
	two_cycles
	run -0 --separate-stderr orch-stack cycle alpha 1
	assert_equal "$stderr" ""
	assert_equal "$(jq -r '.type, .cycle, .stack.name, (.nodes | map("\(.agent):\(.status)") | join(" "))' <<<"$output" | tr '\n' ' ')" \
		"orch.execution 1 alpha communicator:completed builder:completed reviewer:failed "
	assert_equal "${#lines[@]}" "1"
	run -0 bash -c 'orch-stack cycle alpha 1 | orch-graph --format dot'
	assert_output --partial "digraph"
	run -0 bash -c 'orch-stack cycle alpha 2 | orch-decide --no-db'
	assert_equal "$(jq -r .type <<<"$output")" "orch.decision"
}

@test "log, log show, cycle: bad input is one line on stderr and its status" {
	run -66 --separate-stderr orch-stack log gamma
	assert_equal "$stderr" "orch-stack: no stack 'gamma'"
	run -66 --separate-stderr orch-stack log show 42
	assert_equal "$stderr" "orch-stack: no trace 42"
	run -64 --separate-stderr orch-stack log show x
	assert_equal "${stderr_lines[0]}" "orch-stack: ID: 'x' is not a whole number from 1 to 9223372036854775807"
	run -64 --separate-stderr orch-stack log alpha --agent bob
	assert_equal "${stderr_lines[0]}" "orch-stack: --agent: 'bob' is not planner, builder, communicator or reviewer"
	run -64 --separate-stderr orch-stack log alpha -q "  "
	assert_equal "${stderr_lines[0]}" "orch-stack: -q: give at least one word to look for"
	run -64 --separate-stderr orch-stack log alpha -q
	assert_equal "${stderr_lines[0]}" "orch-stack: option '-q' needs a value"
	run -64 --separate-stderr orch-stack log show 1 --failed
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--failed' does not apply to 'log show'"
	run -66 --separate-stderr orch-stack cycle alpha 3
	assert_equal "$stderr" "orch-stack: no recorded execution for cycle 3 of stack 'alpha'"
	run -64 --separate-stderr orch-stack cycle alpha
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack cycle STACK N"
	run -64 --separate-stderr orch-stack cycle alpha 0
	assert_equal "${stderr_lines[0]}" "orch-stack: cycle: '0' is not a whole number from 1 to 9223372036854775807"
	run -66 --separate-stderr orch-stack cycle gamma 1
	assert_equal "$stderr" "orch-stack: no stack 'gamma'"
}

@test "the search index is built for the traces a database had before it" {
	skip_unless_sqlite "SQLite's migration 7 (PostgreSQL begins at 12, index and all)"
	run_cycle
	# The database as an orch from before the index (schema 6) left it:
	# migration 7 undone, migration 8's one new table dropped (the tables
	# it rebuilds it rebuilds again), migration 9 undone, and migration 10's
	# new table dropped (usage_days it rebuilds), and migration 11's and
	# 12's tables dropped. A migration appended after 12 must be undone
	# here too.
	local version
	version=$(sql "PRAGMA user_version")
	assert_equal "$version" 12
	sql "DROP TABLE provider_quota; DROP TABLE stack_budgets; DROP TABLE llm_requests; DROP TABLE usage_days; DROP INDEX traces_by_execution;
	     DROP INDEX artifacts_by_execution; DROP INDEX artifacts_by_todo;
	     DROP TABLE message_failures;
	     DROP TRIGGER traces_fts_ins; DROP TRIGGER traces_fts_del; DROP TRIGGER traces_fts_upd;
	     DROP TABLE traces_fts; DROP VIEW traces_text;
	     ALTER TABLE traces DROP COLUMN stderr; ALTER TABLE traces DROP COLUMN stderr_dropped;
	     PRAGMA user_version = 6"
	run -0 orch-stack log alpha -q "reply_user" --json
	assert_equal "$(jq -r .agent <<<"$output")" "communicator"
	assert_equal "$(sql "PRAGMA user_version")" "$version"
}
