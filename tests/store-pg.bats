#!/usr/bin/env bats
# PostgreSQL as the store (issue 15): what only a server has. A bad URI,
# a server that is not there or refuses (a role, a password), a newer
# schema, a lock held past the busy timeout; hosts that share the store:
# leases taken over when a host dies and renewed while it lives, a write
# on one host waking a waiter on another. The rest of the suite runs on PostgreSQL too
# (ORCH_TEST_ENGINE=postgres, make check-pg); these run only then.

load test_helper

setup() {
	orch_test_env
	engine_is_sqlite && skip "PostgreSQL only (ORCH_TEST_ENGINE=postgres)"
	AGENTS=$BATS_TEST_TMPDIR/agents
	mkdir -p "$AGENTS" "$HOME/.config/orch"
}

# agent NAME SCRIPT: a command agent.
agent() {
	printf '#!/bin/sh\n%s\n' "$2" >"$AGENTS/$1"
	chmod +x "$AGENTS/$1"
}

# on HOST COMMAND...: COMMAND as run on host HOST.
on() {
	local host=$1
	shift
	ORCH_HOST=$host "$@"
}

# cycle HOST: one cycle of every running stack on HOST with the builder
# agent, its decisions on stdout.
cycle() {
	ORCH_HOST=$1 bash -c "orch-detect --all | orch-graph |
		orch-exec -q --retries 0 --agent builder=$AGENTS/builder | orch-decide"
}

@test "pg: a server that is not there is 69, at once or within the connect timeout" {
	bad 69 "orch-stack: cannot connect to database 'postgresql://127.0.0.1:1/orch': connection to server at \"127.0.0.1\", port 1 failed: Connection refused" \
		orch-stack --db postgresql://127.0.0.1:1/orch list
	# A peer that takes the connection and never answers: the URI's own
	# connect_timeout bounds the wait.
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$BATS_TEST_TMPDIR/port" &
	local silent=$! port t0
	wait_file "$BATS_TEST_TMPDIR/port"
	until port=$(cat "$BATS_TEST_TMPDIR/port") && [ -n "$port" ]; do sleep 0.05; done
	t0=$(date +%s%3N)
	run -69 --separate-stderr orch-detect --db "postgresql://127.0.0.1:$port/orch?connect_timeout=1" --all
	kill "$silent"
	assert_output ""
	[[ $stderr == "orch-detect: cannot connect to database 'postgresql://127.0.0.1:$port/orch?connect_timeout=1': "* ]] ||
		fail "not the connect error: $stderr"
	(( $(date +%s%3N) - t0 < 5000 )) || fail "waited $(($(date +%s%3N) - t0)) ms"
}

@test "pg: a role the server refuses is 69, a database it lacks 66, a bad URI 64; no password is shown" {
	local base=${ORCH_DB%%\?*} query=${ORCH_DB#*\?}
	bad 69 "orch-stack: cannot connect to database '$base?host=$TEST_PGHOST&user=nobody_here': role \"nobody_here\" does not exist" \
		orch-stack --db "$base?host=$TEST_PGHOST&user=nobody_here" list
	bad 66 "orch-stack: cannot connect to database 'postgresql:///no_such_db?$query': database \"no_such_db\" does not exist" \
		orch-stack --db "postgresql:///no_such_db?$query" list
	run -64 --separate-stderr orch-stack --db "postgresql://[::1" list
	[[ $stderr == "orch-stack: database 'postgresql://[::1': "* ]] || fail "$stderr"
	# A password in the URI is never printed, in either place it can be.
	run -69 --separate-stderr orch-stack --db "postgresql://ann:s3cret@127.0.0.1:1/orch" list
	[[ $stderr == *"'postgresql://ann@127.0.0.1:1/orch'"* ]] || fail "$stderr"
	run -69 --separate-stderr orch-stack --db "postgresql://127.0.0.1:1/orch?password=s3cret&user=ann" list
	[[ $stderr == *"'postgresql://127.0.0.1:1/orch?password=***&user=ann'"* ]] || fail "$stderr"
	[[ $stderr != *s3cret* ]] || fail "the password was shown: $stderr"
}

@test "pg: a wrong password is 69 in the server's words, never shown; the right one works" {
	local base=${ORCH_DB%%\?*} db
	# Roles are the cluster's: made once for every test that runs in it.
	sql "DO \$\$ BEGIN CREATE ROLE orch_password LOGIN PASSWORD 'right-horse';
		EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
	sql "GRANT ALL ON SCHEMA public TO orch_password"
	db="$base?host=$TEST_PGHOST&user=orch_password"
	bad 69 "orch-stack: cannot connect to database '$base?host=$TEST_PGHOST&user=orch_password&password=***': password authentication failed for user \"orch_password\"" \
		orch-stack --db "$db&password=wrong-horse" init
	# None at all, when the server asks for one: libpq's words, still 69.
	run -69 --separate-stderr env -u PGPASSWORD orch-stack --db "$db" init
	[[ $stderr == "orch-stack: cannot connect to database '$db': "*password* ]] || fail "$stderr"
	# PGPASSWORD, libpq's own variable, or the URI's password: both work.
	PGPASSWORD=right-horse run -0 orch-stack --db "$db" init
	run -0 orch-stack --db "$db&password=right-horse" create alpha --idea "a timer"
	run -0 orch-stack --db "$db&password=right-horse" list
	assert_line --index 1 --regexp '^1 +alpha +idle '
	[[ $output != *right-horse* ]] || fail "the password was shown: $output"
}

@test "pg: an empty database is none yet; init gives it the schema, version 12 in orch_meta" {
	bad 66 "orch-detect: no database at '$ORCH_DB' (run 'orch-stack init')" orch-detect --all
	run -0 orch-stack init
	assert_equal "$(sql "SELECT value FROM orch_meta WHERE key = 'schema_version'")" 12
	# Two programs that start at once on an empty database make it once.
	sql "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
	orch-stack init & orch-stack init & wait
	assert_equal "$(sql "SELECT count(*) FROM orch_meta")" 1
}

@test "pg: a database of a newer orch is refused by every program, untouched" {
	orch-stack init
	orch-stack create alpha
	sql "UPDATE orch_meta SET value = '13' WHERE key = 'schema_version'"
	local before p
	before=$(sql "SELECT * FROM stacks")
	for p in "orch-detect --all" "orch-stack list" "orch-stack init" "orch-exec" "orch-decide"; do
		bad 65 "${p%% *}: database '$ORCH_DB' has schema version 13, newer than this orch supports (12)" \
			bash -c "echo '{}' | $p"
	done
	assert_equal "$(sql "SELECT * FROM stacks")" "$before"
}

@test "pg: a write lock held past the busy timeout is 75; released within it, the write waits and succeeds" {
	orch-stack init
	orch-stack create alpha
	orch-stack start alpha
	local m=$BATS_TEST_TMPDIR
	# Another program's write transaction holds the store's write lock.
	{
		echo "BEGIN; SELECT pg_advisory_xact_lock($((0x6f726368)));"
		echo "\\! touch $m/locked; i=0; while [ ! -e $m/release ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done"
		echo "COMMIT;"
	} | psql -X -q "$ORCH_DB" >/dev/null &
	local holder=$! t0 waited
	wait_file "$m/locked"
	t0=$(date +%s%3N)
	ORCH_BUSY_TIMEOUT_MS=300 bad 75 "orch-stack: database is locked" orch-stack say alpha hi
	waited=$(($(date +%s%3N) - t0))
	(( waited >= 300 )) || fail "gave up after $waited ms, before the 300 ms busy timeout"
	(( waited < 5000 )) || fail "waited $waited ms"
	# Reading does not wait.
	run -0 orch-stack list
	(sleep 0.3; touch "$m/release") &
	ORCH_BUSY_TIMEOUT_MS=30000 run -0 orch-stack say alpha hello
	wait "$holder"
	assert_equal "$(sql "SELECT content FROM user_messages")" "hello"
}

# hold_stack_lock ID DIR: another program's write transaction on stack ID
# holds its lock (and the store's, shared) until DIR/release appears;
# DIR/locked once it does. Prints nothing; $! is the holder.
hold_stack_lock() {
	{
		echo "BEGIN; SELECT pg_advisory_xact_lock_shared($((0x6f726368)));"
		echo "SELECT pg_advisory_xact_lock($((0x6f72)), $1);"
		echo "\\! touch $2/locked; i=0; while [ ! -e $2/release ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done"
		echo "COMMIT;"
	} | psql -X -q "$ORCH_DB" >/dev/null &
	wait_file "$2/locked"
}

@test "pg: a write to one stack does not wait for another stack's; a write across stacks waits for both" {
	orch-stack init
	orch-stack create alpha
	orch-stack create beta --idea "a page"
	orch-stack todo add beta "build it"
	orch-stack todo add beta "tell alpha"
	orch-stack start alpha
	orch-stack start beta
	local m=$BATS_TEST_TMPDIR alpha beta holder graph
	alpha=$(sql "SELECT id FROM stacks WHERE name = 'alpha'")
	beta=$(sql "SELECT id FROM stacks WHERE name = 'beta'")
	hold_stack_lock "$alpha" "$m"
	holder=$!
	export ORCH_BUSY_TIMEOUT_MS=300
	# Beta's whole cycle, from its claim to its decision, writes beta's
	# rows only: it runs while alpha's writer holds on.
	agent builder 'echo "{\"actions\":[{\"type\":\"write_artifact\",\"content\":\"x\"}]}"'
	graph=$(orch-detect --all --force | orch-graph)
	run -0 --separate-stderr bash -c 'orch-exec -q --agent builder="$1" | orch-decide' _ \
		"$AGENTS/builder" <<<"$graph"
	assert_equal "$(sql "SELECT status || ' ' || CASE WHEN decision IS NULL THEN 'undecided' ELSE 'decided' END FROM executions WHERE stack_id = $beta")" "completed decided"
	assert_equal "$(sql "SELECT count(*) FROM artifacts WHERE stack_id = $beta")" 1
	# Alpha's claim passes over it: its writer may be the lease's holder.
	run -0 orch-exec -q <<<"$(jq -c "select(.stack.id == $alpha)" <<<"$graph")"
	assert_equal "$(jq -r .skip_reason <<<"$output")" "another pipeline is writing to the stack"
	# A message to alpha writes alpha's rows too, so the beta cycle that
	# sends it takes the store's lock, and waits: the node fails, nothing
	# of it written.
	local todo
	todo=$(sql "SELECT id FROM todos WHERE content = 'tell alpha'")
	agent builder "echo '{\"actions\":[{\"type\":\"send_message\",\"to\":\"alpha\",\"content\":\"hi\"},
		{\"type\":\"complete_todo\",\"id\":$todo}]}'"
	run -0 --separate-stderr orch-exec -q --retries 0 --agent builder="$AGENTS/builder" \
		<<<"$(orch-detect --all --force | orch-graph | jq -c "select(.stack.id == $beta)")"
	assert_equal "$(jq -r '.nodes[0] | .status + ": " + .error' <<<"$output")" \
		"failed: database is locked"
	assert_equal "$(sql "SELECT count(*) FROM messages")" 0
	# So does every other write across stacks (here, a user's message).
	bad 75 "orch-stack: database is locked" orch-stack say beta hi
	touch "$m/release"
	wait "$holder"
	run -0 orch-stack say beta hi
}

@test "pg: a host that died gives its stack up when its lease expires, and the cycle it left is recovered" {
	orch-stack init
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "build it"
	orch-stack start alpha
	echo "exec.lease = 5000" >"$HOME/.config/orch/config"
	agent builder "touch $BATS_TEST_TMPDIR/running; sleep 30"
	ORCH_HOST=h1 setsid bash -c "orch-detect --all | orch-graph |
		orch-exec -q --agent builder=$AGENTS/builder >/dev/null" &
	local h1=$!
	wait_file "$BATS_TEST_TMPDIR/running"
	# Host 1 dies: nothing of it is left to ask.
	kill -KILL -- "-$h1"
	wait "$h1" || true
	# Within the lease (5 s from its last renewal), host 2 leaves the
	# stack to it.
	agent builder 'echo "{\"actions\":[{\"type\":\"write_artifact\",\"content\":\"x\"}]}"'
	run -0 on h2 orch-exec -q --agent builder="$AGENTS/builder" <<<"$(orch-detect --all --force | orch-graph)"
	assert_equal "$(jq -r '.skip_reason' <<<"$output")" "another pipeline holds the stack (h1:$(sql "SELECT lease_pid FROM stacks"))"
	# Past it, host 2 takes it over: the abandoned cycle failed, the todo
	# given back and built.
	local expires
	expires=$(sql "SELECT lease_expires_at FROM stacks")
	while (( $(date +%s%3N) <= expires )); do sleep 0.1; done
	run -0 cycle h2
	assert_equal "$(sql "SELECT cycle || ' ' || status || ' ' || CASE WHEN owner LIKE 'h2:%' THEN 1 ELSE 0 END FROM executions ORDER BY id")" \
		"$(printf '1 failed 0\n2 completed 1')"
	assert_equal "$(sql "SELECT status FROM todos")" "completed"
}

@test "pg: a live host renews its lease however long its cycle, and no other host runs the stack meanwhile" {
	orch-stack init
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "build it"
	orch-stack start alpha
	echo "exec.lease = 1000" >"$HOME/.config/orch/config"
	# The cycle lasts until host 2 has tried for three times the lease.
	agent builder "touch $BATS_TEST_TMPDIR/running
i=0; while [ ! -e $BATS_TEST_TMPDIR/release ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done
echo '{\"actions\":[{\"type\":\"write_artifact\",\"content\":\"x\"}]}'"
	cycle h1 >"$BATS_TEST_TMPDIR/h1.out" &
	local h1=$! i t0
	wait_file "$BATS_TEST_TMPDIR/running"
	t0=$(date +%s%3N)
	i=0
	while (( $(date +%s%3N) - t0 < 3000 )); do
		i=$((i + 1))
		run -0 on h2 orch-exec -q --agent builder=/bin/false <<<"$(orch-detect --all --force | orch-graph)"
		[[ $(jq -r '.skip_reason' <<<"$output") == "another pipeline holds the stack (h1:"* ]] ||
			fail "host 2 at try $i, $(($(date +%s%3N) - t0)) ms: $output"
		sleep 0.3
	done
	touch "$BATS_TEST_TMPDIR/release"
	wait "$h1"
	assert_equal "$(sql "SELECT count(*) || ' ' || min(status) FROM executions")" "1 completed"
	assert_equal "$(sql "SELECT lease_owner IS NULL FROM stacks")" 1
}

@test "pg: many hosts at once: each stack claimed by one, none run twice, all run" {
	orch-stack init
	local i
	for i in $(seq 12); do
		orch-stack create "s$i" --idea "a page"
		orch-stack todo add "s$i" "build it"
		orch-stack start "s$i"
	done
	agent builder 'sleep 0.3; echo "{\"actions\":[{\"type\":\"write_artifact\",\"content\":\"x\"}]}"'
	for i in 1 2 3; do
		ORCH_HOST=h$i bash -c "orch-detect --all | orch-graph |
			orch-exec -q -j 2 --agent builder=$AGENTS/builder >/dev/null" &
	done
	wait
	# Every stack ran once, each cycle by one host, and more than one host
	# shared the work (a host claims a stack when it is about to run it).
	assert_equal "$(sql "SELECT count(*), count(DISTINCT stack_id) FROM executions WHERE status = 'completed'")" "12|12"
	assert_equal "$(sql "SELECT count(*) FROM executions a JOIN executions b ON a.stack_id = b.stack_id AND a.id < b.id")" 0
	(( $(sql "SELECT count(DISTINCT split_part(owner, ':', 1)) FROM executions") >= 2 )) ||
		fail "one host ran everything: $(sql "SELECT owner FROM executions")"
	assert_equal "$(sql "SELECT count(*) FROM todos WHERE status = 'completed'")" 12
}

@test "pg: a write on one host wakes a waiter on another at once" {
	orch-stack init
	orch-stack create alpha
	orch-stack start alpha
	# orch-stack say --wait is answered by a cycle another host runs.
	agent communicator 'jq -c "{actions: [{type: \"reply_user\", message_id: .task.user_message.id, content: \"hi back\"}]}"'
	(
		wait_file "$BATS_TEST_TMPDIR/asked"
		ORCH_HOST=h2 bash -c "orch-detect --all | orch-graph |
			orch-exec -q --agent communicator=$AGENTS/communicator | orch-decide >/dev/null"
	) &
	local t0
	t0=$(date +%s%3N)
	(sleep 0.2; touch "$BATS_TEST_TMPDIR/asked") &
	run -0 --separate-stderr on h1 orch-stack say alpha "hello?" --wait --timeout 20000
	assert_line --index 3 "  hi back"
	(( $(date +%s%3N) - t0 < 10000 )) || fail "answered after $(($(date +%s%3N) - t0)) ms"
	wait
	# orch-decide --wait sleeps until a message another program writes
	# makes the stack due, not until its next check.
	sql "UPDATE stacks SET next_run_at = $(($(date +%s%3N) + 3600000))"
	(orch-decide --wait </dev/null && touch "$BATS_TEST_TMPDIR/woke") &
	local waiter=$!
	sleep 0.5
	[ ! -e "$BATS_TEST_TMPDIR/woke" ] || fail "orch-decide --wait did not wait"
	t0=$(date +%s%3N)
	orch-stack say alpha "again"
	until [ -e "$BATS_TEST_TMPDIR/woke" ]; do
		(( $(date +%s%3N) - t0 < 5000 )) || { kill "$waiter"; fail "orch-decide --wait did not wake"; }
		sleep 0.02
	done
	wait "$waiter"
	(( $(date +%s%3N) - t0 < 1500 )) || fail "woke after $(($(date +%s%3N) - t0)) ms"
}

@test "pg: an agent's output with a NUL or bytes that are not UTF-8 is kept with U+FFFD for them" {
	orch-stack init
	orch-stack create alpha --idea "a page"
	orch-stack todo add alpha "build it"
	orch-stack start alpha
	agent builder 'printf "\377\000oops\n" >&2; exit 1'
	run -0 cycle h1
	assert_equal "$(sql "SELECT status FROM traces")" "failed"
	assert_equal "$(sql "SELECT stderr FROM traces")" "$(printf '\357\277\275\357\277\275oops')"
}
