#!/usr/bin/env bats
# orch-exec --dry-run: what each cycle would run and cost, from the
# contexts a run would build and the stack's history, with the store left
# exactly as it was.

load test_helper
load exec_helper

setup() {
	exec_setup
}

id_of() {
	sql "SELECT id FROM stacks WHERE name = '$1'"
}

# An agent that does its task, keeps the size of the context it read in
# $BATS_TEST_TMPDIR/sizes (AGENT BYTES), and reports 42 completion tokens.
usage_agent() {
	cat >"$AGENTS/usage" <<EOF
#!/bin/sh
ctx=\$(cat)
printf '%s %s\n' "\$(printf '%s' "\$ctx" | jq -r .agent)" "\$(printf '%s' "\$ctx" | wc -c)" >>'$BATS_TEST_TMPDIR/sizes'
printf '%s' "\$ctx" | jq -c '{actions: (
  (if .task.user_message then [{type: "reply_user", message_id: .task.user_message.id, content: "ok"}] else [] end)
  + (if .task.todo then [{type: "complete_todo", id: .task.todo.id}] else [] end)),
  usage: {prompt_tokens: 100, completion_tokens: 42}}'
EOF
	chmod +x "$AGENTS/usage"
}

# runs STACK AGENT MS...: completed runs of AGENT on STACK that took MS
# each, as traces, with no usage.
runs() {
	local id ms t=1000000
	id=$(id_of "$1")
	for ms in "${@:3}"; do
		sql "INSERT INTO traces (stack_id, agent, attempt, started_at, ended_at, status)
		     VALUES ($id, '$2', 1, $t, $t + $ms, 'completed')"
		t=$((t + 100000))
	done
}

@test "a dry run builds each node's context as a run would, and changes nothing" {
	stack alpha
	graph alpha planner builder communicator reviewer >"$BATS_TEST_TMPDIR/g.json"
	# (PostgreSQL's id sequences move on in a transaction rolled back:
	# an id skipped, never one used twice.)
	sql .dump | grep -v '^SELECT pg_catalog.setval(' >"$BATS_TEST_TMPDIR/before.sql"
	run -0 --separate-stderr orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$stderr" ""
	sql .dump | grep -v '^SELECT pg_catalog.setval(' >"$BATS_TEST_TMPDIR/after.sql"
	cmp "$BATS_TEST_TMPDIR/before.sql" "$BATS_TEST_TMPDIR/after.sql"
	assert_equal "$(jq -r '[.type, .cycle, .would_run, .skip_reason] | @tsv' <<<"$output")" \
		"orch.estimate	1	true	"
	assert_equal "$(jq -c '[.nodes[] | [.agent, .status, .prompt_tokens > 0,
		.prompt_tokens == ((.prompt_bytes + 3) / 4 | floor), .history.source]]' <<<"$output")" \
		'[["planner","run",true,true,"none"],["builder","run",true,true,"none"],["communicator","run",true,true,"none"],["reviewer","run",true,true,"none"]]'
	assert_equal "$(jq -c .totals <<<"$output")" \
		"$(jq -c '{nodes: 4, prompt_tokens: ([.nodes[].prompt_tokens] | add), completion_tokens: 0,
		  tokens: ([.nodes[].prompt_tokens] | add), unknown_tokens: 4, agent_ms: 0,
		  critical_path_ms: 0, unknown_duration: 4, jobs: 8}' <<<"$output")"
	assert_equal "$(sql "SELECT status FROM todos")" "pending"

	# The bytes are those the agents then read, the builder's claim and
	# the cycle's number included (of one wave: a later wave's would see
	# what the earlier did).
	graph alpha builder communicator >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	local dry=$output
	usage_agent
	run -0 orch-exec $(all_agents "$AGENTS/usage") "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '.nodes[] | "\(.agent) \(.prompt_bytes)"' <<<"$dry" | sort)" \
		"$(sort "$BATS_TEST_TMPDIR/sizes")"
}

@test "a dry run expects what the stack's last runs took: duration and completion tokens" {
	stack alpha
	usage_agent
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec $(all_agents "$AGENTS/usage") "$BATS_TEST_TMPDIR/g.json"
	orch-stack say alpha "again"
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node history communicator | jq -c .)" '{"source":"stack","runs":1}'
	assert_equal "$(node completion_tokens communicator)" 42
	assert_equal "$(node duration_ms communicator)" \
		"$(sql "SELECT ended_at - started_at FROM traces WHERE agent = 'communicator'")"
	assert_equal "$(jq -r .cycle <<<"$output")" 2

	# orch-agent's recorded requests count before the run's usage.
	sql "INSERT INTO llm_requests (stack_id, execution_id, cycle, agent, run_at, run_ok, seq,
	       round, retry, provider, base_url, model, http_status, outcome, started_at,
	       duration_ms, prompt_tokens, completion_tokens)
	     SELECT stack_id, execution_id, 1, agent, started_at, 1, s, 0, 0, 'p', 'u', 'm', 200,
	       'reply', started_at, 5, 10, 250
	     FROM traces, (SELECT 1 AS s UNION SELECT 2) AS two WHERE agent = 'communicator'"
	run -0 orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node completion_tokens communicator)" 500
}

@test "a dry run takes the median of the last 20 runs, of the stack's own from 3 of them, else every stack's" {
	stack alpha
	stack beta
	runs alpha planner 100 100 9000
	runs beta planner 700 700
	runs beta reviewer 300 $(seq 20) # the oldest one falls out of the last 20
	graph alpha planner >"$BATS_TEST_TMPDIR/a.json"
	graph beta planner reviewer >"$BATS_TEST_TMPDIR/b.json"
	run -0 bash -c "cat '$BATS_TEST_TMPDIR/a.json' '$BATS_TEST_TMPDIR/b.json' | orch-exec -n"
	assert_equal "$(jq -c '[.stack.name, (.nodes[] | [.agent, .duration_ms, .completion_tokens, .history.source, .history.runs])]' <<<"$output")" \
		'["alpha",["planner",100,null,"stack",3]]
["beta",["planner",700,null,"agent",5],["reviewer",10,null,"stack",20]]'
}

@test "a dry run's critical path follows the dependencies, the -j slots and the barrier" {
	stack alpha
	runs alpha planner 100 100 100
	runs alpha builder 200 200 200
	runs alpha communicator 50 50 50
	runs alpha reviewer 300 300 300
	graph alpha planner builder communicator reviewer >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -c '[.totals.agent_ms, .totals.critical_path_ms, [.nodes[] | [.agent, .start_ms]]]' <<<"$output")" \
		'[650,600,[["planner",0],["builder",100],["communicator",0],["reviewer",300]]]'
	run -0 orch-exec -n -j 1 "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -c '[.totals.critical_path_ms, .totals.jobs]' <<<"$output")" '[650,1]'
	run -0 orch-exec -n --wave-delay 10 "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -c .totals.critical_path_ms <<<"$output")" 620
}

@test "a dry run skips what a run would skip, and says why" {
	stack alpha
	sql "UPDATE todos SET status = 'completed'"
	graph alpha builder reviewer communicator >"$BATS_TEST_TMPDIR/g.json"
	sql "DELETE FROM user_messages"
	run -0 orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -c '[.nodes[] | [.agent, .status, .error, .prompt_tokens]], .totals.nodes' <<<"$output")" \
		'[["builder","skipped","no pending todo left",null],["communicator","skipped","nothing left to do",null],["reviewer","skipped","dependency '"'builder'"' would be skipped",null]]
0'

	stack beta
	graph beta planner >"$BATS_TEST_TMPDIR/b.json"
	orch-stack pause beta
	run -0 bash -c "cat '$BATS_TEST_TMPDIR/b.json' '$BATS_TEST_TMPDIR/b.json' | orch-exec -n"
	assert_equal "$(jq -c '[.would_run, .cycle, .skip_reason, .nodes[0].status]' <<<"$output")" \
		'[false,null,"stack is paused","skipped"]
[false,null,"its cycle is already running in this orch-exec","skipped"]'
}

@test "a dry run: bad input estimates nothing (65), no database is 66, --trace is 64" {
	stack alpha
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	echo '{"type":"orch.graph"}' >>"$BATS_TEST_TMPDIR/g.json"
	run -65 --separate-stderr orch-exec -n "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$output" ""
	assert_equal "$stderr" "orch-exec: line 2: orch.graph document has no integer 'version'"
	run -66 --separate-stderr orch-exec -n --db "$BATS_TEST_TMPDIR/none.db" </dev/null
	assert_equal "$stderr" "orch-exec: no database at '$BATS_TEST_TMPDIR/none.db' (run 'orch-stack init')"
	run -64 --separate-stderr orch-exec -n --trace "$BATS_TEST_TMPDIR/t.json" </dev/null
	assert_equal "${stderr%%$'\n'*}" "orch-exec: --trace: a dry run runs no agent to trace"
	[ ! -e "$BATS_TEST_TMPDIR/t.json" ]
}
