#!/usr/bin/env bats
# orch-exec: running graphs of agents, applying their actions, recording
# every cycle; time bounds, retries, isolation, leases.

load test_helper

setup() {
	orch_test_env
	AGENTS=$BATS_TEST_TMPDIR/agents
	mkdir -p "$AGENTS"
	orch-stack init
}

# agent NAME SCRIPT: an agent command, a sh script, at $AGENTS/NAME.
agent() {
	printf '#!/bin/sh\n%s\n' "$2" >"$AGENTS/$1"
	chmod +x "$AGENTS/$1"
}

# stack NAME: a running stack with an idea, a todo and a user message,
# so all four agents have work.
stack() {
	orch-stack create "$1" --idea "an idea"
	orch-stack todo add "$1" "build it" --priority 4
	orch-stack say "$1" "hello there"
	orch-stack start "$1"
}

# graph NAME AGENT...: the orch.graph of stack NAME where AGENTs have work,
# with the standard dependencies, made by orch-graph itself.
graph() {
	local name=$1 id
	shift
	id=$(sql "SELECT id FROM stacks WHERE name = '$name'")
	jq -cn --argjson id "$id" --arg name "$name" --args '
	  {planner: [], builder: ["planner"], communicator: [], reviewer: ["builder"]} as $deps
	  | {type: "orch.work_status", version: 1,
	     stack: {id: $id, name: $name, phase: "planning", execution_state: "running", created_at: 1},
	     computed_at: 1, cached: false,
	     agents: ($deps | with_entries(.key as $a | .value = {
	        has_work: ($ARGS.positional | index($a) != null),
	        priority: (if ($ARGS.positional | index($a)) != null then 5 else 0 end),
	        reason: "test", depends_on: $deps[$a]}))}' --args "$@" | orch-graph
}

# every AGENT-COMMAND for all four agents, as --agent flags.
all_agents() {
	local a
	for a in planner builder communicator reviewer; do
		printf -- '--agent\n%s=%s\n' "$a" "$1"
	done
}

# ok_agent: an agent that does its task (tests/fixtures/agents/task).
ok_agent() {
	agent ok "exec '$FIXTURES/agents/task'"
}

# node FIELD AGENT: a field of AGENT's node in $output.
node() {
	jq -r --arg a "$2" ".nodes[] | select(.agent == \$a) | .$1" <<<"$output"
}

now_ms() {
	date +%s%3N
}

# wait_for FILE [LINES]: until FILE has LINES lines (default 1), at most 10 s.
wait_for() {
	local i
	for i in $(seq 100); do
		[ -f "$1" ] && (( $(wc -l <"$1") >= ${2:-1} )) && return 0
		sleep 0.1
	done
	fail "timed out waiting for $1"
}

# max_overlap: the most nodes running at once, from the started_at and
# ended_at of every node in the documents on stdin.
max_overlap() {
	jq -s '[.[].nodes[] | select(.started_at) | [.started_at, 1], [.ended_at, -1]]
	       | sort | reduce .[] as $e ({n: 0, max: 0}; .n += $e[1] | .max = ([.max, .n] | max)) | .max'
}

@test "the example team: one cycle applies each agent's actions and prints the execution" {
	stack alpha
	run -0 --separate-stderr bash -c "
	  orch-detect --all | orch-graph | orch-exec \
	    --agent planner=planner --agent builder=builder \
	    --agent communicator=communicator --agent reviewer=reviewer"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r '.type, .version, .ran, .cycle, .execution_id, .skip_reason' <<<"$output" | tr '\n' ' ')" \
		"orch.execution 1 true 1 1 null "
	# (Nothing to review yet: the reviewer waits for the builder's work.)
	assert_equal "$(jq -r '.nodes | map("\(.agent)=\(.status)") | join(" ")' <<<"$output")" \
		"communicator=completed builder=completed"
	assert_equal "$(node result communicator)" "1 action: reply_user"
	assert_equal "$(jq -c '.summary | del(.duration_ms)' <<<"$output")" \
		'{"waves":1,"max_parallel":2,"succeeded":2,"failed":0,"skipped":0}'
	# The builder's todo is done and the artifact written; the user answered.
	assert_equal "$(sql "SELECT status FROM todos")" "completed"
	assert_equal "$(sql "SELECT version FROM artifacts")" "1"
	assert_equal "$(sql "SELECT processed, response IS NOT NULL FROM user_messages")" "1|1"
	# The cycle is recorded: execution row, graph, one trace per run.
	assert_equal "$(sql "SELECT cycle, status, error IS NULL FROM executions")" "1|completed|1"
	assert_equal "$(sql "SELECT json_extract(graph, '$.type') FROM graphs")" "orch.execution"
	assert_equal "$(sql "SELECT agent || ':' || status FROM traces ORDER BY agent")" \
		"$(printf 'builder:completed\ncommunicator:completed')"
	# The lease is released.
	assert_equal "$(sql "SELECT lease_owner IS NULL FROM stacks")" "1"
}

@test "the full pipeline with orch-decide records decisions and cycles" {
	stack alpha
	for _ in 1 2; do
		orch-detect --all --force | orch-graph |
			orch-exec --agent planner=planner --agent builder=builder \
			--agent communicator=communicator --agent reviewer=reviewer |
			orch-decide >/dev/null
	done
	# Cycle 1: the builder builds; cycle 2: the reviewer recommends.
	assert_equal "$(sql "SELECT group_concat(cycle || ':' || decision || ':' || rule, ' ') FROM executions")" \
		"1:pause:progress 2:continue:new_work"
	assert_equal "$(sql "SELECT total_cycles FROM stacks")" "2"
}

@test "four 0.2 s agents finish in about the critical path, planner -> builder -> reviewer" {
	stack alpha
	agent slow "sleep 0.2; exec '$FIXTURES/agents/task'"
	graph alpha planner builder communicator reviewer >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 --separate-stderr orch-exec $(all_agents "$AGENTS/slow") "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	assert_equal "$(jq -r '.summary | "\(.waves) \(.max_parallel) \(.succeeded)"' <<<"$output")" "3 2 4"
	(( t1 - t0 >= 600 )) || fail "took $((t1 - t0)) ms, less than the critical path"
	# The schedule: the communicator ran beside the planner; the builder
	# and the reviewer each started once what they wait for had ended.
	(( $(node started_at communicator) < $(node ended_at planner) &&
	   $(node started_at planner) < $(node ended_at communicator) )) ||
		fail "the communicator did not run beside the planner"
	(( $(node started_at builder) >= $(node ended_at planner) )) || fail "builder before planner"
	(( $(node started_at reviewer) >= $(node ended_at builder) )) || fail "reviewer before builder"
	# And the time: the critical path plus overhead (the cycle alone,
	# without the program's start-up, which is slow under ASan).
	local cycle
	cycle=$(jq -r .summary.duration_ms <<<"$output")
	(( cycle < 1000 )) || fail "the cycle took $cycle ms for a 600 ms critical path"
}

@test "-j 1 runs one agent at a time" {
	stack alpha
	agent slow "sleep 0.2; exec '$FIXTURES/agents/task'"
	graph alpha planner communicator >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 orch-exec -j 1 $(all_agents "$AGENTS/slow") "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	assert_equal "$(jq -r .summary.max_parallel <<<"$output")" "1"
	(( t1 - t0 >= 400 )) || fail "took $((t1 - t0)) ms with -j 1"
}

@test "-j bounds the children across all stacks in the input" {
	local s
	agent slow "sleep 0.3; exec '$FIXTURES/agents/task'"
	for s in s1 s2 s3 s4; do
		stack $s
		graph $s communicator
	done >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 orch-exec -j 2 $(all_agents "$AGENTS/slow") "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	assert_equal "${#lines[@]}" "4"
	assert_equal "$(max_overlap <<<"$output")" "2"
	(( t1 - t0 >= 600 )) || fail "4 x 0.3 s at -j 2 took $((t1 - t0)) ms"
}

@test "a timeout ends the agent and its children; dependents are skipped" {
	stack alpha
	ok_agent
	agent hang "sleep 30 & echo \$! >'$BATS_TEST_TMPDIR/sleep.pid'; wait"
	graph alpha planner builder communicator >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 --separate-stderr orch-exec --timeout 300 --retries 0 $(all_agents "$AGENTS/ok") \
		--agent planner="$AGENTS/hang" "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	(( t1 - t0 < 8000 )) || fail "took $((t1 - t0)) ms: it waited for the agent"
	assert_equal "$(node status planner)" "failed"
	assert_equal "$(node error planner)" "timed out after 300 ms"
	assert_equal "$(node status builder)" "skipped"
	assert_equal "$(node error builder)" "dependency 'planner' failed"
	assert_equal "$(node attempts builder)" "0"
	assert_equal "$(node status communicator)" "completed"
	# The sleep the agent started is gone too (or a zombie where PID 1 does
	# not reap): its process group was killed.
	local state
	state=$(awk '{print $3}' "/proc/$(cat "$BATS_TEST_TMPDIR/sleep.pid")/stat" 2>/dev/null || true)
	[[ -z $state || $state == Z ]] || fail "the agent's child still runs (state $state)"
	assert_equal "$(sql "SELECT status FROM executions")" "failed"
	assert_equal "$(sql "SELECT error FROM executions")" "planner: timed out after 300 ms"
}

@test "an agent that ignores SIGTERM is killed after --kill-after" {
	stack alpha
	agent stubborn 'trap "" TERM; while :; do sleep 0.05; done'
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 orch-exec --timeout 200 --kill-after 300 --retries 0 \
		--agent planner="$AGENTS/stubborn" "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	assert_equal "$(node error planner)" "timed out after 200 ms"
	(( t1 - t0 >= 500 && t1 - t0 < 8000 )) || fail "took $((t1 - t0)) ms"
}

@test "a failed attempt is retried after a backoff and then succeeds" {
	stack alpha
	agent flaky "cat >/dev/null
n=\$(cat '$BATS_TEST_TMPDIR/count' 2>/dev/null || echo 0)
echo \$((n + 1)) >'$BATS_TEST_TMPDIR/count'
[ \"\$n\" -ge 1 ] || { echo 'first try fails' >&2; exit 3; }
echo '{\"actions\":[{\"type\":\"create_todo\",\"content\":\"second try\"}]}'"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 2 --retry-delay 100 --agent planner="$AGENTS/flaky" \
		"$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner)" "completed"
	assert_equal "$(node attempts planner)" "2"
	assert_equal "$(node error planner)" "null"
	assert_equal "$(sql "SELECT attempt || ':' || status || ':' || COALESCE(error, '') FROM traces ORDER BY attempt")" \
		"$(printf '1:failed:exit status 3: first try fails\n2:completed:')"
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE content = 'second try'")" "1"
}

@test "retries used up: the node fails with the last error and the exit status" {
	stack alpha
	agent broken 'cat >/dev/null; echo "warming up" >&2; echo "disk on fire" >&2; exit 7'
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 2 --retry-delay 10 --agent communicator="$AGENTS/broken" \
		"$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status communicator)" "failed"
	assert_equal "$(node attempts communicator)" "3"
	assert_equal "$(node error communicator)" "exit status 7: disk on fire"
	assert_equal "$(sql "SELECT group_concat(exit_status) FROM traces")" "7,7,7"
	# The message waits for the next cycle.
	assert_equal "$(sql "SELECT processed FROM user_messages")" "0"
}

@test "a failed node does not stop its siblings; the builder's todo goes back to pending" {
	stack alpha
	ok_agent
	agent fail 'cat >/dev/null; exit 1'
	graph alpha builder communicator reviewer >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 0 $(all_agents "$AGENTS/ok") --agent builder="$AGENTS/fail" \
		"$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '.nodes | map("\(.agent)=\(.status)") | join(" ")' <<<"$output")" \
		"builder=failed communicator=completed reviewer=skipped"
	assert_equal "$(node error reviewer)" "dependency 'builder' failed"
	assert_equal "$(sql "SELECT status FROM todos")" "pending"
	assert_equal "$(jq -r '.summary | "\(.succeeded) \(.failed) \(.skipped)"' <<<"$output")" "1 1 1"
}

@test "the builder gets its todo in_progress and the context document" {
	stack alpha
	agent spy "tee '$BATS_TEST_TMPDIR/context.json' | '$FIXTURES/agents/task'"
	graph alpha builder >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --agent builder="$AGENTS/spy" "$BATS_TEST_TMPDIR/g.json"
	run -0 jq -r '[.type, .agent, .cycle, .task.reason, .task.todo.content, .task.todo.status,
	               .snapshot.type, (.artifact_content | tostring)] | join(" ")' "$BATS_TEST_TMPDIR/context.json"
	assert_equal "$output" "orch.context builder 1 test build it in_progress orch.snapshot null"
	assert_equal "$(sql "SELECT status, completed_at IS NOT NULL FROM todos")" "completed|1"
}

@test "actions are applied all or none: one bad action leaves the store untouched" {
	stack alpha
	stack beta
	local theirs
	theirs=$(sql "SELECT t.id FROM todos t JOIN stacks s ON s.id = t.stack_id WHERE s.name = 'beta'")
	agent sneaky "cat >/dev/null; echo '{\"actions\":[{\"type\":\"create_todo\",\"content\":\"mine\"},{\"type\":\"complete_todo\",\"id\":$theirs}]}'"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	local before
	before=$(sql "SELECT * FROM todos; SELECT * FROM projects; SELECT * FROM user_messages")
	run -0 orch-exec --retries 0 --agent planner="$AGENTS/sneaky" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner)" "failed"
	assert_equal "$(node error planner)" "action 2 (complete_todo): no todo $theirs in this stack"
	assert_equal "$(sql "SELECT * FROM todos; SELECT * FROM projects; SELECT * FROM user_messages")" "$before"
	# A failed planner keeps its bookkeeping: it will plan again.
	assert_equal "$(sql "SELECT count(*) FROM agent_runs WHERE agent = 'planner'")" "0"
}

@test "output that is not an actions document fails the node with what is wrong" {
	stack alpha
	agent prose 'cat >/dev/null; echo "Sure! Here are the actions you asked for."'
	agent silent 'cat >/dev/null'
	agent unknown "cat >/dev/null; echo '{\"actions\":[{\"type\":\"drop_tables\"}]}'"
	graph alpha planner communicator reviewer >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 0 --agent planner="$AGENTS/prose" \
		--agent communicator="$AGENTS/silent" --agent reviewer="$AGENTS/unknown" \
		"$BATS_TEST_TMPDIR/g.json"
	[[ $(node error planner) == "output is not JSON: line 1: "* ]] || fail "$(node error planner)"
	assert_equal "$(node error communicator)" "printed nothing on standard output"
	assert_equal "$(node error reviewer)" "action 1: unknown type 'drop_tables'"
}

@test "a command that cannot be run fails at once, without retries" {
	stack alpha
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 3 --agent planner=no-such-agent-command "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner)" "failed"
	assert_equal "$(node attempts planner)" "1"
	assert_equal "$(node error planner)" "cannot run 'no-such-agent-command': No such file or directory"
}

@test "output past the cap fails the node instead of being cut" {
	stack alpha
	agent flood 'cat >/dev/null; head -c 9000000 /dev/zero | tr "\0" x'
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 0 --agent planner="$AGENTS/flood" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node error planner)" "output larger than 8388608 bytes"
}

@test "commands are words, never a shell: arguments with spaces and quotes arrive whole" {
	stack alpha
	agent args "cat >/dev/null; printf '%s\n' \"\$@\" >'$BATS_TEST_TMPDIR/args'; echo '{\"actions\":[]}'"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --agent "planner=$AGENTS/args 'two words' \"a \\\"q\\\"\" \$HOME;rm" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner)" "completed"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/args")" "$(printf '%s\n' 'two words' 'a "q"' '$HOME;rm')"
}

@test "a stack that is not running passes through without running an agent" {
	stack alpha
	ok_agent
	graph alpha planner communicator >"$BATS_TEST_TMPDIR/g.json"
	orch-stack pause alpha
	run -0 orch-exec $(all_agents "$AGENTS/ok") "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.skip_reason) \(.execution_id)"' <<<"$output")" "false stack is paused null"
	assert_equal "$(jq -r '.nodes | map("\(.status):\(.error)") | unique | .[]' <<<"$output")" "skipped:stack is paused"
	assert_equal "$(sql "SELECT count(*) FROM executions") $(sql "SELECT count(*) FROM traces")" "0 0"
	run -0 bash -c "orch-decide <<<'$output'"
	assert_equal "$(jq -r .action <<<"$output")" "stop"
}

@test "a graph with no nodes is still a recorded cycle" {
	stack alpha
	graph alpha >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -c '[.ran, .cycle, .nodes, .summary.waves]' <<<"$output")" '[true,1,[],0]'
	assert_equal "$(sql "SELECT status FROM executions")" "completed"
}

@test "overlapping pipelines: a stack held by a live orch-exec is skipped, not run twice" {
	stack alpha
	agent slow "echo started >>'$BATS_TEST_TMPDIR/started'; sleep 1; exec '$FIXTURES/agents/task'"
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	orch-exec --agent communicator="$AGENTS/slow" "$BATS_TEST_TMPDIR/g.json" >"$BATS_TEST_TMPDIR/first.json" &
	local first=$!
	wait_for "$BATS_TEST_TMPDIR/started"
	# A live holder on this host keeps the stack even past its lease's
	# expiry: a cycle that waited long for -j slots is still running.
	sql "UPDATE stacks SET lease_expires_at = 1"
	run -0 orch-exec --agent communicator="$AGENTS/slow" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r .ran <<<"$output")" "false"
	[[ $(jq -r .skip_reason <<<"$output") == "another pipeline holds the stack ("*":$first)" ]] ||
		fail "$(jq -r .skip_reason <<<"$output")"
	wait "$first"
	assert_equal "$(jq -r '"\(.ran) \(.nodes[0].status)"' "$BATS_TEST_TMPDIR/first.json")" "true completed"
	assert_equal "$(sql "SELECT count(*) FROM executions")" "1"
	run -0 bash -c "orch-decide <<<'$output'"
	assert_equal "$(jq -r '"\(.action) \(.pause_ms)"' <<<"$output")" "pause 1000"
}

@test "a lease held from another host keeps the stack until it expires, then is taken over" {
	stack alpha
	ok_agent
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	local id
	id=$(sql "SELECT id FROM stacks WHERE name = 'alpha'")
	sql "INSERT INTO executions (stack_id, cycle, status, started_at, owner)
	       VALUES ($id, 1, 'running', 1, 'elsewhere.example:4242:7');
	     UPDATE stacks SET lease_owner = 'elsewhere.example:4242:7', lease_host = 'elsewhere.example',
	       lease_pid = 4242, lease_expires_at = $(( $(now_ms) + 600000 )), lease_execution_id = 1"
	run -0 orch-exec --agent communicator="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.skip_reason)"' <<<"$output")" \
		"false another pipeline holds the stack (elsewhere.example:4242)"
	sql "UPDATE stacks SET lease_expires_at = $(( $(now_ms) - 1 ))"
	run -0 orch-exec --agent communicator="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.cycle) \(.recovered.abandoned_by)"' <<<"$output")" \
		"true 2 elsewhere.example:4242"
	assert_equal "$(sql "SELECT cycle || ':' || status FROM executions ORDER BY cycle")" \
		"$(printf '1:failed\n2:completed')"
}

@test "kill -9 of orch-exec: its agent dies too and the next cycle takes the lease over" {
	stack alpha
	agent hang "cat >/dev/null; echo \$\$ >'$BATS_TEST_TMPDIR/agent.pid'; exec sleep 30"
	ok_agent
	graph alpha builder >"$BATS_TEST_TMPDIR/g.json"
	orch-exec --agent builder="$AGENTS/hang" "$BATS_TEST_TMPDIR/g.json" >/dev/null &
	local pid=$! i
	for i in $(seq 50); do [ -s "$BATS_TEST_TMPDIR/agent.pid" ] && break; sleep 0.1; done
	assert_equal "$(sql "SELECT status FROM todos")" "in_progress"
	kill -9 "$pid"
	wait "$pid" || true
	# PR_SET_PDEATHSIG: the agent did not outlive its orch-exec (gone, or a
	# zombie where PID 1 does not reap orphans).
	local state
	for i in $(seq 50); do
		state=$(awk '{print $3}' "/proc/$(cat "$BATS_TEST_TMPDIR/agent.pid")/stat" 2>/dev/null || true)
		[[ -z $state || $state == Z ]] && break
		sleep 0.1
	done
	[[ -z $state || $state == Z ]] || fail "the agent is still running (state $state)"
	run -0 orch-exec --agent builder="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.cycle) \(.recovered.todos_returned)"' <<<"$output")" "true 2 1"
	[[ $(jq -r .recovered.abandoned_by <<<"$output") == *":$pid" ]] || fail "$output"
	assert_equal "$(sql "SELECT cycle || ':' || status FROM executions ORDER BY cycle")" \
		"$(printf '1:failed\n2:completed')"
	[[ $(sql "SELECT error FROM executions WHERE cycle = 1") == "abandoned: its orch-exec ("*":$pid) is gone" ]] ||
		fail "$(sql "SELECT error FROM executions WHERE cycle = 1")"
	# The todo went back to pending, then this cycle's builder completed it.
	assert_equal "$(sql "SELECT status FROM todos")" "completed"
}

@test "SIGTERM: running agents are stopped, the cycle recorded as failed, exit 75" {
	stack alpha
	agent hang "cat >/dev/null; echo started >>'$BATS_TEST_TMPDIR/started'; exec sleep 30"
	graph alpha builder communicator >"$BATS_TEST_TMPDIR/g.json"
	orch-exec $(all_agents "$AGENTS/hang") "$BATS_TEST_TMPDIR/g.json" \
		>"$BATS_TEST_TMPDIR/out.json" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! status=0
	wait_for "$BATS_TEST_TMPDIR/started" 2
	kill -TERM "$pid"
	wait "$pid" || status=$?
	assert_equal "$status" "75"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" "orch-exec: interrupted by signal 15 (Terminated)"
	assert_equal "$(jq -r '.nodes | map(.status) | unique | join(" ")' "$BATS_TEST_TMPDIR/out.json")" "failed"
	assert_equal "$(sql "SELECT status FROM executions") $(sql "SELECT status FROM todos")" "failed pending"
	assert_equal "$(sql "SELECT lease_owner IS NULL FROM stacks")" "1"
}

@test "--barrier and --wave-delay space the waves" {
	stack alpha
	agent quick "exec '$FIXTURES/agents/task'"
	agent slow "sleep 0.3; exec '$FIXTURES/agents/task'"
	graph alpha planner builder communicator >"$BATS_TEST_TMPDIR/g.json"
	# Without a barrier the builder starts when the planner ends, while the
	# slow communicator of wave 0 still runs.
	run -0 orch-exec $(all_agents "$AGENTS/quick") --agent communicator="$AGENTS/slow" "$BATS_TEST_TMPDIR/g.json"
	(( $(node started_at builder) < $(node ended_at communicator) )) || fail "builder waited for wave 0"
	orch-stack todo add alpha "again"
	run -0 orch-exec --barrier $(all_agents "$AGENTS/quick") --agent communicator="$AGENTS/slow" "$BATS_TEST_TMPDIR/g.json"
	(( $(node started_at builder) >= $(node ended_at communicator) )) || fail "--barrier: builder started early"
	orch-stack todo add alpha "and again"
	run -0 orch-exec --wave-delay 400 $(all_agents "$AGENTS/quick") "$BATS_TEST_TMPDIR/g.json"
	local gap=$(( $(node started_at builder) - $(node ended_at communicator) ))
	(( gap >= 400 )) || fail "--wave-delay 400: builder started $gap ms after wave 0"
}

@test "the configuration file sets agents and limits; flags win" {
	stack alpha
	agent slow "sleep 2; exec '$FIXTURES/agents/task'"
	ok_agent
	cat >"$BATS_TEST_TMPDIR/config" <<-EOF
	# orch configuration
	agent.planner = $AGENTS/slow
	exec.timeout = 200
	exec.retries = 0
	EOF
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --config "$BATS_TEST_TMPDIR/config" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node error planner)" "timed out after 200 ms"
	orch-stack start alpha
	run -0 orch-exec --config "$BATS_TEST_TMPDIR/config" --agent planner="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner)" "completed"
	# The default file is read when it exists.
	mkdir -p "$HOME/.config/orch"
	cp "$BATS_TEST_TMPDIR/config" "$HOME/.config/orch/config"
	run -0 orch-exec "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node error planner)" "timed out after 200 ms"
}

@test "configuration errors name the file and line" {
	stack alpha
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -66 --separate-stderr orch-exec --config "$BATS_TEST_TMPDIR/nope" "$BATS_TEST_TMPDIR/g.json"
	[[ $stderr == "orch-exec: "*"$BATS_TEST_TMPDIR/nope"* ]] || fail "$stderr"
	printf 'exec.timeout = soon\n' >"$BATS_TEST_TMPDIR/config"
	run -65 --separate-stderr orch-exec --config "$BATS_TEST_TMPDIR/config" "$BATS_TEST_TMPDIR/g.json"
	[[ $stderr == "orch-exec: "*"exec.timeout"*"$BATS_TEST_TMPDIR/config:1"* ]] || fail "$stderr"
	printf 'agent.planner = "unterminated\n' >"$BATS_TEST_TMPDIR/config"
	run -65 --separate-stderr orch-exec --config "$BATS_TEST_TMPDIR/config" "$BATS_TEST_TMPDIR/g.json"
	[[ $stderr == "orch-exec: agent.planner ($BATS_TEST_TMPDIR/config:1): unterminated quote"* ]] || fail "$stderr"
}

@test "traces keep the context without the artifact and what the agent printed" {
	stack alpha
	agent writer "cat >/dev/null; echo '{\"actions\":[{\"type\":\"write_artifact\",\"content\":\"<p>v</p>\"}],\"usage\":{\"prompt_tokens\":3}}'"
	graph alpha builder >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --agent builder="$AGENTS/writer" "$BATS_TEST_TMPDIR/g.json"
	orch-stack todo add alpha "more"
	run -0 orch-exec --agent builder="$AGENTS/writer" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(sql "SELECT json_extract(input, '$.artifact_content') IS NULL,
	                            json_extract(input, '$.artifact_content_bytes'),
	                            json_extract(output, '$.actions[0].type'),
	                            json_extract(usage, '$.prompt_tokens')
	                     FROM traces ORDER BY id DESC LIMIT 1")" "1|8|write_artifact|3"
}

@test "bad input: each document error names the line and exits 65 before any agent runs" {
	stack alpha
	ok_agent
	graph alpha planner builder >"$BATS_TEST_TMPDIR/g.json"
	local good
	good=$(cat "$BATS_TEST_TMPDIR/g.json")
	# The input given whole, as a file: a graph read in a later read()
	# than a bad document could have started before it.
	check() {
		printf '%s\n%s\n' "$good" "$1" >"$BATS_TEST_TMPDIR/in.json"
		run -65 --separate-stderr bash -c "orch-exec $(all_agents "$AGENTS/ok" | tr '\n' ' ' | sed 's/--agent /--agent=/g') <'$BATS_TEST_TMPDIR/in.json'"
		assert_equal "$stderr" "orch-exec: line 2: $2"
		assert_equal "$output" ""
	}
	check '{"type":"orch.snapshot","version":1}' "expected an orch.graph document, got 'orch.snapshot'"
	check "$(jq -c '.version = 2' <<<"$good")" "unsupported orch.graph version 2"
	check "$(jq -c '.nodes[0].agent = "janitor"' <<<"$good")" "nodes[0]: unknown agent 'janitor'"
	check "$(jq -c '.nodes[1].agent = "planner"' <<<"$good")" "nodes[1]: agent 'planner' has two nodes"
	check "$(jq -c '.nodes[0].deps = ["builder"]' <<<"$good")" \
		"nodes[0]: 'deps' names 'builder', which is not a node of an earlier wave"
	check "$(jq -c '.nodes[1].deps = ["reviewer"]' <<<"$good")" \
		"nodes[1]: 'deps' names 'reviewer', which is not a node of an earlier wave"
	check "$(jq -c '.nodes[0].priority = 11' <<<"$good")" \
		"nodes[0]: 'priority' must be an integer from 0 to 10"
	check "$(jq -c 'del(.max_priority)' <<<"$good")" "'max_priority' must be an integer from 0 to 10"
	check '{"type":"orch.graph"' "unexpected end of input inside a document"
	assert_equal "$(sql "SELECT count(*) FROM executions")" "0"
	assert_equal "$(sql "SELECT status FROM todos")" "pending"
	# A stack's second graph while its cycle runs here is not run twice.
	run -0 --separate-stderr bash -c "cat '$BATS_TEST_TMPDIR/g.json' '$BATS_TEST_TMPDIR/g.json' |
		orch-exec $(all_agents "$AGENTS/ok" | tr '\n' ' ' | sed 's/--agent /--agent=/g')"
	assert_equal "$stderr" ""
	assert_equal "$(jq -sc 'map([.ran, .skip_reason])' <<<"$output")" \
		'[[false,"its cycle is already running in this orch-exec"],[true,null]]'
}

@test "usage errors exit 64; a missing database or file exits 66" {
	run -64 --separate-stderr orch-exec --agent janitor=true
	assert_equal "${stderr_lines[0]}" "orch-exec: --agent: unknown agent 'janitor' (planner, builder, communicator or reviewer)"
	run -64 --separate-stderr orch-exec --agent planner
	assert_equal "${stderr_lines[0]}" "orch-exec: --agent: expected NAME=COMMAND, not 'planner'"
	run -64 --separate-stderr orch-exec --agent "planner='open"
	[[ ${stderr_lines[0]} == "orch-exec: --agent planner: unterminated quote"* ]] || fail "$stderr"
	run -64 --separate-stderr orch-exec -j 0
	assert_equal "${stderr_lines[0]}" "orch-exec: --jobs: '0' is not a whole number from 1 to 10000"
	run -64 --separate-stderr orch-exec --timeout -1
	assert_equal "${stderr_lines[0]}" "orch-exec: --timeout: '-1' is not a whole number from 0 to 604800000"
	run -64 --separate-stderr orch-exec a b
	assert_equal "${stderr_lines[0]}" "orch-exec: unexpected argument 'b'"
	run -66 --separate-stderr orch-exec "$BATS_TEST_TMPDIR/none.json"
	assert_equal "$stderr" "orch-exec: cannot open '$BATS_TEST_TMPDIR/none.json': No such file or directory"
	run -66 --separate-stderr orch-exec --db "$BATS_TEST_TMPDIR/none.db" </dev/null
	assert_equal "$stderr" "orch-exec: no database at '$BATS_TEST_TMPDIR/none.db' (run 'orch-stack init')"
}

@test "empty input: nothing to run, exit 0" {
	run -0 --separate-stderr orch-exec </dev/null
	assert_equal "$output$stderr" ""
}

@test "--trace writes a Chrome trace: a lane per running agent, a span per attempt" {
	stack alpha
	agent slow "sleep 0.2; exec '$FIXTURES/agents/task'"
	agent fail 'cat >/dev/null; exit 2'
	graph alpha planner builder communicator >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec -j 2 --retries 1 --retry-delay 10 --trace "$BATS_TEST_TMPDIR/trace.json" \
		$(all_agents "$AGENTS/slow") --agent communicator="$AGENTS/fail" "$BATS_TEST_TMPDIR/g.json"
	local t=$BATS_TEST_TMPDIR/trace.json
	assert_equal "$(jq -r '[.traceEvents[] | select(.ph == "M" and .name == "thread_name") | .args.name] | join(",")' "$t")" \
		"slot 0,slot 1"
	assert_equal "$(jq -r '[.traceEvents[] | select(.ph == "X") | "\(.name):\(.args.attempt):\(.cat)"] | sort | join(" ")' "$t")" \
		"alpha/builder:1:completed alpha/communicator:1:failed alpha/communicator:2:failed alpha/planner:1:completed"
	# Spans are in microseconds, and the planner and the communicator ran
	# side by side in two lanes.
	assert_equal "$(jq -r '.traceEvents[] | select(.name == "alpha/planner") | (.dur >= 200000)' "$t")" "true"
	assert_equal "$(jq -r '[.traceEvents[] | select(.ph == "X" and .args.attempt == 1 and .name != "alpha/builder") | .tid] | sort | join(",")' "$t")" "0,1"
	assert_equal "$(jq -r '.traceEvents[] | select(.name == "alpha/communicator" and .args.attempt == 1) | .args.detail' "$t")" "exit status 2"
	run -66 --separate-stderr orch-exec --trace "$BATS_TEST_TMPDIR/no/such/dir/t.json" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$stderr" "orch-exec: cannot create '$BATS_TEST_TMPDIR/no/such/dir/t.json': No such file or directory"
}

@test "-v says each agent run; --progress forces progress lines; -q silences them" {
	stack alpha
	ok_agent
	agent fail 'cat >/dev/null; echo "no luck" >&2; exit 2'
	graph alpha planner communicator >"$BATS_TEST_TMPDIR/g.json"
	run -0 --separate-stderr orch-exec -v --retries 1 --retry-delay 10 $(all_agents "$AGENTS/ok") \
		--agent communicator="$AGENTS/fail" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(sed -E 's/in [0-9]+ ms/in N ms/' <<<"$stderr" | sort)" "$(printf '%s\n' \
		'orch-exec: alpha/communicator: failed (attempt 1, retrying) in N ms: exit status 2: no luck' \
		'orch-exec: alpha/communicator: failed in N ms: exit status 2: no luck' \
		'orch-exec: alpha/planner: completed in N ms: no actions' | sort)"
	orch-stack start alpha
	run -0 --separate-stderr orch-exec --progress $(all_agents "$AGENTS/ok") "$BATS_TEST_TMPDIR/g.json"
	assert_equal "${stderr_lines[-1]}" "orch-exec: 1/1 stacks done, 0 agents running, 0 failed"
	run -0 --separate-stderr orch-exec --progress -q $(all_agents "$AGENTS/ok") "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$stderr" ""
}

@test "-v escapes what agents chose: a send_message target, unknown types and fields, stack names" {
	stack alpha
	# Each agent's answer names something with escape sequences in it.
	jq -cn '{actions: [{type: "reply_user", message_id: 1, content: "hello"},
		{type: "send_message", to: "\u001b[2J\u001b]0;pwned\u0007b", content: "hi"}]}' \
		>"$BATS_TEST_TMPDIR/to.json"
	jq -cn '{actions: [{type: "\u001b[31mred\u009b1m"}]}' >"$BATS_TEST_TMPDIR/type.json"
	jq -cn '{actions: [{type: "create_todo", content: "x", "\u001b[5mblink\r": 1}]}' >"$BATS_TEST_TMPDIR/field.json"
	agent to "cat >/dev/null; cat '$BATS_TEST_TMPDIR/to.json'"
	agent type "cat >/dev/null; cat '$BATS_TEST_TMPDIR/type.json'"
	agent field "cat >/dev/null; cat '$BATS_TEST_TMPDIR/field.json'"
	graph alpha planner communicator reviewer >"$BATS_TEST_TMPDIR/g.json"
	# The stack's name as the graph gives it (a document orch-exec reads).
	jq -c '.stack.name = "al\u001b[8mpha"' "$BATS_TEST_TMPDIR/g.json" >"$BATS_TEST_TMPDIR/g2.json"
	run -0 --separate-stderr orch-exec -v --retries 0 --agent planner="$AGENTS/field" \
		--agent communicator="$AGENTS/to" --agent reviewer="$AGENTS/type" "$BATS_TEST_TMPDIR/g2.json"
	[[ $stderr != *$'\e'* && $stderr != *$'\a'* && $stderr != *$'\r'* && $stderr != *$'\xc2\x9b'* ]] ||
		fail "a control character reached the terminal: $(printf %q "$stderr")"
	assert_equal "$(sed -E 's/in [0-9]+ ms/in N ms/' <<<"$stderr" | sort)" "$(printf '%s\n' \
		"orch-exec: al [8mpha/communicator: failed in N ms: action 2 (send_message): no stack ' [2J ]0;pwned b'" \
		"orch-exec: al [8mpha/planner: failed in N ms: action 1 (create_todo): unknown field ' [5mblink '" \
		"orch-exec: al [8mpha/reviewer: failed in N ms: action 1: unknown type ' [31mred 1m'" | sort)"
}

@test "on a terminal: progress and colour, and no colour with NO_COLOR" {
	command -v script >/dev/null || skip "script(1) is not installed"
	stack alpha
	ok_agent
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	local cmd="orch-exec -v --agent planner=$AGENTS/ok $BATS_TEST_TMPDIR/g.json >/dev/null"
	run -0 script -qec "$cmd" /dev/null
	[[ $output == *$'\e[32mcompleted\e[0m'* ]] || fail "no colour: $output"
	[[ $output == *$'\r\e[K'"orch-exec: 0/1 stacks done, 1 agent running, 0 failed"* ]] || fail "no progress: $output"
	orch-stack start alpha
	run -0 script -qec "NO_COLOR=1 $cmd" /dev/null
	[[ $output != *$'\e[32m'* ]] || fail "colour with NO_COLOR: $output"
	[[ $output == *"alpha/planner: completed in"* ]] || fail "$output"
}

@test "an agent's stderr in an error is one bounded line with no control characters" {
	stack alpha
	agent noisy 'cat >/dev/null
printf "warming up\n\033]0;pwned\007bad " >&2
i=0; while [ $i -lt 2000 ]; do printf x; i=$((i + 1)); done >&2
echo >&2; exit 4'
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 0 --agent planner="$AGENTS/noisy" "$BATS_TEST_TMPDIR/g.json"
	local error
	error=$(node error planner)
	[[ $error == "exit status 4:  ]0;pwned bad xxx"*"x..." ]] || fail "$error"
	# "exit status 4: ", 500 bytes of the line, "...".
	assert_equal "${#error}" "518"
}
