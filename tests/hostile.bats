#!/usr/bin/env bats
# Nothing one stack, agent or byte does can stop the others (issue 10):
# bad bytes at the doors and in the store, ids, replays, attempts that
# keep failing, another agent's hands on the builder's todo, the context
# that grows. README.md, "Promises".

load test_helper

setup() {
	orch_test_env
	AGENTS=$BATS_TEST_TMPDIR/agents
	mkdir -p "$AGENTS"
	TEAM="--agent planner=planner --agent builder=builder"
	TEAM+=" --agent communicator=communicator --agent reviewer=reviewer"
	orch-stack init
}

# agent NAME SCRIPT: an agent command, a sh script, at $AGENTS/NAME.
agent() {
	printf '#!/bin/sh\n%s\n' "$2" >"$AGENTS/$1"
	chmod +x "$AGENTS/$1"
}

# cycle [ORCH-EXEC FLAGS...]: one cycle of every running stack; the
# decisions on stdout, every stage's stderr on stderr.
cycle() {
	orch-detect --all --force | orch-graph | orch-exec -q $TEAM "$@" | orch-decide
}

@test "text that is not UTF-8 is refused at every door of orch-stack, naming it, and nothing is stored" {
	orch-stack create alpha
	local bad=$'caf\xe9'
	run -65 --separate-stderr orch-stack say alpha "$bad"
	assert_equal "$stderr" "orch-stack: the message is not valid UTF-8 (byte 4)"
	run -65 --separate-stderr orch-stack say alpha "hello" --from "$bad"
	assert_equal "$stderr" "orch-stack: the sender is not valid UTF-8 (byte 4)"
	run -65 --separate-stderr orch-stack todo add alpha "$bad"
	assert_equal "$stderr" "orch-stack: the todo is not valid UTF-8 (byte 4)"
	run -65 --separate-stderr orch-stack create beta --idea "$bad"
	assert_equal "$stderr" "orch-stack: the idea is not valid UTF-8 (byte 4)"
	# An overlong form and a lone surrogate are no better.
	run -65 --separate-stderr orch-stack say alpha $'\xc0\xaf'
	run -65 --separate-stderr orch-stack say alpha $'\xed\xa0\x80'
	assert_equal "$(sql "SELECT count(*) FROM user_messages; SELECT count(*) FROM todos;
	                     SELECT count(*) FROM stacks")" "$(printf '0\n0\n1')"
	# Good UTF-8 of every width passes.
	run -0 orch-stack say alpha "é ü 日本 😀"
}

@test "a row that is not UTF-8 costs its own stack a cycle, never the pipeline" {
	skip_unless_sqlite "PostgreSQL text is always valid UTF-8"
	orch-stack create alpha --idea "a timer"
	orch-stack create beta --idea "a clock"
	orch-stack say alpha "hello"
	orch-stack say beta "hello"
	orch-stack start alpha
	orch-stack start beta
	# Written behind orch's back, as no orch program would.
	sql "UPDATE user_messages SET content = CAST(X'63616665E9' AS TEXT) WHERE stack_id = 2"
	run -0 --separate-stderr cycle
	assert_equal "$stderr" ""
	# alpha ran and was answered; beta's cycle is recorded as failed,
	# saying why, at once (no retry can help).
	assert_equal "$(sql "SELECT processed FROM user_messages WHERE stack_id = 1")" "1"
	assert_equal "$(jq -r 'select(.stack.name == "beta") | "\(.action) \(.rule)"' <<<"$output")" "pause failed"
	assert_equal "$(sql "SELECT status || '|' || error FROM executions WHERE stack_id = 2")" \
		"failed|communicator: 'content' of user message 2 is not valid UTF-8"
	assert_equal "$(sql "SELECT count(*) FROM traces WHERE stack_id = 2 AND agent = 'communicator'")" "1"
	# orch-stack says what is wrong instead of dying.
	run -65 --separate-stderr orch-stack show beta
	assert_equal "$stderr" "orch-stack: 'content' of user message 2 is not valid UTF-8"
	# Repaired, the stack runs again.
	sql "DELETE FROM user_messages WHERE stack_id = 2"
	run -0 --separate-stderr cycle
	assert_equal "$stderr" ""
	assert_equal "$(sql "SELECT status FROM executions WHERE stack_id = 2 ORDER BY id DESC LIMIT 1")" "completed"
}

@test "state the rules cannot read costs its own stack a cycle: detection says so, the cycle records it" {
	skip_unless_sqlite "a PostgreSQL column holds only its own type"
	orch-stack create alpha --idea "a timer"
	orch-stack create beta --idea "a clock"
	orch-stack start alpha
	orch-stack start beta
	sql "INSERT INTO todos (stack_id, content, priority, created_at, completed_at)
	     VALUES (2, 'x', 3, 1, 'yesterday')"
	run -0 --separate-stderr orch-detect --all
	assert_equal "$stderr" "orch-detect: stack 2 (beta): 'todos[0].completed_at' must be a non-negative integer or null"
	assert_equal "$(jq -r '"\(.stack.name) \(.error)"' <<<"$output")" \
		"$(printf "alpha null\nbeta 'todos[0].completed_at' must be a non-negative integer or null")"
	run -0 --separate-stderr bash -c "orch-detect --all --force 2>/dev/null | orch-graph | orch-exec -q $TEAM | orch-decide"
	assert_equal "$(jq -r 'select(.stack.name == "beta") | "\(.rule) \(.reason)"' <<<"$output")" \
		"broken its state cannot be read: 'todos[0].completed_at' must be a non-negative integer or null; 1st failed cycle in a row"
	assert_equal "$(sql "SELECT status || '|' || error FROM executions WHERE stack_id = 2")" \
		"failed|its state cannot be read: 'todos[0].completed_at' must be a non-negative integer or null"
	assert_equal "$(jq -r 'select(.stack.name == "alpha") | .rule' <<<"$output")" "new_work"
}

@test "a memory row that is not JSON costs its own stack a cycle" {
	orch-stack create alpha --idea "a timer"
	orch-stack create beta --idea "a clock"
	orch-stack start alpha
	orch-stack start beta
	sql "INSERT INTO memory (stack_id, agent, data, updated_at) VALUES (2, 'builder', 'not json', 1)"
	run -0 --separate-stderr cycle
	# Detection of many stacks at once reads only the planner's memory;
	# the planner's context, all of it.
	assert_equal "$stderr" ""
	assert_equal "$(sql "SELECT error FROM executions WHERE stack_id = 2")" \
		"planner: memory of agent 'builder' is not a JSON object"
	assert_equal "$(sql "SELECT status FROM executions WHERE stack_id = 1")" "completed"
}

@test "a database of an earlier orch (schema 3) is migrated with everything kept" {
	skip_unless_sqlite "a SQLite file of schema 3 (PostgreSQL begins at 12)"
	rm -f "$ORCH_DB"
	sqlite3 "$ORCH_DB" <"$FIXTURES/store/v3.sql"
	run -0 --separate-stderr orch-stack list --json
	assert_equal "$(jq -r .name <<<"$output" | tr '\n' ' ')" "alpha beta "
	# Rows, their ids, and the keys between them survived the rebuild.
	assert_equal "$(sql "SELECT count(*) FROM todos; SELECT count(*) FROM traces;
	                     SELECT count(*) FROM messages; SELECT count(*) FROM message_reads;
	                     PRAGMA foreign_key_check; PRAGMA user_version")" \
		"$(printf '6\n9\n2\n1\n%s' "$(sql 'PRAGMA user_version')")"
	# The last planning and review times moved out of the agents' memory.
	assert_equal "$(sql "SELECT count(*) FROM agent_runs WHERE seen_version = -1")" "4"
	assert_equal "$(sql "SELECT count(*) FROM memory WHERE data LIKE '%last_%_time%'")" "0"
	run -0 bash -c "orch-stack show --json alpha | jq '.memory.planner.last_planning_time > 0'"
	assert_output true
	# The triggers were rebuilt with the tables: a todo still moves the
	# stack's versions; removing a stack still takes what it owns.
	local v
	v=$(sql "SELECT content_version FROM stacks WHERE name = 'alpha'")
	orch-stack todo add alpha "one more"
	(( $(sql "SELECT content_version FROM stacks WHERE name = 'alpha'") > v )) || fail "no bump"
	orch-stack rm beta
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE stack_id = 2; PRAGMA foreign_key_check")" "0"
	# And a whole cycle runs on it.
	run -0 --separate-stderr cycle
	assert_equal "$stderr" ""
}

@test "ids are never used twice: a stack, todo or message made after the newest was deleted gets a new one" {
	orch-stack create alpha
	orch-stack create beta
	orch-stack rm beta
	orch-stack create gamma
	assert_equal "$(sql "SELECT id FROM stacks WHERE name = 'gamma'")" "3"
	orch-stack todo add alpha one
	orch-stack todo add alpha two
	sql "DELETE FROM todos WHERE id = 2"
	orch-stack todo add alpha three
	assert_equal "$(sql "SELECT group_concat(id) FROM todos")" "1,3"
	orch-stack say alpha one
	sql "DELETE FROM user_messages"
	orch-stack say alpha two
	assert_equal "$(sql "SELECT id FROM user_messages")" "2"
}

# settings LINE...: the configuration file, these lines.
settings() {
	mkdir -p "$HOME/.config/orch"
	printf '%s\n' "$@" >"$HOME/.config/orch/config"
}

# only AGENT=COMMAND...: one cycle of every running stack with these
# agents and no others (a graph node for another agent fails).
only() {
	local team=() a
	for a in "$@"; do team+=(--agent "$a"); done
	orch-detect --all --force | orch-graph | orch-exec -q --retries 0 "${team[@]}" | orch-decide
}

@test "an agent's last stderr line is stored as text: bad UTF-8 becomes '?', control bytes spaces" {
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "one"
	orch-stack start alpha
	agent builder 'printf "caf\303\251 \377\376 \033[31mred\tend\n" >&2; exit 1'
	run -0 only builder="$AGENTS/builder"
	assert_equal "$(sql "SELECT error FROM traces WHERE agent = 'builder'")" \
		"exit status 1: café ??  [31mred end"
	assert_equal "$(sql "SELECT last_error FROM todos")" "exit status 1: café ??  [31mred end"
}

@test "a todo that keeps failing is parked with its last error after exec.park_after runs, and the stack moves on" {
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "poison" --priority 5
	orch-stack todo add alpha "fine" --priority 1
	orch-stack start alpha
	# Fails on the poison todo (a failure of its work), builds the other.
	agent builder 'jq -e ".task.todo.content != \"poison\"" >/dev/null || { echo "boom: no way" >&2; exit 1; }
echo "{\"actions\":[{\"type\":\"write_artifact\",\"content\":\"x\"}]}"'
	settings "exec.park_after = 2"
	run -0 only builder="$AGENTS/builder"
	assert_equal "$(sql "SELECT status || ' ' || attempts || ' ' || last_error FROM todos WHERE id = 1")" \
		"pending 1 exit status 1: boom: no way"
	run -0 only builder="$AGENTS/builder"
	assert_equal "$(sql "SELECT status || ' ' || attempts FROM todos WHERE id = 1")" "parked 2"
	# The next cycle builds the other todo; the parked one is nobody's work.
	run -0 only builder="$AGENTS/builder"
	assert_equal "$(sql "SELECT group_concat(id || ' ' || status, ', ') FROM (SELECT * FROM todos ORDER BY id) AS t")" "1 parked, 2 completed"
	run -0 orch-detect --stack alpha
	assert_equal "$(jq -r '.agents.builder.has_work' <<<"$output")" "false"
	# A person sees it, and why.
	run -0 orch-stack todo list alpha
	assert_line --index 1 --regexp '^1 +5 +parked +poison$'
	assert_line --index 2 --regexp '^ +after 2 failed runs: exit status 1: boom: no way$'
	run -0 orch-stack show alpha
	assert_line --regexp '^todos +0 pending, 0 in progress, 1 completed, 0 cancelled, 1 parked$'
	run -0 orch-stack todo list alpha --json
	assert_equal "$(jq -sr '.[0] | "\(.status) \(.attempts) \(.last_error)"' <<<"$output")" \
		"parked 2 exit status 1: boom: no way"
}

@test "a run the provider failed (69, 75) or orch-exec stopped does not count against its todo" {
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "one"
	orch-stack start alpha
	agent builder 'echo "rate limited" >&2; exit 75'
	settings "exec.park_after = 1"
	run -0 only builder="$AGENTS/builder"
	agent builder 'echo "provider down" >&2; exit 69'
	run -0 only builder="$AGENTS/builder"
	assert_equal "$(sql "SELECT status || ' ' || attempts FROM todos")" "pending 0"
	# exec.park_after = 0 never parks.
	agent builder 'exit 1'
	settings "exec.park_after = 0"
	run -0 only builder="$AGENTS/builder"
	run -0 only builder="$AGENTS/builder"
	assert_equal "$(sql "SELECT status || ' ' || attempts FROM todos")" "pending 2"
	# and the flag wins over the file.
	run -0 bash -c "orch-detect --all --force | orch-graph | orch-exec -q --retries 0 --park-after 3 --agent builder=$AGENTS/builder | orch-decide"
	assert_equal "$(sql "SELECT status || ' ' || attempts FROM todos")" "parked 3"
	run -64 --separate-stderr orch-exec --park-after 1001
	assert_equal "${stderr_lines[0]}" "orch-exec: --park-after: '1001' is not a whole number from 0 to 1000"
}

@test "a user message that keeps failing is parked unanswered, and the next one is answered" {
	orch-stack create alpha --idea "a page"
	orch-stack say alpha "poison"
	orch-stack say alpha "hello"
	orch-stack start alpha
	agent communicator 'jq -c "if .task.user_message.content == \"poison\" then error(\"cannot\") else {actions: [{type: \"reply_user\", message_id: .task.user_message.id, content: \"hi\"}]} end"'
	settings "exec.park_after = 2"
	run -0 only communicator="$AGENTS/communicator"
	run -0 only communicator="$AGENTS/communicator"
	assert_equal "$(sql "SELECT processed || ' ' || attempts || ' ' || CASE WHEN parked_at IS NULL THEN 0 ELSE 1 END FROM user_messages WHERE id = 1")" "0 2 1"
	assert_equal "$(sql "SELECT last_error FROM user_messages WHERE id = 1")" "exit status 5: jq: error (at <stdin>:0): cannot"
	run -0 only communicator="$AGENTS/communicator"
	assert_equal "$(sql "SELECT processed || ' ' || response FROM user_messages WHERE id = 2")" "1 hi"
	# Nothing is left for the communicator: a parked message is not work.
	run -0 orch-detect --stack alpha
	assert_equal "$(jq -r '.agents.communicator.has_work' <<<"$output")" "false"
	run -0 orch-stack show alpha
	assert_line --regexp '^user messages +0 unprocessed, 1 parked$'
}

@test "an inter-stack message that keeps failing is set aside as read" {
	orch-stack create alpha --idea "a page"
	orch-stack create beta
	orch-stack start alpha
	# A broadcast, which retention keeps once read (one to alpha alone
	# goes with the read messages).
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at)
	     VALUES (2, NULL, 'poison', $(date +%s%3N))"
	agent communicator 'echo "cannot" >&2; exit 1'
	settings "exec.park_after = 2"
	run -0 only communicator="$AGENTS/communicator"
	assert_equal "$(sql "SELECT attempts || ' ' || last_error FROM message_failures")" "1 exit status 1: cannot"
	assert_equal "$(sql "SELECT count(*) FROM message_reads")" "0"
	run -0 only communicator="$AGENTS/communicator"
	assert_equal "$(sql "SELECT count(*) FROM message_reads WHERE stack_id = 1")" "1"
	run -0 orch-detect --stack alpha
	assert_equal "$(jq -r '.agents.communicator.has_work' <<<"$output")" "false"
}

@test "while the builder runs its todo is its own: another agent's change to it is refused" {
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "build me"
	orch-stack say alpha "set todo 1 back"
	orch-stack start alpha
	# The builder holds its todo until orch-exec has dealt with what the
	# communicator printed (its trace is written then), however slowly.
	agent builder "until [ \"\$(orch-test-sql \"SELECT count(*) FROM traces WHERE agent = 'communicator'\")\" = 1 ]; do sleep 0.05; done
echo '{\"actions\":[{\"type\":\"complete_todo\",\"id\":1}]}'"
	agent communicator "until [ \"\$(orch-test-sql \"SELECT status FROM todos WHERE id = 1\")\" = in_progress ]; do sleep 0.05; done
echo '{\"actions\":[{\"type\":\"update_todo\",\"id\":1,\"status\":\"pending\"},{\"type\":\"reply_user\",\"message_id\":1,\"content\":\"done\"}]}'"
	run -0 --separate-stderr bash -c "orch-detect --all --force | orch-graph | orch-exec -v --retries 0 --agent builder=$AGENTS/builder --agent communicator=$AGENTS/communicator | orch-decide"
	assert_equal "$(sql "SELECT error FROM traces WHERE agent = 'communicator'")" \
		"action 1 (update_todo): todo 1 is being built; only the builder changes it until its run ends"
	# Built once, and completed.
	assert_equal "$(sql "SELECT status FROM todos")" "completed"
	assert_equal "$(sql "SELECT count(*) FROM traces WHERE agent = 'builder'")" "1"
}

@test "a document that would push the stack past its totals is refused, naming the total" {
	orch-stack create alpha
	orch-stack start alpha
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150)
	     INSERT INTO todos (stack_id, content, created_at) SELECT 1, 'todo ' || i, 1 FROM n"
	agent planner 'jq -nc "{actions: [range(60) | {type: \"create_todo\", content: \"more \\(.)\"}]}"'
	run -0 only planner="$AGENTS/planner"
	assert_equal "$(sql "SELECT error FROM traces WHERE agent = 'planner'")" \
		"refused: the stack would have 210 open todos (pending, in progress or parked), at most 200"
	assert_equal "$(sql "SELECT count(*) FROM todos")" "150"
	# A document that deletes as much as it adds is within them.
	agent planner 'jq -nc "{actions: ([range(1; 61) | {type: \"delete_todo\", id: .}] + [range(60) | {type: \"create_todo\", content: \"more \\(.)\"}])}"'
	run -0 only planner="$AGENTS/planner"
	assert_equal "$(sql "SELECT count(*) FROM todos")" "150"
	# One agent's memory.
	agent reviewer 'jq -nc "{actions: [range(5) | {type: \"remember\", key: \"k\\(.)\", value: (\"x\" * 60000)}]}"'
	# (no todos, so no builder to wait for; an artifact to review)
	sql "DELETE FROM todos; INSERT INTO artifacts (stack_id, version, type, content, created_at) VALUES (1, 1, 'text', 'x', 1)"
	run -0 only reviewer="$AGENTS/reviewer"
	assert_equal "$(sql "SELECT error FROM traces WHERE agent = 'reviewer'")" \
		"refused: the stack would have 300041 bytes of reviewer memory, at most 262144"
}

@test "the context stays within its budget: closed todos and unread messages are windowed and what is left out counted" {
	orch-stack create alpha --idea "a page"
	orch-stack create beta
	orch-stack start alpha
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
	     INSERT INTO todos (stack_id, content, status, created_at, completed_at)
	     SELECT 1, 'done ' || i, 'completed', i, i FROM n"
	# 300 broadcasts of 60 KB: 17 MiB, more than any context may be.
	local x60k="printf('%.60000c', 'x')"
	engine_is_sqlite || x60k="repeat('x', 60000)"
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
	     INSERT INTO messages (from_stack_id, to_stack_id, content, created_at)
	     SELECT 2, NULL, $x60k, i FROM n"
	run -0 orch-stack show alpha --json
	assert_equal "$(jq -c '[(.todos | length), (.todos[0].content), (.messages | length), .omitted]' <<<"$output")" \
		'[20,"done 981",4,{"todos":980,"user_messages":0,"messages":296}]'
	assert_equal "$(jq -c '.counts.todos.completed, .counts.messages.unread' <<<"$output")" "$(printf '1000\n300')"
	run -0 orch-stack show alpha
	assert_line --regexp '^todos +0 pending, 0 in progress, 1000 completed, 0 cancelled$'
	assert_line --regexp '^messages +300 unread$'
	# The communicator runs, is shown what fits, and reads it.
	agent communicator 'jq -c "{actions: []}"'
	run -0 only communicator="$AGENTS/communicator"
	assert_equal "$(sql "SELECT count(*) FROM message_reads")" "4"
	run -0 orch-detect --stack alpha
	assert_equal "$(jq -r '.agents.communicator.has_work' <<<"$output")" "true"
}

@test "a person gives parked work back: todo retry, messages retry; say --wait stops at a parked message" {
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "poison"
	orch-stack say alpha "poison"
	orch-stack start alpha
	agent builder 'echo "boom" >&2; exit 1'
	agent communicator 'echo "cannot" >&2; exit 1'
	settings "exec.park_after = 1"
	run -0 only builder="$AGENTS/builder" communicator="$AGENTS/communicator"
	assert_equal "$(sql "SELECT status FROM todos")" "parked"
	# What a person sees of the parked message, and its document.
	run -0 orch-stack messages alpha
	assert_line --index 2 --regexp '^ +\(no reply: parked after 1 failed runs, the last: exit status 1: cannot\)$'
	run -0 orch-stack messages alpha --json
	assert_equal "$(jq -c '[.attempts, .last_error, (.parked_at > 0)]' <<<"$output")" '[1,"exit status 1: cannot",true]'
	# A message parked while say --wait waits for its reply ends the wait, 65.
	orch-stack say alpha "again" --wait --timeout 20000 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! status=0
	until [ "$(sql "SELECT count(*) FROM user_messages")" = 2 ]; do sleep 0.02; done
	sql "UPDATE user_messages SET parked_at = 1, attempts = 3 WHERE id = 2"
	wait "$pid" || status=$?
	assert_equal "$status" 65
	assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" \
		"orch-stack: the communicator gave up on message 2 after 3 failed runs; 'orch-stack messages retry' gives it back"
	# Retry: pending again, its count cleared, its last error kept; the
	# stack due at once.
	sql "UPDATE stacks SET next_run_at = 9000000000000"
	run -0 orch-stack todo retry alpha 1
	assert_output "todo 1 is pending again"
	assert_equal "$(sql "SELECT status || ' ' || attempts || ' ' || last_error FROM todos")" "pending 0 exit status 1: boom"
	[ "$(sql "SELECT next_run_at < 9000000000000 FROM stacks")" = 1 ]
	run -65 --separate-stderr orch-stack todo retry alpha 1
	assert_equal "$stderr" "orch-stack: todo 1 is not parked"
	run -66 --separate-stderr orch-stack todo retry alpha 7
	assert_equal "$stderr" "orch-stack: no todo 7 in stack 'alpha'"
	run -0 orch-stack messages retry alpha 1
	assert_output "retrying 1 message"
	assert_equal "$(sql "SELECT CASE WHEN parked_at IS NULL THEN 1 ELSE 0 END || ' ' || attempts FROM user_messages WHERE id = 1")" "1 0"
	run -65 --separate-stderr orch-stack messages retry alpha 1
	assert_equal "$stderr" "orch-stack: message 1 is not parked"
	run -0 orch-stack messages retry alpha
	assert_output "retrying 1 message"
	run -0 orch-stack messages retry alpha
	assert_output "retrying 0 messages"
	# Given back, the work is the agents' again.
	run -0 orch-detect --stack alpha
	assert_equal "$(jq -r '[.agents.builder.has_work, .agents.communicator.has_work] | join(" ")' <<<"$output")" "true true"
}
