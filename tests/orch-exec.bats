#!/usr/bin/env bats
# orch-exec: running graphs of agents, applying their actions, recording
# every cycle; time bounds, retries, isolation, leases.

load test_helper
load exec_helper

setup() {
	exec_setup
}

# agent NAME SCRIPT: an agent command, a sh script, at $AGENTS/NAME.
agent() {
	printf '#!/bin/sh\n%s\n' "$2" >"$AGENTS/$1"
	chmod +x "$AGENTS/$1"
}

# ok_agent: an agent that does its task (tests/fixtures/agents/task).
ok_agent() {
	agent ok "exec '$FIXTURES/agents/task'"
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
	# And the time: the critical path's own nodes plus orch-exec's overhead
	# (the cycle alone, without the program's start-up, slow under ASan).
	# The nodes' times are the yardstick, not the clock: on a loaded
	# machine an agent's start and exit take longer, and so does the path.
	local cycle path
	cycle=$(jq -r .summary.duration_ms <<<"$output")
	path=$(jq -r '[.nodes[] | select(.agent != "communicator") | .ended_at - .started_at] | add' <<<"$output")
	(( cycle < path + 500 )) ||
		fail "the cycle took $cycle ms for a critical path whose nodes took $path ms"
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

@test "out of file descriptors, nodes wait for a running one to end, as for -j, instead of failing" {
	local now
	now=$(now_ms)
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120)
	     INSERT INTO stacks (name, execution_state, created_at, next_run_at)
	       SELECT 's' || i, 'running', $now, 0 FROM n;
	     INSERT INTO user_messages (stack_id, sender, content, created_at)
	       SELECT id, 'user', 'hello', $now FROM stacks;"
	jq -cn 'range(1; 121) | {type: "orch.graph", version: 1,
	  stack: {id: ., name: "s\(.)", phase: "planning", execution_state: "running", created_at: 1},
	  created_at: 1, max_priority: 10,
	  nodes: [{id: "s\(.)/communicator", agent: "communicator", priority: 10, reason: "r", deps: [], wave: 0}],
	  waves: [["communicator"]]}' >"$BATS_TEST_TMPDIR/g.json"
	agent quick "sleep 0.05; exec '$FIXTURES/agents/task'"
	# 48 descriptors: room for a dozen agents' pipes, not 120.
	run -0 --separate-stderr prlimit --nofile=48 orch-exec -j 120 --retries 0 \
		--agent communicator="$AGENTS/quick" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r '.nodes[0].status' <<<"$output" | sort | uniq -c | sed 's/^ *//')" "120 completed"
	local most
	most=$(max_overlap <<<"$output")
	(( most > 1 && most < 120 )) || fail "$most agents ran at once"
	assert_equal "$(sql "SELECT count(*) FROM user_messages WHERE processed = 1")" "120"
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

@test "retry contract: 65 and 69 are not retried this cycle, 75 and others are; 69 and 75 do not count against the todo" {
	local st
	for st in 65 69 75 7; do
		sql "DELETE FROM stacks"
		stack alpha
		agent "exit$st" "cat >/dev/null; echo 'status $st' >&2; exit $st"
		graph alpha builder >"$BATS_TEST_TMPDIR/g.json"
		run -0 orch-exec --retries 2 --retry-delay 10 --agent builder="$AGENTS/exit$st" \
			"$BATS_TEST_TMPDIR/g.json"
		assert_equal "$(node status builder)" "failed"
		assert_equal "$(node error builder)" "exit status $st: status $st"
		assert_equal "$(node retry_after_ms builder)" "null"
		assert_equal "$st:$(sql "SELECT count(*) FROM traces JOIN stacks ON stacks.id = stack_id")" "$st:$(case $st in 65|69) echo 1;; *) echo 3;; esac)"
		assert_equal "$st:$(sql "SELECT attempts FROM todos JOIN stacks ON stacks.id = stack_id")" "$st:$(case $st in 65) echo 1;; 7) echo 3;; *) echo 0;; esac)"
	done
}

@test "retry contract: a last stderr line 'retry-after-ms: N' delays the retry, or past 60 s ends the node's cycle and is handed on" {
	stack alpha
	agent wait "cat >/dev/null
n=\$(cat '$BATS_TEST_TMPDIR/count' 2>/dev/null || echo 0)
echo \$((n + 1)) >'$BATS_TEST_TMPDIR/count'
[ \"\$n\" -ge 1 ] && { echo '{\"actions\":[]}'; exit 0; }
echo 'rate limited' >&2; echo 'retry-after-ms: 700' >&2; exit 75"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 orch-exec --retries 2 --retry-delay 10 --agent planner="$AGENTS/wait" \
		"$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner)" "completed"
	assert_equal "$(node retry_after_ms planner)" "null"
	assert_equal "$(sql "SELECT error FROM traces WHERE attempt = 1")" "exit status 75: rate limited"
	local gap
	gap=$(sql "SELECT (SELECT started_at FROM traces WHERE attempt = 2) - ended_at FROM traces WHERE attempt = 1")
	((gap >= 690)) || fail "retried after $gap ms, asked 700"
	# Longer than any backoff: one attempt, the wait handed on.
	agent later "cat >/dev/null; echo 'quota' >&2; printf 'retry-after-ms:  600000\n\n' >&2; exit 75"
	run -0 orch-exec --retries 3 --retry-delay 10 --agent planner="$AGENTS/later" \
		"$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node attempts planner)" "1"
	assert_equal "$(node error planner)" "exit status 75: quota"
	assert_equal "$(node retry_after_ms planner)" "600000"
	assert_equal "$(jq .retry_after_ms <<<"$output")" "600000"
	# A success may ask too, in its document; a bad value is refused.
	agent asks "cat >/dev/null; echo '{\"actions\":[],\"retry_after_ms\":5000}'"
	run -0 orch-exec --retries 0 --agent planner="$AGENTS/asks" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node status planner):$(node retry_after_ms planner)" "completed:5000"
	agent bad "cat >/dev/null; echo '{\"actions\":[],\"retry_after_ms\":-1}'"
	run -0 orch-exec --retries 0 --agent planner="$AGENTS/bad" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(node error planner)" "'retry_after_ms' must be an integer from 0 to 604800000"
	assert_equal "$(jq .retry_after_ms <<<"$output")" "null"
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

@test "orch-exec raises its own descriptor limit; its agents get the one it was given" {
	stack alpha
	agent limits "cat >/dev/null; ulimit -Sn >'$BATS_TEST_TMPDIR/agent'; ulimit -Hn >>'$BATS_TEST_TMPDIR/agent'; grep '^Max open files' /proc/\$PPID/limits >'$BATS_TEST_TMPDIR/exec'; echo '{\"actions\":[]}'"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt 300 ] || skip "hard limit $(ulimit -Hn)"
	run -0 bash -c "ulimit -Sn 300 && exec orch-exec --agent planner='$AGENTS/limits' '$BATS_TEST_TMPDIR/g.json'"
	assert_equal "$(node status planner)" "completed"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/agent")" "$(printf '300\n%s' "$(ulimit -Hn)")"
	# orch-exec's own: soft as high as hard.
	read -r _ _ _ soft hard _ <"$BATS_TEST_TMPDIR/exec"
	assert_equal "$soft" "$hard"
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
	# The first agent holds its cycle open until the second orch-exec has
	# answered, however slowly it starts (under valgrind it takes seconds).
	agent slow "echo started >>'$BATS_TEST_TMPDIR/started'; i=0; while [ ! -e '$BATS_TEST_TMPDIR/go' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done; exec '$FIXTURES/agents/task'"
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
	touch "$BATS_TEST_TMPDIR/go"
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

# leave_behind: the lines of an agent that starts a child in its group, one
# in a session of its own, and a grandchild whose parent has exited, and
# writes their pids to $BATS_TEST_TMPDIR/pids.
leave_behind() {
	printf '%s\n' "sleep 300 & echo \$! >>'$BATS_TEST_TMPDIR/pids'" \
		"setsid sleep 300 & echo \$! >>'$BATS_TEST_TMPDIR/pids'" \
		"sh -c 'setsid sleep 300 & echo \$! >>\"$BATS_TEST_TMPDIR/pids\"'"
}

@test "a lease held from another PID namespace of this host is kept until it expires" {
	need_pid_namespace
	stack alpha
	ok_agent
	export MARKS=$BATS_TEST_TMPDIR/marks
	mkdir -p "$MARKS"
	agent held "cat >/dev/null
: >\"\$MARKS/\$1.running\"
i=0; while [ ! -e \"\$MARKS/go\" ] && [ \$i -lt 1500 ]; do sleep 0.02; i=\$((i + 1)); done
echo '{\"actions\":[]}'"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	# Held in another namespace (its pids are not ours: its orch-exec is
	# pid 1 there), the stack is not taken from here...
	"${PIDNS[@]}" orch-exec --agent "planner=$AGENTS/held inner" "$BATS_TEST_TMPDIR/g.json" \
		>"$BATS_TEST_TMPDIR/inner.json" &
	local ns=$!
	wait_file "$MARKS/inner.running"
	run -0 orch-exec --agent planner="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.skip_reason)"' <<<"$output")" \
		"false another pipeline holds the stack ($(hostname):1)"
	: >"$MARKS/go"
	wait "$ns"
	assert_equal "$(jq -r '"\(.ran) \(.nodes[0].status)"' "$BATS_TEST_TMPDIR/inner.json")" "true completed"
	# ... nor the other way round.
	rm "$MARKS/go"
	orch-exec --agent "planner=$AGENTS/held outer" "$BATS_TEST_TMPDIR/g.json" >"$BATS_TEST_TMPDIR/outer.json" &
	local outer=$!
	wait_file "$MARKS/outer.running"
	run -0 "${PIDNS[@]}" orch-exec --agent planner="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.skip_reason)"' <<<"$output")" \
		"false another pipeline holds the stack ($(hostname):$outer)"
	: >"$MARKS/go"
	wait "$outer"
	# A holder killed there is not known here to be gone: its lease
	# holds until it expires, like another host's, and is taken over then.
	rm "$MARKS/go" "$MARKS/inner.running"
	"${PIDNS[@]}" orch-exec --agent "planner=$AGENTS/held inner" "$BATS_TEST_TMPDIR/g.json" >/dev/null &
	ns=$!
	wait_file "$MARKS/inner.running"
	kill -9 "$(pgrep -P "$ns")"
	wait "$ns" || true
	run -0 orch-exec --agent planner="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r .ran <<<"$output")" "false"
	sql "UPDATE stacks SET lease_expires_at = $(( $(now_ms) - 1 ))"
	run -0 orch-exec --agent planner="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.recovered.abandoned_by)"' <<<"$output")" "true $(hostname):1"
}

@test "a lease owner of the old format (HOST:PID:START) is still read" {
	stack alpha
	ok_agent
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	local id owner
	id=$(sql "SELECT id FROM stacks WHERE name = 'alpha'")
	# A live process of this host, as orch before issue 10 wrote it.
	sleep 30 &
	local live=$!
	owner="$(hostname):$live:$(awk '{print $22}' "/proc/$live/stat")"
	sql "INSERT INTO executions (stack_id, cycle, status, started_at, owner)
	       VALUES ($id, 1, 'running', 1, '$owner');
	     UPDATE stacks SET lease_owner = '$owner', lease_host = '$(hostname)',
	       lease_pid = $live, lease_expires_at = 1, lease_execution_id = 1"
	run -0 orch-exec --agent communicator="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.skip_reason)"' <<<"$output")" \
		"false another pipeline holds the stack ($(hostname):$live)"
	kill "$live"
	wait "$live" || true
	run -0 orch-exec --agent communicator="$AGENTS/ok" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '"\(.ran) \(.recovered.abandoned_by)"' <<<"$output")" "true $(hostname):$live"
}

@test "kill -9 of orch-exec: its agent dies too and the next cycle takes the lease over" {
	stack alpha
	agent hang "cat >/dev/null
$(leave_behind)
echo \$\$ >'$BATS_TEST_TMPDIR/agent.pid'; exec sleep 30"
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
	# What the agent started, in its group or not, ended with the takeover.
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/pids")" "3"
	gone $(cat "$BATS_TEST_TMPDIR/pids")
	assert_equal "$(sql "SELECT cycle || ':' || status FROM executions ORDER BY cycle")" \
		"$(printf '1:failed\n2:completed')"
	[[ $(sql "SELECT error FROM executions WHERE cycle = 1") == "abandoned: its orch-exec ("*":$pid) is gone" ]] ||
		fail "$(sql "SELECT error FROM executions WHERE cycle = 1")"
	# The todo went back to pending, then this cycle's builder completed it.
	assert_equal "$(sql "SELECT status FROM todos")" "completed"
}

# gone PID...: each PID has ended (absent, or a zombie where PID 1 does not
# reap), waited for at most 5 s.
gone() {
	local pid i state
	for pid in "$@"; do
		for i in $(seq 50); do
			state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
			[[ -z $state || $state == Z ]] && break
			sleep 0.1
		done
		[[ -z $state || $state == Z ]] || fail "process $pid still runs (state $state): $(tr '\0' ' ' <"/proc/$pid/cmdline")"
	done
}

@test "agents run in a session of their own, with no controlling terminal" {
	command -v script >/dev/null || skip "script(1) is not installed"
	stack alpha
	agent peek "cat >/dev/null
awk '{print \$1, \$5, \$6, \$7}' /proc/\$\$/stat >'$BATS_TEST_TMPDIR/stat'
if ( : >/dev/tty ) 2>/dev/null; then echo tty; else echo none; fi >'$BATS_TEST_TMPDIR/tty'
echo '{\"actions\":[]}'"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	# On a terminal of its own, as a person runs it.
	run -0 script -qec "orch-exec -q --agent planner=$AGENTS/peek $BATS_TEST_TMPDIR/g.json >$BATS_TEST_TMPDIR/out.json" /dev/null
	assert_equal "$(jq -r '.nodes[0].status' "$BATS_TEST_TMPDIR/out.json")" "completed"
	# pid, process group, session, terminal: its own group and session,
	# no terminal; and /dev/tty cannot be opened.
	local pid pgrp sid tty
	read -r pid pgrp sid tty <"$BATS_TEST_TMPDIR/stat"
	assert_equal "$pgrp $sid $tty" "$pid $pid 0"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/tty")" "none"
}

@test "an agent that moves into orch-exec's process group still ends at its timeout" {
	stack alpha
	local python
	python=$(python3 -c 'import sys; print(sys.executable)')
	cat >"$AGENTS/mover" <<-EOF
	#!$python
	import os, sys, time
	sys.stdin.read()
	try:
	    os.setpgid(0, os.getpgid(os.getppid()))
	    result = "moved"
	except OSError:
	    result = "refused"
	open("$BATS_TEST_TMPDIR/moved", "w").write(result)
	time.sleep(30)
	EOF
	chmod +x "$AGENTS/mover"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 timeout 20 orch-exec --timeout 3000 --kill-after 500 --retries 0 \
		--agent planner="$AGENTS/mover" "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	(( t1 - t0 < 10000 )) || fail "took $((t1 - t0)) ms for a 3000 ms timeout"
	assert_equal "$(node error planner)" "timed out after 3000 ms"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/moved")" "refused"
}

@test "nothing an agent started outlives its node, whatever it did to its group or session" {
	stack alpha
	# A background child, one in a session of its own, and a grandchild
	# whose parent has exited; then the agent succeeds, or fails.
	local spawn="sleep 300 & echo \$! >>'$BATS_TEST_TMPDIR/pids'
setsid sleep 300 & echo \$! >>'$BATS_TEST_TMPDIR/pids'
sh -c 'setsid sleep 300 & echo \$! >>\"$BATS_TEST_TMPDIR/pids\"'"
	agent ok "$spawn
exec '$FIXTURES/agents/task'"
	agent fail "cat >/dev/null
$spawn
exit 3"
	graph alpha planner communicator >"$BATS_TEST_TMPDIR/g.json"
	local t0 t1
	t0=$(now_ms)
	run -0 timeout 20 orch-exec --retries 0 --agent planner="$AGENTS/ok" \
		--agent communicator="$AGENTS/fail" "$BATS_TEST_TMPDIR/g.json"
	t1=$(now_ms)
	(( t1 - t0 < 5000 )) || fail "took $((t1 - t0)) ms: it waited for what the agents left"
	assert_equal "$(jq -r '.nodes | map("\(.agent)=\(.status)") | join(" ")' <<<"$output")" \
		"planner=completed communicator=failed"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/pids")" "6"
	gone $(cat "$BATS_TEST_TMPDIR/pids")
}

@test "kill -9 of orch-exec: orch-detect's recovery ends what its agents started" {
	stack alpha
	agent hang "cat >/dev/null
$(leave_behind)
: >'$BATS_TEST_TMPDIR/ready'; exec sleep 30"
	graph alpha builder communicator >"$BATS_TEST_TMPDIR/g.json"
	orch-exec $(all_agents "$AGENTS/hang") "$BATS_TEST_TMPDIR/g.json" >/dev/null &
	local pid=$!
	wait_for "$BATS_TEST_TMPDIR/pids" 6
	kill -9 "$pid"
	wait "$pid" || true
	# Nothing has ended them yet: they were reparented, not killed.
	local p alive=0
	for p in $(cat "$BATS_TEST_TMPDIR/pids"); do
		[[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) == [SR] ]] && alive=$((alive + 1))
	done
	assert_equal "$alive" "6"
	run -0 --separate-stderr orch-detect --all --force
	assert_equal "$(jq -r .recovered.todos_returned <<<"$output")" "1"
	gone $(cat "$BATS_TEST_TMPDIR/pids")
}

@test "command agents see no provider key, orch-agent sees them all; exec.pass_env lets some through" {
	stack alpha
	mkdir -p "$AGENTS/bin"
	# An agent that writes its environment down, under its own name and
	# as orch-agent (the built-in agent is known by its program's name).
	local dump="env | sort >\"$BATS_TEST_TMPDIR/env.\$(basename \"\$0\")\"
exec '$FIXTURES/agents/task'"
	agent dump "$dump"
	printf '#!/bin/sh\n%s\n' "$dump" >"$AGENTS/bin/orch-agent"
	chmod +x "$AGENTS/bin/orch-agent"
	printf 'llm.fallbacks = https://b.example/v1|m|CONF_KEY\n' >"$BATS_TEST_TMPDIR/config"
	graph alpha planner communicator >"$BATS_TEST_TMPDIR/g.json"
	orch-stack copy --to "$BATS_TEST_TMPDIR/other.db" >/dev/null
	local keys=(GROQ_API_KEY=g1 ORCH_LLM_API_KEY=o1 ORCH_LLM_MODEL=m1
		"ORCH_LLM_FALLBACKS=https://a.example/v1|m|ENV_KEY" ENV_KEY=e1 CONF_KEY=c1)
	run -0 env "${keys[@]}" PLAIN=p1 orch-exec --db "$BATS_TEST_TMPDIR/other.db" \
		--config "$BATS_TEST_TMPDIR/config" --agent planner="$AGENTS/dump" \
		--agent communicator="$AGENTS/bin/orch-agent" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '.nodes | map(.status) | unique | join(" ")' <<<"$output")" "completed"
	local mine="ORCH_CONFIG=$BATS_TEST_TMPDIR/config
ORCH_DB=$BATS_TEST_TMPDIR/other.db"
	assert_equal "$(grep -E '^(GROQ|ORCH_LLM|ENV_KEY|CONF_KEY|PLAIN|ORCH_DB|ORCH_CONFIG)' "$BATS_TEST_TMPDIR/env.dump")" \
		"$mine
PLAIN=p1"
	assert_equal "$(grep -E '^(GROQ|ORCH_LLM|ENV_KEY|CONF_KEY|PLAIN|ORCH_DB|ORCH_CONFIG)' "$BATS_TEST_TMPDIR/env.orch-agent")" \
		"$(printf '%s\n' "${keys[@]}" "$mine" PLAIN=p1 | sort)"
	# Each carries its orch-exec's lease owner, "HOST:PID:...".
	[[ $(grep '^ORCH_EXEC_OWNER=' "$BATS_TEST_TMPDIR/env.dump") == "ORCH_EXEC_OWNER=$(hostname):"[0-9]*:* ]] ||
		fail "$(grep ORCH_EXEC_OWNER "$BATS_TEST_TMPDIR/env.dump")"
	# Listed in exec.pass_env, a provider's variable reaches a command too.
	printf 'exec.pass_env = GROQ_API_KEY, CONF_KEY\n' >>"$BATS_TEST_TMPDIR/config"
	orch-stack --db "$BATS_TEST_TMPDIR/other.db" start alpha
	run -0 env "${keys[@]}" orch-exec --db "$BATS_TEST_TMPDIR/other.db" \
		--config "$BATS_TEST_TMPDIR/config" --agent planner="$AGENTS/dump" "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(grep -E '^(GROQ|ORCH_LLM|ENV_KEY|CONF_KEY)' "$BATS_TEST_TMPDIR/env.dump")" \
		"CONF_KEY=c1
GROQ_API_KEY=g1"
}

@test "orch-agent run by orch-exec reads orch-exec's --config (ORCH_CONFIG)" {
	stack alpha
	printf 'llm.base_url = http://127.0.0.1:9/v1\nllm.retries = 0\n' >"$BATS_TEST_TMPDIR/config"
	graph alpha planner >"$BATS_TEST_TMPDIR/g.json"
	run -0 env GROQ_API_KEY=k timeout 30 orch-exec --timeout 10000 --retries 0 \
		--config "$BATS_TEST_TMPDIR/config" --agent planner="orch-agent --role planner" \
		"$BATS_TEST_TMPDIR/g.json"
	[[ $(node error planner) == "exit status 75: orch-agent: 127.0.0.1:9: "* ]] || fail "$(node error planner)"
	# Any orch program reads ORCH_CONFIG as its --config.
	printf 'exec.tiemout = 1\n' >"$BATS_TEST_TMPDIR/typo"
	run -0 --separate-stderr env ORCH_CONFIG="$BATS_TEST_TMPDIR/typo" orch-exec </dev/null
	assert_equal "$stderr" "orch-exec: $BATS_TEST_TMPDIR/typo:1: unknown key 'exec.tiemout'"
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

# lock_db: hold the database's write lock from a third program until
# $MARKS/release exists (at most 30 s); $MARKS/locked once it holds it.
lock_db() {
	printf 'BEGIN IMMEDIATE;\n.shell touch %s/locked\n.shell i=0; while [ ! -e %s/release ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i + 1)); done\nCOMMIT;\n' \
		"$MARKS" "$MARKS" | sql &
	LOCKER=$!
	wait_file "$MARKS/locked"
}

# wait_caught PID: wait (at most 15 s) until PID catches SIGTERM, so that
# a signal sent after is its handler's, however slow its start-up.
wait_caught() {
	local i mask
	for i in $(seq 300); do
		mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
		[ -n "$mask" ] && (( 0x$mask & (1 << 14) )) && return 0
		sleep 0.05
	done
	fail "process $1 never caught SIGTERM"
}

# wait_exit PID: wait for PID for at most 15 s; STATUS its exit status.
wait_exit() {
	local i
	for i in $(seq 150); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && fail "process $1 is still running"
	STATUS=0
	wait "$1" || STATUS=$?
}

@test "stdout's reader gone (orch-decide killed): every stack's agents stopped, every cycle recorded, exit 70" {
	stack alpha
	stack beta
	agent quick "cat >/dev/null; echo \$\$ >>'$BATS_TEST_TMPDIR/started'; sleep 1; echo '{\"actions\":[]}'"
	agent slow "cat >/dev/null; echo \$\$ >>'$BATS_TEST_TMPDIR/started'; exec sleep 30"
	{ graph alpha planner; graph beta builder; } >"$BATS_TEST_TMPDIR/g.json"
	mkfifo "$BATS_TEST_TMPDIR/out"
	orch-exec --agent planner="$AGENTS/quick" --agent builder="$AGENTS/slow" "$BATS_TEST_TMPDIR/g.json" \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! t0
	exec 7<"$BATS_TEST_TMPDIR/out"
	wait_for "$BATS_TEST_TMPDIR/started" 2
	t0=$(now_ms)
	exec 7<&-
	wait_exit "$pid"
	(( $(now_ms) - t0 < 3000 )) || fail "took $(( $(now_ms) - t0 )) ms to stop"
	assert_equal "$STATUS" "70"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" "orch-exec: standard output closed: its reader is gone"
	# Both cycles recorded as failed, their leases let go, the todo back.
	assert_equal "$(sql "SELECT group_concat(status || ':' || error, '|') FROM executions")" \
		"failed:planner: interrupted: standard output closed: its reader is gone|failed:builder: interrupted: standard output closed: its reader is gone"
	assert_equal "$(sql "SELECT count(*) FROM stacks WHERE lease_owner IS NOT NULL")" "0"
	assert_equal "$(sql "SELECT group_concat(DISTINCT status) FROM todos")" "pending"
	gone $(cat "$BATS_TEST_TMPDIR/started")
}

@test "SIGPIPE from another process stops orch-exec as SIGTERM does" {
	stack alpha
	agent hang "cat >/dev/null; echo \$\$ >>'$BATS_TEST_TMPDIR/started'; exec sleep 30"
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	orch-exec --agent communicator="$AGENTS/hang" "$BATS_TEST_TMPDIR/g.json" \
		>"$BATS_TEST_TMPDIR/out.json" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$!
	wait_for "$BATS_TEST_TMPDIR/started"
	kill -PIPE "$pid"
	wait_exit "$pid"
	assert_equal "$STATUS" "75"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/err")" "orch-exec: interrupted by signal 13 (Broken pipe)"
	assert_equal "$(jq -r '.nodes[0].error' "$BATS_TEST_TMPDIR/out.json")" "interrupted by signal 13 (Broken pipe)"
	assert_equal "$(sql "SELECT status FROM executions")" "failed"
	gone $(cat "$BATS_TEST_TMPDIR/started")
}

@test "a signal waits at most a second for the database lock, and claims no new cycle" {
	stack alpha
	export MARKS=$BATS_TEST_TMPDIR/marks
	mkdir -p "$MARKS"
	agent hang "cat >/dev/null; : >'$MARKS/started'; exec sleep 30"
	graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
	export ORCH_BUSY_TIMEOUT_MS=10000
	# A signal while the cycle's end waits for the lock.
	orch-exec --agent communicator="$AGENTS/hang" "$BATS_TEST_TMPDIR/g.json" \
		>/dev/null 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! t0
	wait_file "$MARKS/started"
	lock_db
	t0=$(now_ms)
	kill -TERM "$pid"
	wait_exit "$pid"
	(( $(now_ms) - t0 < 2500 )) || fail "took $(( $(now_ms) - t0 )) ms with the lock held"
	assert_equal "$STATUS" "75"
	: >"$MARKS/release"
	wait "$LOCKER"
	# Not recorded: the next pipeline recovers it.
	assert_equal "$(sql "SELECT status FROM executions")" "running"
	run -0 --separate-stderr orch-detect --all --force
	assert_equal "$(sql "SELECT status FROM executions")" "failed"
	# A signal while it waits for the lock to claim the stack: once the
	# lock comes, no cycle is claimed for it.
	rm -f "$MARKS"/*
	lock_db
	orch-exec --agent communicator="$AGENTS/hang" "$BATS_TEST_TMPDIR/g.json" \
		>"$BATS_TEST_TMPDIR/out.json" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	# Once it handles the signal, it goes to the claim and waits there.
	wait_caught "$pid"
	sleep 0.3
	kill -TERM "$pid"
	sleep 0.3
	: >"$MARKS/release"
	wait_exit "$pid"
	wait "$LOCKER"
	assert_equal "$STATUS" "75"
	assert_equal "$(sql "SELECT count(*) FROM executions")" "1"
	assert_equal "$(jq -r '"\(.ran) \(.skip_reason)"' "$BATS_TEST_TMPDIR/out.json")" \
		"false interrupted by signal 15 (Terminated)"
}

@test "a database or its -wal deleted mid-run: the writes are refused and said, exit 66" {
	skip_unless_sqlite "the database's files"
	local f
	for f in db wal; do
		export ORCH_DB=$BATS_TEST_TMPDIR/$f.db
		orch-stack init
		stack alpha
		export MARKS=$BATS_TEST_TMPDIR/marks.$f
		mkdir -p "$MARKS"
		agent held "input=\$(cat); : >'$MARKS/running'
i=0; while [ ! -e '$MARKS/go' ] && [ \$i -lt 1500 ]; do sleep 0.02; i=\$((i + 1)); done
printf '%s' \"\$input\" | '$FIXTURES/agents/task'"
		graph alpha communicator >"$BATS_TEST_TMPDIR/g.json"
		orch-exec --retries 0 --agent communicator="$AGENTS/held" "$BATS_TEST_TMPDIR/g.json" \
			>"$BATS_TEST_TMPDIR/out.json" 2>"$BATS_TEST_TMPDIR/err" &
		local pid=$! status=0
		wait_file "$MARKS/running"
		case $f in
		db) rm "$ORCH_DB" ;;
		wal) rm "$ORCH_DB-wal" ;;
		esac
		: >"$MARKS/go"
		wait "$pid" || status=$?
		assert_equal "$f $status" "$f 66"
		[[ $(cat "$BATS_TEST_TMPDIR/err") == "orch-exec: stack 'alpha': "*"the database '$ORCH_DB' was deleted or replaced while in use: nothing more is written to it" ]] ||
			fail "$f: $(cat "$BATS_TEST_TMPDIR/err")"
		[[ $(jq -r '.nodes[0].error' "$BATS_TEST_TMPDIR/out.json") == *"the database '$ORCH_DB' was deleted or replaced while in use"* ]] ||
			fail "$f: $(cat "$BATS_TEST_TMPDIR/out.json")"
	done
}

@test "a full disk is a temporary failure: exit 75" {
	unshare -m true 2>/dev/null || skip "cannot make a mount namespace here (needs root)"
	local dir=$BATS_TEST_TMPDIR/small
	mkdir -p "$dir"
	cat >"$BATS_TEST_TMPDIR/full.sh" <<-EOF
	mount -t tmpfs -o size=1m tmpfs '$dir' || exit 77
	export ORCH_DB='$dir/orch.db'
	orch-stack init >/dev/null && orch-stack create alpha --idea i >/dev/null &&
	  orch-stack start alpha >/dev/null || exit 1
	orch-detect --all --force | orch-graph >'$BATS_TEST_TMPDIR/g.json'
	big=\$(head -c 60000 /dev/zero | tr '\0' x)
	i=0; s=0
	while [ \$i -lt 40 ] && [ \$s = 0 ]; do
	  orch-stack say alpha "\$big" >/dev/null 2>'$BATS_TEST_TMPDIR/say.err' || s=\$?
	  i=\$((i + 1))
	done
	echo "say \$s"
	cat '$BATS_TEST_TMPDIR/say.err'
	orch-exec --agent communicator=true '$BATS_TEST_TMPDIR/g.json' >/dev/null 2>'$BATS_TEST_TMPDIR/exec.err'
	echo "exec \$?"
	cat '$BATS_TEST_TMPDIR/exec.err'
	EOF
	run unshare -m sh "$BATS_TEST_TMPDIR/full.sh"
	(( status != 77 )) || skip "cannot mount a small file system here: $output"
	assert_equal "${lines[0]}" "say 75"
	assert_equal "${lines[1]}" "orch-stack: database or disk is full"
	assert_equal "${lines[2]}" "exec 75"
	[[ ${lines[3]} == "orch-exec: stack 'alpha': "*"database or disk is full" ]] || fail "$output"
}

@test "a database path that is not a regular file is refused, and nothing is made beside it" {
	mkfifo -m 666 "$BATS_TEST_TMPDIR/fifo"
	run -66 --separate-stderr timeout 10 orch-exec --db "$BATS_TEST_TMPDIR/fifo" </dev/null
	assert_equal "$stderr" "orch-exec: cannot open database '$BATS_TEST_TMPDIR/fifo': not a regular file"
	# A device like /dev/null, world-writable: SQLite made its journal
	# beside it, world-writable too.
	mknod -m 666 "$BATS_TEST_TMPDIR/null" c 1 3 2>/dev/null || skip "mknod needs root"
	run -66 --separate-stderr orch-stack --db "$BATS_TEST_TMPDIR/null" init
	assert_equal "$stderr" "orch-stack: cannot open database '$BATS_TEST_TMPDIR/null': not a regular file"
	run -66 --separate-stderr orch-exec --db "$BATS_TEST_TMPDIR/null" </dev/null
	assert_equal "$(cd "$BATS_TEST_TMPDIR" && echo null* fifo*)" "null fifo"
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
