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
	assert_equal "$stderr" ""
	assert_equal "$(sql "SELECT error FROM executions WHERE stack_id = 2")" \
		"planner: memory of agent 'builder' is not a JSON object"
	assert_equal "$(sql "SELECT status FROM executions WHERE stack_id = 1")" "completed"
}

@test "a database of an earlier orch (schema 3) is migrated with everything kept" {
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
