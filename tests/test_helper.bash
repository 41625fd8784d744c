# Loaded by every tests/*.bats: the built programs first on PATH, a private
# HOME and database per test, no ORCH_* or provider variables from outside.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

ORCH_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
# Saved outside ORCH_* so orch_test_env's unset loop keeps it.
TEST_BUILD=${ORCH_BUILD:-$ORCH_ROOT/build}
FIXTURES=$BATS_TEST_DIRNAME/fixtures
# The store's engine (sqlite or postgres) and, for postgres, the cluster
# setup_suite.bash started: saved outside ORCH_* too.
TEST_ENGINE=${ORCH_TEST_ENGINE:-sqlite}
TEST_PGDIR=${ORCH_TEST_PGDIR-}
TEST_PGHOST=${ORCH_TEST_PGHOST-}
TEST_PGUSER=${ORCH_TEST_PGUSER-}
TEST_PG_TEMPLATE=${ORCH_TEST_PG_TEMPLATE:-template0}
if [ "$TEST_ENGINE" = postgres ]; then
	source "$BATS_TEST_DIRNAME/pg.bash"
fi

# Programs every suite may loop over.
ORCH_PROGRAMS="orch orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent"

orch_test_env() {
	local v
	for v in $(compgen -e | grep -E '^(ORCH_|GROQ_)'); do
		unset "$v"
	done
	unset XDG_DATA_HOME XDG_CONFIG_HOME NO_COLOR
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	if engine_is_sqlite; then
		export ORCH_DB=$BATS_TEST_TMPDIR/orch.db
	else
		[ -n "$TEST_PGDIR" ] || fail "ORCH_TEST_ENGINE=postgres but no cluster: was tests/setup_suite.bash run?"
		pg_test_db || fail "no database for this test"
	fi
	export PATH="$TEST_BUILD/bin:$ORCH_ROOT/examples/agents:$ORCH_ROOT/tests/tools:$PATH"
	# Sanitizer builds: fail loudly on any finding.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=86}
}

setup() {
	orch_test_env
}

# engine_is_sqlite: whether the tests run on SQLite (the default) rather
# than PostgreSQL (ORCH_TEST_ENGINE=postgres).
engine_is_sqlite() {
	[ "$TEST_ENGINE" = sqlite ]
}

# skip_unless_sqlite REASON: for a test about SQLite's file itself (its
# mode, its -wal, the sqlite3 shell).
skip_unless_sqlite() {
	engine_is_sqlite || skip "SQLite only: $1"
}

# sql [STATEMENT...]: run SQL against the test database, on either engine,
# output as sqlite3 -batch -bail gives it (tests/tools/orch-test-sql, which
# agents scripted by the tests call too).
sql() {
	orch-test-sql "$@"
}

# sql_text COLUMN: SQL for the bytes of COLUMN (artifacts.content) as text:
# SQLite keeps them as text, PostgreSQL as bytea.
sql_text() {
	if engine_is_sqlite; then
		echo "$1"
	else
		echo "convert_from($1, 'UTF8')"
	fi
}

# sql_hex COLUMN: SQL for the bytes of COLUMN in lower-case hex.
sql_hex() {
	if engine_is_sqlite; then
		echo "lower(hex($1))"
	else
		echo "encode($1, 'hex')"
	fi
}

# wait_file FILE: until FILE exists, for at most 30 s, so that a test whose
# partner never comes fails instead of holding up the whole run.
wait_file() {
	local i
	for ((i = 0; i < 1500; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.02
	done
	fail "timed out waiting for $1"
}

# A stack in a known state: name, execution state.
make_stack() {
	local name=$1 state=${2:-running}
	sql "INSERT INTO stacks (name, execution_state, created_at, next_run_at)
	     VALUES ('$name', '$state', 1000000, 0)"
	sql "SELECT id FROM stacks WHERE name = '$name'"
}

# llm_server_start: the scripted OpenAI-compatible server (tests/llm-server.py)
# on a free loopback port, once per file (Python starts slowly): it writes
# the port to $BATS_FILE_TMPDIR/port, logs each request to
# $BATS_FILE_TMPDIR/requests.log and answers from the script in
# $BATS_FILE_TMPDIR/script.json, which each test replaces. For setup_file.
llm_server_start() {
	local i
	echo '[]' >"$BATS_FILE_TMPDIR/script.json"
	python3 "$BATS_TEST_DIRNAME/llm-server.py" --script "$BATS_FILE_TMPDIR/script.json" \
		--log "$BATS_FILE_TMPDIR/requests.log" --port-file "$BATS_FILE_TMPDIR/port" \
		--idle 60 >"$BATS_FILE_TMPDIR/server.out" 2>&1 3>&- &
	export LLM_SERVER_PID=$!
	for i in $(seq 200); do
		[ -s "$BATS_FILE_TMPDIR/port" ] && break
		sleep 0.05
	done
}

# llm_server_stop: for teardown_file.
llm_server_stop() {
	kill "$LLM_SERVER_PID" 2>/dev/null || true
	wait "$LLM_SERVER_PID" 2>/dev/null || true
}

# run_cycle [ORCH-EXEC FLAG...]: one cycle of every running stack through
# the whole pipeline, with the offline example team unless the flags name
# other agents (a later --agent wins).
run_cycle() {
	orch-detect --all --force | orch-graph |
		orch-exec --agent planner=planner --agent builder=builder \
			--agent communicator=communicator --agent reviewer=reviewer "$@" |
		orch-decide >/dev/null
}

# output_errors ARG...: `orch-stack ARG...` writing where it cannot: an -o
# FILE that cannot be created is 66, a full -o FILE or standard output 70.
output_errors() {
	run -66 --separate-stderr orch-stack "$@" -o "$BATS_TEST_TMPDIR/no/such/dir/x"
	assert_equal "$stderr" "orch-stack: cannot create '$BATS_TEST_TMPDIR/no/such/dir/x': No such file or directory"
	run -70 --separate-stderr orch-stack "$@" -o /dev/full
	assert_equal "$stderr" "orch-stack: write error on '/dev/full'"
	run -70 --separate-stderr bash -c 'orch-stack "$@" >/dev/full' orch-stack "$@"
	[[ $stderr == "orch-stack: write error"* ]] || fail "$stderr"
}

# need_pid_namespace: set PIDNS to the command words that run a command in
# a PID namespace of its own, with its own /proc, on this host (its host
# name, its kernel): as root, else through a user namespace; skip the
# test, saying why, where neither is allowed.
need_pid_namespace() {
	if unshare -p -f --mount-proc true 2>/dev/null; then
		PIDNS=(unshare -p -f --mount-proc)
	elif unshare -U -r -p -f --mount-proc true 2>/dev/null; then
		PIDNS=(unshare -U -r -p -f --mount-proc)
	else
		skip "cannot make a PID namespace here (unshare needs root or user namespaces)"
	fi
}

# busy_world [CYCLES]: alpha and beta, running, worked on for CYCLES
# cycles (default 3) by the example team with a communicator that also
# talks: each run replies to its user message, sends the other stack a
# message, broadcasts one, remembers something and marks what it got read.
# So each stack has todos, artifact versions naming their cycle and todo,
# traces, graphs, user and inter-stack messages (sent, received, read),
# memory, agent runs and detection cache rows. Then each gets a cycle
# still running (its lease held by this shell) and beta an abandoned one
# (its holder gone), with a trace each.
busy_world() {
	local cycles=${1:-3} i
	cat >"$BATS_TEST_TMPDIR/talker" <<'AGENT'
#!/bin/sh
exec jq -c '.snapshot.stack.name as $me | (if $me == "alpha" then "beta" else "alpha" end) as $other
  | {thinking: "talk", actions: (
    (if .task.user_message then [{type: "reply_user", message_id: .task.user_message.id, content: "ok"}] else [] end)
    + [{type: "send_message", to: $other, content: "hello \($other)"},
       {type: "send_message", content: "to all from \($me)"},
       {type: "remember", key: "seen", value: (.task.messages | length)}]
    + [.task.messages[]? | {type: "mark_read", message_id: .id}])}'
AGENT
	chmod +x "$BATS_TEST_TMPDIR/talker"
	orch-stack create alpha --idea "a timer"
	orch-stack create beta --idea "a clock"
	orch-stack start alpha
	orch-stack start beta
	for ((i = 0; i < cycles; i++)); do
		orch-stack say alpha "question $i"
		orch-stack say beta "question $i"
		orch-stack todo add alpha "todo $i"
		run_cycle --agent communicator="$BATS_TEST_TMPDIR/talker"
	done
	orch-detect --all >/dev/null
	sql "INSERT INTO executions (stack_id, cycle, status, started_at, owner)
	       SELECT id, total_cycles + 1, 'running', 1000, 'host:$$:1' FROM stacks;
	     UPDATE stacks SET lease_owner = 'host:$$:1', lease_pid = $$, lease_host = 'host',
	       lease_expires_at = 9000000000000,
	       lease_execution_id = (SELECT max(id) FROM executions e WHERE e.stack_id = stacks.id);
	     INSERT INTO executions (stack_id, cycle, status, started_at, owner)
	       SELECT id, total_cycles + 2, 'running', 1000, 'gone:999999:1' FROM stacks WHERE name = 'beta';
	     INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status)
	       SELECT id, stack_id, 'planner', 1, 1000, 1001, 'failed' FROM executions WHERE status = 'running';"
}

# bad STATUS MESSAGE COMMAND...: COMMAND fails with exactly STATUS and
# MESSAGE as the whole of stderr, and prints nothing.
bad() {
	local status=$1 msg=$2
	shift 2
	run "-$status" --separate-stderr "$@"
	assert_equal "$stderr" "$msg"
	assert_equal "$output" ""
}
