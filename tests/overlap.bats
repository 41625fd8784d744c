#!/usr/bin/env bats
# Overlapping pipelines: four whole pipelines at once on one database,
# again and again, against 50 stacks, while a user writes to them too.
# No stack ever has two cycles running at once, no SQLITE_BUSY (or any
# other error) reaches anyone, and every cycle that ran is recorded.
# ORCH_OVERLAP_ROUNDS sets the rounds (2 here; make crash runs 10).

load test_helper

setup() {
	orch_test_env
	AGENTS=$BATS_TEST_TMPDIR/agents
	mkdir -p "$AGENTS"
	orch-stack init
}

@test "4 pipelines at once, round after round, on 50 stacks: one cycle per stack at a time, all recorded" {
	local i r p now rounds=${ORCH_OVERLAP_ROUNDS:-2}
	now=$(date +%s%3N)
	# 50 running stacks, each with an idea, a todo and a user message.
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
	     INSERT INTO stacks (name, execution_state, created_at, started_at, next_run_at)
	       SELECT 'stack' || i, 'running', $now, $now, 0 FROM n;
	     INSERT INTO projects (stack_id, title, description, created_at, updated_at)
	       SELECT id, name, 'an idea', $now, $now FROM stacks;
	     INSERT INTO todos (stack_id, content, priority, created_at)
	       SELECT id, 'build ' || name, 4, $now FROM stacks;
	     INSERT INTO user_messages (stack_id, sender, content, created_at)
	       SELECT id, 'user', 'hello ' || name, $now FROM stacks;"
	# An agent that does its task and nothing more.
	local quick=$FIXTURES/agents/task
	local team="--agent planner=$quick --agent builder=$quick"
	team+=" --agent communicator=$quick --agent reviewer=$quick"
	for ((r = 1; r <= rounds; r++)); do
		for p in 1 2 3 4; do
			bash -c "orch-detect --all --force | orch-graph | orch-exec -j 16 $team |
			         tee '$BATS_TEST_TMPDIR/exec.$r.$p' | orch-decide >'$BATS_TEST_TMPDIR/decide.$r.$p'
			         echo \"\${PIPESTATUS[*]}\" >'$BATS_TEST_TMPDIR/status.$r.$p'" \
				2>"$BATS_TEST_TMPDIR/err.$r.$p" &
		done
		# A user writing to the stacks meanwhile.
		for i in 1 2 3 4 5; do
			orch-stack say "stack$(((r * 5 + i) % 50 + 1))" "more, round $r" &&
				orch-stack todo add "stack$(((r * 5 + i) % 50 + 1))" "more, round $r"
		done >/dev/null 2>"$BATS_TEST_TMPDIR/user.$r" &
		wait
	done
	# Every stage of every pipeline exited 0 and said nothing: no
	# SQLITE_BUSY or any other error reached anyone.
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/status.*.* | sort | uniq -c | sed 's/^ *//')" "$((rounds * 4)) 0 0 0 0 0"
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/err.*.* "$BATS_TEST_TMPDIR"/user.*)" ""
	# One document per stack through each pipeline, one decision each.
	for ((r = 1; r <= rounds; r++)); do
		for p in 1 2 3 4; do
			assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/exec.$r.$p") $(wc -l <"$BATS_TEST_TMPDIR/decide.$r.$p")" "50 50"
		done
	done
	cat "$BATS_TEST_TMPDIR"/exec.*.* >"$BATS_TEST_TMPDIR/all.json"
	# A stack a pipeline did not run was held by another one, named (or,
	# on PostgreSQL, its lease row was locked by another's claim, or
	# another's transaction was writing to it).
	assert_equal "$(jq -r 'select(.ran == false) | .skip_reason
	                       | test("^another pipeline (holds the stack \\([^:]+:[0-9]+\\)|is taking or renewing its lease|is writing to the stack)$")' \
		"$BATS_TEST_TMPDIR/all.json" | sort -u | tr -d '\n')" \
		"$(jq -r 'select(.ran == false) | "true"' "$BATS_TEST_TMPDIR/all.json" | sort -u | tr -d '\n')"
	# Every cycle that ran is recorded, completed, with its graph, once.
	local ran
	ran=$(jq -s 'map(select(.ran)) | length' "$BATS_TEST_TMPDIR/all.json")
	(( ran >= rounds * 50 )) || fail "only $ran cycles ran in $rounds rounds over 50 stacks"
	assert_equal "$(sql "SELECT count(*) FROM executions")" "$ran"
	assert_equal "$(sql "SELECT count(*) FROM executions WHERE status = 'completed'")" "$ran"
	assert_equal "$(sql "SELECT count(*) FROM graphs")" "$ran"
	assert_equal "$(jq -r 'select(.ran) | .execution_id' "$BATS_TEST_TMPDIR/all.json" | sort -n | tr '\n' ' ')" \
		"$(sql "SELECT id FROM executions ORDER BY id" | tr '\n' ' ')"
	# orch-decide recorded each of them on its stack.
	assert_equal "$(sql "SELECT count(*) FROM executions WHERE decision IS NULL")" "0"
	assert_equal "$(sql "SELECT sum(total_cycles) FROM stacks")" "$ran"
	# Never two cycles of one stack at once: from the recorded times.
	assert_equal "$(sql "SELECT count(*) FROM executions a JOIN executions b
	                     ON a.stack_id = b.stack_id AND a.id < b.id
	                     WHERE b.started_at < a.ended_at AND a.started_at < b.ended_at")" "0"
	# Cycle numbers per stack are 1..N, nothing left held or running.
	assert_equal "$(sql "SELECT count(*) FROM (SELECT stack_id FROM executions GROUP BY stack_id
	                     HAVING min(cycle) != 1 OR max(cycle) != count(*)) AS bad")" "0"
	assert_equal "$(sql "SELECT count(*) FROM stacks WHERE lease_owner IS NOT NULL")" "0"
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE status = 'in_progress'")" "0"
	assert_equal "$(sql "SELECT count(*) FROM user_messages")" "$((50 + rounds * 5))"
	assert_equal "$(sql "PRAGMA integrity_check")" "ok"
}

# The race the test above once caught on a slow machine: a pipeline that
# read the clock, then waited for the write lock while the holder ended
# its cycle, recorded a start before the holder's end. Here the waits are
# forced: a third connection holds the write lock while pipeline B tries
# to claim the stack and pipeline A tries to record its end. Whoever gets
# the lock first, the recorded cycles must not overlap. Before the fix
# this failed whenever A won, about one round in two.
@test "a pipeline that waits for the write lock records its cycle after the holder's, never across it" {
	local r id
	mkdir -p "$AGENTS"
	cat >"$AGENTS/held" <<'AGENT'
#!/bin/sh
cat >/dev/null
: >"$MARKS/running"
i=0; while [ ! -e "$MARKS/go" ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i + 1)); done
echo '{"actions":[]}'
AGENT
	chmod +x "$AGENTS/held"
	export MARKS=$BATS_TEST_TMPDIR/marks
	id=$(make_stack alpha)
	sql "INSERT INTO projects (stack_id, title, description, created_at, updated_at)
	     VALUES ($id, 'alpha', 'an idea', 1, 1)"
	local team="--agent planner=$AGENTS/held --agent builder=$AGENTS/held"
	team+=" --agent communicator=$AGENTS/held --agent reviewer=$AGENTS/held"
	for r in 1 2 3 4; do
		rm -rf "$MARKS" && mkdir "$MARKS"
		# A new idea each round: the planner, which did nothing last
		# round, has work again (it is not run on a state it has seen).
		sql "UPDATE projects SET description = 'idea $r'"
		orch-detect --all --force | orch-graph >"$BATS_TEST_TMPDIR/graph.json"
		orch-exec $team <"$BATS_TEST_TMPDIR/graph.json" >"$BATS_TEST_TMPDIR/a.$r" &
		local a=$!
		wait_file "$MARKS/running"
		printf 'BEGIN IMMEDIATE;\n.shell touch %s/locked\n.shell i=0; while [ ! -e %s/release ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i + 1)); done\nCOMMIT;\n' \
			"$MARKS" "$MARKS" | sql &
		local holder=$!
		wait_file "$MARKS/locked"
		orch-exec $team <"$BATS_TEST_TMPDIR/graph.json" >"$BATS_TEST_TMPDIR/b.$r" &
		local b=$!
		sleep 0.2 # B is waiting for the lock (only the chance of catching a regression rides on this)
		: >"$MARKS/go"
		sleep 0.2 # A's agent has ended and A waits for the lock too
		: >"$MARKS/release"
		wait "$holder" || fail "the lock holder failed"
		wait "$a" || fail "pipeline A exited $?"
		wait "$b" || fail "pipeline B exited $?"
	done
	assert_equal "$(sql "SELECT count(*) FROM executions a JOIN executions b
	                     ON a.stack_id = b.stack_id AND a.id < b.id
	                     WHERE b.started_at < a.ended_at AND a.started_at < b.ended_at")" "0"
	assert_equal "$(sql "SELECT count(*) FROM executions WHERE status != 'completed'")" "0"
	assert_equal "$(sql "SELECT count(*) FROM stacks WHERE lease_owner IS NOT NULL")" "0"
}
