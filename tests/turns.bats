#!/usr/bin/env bats
# The built-in agent inside orch-exec (exec.in_process, lib/turns.h): the
# same turn as an orch-agent process, with no process.

load test_helper

KEY=gsk_TEST_turns_51c0a7d2e9

setup_file() {
	llm_server_start
}

teardown_file() {
	llm_server_stop
}

setup() {
	orch_test_env
	export ORCH_LLM_API_KEY=$KEY ORCH_LLM_BACKOFF_MS=50 ORCH_LLM_TIMEOUT_MS=5000 ORCH_LLM_RETRIES=0
	[ -s "$BATS_FILE_TMPDIR/port" ] ||
		fail "the test server did not start: $(cat "$BATS_FILE_TMPDIR/server.out")"
	PORT=$(cat "$BATS_FILE_TMPDIR/port")
	export ORCH_LLM_BASE_URL=http://127.0.0.1:$PORT/v1
}

# serve SCRIPT: the test server's next replies.
serve() {
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/script.json"
	jq -e . "$BATS_TEST_TMPDIR/script.json" >/dev/null || fail "bad script: $1"
	mv "$BATS_TEST_TMPDIR/script.json" "$BATS_FILE_TMPDIR/script.json"
}

# new_store DB: a store at DB with the stack alpha running.
new_store() {
	ORCH_DB=$1 orch-stack init >/dev/null
	ORCH_DB=$1 orch-stack create alpha --idea "a timer" >/dev/null
	ORCH_DB=$1 orch-stack start alpha >/dev/null
}

# planner_cycle DB IN_PROCESS [ORCH-EXEC ARG...]: one cycle of alpha's
# planner, the built-in agent, with exec.in_process = IN_PROCESS; the
# orch.execution document in $BATS_TEST_TMPDIR/exec.json.
planner_cycle() {
	local db=$1 in_process=$2
	shift 2
	printf 'exec.in_process = %s\n' "$in_process" >"$BATS_TEST_TMPDIR/config"
	ORCH_DB=$db orch-detect --all --force | orch-graph |
		jq -c '.nodes |= map(select(.agent == "planner"))' |
		ORCH_DB=$db orch-exec --config "$BATS_TEST_TMPDIR/config" \
			--agent planner='orch-agent --role planner' "$@" >"$BATS_TEST_TMPDIR/exec.json"
}

# What a run left that does not depend on when it ran: the node, each
# trace (the reply without its latency), each request's record.
recorded() {
	jq -c '.nodes[] | {agent, status, attempts, result, error}' "$BATS_TEST_TMPDIR/exec.json"
	sqlite3 -batch -bail -json "$1" "SELECT attempt, status, exit_status, output, error,
		stderr, usage FROM traces ORDER BY id" |
		jq -c '.[] | .output |= (if . and . != "" then (fromjson | del(.usage.latency_ms)) else . end)
			   | .usage |= (if . then (fromjson | del(.latency_ms)) else . end)'
	sqlite3 -batch -bail "$1" "SELECT run_ok, seq, round, retry, provider, model, http_status,
		outcome, prompt_tokens, completion_tokens FROM llm_requests ORDER BY id"
}

VALID='{"thinking":"plan","actions":[{"type":"create_todo","content":"build it","priority":2}]}'

@test "in-process and process: the same actions, traces and usage for the same replies" {
	# A busy provider (the retry contract's 75 and its wait), then a
	# reply that is not an actions document (the corrective round),
	# then a valid one: on both paths.
	local script="[{\"status\":503,\"headers\":{\"Retry-After\":\"0\"},\"error\":\"overloaded\"},
	        {\"content\":\"Sure!\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5}},
	        {\"reply\":$VALID,\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9}}]"
	new_store "$BATS_TEST_TMPDIR/in.db"
	new_store "$BATS_TEST_TMPDIR/out.db"
	serve "$script"
	planner_cycle "$BATS_TEST_TMPDIR/in.db" 1 --retries 1 --retry-delay 0
	recorded "$BATS_TEST_TMPDIR/in.db" >"$BATS_TEST_TMPDIR/in.txt"
	serve "$script"
	planner_cycle "$BATS_TEST_TMPDIR/out.db" 0 --retries 1 --retry-delay 0
	recorded "$BATS_TEST_TMPDIR/out.db" >"$BATS_TEST_TMPDIR/out.txt"
	diff -u "$BATS_TEST_TMPDIR/out.txt" "$BATS_TEST_TMPDIR/in.txt"
	# And what they were is what the replies say.
	assert_equal "$(jq -r '"\(.nodes[0].status) \(.nodes[0].attempts) \(.nodes[0].result)"' "$BATS_TEST_TMPDIR/exec.json")" \
		"completed 2 1 action: create_todo"
	assert_equal "$(sed -n 2p "$BATS_TEST_TMPDIR/in.txt" | jq -r '"\(.status) \(.exit_status) \(.stderr)"')" \
		"failed 75 orch-agent: 127.0.0.1:$PORT: gave up after 1 attempt: HTTP 503: overloaded
retry-after-ms: 0"
	assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/in.db" "SELECT count(*) FROM llm_requests")" 3
	assert_equal "$(ORCH_DB=$BATS_TEST_TMPDIR/in.db orch-stack todo list alpha --json | jq -r .content)" "build it"
}

@test "in-process: no orch-agent program runs, and exec.in_process = 0 runs one" {
	# orch-agent named by a PATH that has none.
	local exec=("$TEST_BUILD/bin/orch-exec" --agent planner='orch-agent --role planner')
	export ORCH_PROMPTS_DIR=$ORCH_ROOT/prompts
	new_store "$ORCH_DB"
	orch-detect --all --force | orch-graph | jq -c '.nodes |= map(select(.agent == "planner"))' \
		>"$BATS_TEST_TMPDIR/graph.json"
	serve "[{\"reply\":$VALID}]"
	: >"$BATS_FILE_TMPDIR/requests.log"
	printf 'exec.in_process = 1\n' >"$BATS_TEST_TMPDIR/config"
	run -0 --separate-stderr env PATH=/usr/bin:/bin "${exec[@]}" --config "$BATS_TEST_TMPDIR/config" \
		"$BATS_TEST_TMPDIR/graph.json"
	assert_equal "$(jq -r '.nodes[0].status' <<<"$output")" "completed"
	assert_equal "$(wc -l <"$BATS_FILE_TMPDIR/requests.log")" 1
	printf 'exec.in_process = 0\n' >"$BATS_TEST_TMPDIR/config"
	run -0 --separate-stderr env PATH=/usr/bin:/bin "${exec[@]}" --config "$BATS_TEST_TMPDIR/config" \
		--retries 0 "$BATS_TEST_TMPDIR/graph.json"
	assert_equal "$(jq -r '.nodes[0] | "\(.status) \(.error)"' <<<"$output")" \
		"failed cannot run 'orch-agent': No such file or directory"
	# A command with flags of its own is a process's to read.
	run -0 --separate-stderr env PATH=/usr/bin:/bin "$TEST_BUILD/bin/orch-exec" --retries 0 \
		--agent planner='orch-agent --role planner -v' "$BATS_TEST_TMPDIR/graph.json"
	assert_equal "$(jq -r '.nodes[0].error' <<<"$output")" "cannot run 'orch-agent': No such file or directory"
	run -65 --separate-stderr orch-exec --config <(echo 'exec.in_process = 2') "$BATS_TEST_TMPDIR/graph.json"
	[[ $stderr == "orch-exec: "*"exec.in_process"* ]] || fail "$stderr"
}

@test "in-process: many turns at once share connections, each bounded by its own timeout" {
	local i
	new_store "$ORCH_DB"
	for i in $(seq 2 8); do
		orch-stack create "s$i" --idea "stack $i" >/dev/null
		orch-stack start "s$i" >/dev/null
	done
	serve "[$(for i in $(seq 8); do printf '{"reply":%s,"delay":0.3},' "$VALID"; done | sed 's/,$//')]"
	orch-detect --all --force | orch-graph | jq -c '.nodes |= map(select(.agent == "planner"))' \
		>"$BATS_TEST_TMPDIR/graphs.json"
	: >"$BATS_FILE_TMPDIR/requests.log"
	run -0 --separate-stderr orch-exec -j 4 "$BATS_TEST_TMPDIR/graphs.json"
	assert_equal "$(jq -s 'map(.nodes[0].status) | unique | join(" ")' -r <<<"$output")" "completed"
	# Eight requests, four at a time: at most one connection per slot.
	assert_equal "$(wc -l <"$BATS_FILE_TMPDIR/requests.log")" 8
	[ "$(jq -r .client_port "$BATS_FILE_TMPDIR/requests.log" | sort -u | wc -l)" -le 4 ] ||
		fail "$(jq -r .client_port "$BATS_FILE_TMPDIR/requests.log" | sort -u | wc -l) connections"
	# A turn past orch-exec's timeout is ended as a process would be.
	jq -c 'select(.stack.name == "alpha")' "$BATS_TEST_TMPDIR/graphs.json" >"$BATS_TEST_TMPDIR/graph.json"
	serve "[{\"reply\":$VALID,\"delay\":3}]"
	run -0 --separate-stderr orch-exec --timeout 300 --retries 0 "$BATS_TEST_TMPDIR/graph.json"
	assert_equal "$(jq -r '.nodes[0] | "\(.status) \(.error)"' <<<"$output")" "failed timed out after 300 ms"
}

@test "in-process: a turn that misbehaves fails alone, bounded as a process was" {
	local i
	new_store "$ORCH_DB"
	for i in 2 3; do
		orch-stack create "s$i" --idea "stack $i" >/dev/null
		orch-stack start "s$i" >/dev/null
	done
	orch-detect --all --force | orch-graph | jq -c '.nodes |= map(select(.agent == "planner"))' \
		>"$BATS_TEST_TMPDIR/graphs.json"
	# One at a time, in input order: an oversized reply, a reply that
	# is not JSON at all (twice: the corrective round), a valid one.
	serve "[{\"size\":9000000},{\"content\":\"<html>\"},{\"content\":\"<html>\"},{\"reply\":$VALID}]"
	run -0 --separate-stderr orch-exec -j 1 --retries 0 "$BATS_TEST_TMPDIR/graphs.json"
	assert_equal "$(jq -sr 'sort_by(.stack.name) | .[] | "\(.stack.name) \(.nodes[0].status) \(.nodes[0].error)"' <<<"$output")" \
		"alpha failed exit status 69: orch-agent: 127.0.0.1:$PORT: response larger than 8388608 bytes
s2 failed exit status 65: orch-agent: 127.0.0.1:$PORT: the reply is not a valid actions document, even after a retry: the reply is not JSON: '[' or '{' expected near '<'
s3 completed null"
}

@test "in-process over HTTP/2: the turns of a run share a connection or two" {
	command -v nghttpd >/dev/null || fail "no nghttpd: make deps installs nghttp2-server"
	local i port dir=$BATS_TEST_TMPDIR/h2 pid
	mkdir -p "$dir/htdocs/v1/chat"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	# nghttpd answers any method with the file at the path: one reply.
	jq -cn --arg c "$VALID" '{id: "h2", object: "chat.completion", model: "m",
		choices: [{index: 0, message: {role: "assistant", content: $c}, finish_reason: "stop"}],
		usage: {prompt_tokens: 11, completion_tokens: 7}}' >"$dir/htdocs/v1/chat/completions"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	nghttpd -v -a 127.0.0.1 -d "$dir/htdocs" "$port" "$dir/key.pem" "$dir/cert.pem" >"$dir/log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		grep -q "listen" "$dir/log" 2>/dev/null && break
		sleep 0.05
	done
	new_store "$ORCH_DB"
	for i in $(seq 2 20); do
		orch-stack create "s$i" --idea "stack $i" >/dev/null
		orch-stack start "s$i" >/dev/null
	done
	orch-detect --all --force | orch-graph | jq -c '.nodes |= map(select(.agent == "planner"))' \
		>"$BATS_TEST_TMPDIR/graphs.json"
	run -0 --separate-stderr env ORCH_LLM_BASE_URL=https://127.0.0.1:$port/v1 \
		ORCH_LLM_CA_BUNDLE="$dir/cert.pem" orch-exec -j 20 "$BATS_TEST_TMPDIR/graphs.json"
	kill "$pid"
	wait "$pid" || true
	assert_equal "$(jq -s 'map(.nodes[0].status) | unique | join(" ")' -r <<<"$output")" "completed"
	# 20 requests (the first contact's alone, then the others at once), multiplexed.
	assert_equal "$(grep -ac 'recv HEADERS frame' "$dir/log")" 20
	[ "$(grep -ao '^\[id=[0-9]*\]' "$dir/log" | sort -u | wc -l)" -le 2 ] ||
		fail "$(grep -ao '^\[id=[0-9]*\]' "$dir/log" | sort -u | wc -l) connections"
}
