#!/usr/bin/env bats
# The bad-input catalogue: hostile or broken inputs to every program, each
# with its exact exit status and its one-line message. Cases the per-tool
# suites already cover are not repeated here; this file adds the parser's
# edges (numbers, nesting, bytes, sizes), cross-stack ids, document
# versions, databases that are missing, read-only, locked, foreign or
# newer, and flags just past their ranges.

load test_helper

setup() {
	orch_test_env
	AGENTS=$BATS_TEST_TMPDIR/agents
	mkdir -p "$AGENTS"
}

teardown() {
	# The read-only database test may leave the file immutable (as root).
	[ -f "$ORCH_DB" ] && chattr -i "$ORCH_DB" 2>/dev/null || true
}

# graph_in TEXT: orch-graph reads TEXT (printf format, so \xff and \0
# arrive as bytes) on stdin.
graph_in() {
	bash -c 'printf "$1" | orch-graph' _ "$1"
}

WS='{"type":"orch.work_status","version":1,"stack":{"id":1,"name":"a"},'

# --- the JSON reader, as every program uses it -------------------------

@test "numbers: a real too large, an integer too large, NaN, Infinity, 1.0 for 1" {
	bad 65 "orch-graph: line 1: real number overflow near '1e400'" \
		graph_in '{"type":"orch.work_status","version":1e400}'
	bad 65 "orch-graph: line 1: too big integer near '99999999999999999999'" \
		graph_in '{"type":"orch.work_status","version":99999999999999999999}'
	bad 65 "orch-graph: line 1: invalid token near 'NaN'" \
		graph_in '{"type":"orch.work_status","version":NaN}'
	bad 65 "orch-graph: line 1: invalid token near '-'" \
		graph_in '{"type":"orch.work_status","version":-Infinity}'
	bad 65 "orch-graph: line 1: orch.work_status document has no integer 'version'" \
		graph_in '{"type":"orch.work_status","version":1.0}'
	bad 65 "orch-graph: line 1: unsupported orch.work_status version -1" \
		graph_in '{"type":"orch.work_status","version":-1}'
}

@test "numbers: a priority of 2^63 or -0.0 is out of range, not wrapped" {
	bad 65 "orch-graph: line 1: too big integer near '9223372036854775808'" \
		graph_in "$WS"'"agents":{"planner":{"priority":9223372036854775808}}}'
	bad 65 "orch-graph: line 1: 'agents.planner' must be an object" \
		graph_in "$WS"'"agents":{"planner":-0.0}}'
}

@test "nesting: 100000 levels deep is refused, not a stack overflow" {
	bad 65 "orch-graph: line 1: maximum parsing depth reached near '['" \
		bash -c "{ printf '{\"a\":'; head -c 100000 /dev/zero | tr '\\0' '['; head -c 100000 /dev/zero | tr '\\0' ']'; echo '}'; } | orch-graph"
	bad 65 "orch-decide: line 1: maximum parsing depth reached near '{'" \
		bash -c "{ yes '{\"a\":' | head -n 3000 | tr -d '\\n'; echo 1; yes '}' | head -n 3001 | tr -d '\\n'; } | orch-decide --no-db"
}

@test "bytes: invalid UTF-8, a raw NUL, an escaped NUL, a byte-order mark" {
	bad 65 "orch-graph: line 1: unable to decode byte 0xff near '\"orch.work'" \
		graph_in '{"type":"orch.work\xff_status","version":1}'
	bad 65 "orch-graph: line 1: unable to decode byte 0xc0 near '\"'" \
		graph_in '{"type":"\xc0\xaf"}'
	bad 65 "orch-graph: line 1: control character 0x0 near '\"orch.work'" \
		graph_in '{"type":"orch.work\0status","version":1}'
	bad 65 "orch-graph: line 1: \\u0000 is not allowed in a string" \
		graph_in '{"type":"orch.work\\u0000status","version":1}'
	bad 65 "orch-graph: line 1: expected a JSON object" \
		graph_in '\xef\xbb\xbf{"type":"orch.work_status","version":1}'
	# A NUL between documents, after a good one: the good one is out first.
	run -65 --separate-stderr bash -c "{ jq -c . '$FIXTURES/orch-graph/busy.in.json' | head -n 1; printf '\0\n'; } | orch-graph"
	assert_equal "$stderr" "orch-graph: line 2: expected a JSON object"
	assert_equal "$(jq -r .type <<<"$output")" "orch.graph"
}

@test "truncation: inside a string, an escape, a number; a stray closer" {
	bad 65 "orch-detect: line 1: unexpected end of input inside a document" \
		bash -c "printf '{\"type\":\"orch.snap' | orch-detect -"
	bad 65 "orch-detect: line 1: unexpected end of input inside a document" \
		bash -c "printf '{\"type\":\"\\\\' | orch-detect -"
	bad 65 "orch-detect: line 1: unexpected end of input inside a document" \
		bash -c "printf '{\"version\":12' | orch-detect -"
	bad 65 "orch-detect: line 1: '}' expected near ']'" \
		bash -c "printf '{\"a\":1]\n' | orch-detect -"
	bad 65 "orch-decide: line 2: expected a JSON object" \
		bash -c "printf '\n}\n' | orch-decide --no-db"
}

@test "not an object: an array, a string, a number at the top" {
	bad 65 "orch-decide: line 1: expected a JSON object" bash -c "echo '[{}]' | orch-decide --no-db"
	bad 65 "orch-decide: line 1: expected a JSON object" bash -c "echo '\"orch.execution\"' | orch-decide --no-db"
	bad 65 "orch-graph: line 1: expected a JSON object" bash -c "echo 42 | orch-graph"
}

@test "a 100 MB line: one document is refused at the 16 MiB cap, not read whole" {
	bad 65 "orch-graph: line 1: document larger than 16777216 bytes" \
		bash -c "{ printf '{\"a\":\"'; head -c 100000000 /dev/zero | tr '\\0' x; printf '\"}\n'; } | orch-graph"
	bad 65 "orch-detect: line 1: document larger than 16777216 bytes" \
		bash -c "{ printf '{\"todos\":['; yes '{},' | head -c 100000000; printf '{}]}\n'; } | orch-detect -"
	# Not a document at all: refused at its first byte.
	bad 65 "orch-decide: line 1: expected a JSON object" \
		bash -c "head -c 100000000 /dev/zero | tr '\\0' x | orch-decide --no-db"
}

@test "a 100 MB line of blanks before a document is read through, not buffered" {
	run -0 --separate-stderr bash -c "{ head -c 100000000 /dev/zero | tr '\\0' ' '; jq -c . '$FIXTURES/orch-graph/busy.in.json' | head -n 1; } | orch-graph"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r .type <<<"$output")" "orch.graph"
}

@test "unknown document types and versions, for each reader" {
	bad 65 "orch-detect: line 1: expected an orch.snapshot document, got 'orch.snapshot.v2'" \
		bash -c "echo '{\"type\":\"orch.snapshot.v2\",\"version\":1}' | orch-detect -"
	bad 65 "orch-detect: line 1: unsupported orch.snapshot version 2" \
		bash -c "jq -c '.version = 2' '$FIXTURES/orch-detect/base.json' | orch-detect -"
	bad 65 "orch-decide: line 1: unsupported orch.execution version 0" \
		bash -c "jq -c '.version = 0' '$FIXTURES/orch-decide/failed.in.json' | orch-decide --no-db"
	bad 65 "orch-decide: line 1: expected an orch.execution document, got no 'type'" \
		bash -c "jq -c '.type = 7' '$FIXTURES/orch-decide/failed.in.json' | orch-decide --no-db"
}

@test "snapshots: a negative time, a todo that is not an object, a fractional priority" {
	bad 65 "orch-detect: line 1: 'stack.created_at' must be a non-negative integer" \
		bash -c "jq -c '.stack.created_at = -1' '$FIXTURES/orch-detect/base.json' | orch-detect -"
	bad 65 "orch-detect: line 1: 'todos[0]' must be an object" \
		bash -c "jq -c '.todos[0] = 3' '$FIXTURES/orch-detect/base.json' | orch-detect -"
	bad 65 "orch-detect: line 1: 'todos[0].priority' must be an integer" \
		bash -c "jq -c '.todos[0].priority = 1.5' '$FIXTURES/orch-detect/base.json' | orch-detect -"
}

@test "executions: 'ran' not a boolean, 'nodes' not an array, stack id 0" {
	local f=$FIXTURES/orch-decide/failed.in.json
	bad 65 "orch-decide: line 1: 'ran' must be true or false" \
		bash -c "jq -c '.ran = \"yes\"' '$f' | orch-decide --no-db"
	bad 65 "orch-decide: line 1: 'nodes' must be an array" \
		bash -c "jq -c '.nodes = {}' '$f' | orch-decide --no-db"
	bad 65 "orch-decide: line 1: stack: 'id' must be an integer from 1 to 9223372036854775807" \
		bash -c "jq -c '.stack.id = 0' '$f' | orch-decide --no-db"
}

# --- orch-exec: graphs -------------------------------------------------

exec_setup() {
	orch-stack init
	orch-stack create alpha --idea "an idea"
	orch-stack todo add alpha "build it"
	orch-stack start alpha
	printf '#!/bin/sh\necho '"'"'{"actions":[]}'"'"'\n' >"$AGENTS/ok"
	chmod +x "$AGENTS/ok"
	GOOD=$(jq -cn '{type: "orch.graph", version: 1,
	  stack: {id: 1, name: "alpha", phase: "planning", execution_state: "running", created_at: 1},
	  created_at: 1, max_priority: 5,
	  nodes: [{id: "alpha/planner", agent: "planner", priority: 5, reason: "r", deps: [], wave: 0},
	          {id: "alpha/builder", agent: "builder", priority: 5, reason: "r", deps: ["planner"], wave: 1}],
	  waves: [["planner"], ["builder"]]}')
}

exec_bad() {
	bad 65 "orch-exec: line 1: $2" bash -c "jq -c '$1' <<<'$GOOD' | orch-exec --agent planner=$AGENTS/ok --agent builder=$AGENTS/ok"
}

@test "graphs: a self-dependency and a longer cycle, before any agent runs" {
	exec_setup
	exec_bad '.nodes[0].deps = ["planner"]' "nodes[0]: 'deps' names 'planner', which is not a node of an earlier wave"
	exec_bad '.nodes[0].deps = ["builder"]' "nodes[0]: 'deps' names 'builder', which is not a node of an earlier wave"
	exec_bad '.nodes[1].wave = 0' "nodes[1]: 'deps' names 'planner', which is not a node of an earlier wave"
	assert_equal "$(sql "SELECT count(*) FROM executions") $(sql "SELECT status FROM todos")" "0 pending"
}

@test "graphs: two nodes of one agent, a negative wave, wrong types" {
	exec_setup
	exec_bad '.nodes[1].agent = "planner"' "nodes[1]: agent 'planner' has two nodes"
	exec_bad '.nodes[0].wave = -1' "nodes[0]: 'wave' must be an integer from 0 to 3"
	exec_bad '.nodes[0].agent = 7' "nodes[0]: 'agent' must be a string"
	exec_bad '.nodes = "all"' "'nodes' must be an array"
}

# --- orch-exec: what agents print ---------------------------------------

# agent_says OUTPUT: the planner prints OUTPUT (printf format); its error.
agent_says() {
	printf '#!/bin/sh\ncat >/dev/null\nprintf '"'"'%s'"'"'\n' "$1" >"$AGENTS/says"
	chmod +x "$AGENTS/says"
	orch-stack start alpha >/dev/null
	run -0 --separate-stderr bash -c "jq -c '.nodes |= .[:1] | .waves |= .[:1]' <<<'$GOOD' |
		orch-exec --retries 0 --agent planner=$AGENTS/says"
	assert_equal "$stderr" ""
	jq -r '.nodes[0].error' <<<"$output"
}

@test "agent output: NUL, invalid UTF-8, two documents, NaN, deep nesting" {
	exec_setup
	run agent_says '{"actions":[]}\0'
	assert_output "output is not JSON: line 1: end of file expected near end of file"
	run agent_says '{"actions":[{"type":"create_todo","content":"\376"}]}'
	assert_output "output is not JSON: line 1: unable to decode byte 0xfe near '\"'"
	run agent_says '{"actions":[]} {"actions":[]}'
	assert_output "output is not JSON: line 1: end of file expected near '{'"
	run agent_says '{"actions":[{"type":"create_todo","content":"x","priority":NaN}]}'
	assert_output "output is not JSON: line 1: invalid token near 'NaN'"
	run agent_says "{\"actions\":[{\"type\":\"remember\",\"key\":\"k\",\"value\":$(printf '%*s' 3000 '' | tr ' ' '[')}]}"
	assert_output "output is not JSON: line 1: maximum parsing depth reached near '['"
	assert_equal "$(sql "SELECT count(*) FROM todos")" "1"
}

@test "agent actions: wrong types, out-of-range numbers, status in_progress" {
	exec_setup
	run agent_says '{"actions":[{"type":"create_todo","content":"x","priority":"3"}]}'
	assert_output "action 1 (create_todo): 'priority' must be an integer from 1 to 5"
	run agent_says '{"actions":[{"type":"update_todo","id":1.0,"content":"x"}]}'
	assert_output "action 1 (update_todo): 'id' must be an integer from 1 to 9223372036854775807"
	run agent_says '{"actions":[{"type":"update_todo","id":9223372036854775807,"content":"x"}]}'
	assert_output "action 1 (update_todo): no todo 9223372036854775807 in this stack"
	# in_progress marks the todo a running builder holds: orch's alone, or
	# a todo would be left in_progress with no run to finish it.
	run agent_says '{"actions":[{"type":"update_todo","id":1,"status":"in_progress"}]}'
	assert_output "action 1 (update_todo): 'status' may not be 'in_progress': orch keeps it"
	run agent_says '{"actions":[{"type":"update_todo","id":1,"status":"done"}]}'
	assert_output "action 1 (update_todo): 'status' must be pending, completed or cancelled"
	run agent_says '{"thinking":5,"actions":[]}'
	assert_output "'thinking' must be a string"
	run agent_says '{"actions":[],"usage":[]}'
	assert_output "'usage' must be an object"
	assert_equal "$(sql "SELECT status FROM todos")" "pending"
}

@test "agent actions: another stack's todo, user message, inter-stack message" {
	exec_setup
	orch-stack create beta
	orch-stack todo add beta "theirs"
	orch-stack say beta "their question"
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, 2, 'to beta', 1)"
	local before
	before=$(sql "SELECT * FROM todos; SELECT * FROM user_messages; SELECT * FROM message_reads")
	run agent_says '{"actions":[{"type":"update_todo","id":2,"content":"pwned"}]}'
	assert_output "action 1 (update_todo): no todo 2 in this stack"
	run agent_says '{"actions":[{"type":"delete_todo","id":2}]}'
	assert_output "action 1 (delete_todo): no todo 2 in this stack"
	run agent_says '{"actions":[{"type":"reply_user","message_id":1,"content":"pwned"}]}'
	assert_output "action 1 (reply_user): no user message 1 in this stack"
	run agent_says '{"actions":[{"type":"mark_read","message_id":1}]}'
	assert_output "action 1 (mark_read): no message 1 for this stack"
	run agent_says '{"actions":[{"type":"send_message","to":"gamma","content":"x"}]}'
	assert_output "action 1 (send_message): no stack 'gamma'"
	run agent_says '{"actions":[{"type":"send_message","to":1,"content":"x"}]}'
	assert_output "action 1 (send_message): a stack cannot send a message to itself"
	assert_equal "$(sql "SELECT * FROM todos; SELECT * FROM user_messages; SELECT * FROM message_reads")" "$before"
}

@test "agent actions: sizes at and just past each limit" {
	exec_setup
	local big
	# An artifact of exactly 1 MiB is written; one byte more is refused.
	jq -cn '{actions: [{type: "write_artifact", content: ("x" * 1048576)}]}' >"$BATS_TEST_TMPDIR/at"
	jq -cn '{actions: [{type: "write_artifact", content: ("x" * 1048577)}]}' >"$BATS_TEST_TMPDIR/past"
	printf '#!/bin/sh\ncat >/dev/null\ncat "$1"\n' >"$AGENTS/file"
	chmod +x "$AGENTS/file"
	run -0 bash -c "jq -c '.nodes |= .[:1] | .waves |= .[:1]' <<<'$GOOD' |
		orch-exec --retries 0 --agent 'planner=$AGENTS/file $BATS_TEST_TMPDIR/past'"
	assert_equal "$(jq -r '.nodes[0].error' <<<"$output")" \
		"action 1 (write_artifact): 'content' is 1048577 bytes, at most 1048576"
	orch-stack start alpha
	run -0 bash -c "jq -c '.nodes |= .[:1] | .waves |= .[:1]' <<<'$GOOD' |
		orch-exec --retries 0 --agent 'planner=$AGENTS/file $BATS_TEST_TMPDIR/at'"
	assert_equal "$(jq -r '.nodes[0].status' <<<"$output")" "completed"
	assert_equal "$(sql "SELECT version, length(content) FROM artifacts")" "1|1048576"
	# 100 actions pass, 101 do not; a todo of 65536 bytes passes, 65537 not.
	big=$(jq -cn '{actions: [range(101) | {type: "recommend", recommendation: "r"}]}')
	run agent_says "$big"
	assert_output "actions: 101 actions, at most 100"
	big=$(jq -cn '{actions: [range(100) | {type: "recommend", recommendation: "r"}]}')
	run agent_says "$big"
	assert_output "null"
	big=$(jq -cn '{actions: [{type: "create_todo", content: ("y" * 65537)}]}')
	run agent_says "$big"
	assert_output "action 1 (create_todo): 'content' is 65537 bytes, at most 65536"
	big=$(jq -cn '{actions: [{type: "create_todo", content: ("y" * 65536)}]}')
	run agent_says "$big"
	assert_output "null"
}

# --- databases ----------------------------------------------------------

@test "database: missing, for each program that needs one" {
	local p
	for p in "orch-detect --all" "orch-exec" "orch-decide" "orch-stack list"; do
		bad 66 "${p%% *}: no database at '$ORCH_DB' (run 'orch-stack init')" bash -c "$p </dev/null"
	done
}

@test "database: a directory, a text file, random bytes, a truncated file" {
	skip_unless_sqlite "a database file's own faults"
	mkdir "$BATS_TEST_TMPDIR/dir.db"
	bad 66 "orch-detect: cannot open database '$BATS_TEST_TMPDIR/dir.db': is a directory" \
		orch-detect --db "$BATS_TEST_TMPDIR/dir.db" --all
	echo "not a database, only text" >"$BATS_TEST_TMPDIR/text.db"
	bad 65 "orch-stack: '$BATS_TEST_TMPDIR/text.db': file is not a database" \
		orch-stack --db "$BATS_TEST_TMPDIR/text.db" list
	head -c 4096 /dev/urandom >"$BATS_TEST_TMPDIR/random.db"
	bad 65 "orch-decide: '$BATS_TEST_TMPDIR/random.db': file is not a database" \
		orch-decide --db "$BATS_TEST_TMPDIR/random.db" "$FIXTURES/orch-decide/failed.in.json"
	orch-stack init
	orch-stack create alpha
	sql "PRAGMA wal_checkpoint(TRUNCATE)"
	cp "$ORCH_DB" "$BATS_TEST_TMPDIR/cut.db"
	truncate -s 8192 "$BATS_TEST_TMPDIR/cut.db"
	bad 65 "orch-detect: '$BATS_TEST_TMPDIR/cut.db': database disk image is malformed" \
		orch-detect --db "$BATS_TEST_TMPDIR/cut.db" --all
}

@test "database: a newer schema version is refused by every program, untouched" {
	skip_unless_sqlite "PRAGMA user_version (tests/store-pg.bats: orch_meta)"
	orch-stack init
	orch-stack create alpha
	local current before p
	current=$(sql "PRAGMA user_version")
	sql "PRAGMA user_version = $((current + 1))"
	before=$(sql .dump)
	for p in "orch-detect --all" "orch-stack list" "orch-stack init" "orch-exec" "orch-decide"; do
		bad 65 "${p%% *}: database '$ORCH_DB' has schema version $((current + 1)), newer than this orch supports ($current)" \
			bash -c "echo '{}' | $p"
	done
	assert_equal "$(sql .dump)" "$before"
}

@test "database: read-only, writes fail with 66 and change nothing" {
	skip_unless_sqlite "a read-only file"
	orch-stack init
	orch-stack create alpha
	orch-stack start alpha
	sql "PRAGMA wal_checkpoint(TRUNCATE)"
	if [ "$(id -u)" = 0 ]; then
		chattr +i "$ORCH_DB" 2>/dev/null || skip "chattr +i is not supported here"
	else
		chmod 0400 "$ORCH_DB"
	fi
	# Reading works; every write fails whole.
	run -0 orch-stack list
	run -0 orch-detect --all --no-cache
	bad 66 "orch-stack: adding the message: attempt to write a readonly database" orch-stack say alpha hi
	bad 66 "orch-stack: adding the todo: attempt to write a readonly database" orch-stack todo add alpha x
	[ "$(id -u)" = 0 ] && chattr -i "$ORCH_DB"
	assert_equal "$(sql "SELECT count(*) FROM todos") $(sql "SELECT count(*) FROM user_messages")" "0 0"
}

@test "database: locked past the busy timeout is 75, try again; ORCH_BUSY_TIMEOUT_MS sets the wait" {
	skip_unless_sqlite "sqlite3's lock (tests/store-pg.bats: the advisory write lock)"
	orch-stack init
	orch-stack create alpha
	orch-stack start alpha
	mkdir "$BATS_TEST_TMPDIR/marks"
	local m=$BATS_TEST_TMPDIR/marks
	printf 'PRAGMA locking_mode = EXCLUSIVE;\nBEGIN EXCLUSIVE;\nUPDATE stacks SET phase = %s;\n.shell touch %s/locked\n.shell i=0; while [ ! -e %s/release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done\nCOMMIT;\n' \
		"'x'" "$m" "$m" | sqlite3 "$ORCH_DB" &
	local holder=$!
	wait_file "$m/locked"
	local t0=$(date +%s%3N)
	ORCH_BUSY_TIMEOUT_MS=300 bad 75 "orch-detect: '$ORCH_DB': database is locked" orch-detect --all
	local waited=$(($(date +%s%3N) - t0))
	(( waited >= 300 )) || fail "gave up after $waited ms, before the 300 ms busy timeout"
	ORCH_BUSY_TIMEOUT_MS=0 bad 75 "orch-stack: '$ORCH_DB': database is locked" orch-stack list
	# Released within the wait: the program waits for it and succeeds.
	(sleep 0.3; touch "$m/release") &
	ORCH_BUSY_TIMEOUT_MS=30000 run -0 orch-stack say alpha "hello"
	wait "$holder"
	assert_equal "$(sql "SELECT phase, (SELECT count(*) FROM user_messages) FROM stacks")" "x|1"
}

@test "database: a bad ORCH_BUSY_TIMEOUT_MS is a usage error, before any database is touched" {
	local v
	for v in x -1 3600001 " 5" 5ms; do
		ORCH_BUSY_TIMEOUT_MS=$v bad 64 "orch-stack: ORCH_BUSY_TIMEOUT_MS: '$v' is not a whole number from 0 to 3600000" orch-stack init
	done
	[ ! -e "$ORCH_DB" ] || fail "a refused ORCH_BUSY_TIMEOUT_MS created the database"
	# Empty is unset; the bounds are accepted.
	ORCH_BUSY_TIMEOUT_MS= run -0 orch-stack init
	ORCH_BUSY_TIMEOUT_MS=3600000 run -0 orch-stack list
	ORCH_BUSY_TIMEOUT_MS=0 run -0 orch-stack list
}

# --- flags just past their ranges ---------------------------------------

@test "flags: each bound, one past it, and numbers that are not whole" {
	flag() {
		run -64 --separate-stderr "$@"
		echo "${stderr_lines[0]}"
	}
	assert_equal "$(flag orch-exec --retries 101)" "orch-exec: --retries: '101' is not a whole number from 0 to 100"
	assert_equal "$(flag orch-exec -j 10001)" "orch-exec: --jobs: '10001' is not a whole number from 1 to 10000"
	assert_equal "$(flag orch-exec --kill-after 604800001)" \
		"orch-exec: --kill-after: '604800001' is not a whole number from 0 to 604800000"
	assert_equal "$(flag orch-exec --wave-delay 1e3)" \
		"orch-exec: --wave-delay: '1e3' is not a whole number from 0 to 604800000"
	assert_equal "$(flag orch-exec --retry-delay '')" \
		"orch-exec: --retry-delay: '' is not a whole number from 0 to 604800000"
	assert_equal "$(flag orch-exec --timeout 99999999999999999999)" \
		"orch-exec: --timeout: '99999999999999999999' is not a whole number from 0 to 604800000"
	assert_equal "$(flag orch-detect --cache-ttl -2 --all)" \
		"orch-detect: --cache-ttl: '-2' is not a whole number from 0 to 9223372036854775807"
	assert_equal "$(flag orch-detect --now 0x10 --all)" \
		"orch-detect: --now: '0x10' is not a whole number from 0 to 9223372036854775807"
	assert_equal "$(flag orch-decide --now 4611686018427387904)" \
		"orch-decide: --now: '4611686018427387904' is not a whole number from 0 to 4611686018427387903"
	assert_equal "$(flag orch-stack todo add alpha x --priority 0)" \
		"orch-stack: --priority: '0' is not a whole number from 1 to 5"
	assert_equal "$(flag orch-agent --role planner --retries 21)" \
		"orch-agent: --retries: '21' is not a whole number from 0 to 20"
}

@test "configuration: numbers out of range and values that are not numbers" {
	orch-stack init
	printf 'exec.retries = 101\n' >"$BATS_TEST_TMPDIR/config"
	bad 65 "orch-exec: exec.retries = '101' ($BATS_TEST_TMPDIR/config:1): expected a whole number from 0 to 100" \
		orch-exec --config "$BATS_TEST_TMPDIR/config" </dev/null
	printf 'exec.jobs = NaN\n' >"$BATS_TEST_TMPDIR/config"
	bad 65 "orch-exec: exec.jobs = 'NaN' ($BATS_TEST_TMPDIR/config:1): expected a whole number from 1 to 10000" \
		orch-exec --config "$BATS_TEST_TMPDIR/config" </dev/null
	printf 'exec.timeout\n' >"$BATS_TEST_TMPDIR/config"
	bad 65 "orch-exec: $BATS_TEST_TMPDIR/config:1: expected 'key = value'" \
		orch-exec --config "$BATS_TEST_TMPDIR/config" </dev/null
	printf 'agent.planner = \n' >"$BATS_TEST_TMPDIR/config"
	run -65 --separate-stderr orch-exec --config "$BATS_TEST_TMPDIR/config" </dev/null
	assert_equal "$stderr" "orch-exec: agent.planner ($BATS_TEST_TMPDIR/config:1): empty command"
}

# huge_config BYTES: a configuration file of exactly BYTES bytes: distinct
# unknown keys, then one known key set last, then a comment to fill it.
huge_config() {
	python3 -c '
import sys
size = int(sys.argv[1])
out, n, i = [], 0, 0
last = "pause.busy = 7\n"
while True:
    line = "x.k%d = %d\n" % (i, i)
    if n + len(line) + len(last) > size:
        break
    out.append(line); n += len(line); i += 1
out.append(last); n += len(last)
out.append("#" * (size - n - 1) + "\n")
sys.stdout.write("".join(out))' "$1"
}

@test "configuration: a huge file is read in linear time; one past 1 MiB is refused" {
	local f=$BATS_TEST_TMPDIR/config q=$BATS_TEST_TMPDIR/quarter t0 full quarter
	# 1 MiB exactly: about 45,000 distinct keys (read in 10 s when each
	# line searched the keys before it), one of them known and set last;
	# and a quarter of it, made the same way.
	huge_config 1048576 >"$f"
	huge_config 262144 >"$q"
	assert_equal "$(stat -c %s "$f")" 1048576
	t0=$(date +%s%3N)
	run -0 --separate-stderr timeout 60 orch-decide --no-db --config "$q" </dev/null
	quarter=$(($(date +%s%3N) - t0))
	t0=$(date +%s%3N)
	run -0 --separate-stderr timeout 60 orch-decide --no-db --config "$f" </dev/null
	full=$(($(date +%s%3N) - t0))
	# Four times the file, four times the time (and the start-up once):
	# sixteen if each line searched the ones before it. Compared with
	# the quarter, not a clock, since valgrind runs it 30 times slower.
	(( full < 2000 || full < 8 * quarter )) ||
		fail "a 1 MiB file took $full ms, a quarter of it $quarter ms"
	assert_equal "${#stderr_lines[@]}" "$(grep -c '^x\.' "$f")"
	assert_equal "${stderr_lines[0]}" "orch-decide: $f:1: unknown key 'x.k0'"
	run -0 bash -c "orch-stack config --config '$f' --json 2>/dev/null | jq -r 'select(.key == \"pause.busy\") | .value'"
	assert_equal "$output" "7"
	# One byte more, and no program reads it.
	echo >>"$f"
	bad 65 "orch-decide: configuration file '$f' is larger than 1048576 bytes" \
		orch-decide --no-db --config "$f" </dev/null
	bad 65 "orch-stack: configuration file '$f' is larger than 1048576 bytes" \
		orch-stack config --config "$f"
	# Nor through a pipe, whose size it cannot ask.
	run -65 --separate-stderr bash -c "orch-exec --config <(cat '$f') </dev/null"
	[[ $stderr == "orch-exec: configuration file '/dev/fd/"*"' is larger than 1048576 bytes" ]] || fail "$stderr"
}
