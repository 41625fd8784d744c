#!/usr/bin/env bats
# orch-stack gc and the loop's retention (lib/retention.c): what is pruned,
# what never is; and the repairs a person makes: todo rm, todo clear,
# messages clear, memory clear.

load test_helper

setup() {
	orch_test_env
	mkdir -p "$HOME/.config/orch"
	orch-stack init
}

# retain KEY=VALUE...: the configuration file holds these settings.
retain() {
	printf '%s\n' "$@" | sed 's/=/ = /' >"$HOME/.config/orch/config"
}

# rows TABLE [WHERE]: how many rows TABLE has (that WHERE selects).
rows() {
	sql "SELECT count(*) FROM $1 ${2:+WHERE $2}"
}

# old_cycles N: N more finished cycles of alpha (stack 1), as orch-exec
# records them: each with its graph, two traces whose usage counts, and
# an artifact version naming it; cycle K started K ms after 1000000.
old_cycles() {
	local n=$1
	sql "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $n)
	     INSERT INTO executions (stack_id, cycle, status, started_at, ended_at, decision)
	       SELECT 1, (SELECT COALESCE(max(cycle), 0) FROM executions WHERE stack_id = 1) + i,
	              'completed', 1000000 + i, 1000000 + i, 'pause' FROM k;
	     INSERT INTO graphs (execution_id, graph)
	       SELECT id, '{}' FROM executions WHERE id NOT IN (SELECT execution_id FROM graphs);
	     INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status, usage, error)
	       SELECT e.id, 1, a.agent, 1, e.started_at, e.started_at, 'completed',
	              '{\"prompt_tokens\": 100, \"completion_tokens\": 10}', 'needle ' || e.cycle
	       FROM executions e, (SELECT 'planner' AS agent UNION ALL SELECT 'builder') a
	       WHERE e.id NOT IN (SELECT execution_id FROM traces WHERE execution_id IS NOT NULL);
	     INSERT INTO artifacts (stack_id, version, type, content, created_at, execution_id)
	       SELECT 1, e.cycle, 'html', 'v' || e.cycle, e.started_at, e.id FROM executions e
	       WHERE e.id NOT IN (SELECT execution_id FROM artifacts WHERE execution_id IS NOT NULL);"
}

@test "gc prunes the cycles beyond retain.cycles, with their graphs, runs and index" {
	orch-stack create alpha
	orch-stack create beta
	old_cycles 30
	retain retain.cycles=10 retain.versions=0 retain.age=0
	local usage
	usage=$(orch-stack usage alpha)
	run -0 --separate-stderr orch-stack gc
	assert_equal "$stderr" ""
	assert_equal "$output" "STACK                   CYCLES      RUNS  VERSIONS  MESSAGES     CACHE
alpha                       20        40         0         0         0
beta                         0         0         0         0         0
(no stack)                   0         0         0         0         0
total                       20        40         0         0         0"
	assert_equal "$(sql "SELECT min(cycle) || '-' || max(cycle) FROM executions")" "21-30"
	assert_equal "$(rows graphs)" 10
	assert_equal "$(rows traces)" 20
	assert_equal "$(rows artifacts "execution_id IS NULL")" 20
	# The full-text index followed: what went is not found, and it holds.
	run -0 orch-stack log alpha -q "needle 20" --json
	assert_equal "$output" ""
	run -0 orch-stack log alpha -q "needle 21" --json
	assert_equal "$(jq -s length <<<"$output")" 2
	engine_is_sqlite && sql "INSERT INTO traces_fts (traces_fts) VALUES ('integrity-check')"
	# The tokens of what went still count, by day.
	assert_equal "$(orch-stack usage alpha)" "$usage"
	# Nothing left to prune.
	run -0 orch-stack gc alpha --json
	assert_equal "$output" '{"stack":"alpha","cycles":0,"runs":0,"versions":0,"messages":0,"cache":0,"dry_run":false}'
	assert_equal "$(sql "PRAGMA foreign_key_check")" ""
}

@test "gc --dry-run says what would go and changes nothing" {
	orch-stack create alpha
	old_cycles 12
	retain retain.cycles=5 retain.versions=3 retain.age=0
	local before
	before=$(sql .dump)
	run -0 --separate-stderr orch-stack gc alpha --dry-run --json
	assert_equal "$stderr" ""
	assert_equal "$output" '{"stack":"alpha","cycles":7,"runs":14,"versions":9,"messages":0,"cache":0,"dry_run":true}'
	assert_equal "$(sql .dump)" "$before"
	run -0 orch-stack gc alpha --json
	assert_equal "$output" '{"stack":"alpha","cycles":7,"runs":14,"versions":9,"messages":0,"cache":0,"dry_run":false}'
	# The latest version stays, and the next is numbered after it.
	assert_equal "$(sql "SELECT group_concat(version) FROM artifacts")" "10,11,12"
	run -0 orch-stack artifact alpha
	assert_equal "$output" "v12"
}

@test "age: cycles and broadcasts older than retain.age go; the latest cycle stays" {
	orch-stack create alpha
	orch-stack create beta
	old_cycles 4
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES
	     (1, NULL, 'old news', 1000000), (1, NULL, 'news', 5000000),
	     (NULL, NULL, 'from a stack now gone', 1000000)"
	retain retain.age=2000000
	# Before 1000004 is too old: cycles 1 to 3 (cycle 4 is the latest).
	run -0 --separate-stderr orch-stack --now 3000004 gc --json
	assert_equal "$stderr" ""
	assert_equal "$output" '{"stack":"alpha","cycles":3,"runs":6,"versions":0,"messages":1,"cache":0,"dry_run":false}
{"stack":"beta","cycles":0,"runs":0,"versions":0,"messages":0,"cache":0,"dry_run":false}
{"stack":null,"cycles":0,"runs":0,"versions":0,"messages":1,"cache":0,"dry_run":false}'
	assert_equal "$(sql "SELECT group_concat(cycle) FROM executions")" "4"
	assert_equal "$(sql "SELECT group_concat(content, '|') FROM messages")" "news"
	# 0 keeps all, whatever the age.
	retain retain.age=0 retain.cycles=0 retain.versions=0
	old_cycles 3
	run -0 orch-stack --now 99999999999 gc alpha --json
	assert_equal "$(jq -c '[.cycles, .versions]' <<<"$output")" "[0,0]"
}

@test "never pruned: running and abandoned cycles, unread messages, a running stack's received ones" {
	busy_world 2
	retain retain.cycles=1 retain.versions=1 retain.age=1
	# The loop pruned what each read as it went; one more read by alpha.
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (2, 1, 'read', 1);
	     INSERT INTO message_reads VALUES ((SELECT max(id) FROM messages), 1, 2)"
	local received
	received=$(rows messages "to_stack_id IS NOT NULL")
	run -0 --separate-stderr orch-stack gc --json
	assert_equal "$stderr" ""
	# Every running cycle stays, with its run; so does the latest
	# finished one; the others went.
	assert_equal "$(rows executions "status = 'running'")" 3
	assert_equal "$(rows traces "execution_id IN (SELECT id FROM executions WHERE status = 'running')")" 3
	assert_equal "$(sql "SELECT count(*) FROM executions WHERE status <> 'running'")" 0
	assert_equal "$(rows artifacts "stack_id = 1")" 1
	# A cycle of each is running: their agents may still name what they
	# received, so none of it went; only broadcasts older than the age.
	assert_equal "$(rows messages "to_stack_id IS NOT NULL")" "$received"
	assert_equal "$(rows messages "to_stack_id IS NULL")" 0
	# Once no cycle runs, what each read goes, what it did not stays.
	sql "UPDATE executions SET status = 'failed' WHERE status = 'running';
	     INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, 2, 'unread', 1)"
	run -0 orch-stack gc --json
	assert_equal "$(rows messages "content = 'read'")" 0
	assert_equal "$(rows messages "content = 'unread'")" 1
	assert_equal "$(rows messages "to_stack_id IS NOT NULL")" "$(rows messages "to_stack_id IS NOT NULL AND NOT EXISTS
	    (SELECT 1 FROM message_reads r WHERE r.message_id = messages.id AND r.stack_id = to_stack_id)")"
	assert_equal "$(rows todos)" "$(rows todos "1 = 1")"
	(( $(rows user_messages) == 4 )) || fail "user messages were pruned"
	(( $(rows memory) > 0 )) || fail "memory was pruned"
	assert_equal "$(sql "PRAGMA foreign_key_check")" ""
}

@test "gc removes the detection cache rows of deleted stacks" {
	skip_unless_sqlite "a row against the keys, as the sqlite3 shell writes one (PostgreSQL enforces them)"
	orch-stack create alpha
	orch-stack start alpha
	orch-detect --all >/dev/null
	# A database whose keys were once off: the sqlite3 shell's default.
	sqlite3 "$ORCH_DB" "INSERT INTO detect_cache (stack_id, state_version, computed_at, status) VALUES (42, 1, 1, '{}')"
	run -0 orch-stack gc --json
	assert_line '{"stack":null,"cycles":0,"runs":0,"versions":0,"messages":0,"cache":1,"dry_run":false}'
	assert_equal "$(sql "SELECT group_concat(stack_id) FROM detect_cache")" "1"
}

@test "the loop prunes after each decision, at most 8 rows of each kind" {
	orch-stack create alpha --idea "a timer"
	old_cycles 20
	orch-stack start alpha
	retain retain.cycles=2 retain.versions=2 retain.age=0
	run_cycle
	# 21 cycles, 2 kept: 8 went with the decision.
	assert_equal "$(rows executions)" 13
	assert_equal "$(rows artifacts "stack_id = 1")" 12
	run_cycle
	assert_equal "$(rows executions)" 6
	run_cycle
	assert_equal "$(rows executions)" 2
	# The old cycles' runs are counted still, on their day.
	assert_equal "$(sql "SELECT group_concat(agent || runs) FROM usage_days WHERE day = '1970-01-01'")" \
		"builder20,planner20"
}

@test "usage: the sums of pruned and kept runs stop at 2^63 - 1" {
	orch-stack create alpha
	sql "INSERT INTO usage_days (stack_id, agent, model, day, runs, prompt_tokens, completion_tokens)
	     VALUES (1, 'planner', '', '2026-11-25', 3, 9223372036854775000, 5),
	            (1, 'planner', '', '2026-11-26', 1, 9223372036854775000, 0)"
	sql "INSERT INTO traces (stack_id, agent, attempt, started_at, ended_at, status, usage) VALUES
	     (1, 'planner', 1, $T, $T, 'completed', '{\"prompt_tokens\": 1000000000000, \"completion_tokens\": 1}')"
	run -0 --separate-stderr orch-stack usage alpha
	assert_equal "$stderr" ""
	assert_equal "$output" "AGENT        MODEL        DAY        RUNS REQS       PROMPT COMPLETION   FAILED
planner      -            2026-11-25    4    0 9223372036854775807          6        0
planner      -            2026-11-26    1    0 9223372036854775000          0        0
total                                   5    0 9223372036854775807          6        0
9223372036854775807 tokens, 0 of the prompt cached, 0 spent in failed runs"
}
T=1795568523000

@test "gc: bad settings, a missing stack, flags of others" {
	orch-stack create alpha
	retain retain.cycles=-1
	run -65 --separate-stderr orch-stack gc
	assert_equal "$stderr" "orch-stack: retain.cycles = '-1' ($HOME/.config/orch/config:1): expected a whole number from 0 to 1000000000"
	run -0 orch-stack gc --config /dev/null --json
	run -66 --separate-stderr orch-stack gc nope --config /dev/null
	assert_equal "$stderr" "orch-stack: no stack 'nope'"
	run -64 --separate-stderr orch-stack gc alpha beta
	assert_equal "${stderr_lines[0]}" "orch-stack: unexpected argument 'beta'"
	run -64 --separate-stderr orch-stack list --dry-run
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--dry-run' does not apply to 'list'"
}

# --- repairs ------------------------------------------------------------

@test "todo rm: one todo of the stack; another's or none is 66" {
	orch-stack create alpha
	orch-stack create beta
	orch-stack todo add alpha one
	orch-stack todo add alpha two
	orch-stack todo add beta three
	sql "INSERT INTO artifacts (stack_id, version, type, content, created_at, todo_id) VALUES (1, 1, 'html', 'x', 1, 1)"
	run -0 --separate-stderr orch-stack todo rm alpha 1
	assert_equal "$output$stderr" ""
	assert_equal "$(sql "SELECT group_concat(content) FROM todos")" "two,three"
	assert_equal "$(sql "SELECT COALESCE(CAST(todo_id AS TEXT), 'none') FROM artifacts")" "none"
	run -66 --separate-stderr orch-stack todo rm alpha 3
	assert_equal "$stderr" "orch-stack: no todo 3 in stack 'alpha'"
	run -66 --separate-stderr orch-stack todo rm alpha 1
	assert_equal "$stderr" "orch-stack: no todo 1 in stack 'alpha'"
	run -64 --separate-stderr orch-stack todo rm alpha x
	assert_equal "${stderr_lines[0]}" "orch-stack: todo rm: 'x' is not a whole number from 1 to 9223372036854775807"
	run -64 --separate-stderr orch-stack todo rm alpha
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack todo rm STACK ID"
	run -66 --separate-stderr orch-stack todo rm nope 2
	assert_equal "$stderr" "orch-stack: no stack 'nope'"
	assert_equal "$(rows todos)" 2
}

@test "todo clear: the finished ones by default, one status with --status" {
	orch-stack create alpha
	local s
	for s in pending pending in_progress completed completed cancelled; do
		sql "INSERT INTO todos (stack_id, content, status, created_at) VALUES (1, '$s', '$s', 1)"
	done
	run -0 --separate-stderr orch-stack todo clear alpha
	assert_equal "$output" "removed 3 todos"
	assert_equal "$(sql "SELECT group_concat(status) FROM (SELECT status FROM todos ORDER BY id) AS t")" \
		"pending,pending,in_progress"
	run -0 orch-stack todo clear alpha --status pending
	assert_equal "$output" "removed 2 todos"
	run -0 orch-stack todo clear alpha --status parked
	assert_equal "$output" "removed 0 todos"
	run -64 --separate-stderr orch-stack todo clear alpha --status done
	assert_equal "${stderr_lines[0]}" "orch-stack: --status: 'done' is not pending, in_progress, completed, cancelled or parked"
	run -64 --separate-stderr orch-stack todo list alpha --status pending
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--status' does not apply to 'todo list'"
	# A todo in progress while a cycle runs is the builder's: 75.
	sql "INSERT INTO executions (stack_id, cycle, status, started_at) VALUES (1, 1, 'running', 1)"
	run -75 --separate-stderr orch-stack todo clear alpha --status in_progress
	assert_equal "$stderr" "orch-stack: todos in progress: a cycle of the stack is running; try again when it ends"
	run -75 --separate-stderr orch-stack todo rm alpha 3
	assert_equal "$stderr" "orch-stack: the todo is in progress: a cycle of the stack is running; try again when it ends"
	sql "UPDATE executions SET status = 'failed'"
	run -0 orch-stack todo clear alpha --status in_progress
	assert_equal "$output" "removed 1 todo"
	assert_equal "$(rows todos)" 0
}

@test "messages clear: the answered ones by default, the waiting ones with --unanswered" {
	orch-stack create alpha
	orch-stack create beta
	orch-stack say alpha "answered"
	orch-stack say alpha "waiting"
	orch-stack say beta "beta's"
	sql "UPDATE user_messages SET processed = 1, response = 'ok' WHERE id = 1"
	run -0 --separate-stderr orch-stack messages clear alpha
	assert_equal "$output" "removed 1 message"
	assert_equal "$(sql "SELECT group_concat(content) FROM user_messages")" "waiting,beta's"
	sql "INSERT INTO executions (stack_id, cycle, status, started_at) VALUES (1, 1, 'running', 1)"
	run -75 --separate-stderr orch-stack messages clear alpha --unanswered
	assert_equal "$stderr" "orch-stack: unanswered messages: a cycle of the stack is running; try again when it ends"
	sql "UPDATE executions SET status = 'completed'"
	run -0 orch-stack messages clear alpha --unanswered
	assert_equal "$output" "removed 1 message"
	assert_equal "$(rows user_messages)" 1
	run -64 --separate-stderr orch-stack messages clear alpha --unanswered --stacks
	assert_equal "${stderr_lines[0]}" "orch-stack: --unanswered and --stacks do not go together"
	run -64 --separate-stderr orch-stack messages clear
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack messages clear STACK [--unanswered | --stacks]"
}

@test "messages clear --stacks: its own messages removed, others' broadcasts marked read" {
	orch-stack create alpha
	orch-stack create beta
	orch-stack create gamma
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES
	     (2, 1, 'to alpha', 1), (3, 1, 'to alpha too', 1), (1, 2, 'to beta', 1),
	     (2, NULL, 'to all', 1), (1, NULL, 'from alpha to all', 1)"
	run -0 --separate-stderr orch-stack messages clear alpha --stacks
	assert_equal "$output" "removed 2 messages from other stacks, marked 1 broadcast read"
	assert_equal "$(sql "SELECT group_concat(content, '|') FROM messages")" "to beta|to all|from alpha to all"
	run -0 orch-stack messages alpha --stacks --json
	assert_equal "$(jq -r 'select(.content == "to all") | .read_at != null' <<<"$output")" "true"
	# gamma has not read the broadcast: it is still there for it.
	run -0 orch-stack messages gamma --stacks --json
	assert_equal "$(jq -r 'select(.content == "to all") | .read_at' <<<"$output")" "null"
	run -0 orch-stack messages clear alpha --stacks
	assert_equal "$output" "removed 0 messages from other stacks, marked 0 broadcasts read"
}

@test "memory clear: every agent's, or one's" {
	orch-stack create alpha
	orch-stack create beta
	sql "INSERT INTO memory (stack_id, agent, data, updated_at) VALUES
	     (1, 'planner', '{\"a\":1}', 1), (1, 'builder', '{\"b\":1}', 1), (2, 'planner', '{}', 1)"
	run -0 --separate-stderr orch-stack memory clear alpha builder
	assert_equal "$output" "removed the memory of 1 agent"
	run -0 orch-stack memory clear alpha
	assert_equal "$output" "removed the memory of 1 agent"
	assert_equal "$(sql "SELECT group_concat(stack_id || agent) FROM memory")" "2planner"
	run -64 --separate-stderr orch-stack memory clear alpha bob
	assert_equal "${stderr_lines[0]}" "orch-stack: memory clear: 'bob' is not planner, builder, communicator or reviewer"
	run -64 --separate-stderr orch-stack memory alpha
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack memory clear STACK ..."
	run -66 --separate-stderr orch-stack memory clear nope
	assert_equal "$stderr" "orch-stack: no stack 'nope'"
}
