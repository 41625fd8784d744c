#!/usr/bin/env bats
# ORCH_LLM_CASSETTE: orch-agent's provider calls recorded against the
# loopback server (tests/llm-server.py), then served back with the server
# gone; the file's format, its errors, and that it never holds a key.

load test_helper

KEY=gsk_TEST_secret_4f9a1c2b7d

setup() {
	orch_test_env
	export ORCH_LLM_API_KEY=$KEY
	export ORCH_LLM_BACKOFF_MS=50 ORCH_LLM_TIMEOUT_MS=5000 ORCH_LLM_DEADLINE_MS=20000
	CTX=$FIXTURES/orch-agent/planner.json
	TAPE=$BATS_TEST_TMPDIR/tape.ndjson
	SERVER_PID=
}

teardown() {
	stop_server
}

# start_server SCRIPT: a server of this test's own on loopback answering
# SCRIPT (JSON), ORCH_LLM_BASE_URL pointed at it, its requests in $LOG.
start_server() {
	local i
	LOG=$BATS_TEST_TMPDIR/requests.log
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/script.json"
	python3 "$BATS_TEST_DIRNAME/llm-server.py" --script "$BATS_TEST_TMPDIR/script.json" \
		--log "$LOG" --port-file "$BATS_TEST_TMPDIR/port" --idle 30 \
		>"$BATS_TEST_TMPDIR/server.out" 2>&1 3>&- &
	SERVER_PID=$!
	for i in $(seq 200); do
		[ -s "$BATS_TEST_TMPDIR/port" ] && break
		sleep 0.05
	done
	[ -s "$BATS_TEST_TMPDIR/port" ] || fail "the test server did not start"
	export ORCH_LLM_BASE_URL=http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")/v1
}

# stop_server: gone, so any request would be refused.
stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

ok_step() {
	printf '{"reply":%s}' "$(cat "$FIXTURES/orch-agent/reply.json")"
}

requests() {
	wc -l <"$LOG" | tr -d ' '
}

# The actions document without the one figure that is the clock's.
stable() {
	jq -S -c 'del(.usage.latency_ms)' <<<"$1"
}

@test "cassette: a turn recorded with a retry replays without the server, byte for byte" {
	start_server "[{\"status\":429,\"headers\":{\"Retry-After\":\"0\",\"x-ratelimit-remaining-requests\":\"0\"},\"error\":\"slow down\"}, $(ok_step)]"
	ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=record run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	local recorded=$output
	assert_equal "$(requests)" 2
	assert_equal "$(wc -l <"$TAPE")" 2
	# One request and its answer a line; the same request, so the same key.
	assert_equal "$(jq -r '.response.status' "$TAPE" | paste -sd ' ')" "429 200"
	assert_equal "$(jq -r '.key' "$TAPE" | sort -u | wc -l)" 1
	assert_equal "$(jq -r '.request | .method + " " + .path' "$TAPE" | sort -u)" "POST /v1/chat/completions"
	assert_equal "$(jq -c '.response.headers' "$TAPE" | head -1)" \
		'{"content-type":"application/json","retry-after":"0","x-ratelimit-remaining-requests":"0"}'
	jq -e -s '.[1].response.body | fromjson | .choices[0].message.content | fromjson | .actions | length == 2' "$TAPE"
	[[ $(jq -r .key "$TAPE" | head -1) =~ ^[0-9a-f]{64}$ ]]

	stop_server
	ORCH_LLM_CASSETTE=$TAPE run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(stable "$output")" "$(stable "$recorded")"
	assert_equal "$(requests)" 2
	# Replaying a second time reads the file afresh: the same again.
	ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=replay run -0 orch-agent --role planner -v <"$CTX"
	assert_line "orch-agent: cassette: replayed $(jq -r .key "$TAPE" | head -1 | cut -c1-12): HTTP 429"
	refute_line --partial "POST http"
}

@test "cassette: the file holds no API key, even one a server echoes" {
	start_server "[{\"status\":401,\"error\":\"Invalid API Key: $KEY\"},
	               {\"status\":200,\"content\":\"{\\\"thinking\\\":\\\"key $KEY\\\",\\\"actions\\\":[]}\"}]"
	export ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=record
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(wc -l <"$TAPE")" 2
	run -1 grep -c -e "$KEY" -e "${KEY:4:12}" -e Bearer -e -i -e authorization "$TAPE"
	assert_equal "$(grep -c '\[redacted\]' "$TAPE")" 2
	assert_equal "$(head -1 "$TAPE" | jq -r '.response.body | fromjson | .error.message')" "Invalid API Key: [redacted]"
}

@test "cassette: the key leaves out the time, the host and the port" {
	start_server "[$(ok_step)]"
	ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=record run -0 orch-agent --role planner <"$CTX"
	stop_server
	# Another moment, another server: the same recording.
	jq -c '.now += 86400000 | .snapshot.stack.created_at += 5 | .snapshot.memory.planner.last_planning_time = 9' \
		"$CTX" >"$BATS_TEST_TMPDIR/later.json"
	ORCH_LLM_BASE_URL=http://127.0.0.1:9/other/v1 ORCH_LLM_CASSETTE=$TAPE \
		run -69 --separate-stderr orch-agent --role planner <"$BATS_TEST_TMPDIR/later.json"
	# The path is part of the key...
	[[ $stderr == *"no recording in cassette '$TAPE' for this request (key "* ]] || fail "$stderr"
	ORCH_LLM_BASE_URL=http://127.0.0.1:9/v1 ORCH_LLM_CASSETTE=$TAPE \
		run -0 --separate-stderr orch-agent --role planner <"$BATS_TEST_TMPDIR/later.json"
	assert_equal "$stderr" ""
	# ... and so is what the context says, not when.
	jq -c '.snapshot.stack.name = "beta"' "$CTX" >"$BATS_TEST_TMPDIR/beta.json"
	ORCH_LLM_BASE_URL=http://127.0.0.1:9/v1 ORCH_LLM_CASSETTE=$TAPE \
		run -69 orch-agent --role planner <"$BATS_TEST_TMPDIR/beta.json"
}

@test "cassette: replay without a recording is 69 naming the cassette, and no request is sent" {
	start_server "[$(ok_step)]"
	: >"$TAPE"
	ORCH_LLM_CASSETTE=$TAPE run -69 --separate-stderr orch-agent --role planner <"$CTX"
	local hostport=${ORCH_LLM_BASE_URL#http://}
	[[ $stderr =~ ^"orch-agent: ${hostport%/v1}: no recording in cassette '$TAPE' for this request (key "[0-9a-f]{12}")"$ ]] ||
		fail "$stderr"
	assert_equal "$output" ""
	assert_equal "$(requests)" 0
	# Every recording already served is none either.
	export ORCH_LLM_CASSETTE_MODE=record ORCH_LLM_CASSETTE=$TAPE
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests)" 1
	ORCH_LLM_CASSETTE_MODE=replay run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests)" 1
}

@test "cassette: record-new replays what it has and records the rest" {
	jq -c '.snapshot.stack.name = "beta"' "$CTX" >"$BATS_TEST_TMPDIR/beta.json"
	start_server "[$(ok_step), $(ok_step)]"
	export ORCH_LLM_CASSETTE=$TAPE
	ORCH_LLM_CASSETTE_MODE=record-new run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests) $(wc -l <"$TAPE")" "1 1"
	ORCH_LLM_CASSETTE_MODE=record-new run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests) $(wc -l <"$TAPE")" "1 1"
	ORCH_LLM_CASSETTE_MODE=record-new run -0 orch-agent --role planner <"$BATS_TEST_TMPDIR/beta.json"
	assert_equal "$(requests) $(wc -l <"$TAPE")" "2 2"
	# record never replays: it appends.
	ORCH_LLM_CASSETTE_MODE=record run -69 orch-agent --role planner --retries 0 <"$CTX"
	assert_equal "$(requests) $(wc -l <"$TAPE")" "3 3"
	assert_equal "$(jq -r .response.status "$TAPE" | paste -sd ' ')" "200 200 418"
	stop_server
	run -0 orch-agent --role planner <"$CTX"
	run -0 orch-agent --role planner <"$BATS_TEST_TMPDIR/beta.json"
}

@test "cassette: agents recording at once append whole lines" {
	local i steps= pids=()
	for i in $(seq 8); do steps+="${steps:+,}$(ok_step)"; done
	start_server "[$steps]"
	export ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=record
	for i in $(seq 8); do
		jq -c --arg i "$i" '.snapshot.stack.name = "s\($i)"' "$CTX" >"$BATS_TEST_TMPDIR/c$i.json"
		orch-agent --role planner <"$BATS_TEST_TMPDIR/c$i.json" >/dev/null &
		pids+=($!)
	done
	# The agents only: a bare wait would wait for the server too.
	wait "${pids[@]}"
	assert_equal "$(wc -l <"$TAPE")" 8
	assert_equal "$(jq -c . "$TAPE" | wc -l)" 8
	assert_equal "$(jq -r .key "$TAPE" | sort -u | wc -l)" 8
}

@test "cassette: bad settings and a corrupt file are one line with 64, 65 or 66" {
	ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=rewind run -64 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: ORCH_LLM_CASSETTE_MODE: 'rewind' is not record, replay or record-new"
	ORCH_LLM_CASSETTE_MODE=record run -64 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: ORCH_LLM_CASSETTE_MODE is set but ORCH_LLM_CASSETTE is not"
	ORCH_LLM_CASSETTE=$TAPE run -66 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: cannot open cassette '$TAPE': No such file or directory"
	ORCH_LLM_CASSETTE=$BATS_TEST_TMPDIR/no/dir/t ORCH_LLM_CASSETTE_MODE=record run -66 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: cannot open cassette '$BATS_TEST_TMPDIR/no/dir/t': No such file or directory"

	local good='{"key":"'$(printf 'a%.0s' $(seq 64))'","response":{"status":200,"body":"{}"}}'
	corrupt() {
		printf '%s\n%b' "$good" "$1" >"$TAPE"
		ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=${2:-replay} run -65 --separate-stderr orch-agent --role planner <"$CTX"
		assert_equal "$stderr" "orch-agent: cassette '$TAPE': line 2: $3"
		assert_equal "$output" ""
	}
	corrupt 'not json\n' replay "'[' or '{' expected near 'not'"
	corrupt '[1]\n' record-new "expected an object"
	corrupt '{"key":"ab","response":{}}\n' replay '"key" is not 64 lower-case hex digits'
	corrupt "${good/200/1000}\n" replay '"response.status" is not a status from 0 to 999'
	corrupt "${good/\"body\"/\"bode\"}\n" replay '"response" needs one string "body" or "body_hex"'
	local hex='{"key":"'$(printf 'a%.0s' $(seq 64))'","response":{"status":200,"body_hex":"7"}}'
	corrupt "$hex\n" replay '"response.body_hex" is not lower-case hex'
	corrupt "${good/\"status\"/\"failure\":\"boom\",\"status\"}\n" replay \
		'"response.failure" is not connect, timeout, transfer, too_big or other'
	corrupt "$good" replay 'no newline at the end (a recording cut short?)'
	# A blank line is no recording, and no error; the server is never asked.
	printf '%s\n\n' "$good" >"$TAPE"
	ORCH_LLM_BASE_URL=http://127.0.0.1:9/v1 ORCH_LLM_CASSETTE=$TAPE run -69 orch-agent --role planner <"$CTX"
}

@test "cassette: a recorded failure and a body that is not UTF-8 are served back as they were" {
	start_server "[{\"status\":502,\"body\":\"bad gateway\"}, {\"delay\":3}, $(ok_step)]"
	ORCH_LLM_TIMEOUT_MS=1000 ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=record \
		run -0 --separate-stderr orch-agent --role planner <"$CTX"
	local recorded=$output
	assert_equal "$(jq -r '.response.failure // "-"' "$TAPE" | paste -sd ' ')" "- timeout -"
	assert_equal "$(jq -r '.response.error // "-"' "$TAPE" | sed -n 2p)" "timed out after 1000 ms"
	stop_server
	ORCH_LLM_TIMEOUT_MS=1000 ORCH_LLM_CASSETTE=$TAPE run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	assert_equal "$(stable "$output")" "$(stable "$recorded")"
	assert_equal "$(grep -c 'cassette: replayed' <<<"$stderr")" 3
	grep -q "timed out after 1000 ms; retry 2 of 3" <<<"$stderr"
	# A body that is not UTF-8 is kept as hex, and served as those bytes.
	jq -c 'if .response.status == 502 then .response |= (del(.body) | .body_hex = "ff6261640a") else . end' \
		"$TAPE" >"$TAPE.new"
	mv "$TAPE.new" "$TAPE"
	ORCH_LLM_TIMEOUT_MS=1000 ORCH_LLM_CASSETTE=$TAPE run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	grep -qF "HTTP 502: ?bad" <<<"$stderr" || fail "$stderr"
}

# The stack's state, without the columns that are the clock's or a
# process's: what a replayed cycle must leave exactly as the recorded one.
store_state() {
	local t
	for t in stacks projects todos artifacts memory executions traces agent_runs; do
		echo "== $t"
		sqlite3 -json "$1" "SELECT * FROM $t ORDER BY 1, 2" |
			jq -S -c 'def clock: test("(_at|_ms|_time|^now|^lease_.*|owner|^pid)$");
				def timeless: walk(if type == "object" then with_entries(select(.key | clock | not)) else . end);
				.[]? | timeless | map_values(if type == "string" then (try (fromjson | timeless | tojson) catch .) else . end)'
	done
}

@test "cassette: an orch-exec cycle with the built-in agent replays to the same store" {
	cat >"$BATS_TEST_TMPDIR/world" <<'EOF'
orch-stack init
orch-stack create alpha --idea "a pomodoro timer"
orch-stack start alpha
orch-detect --all --force | orch-graph |
	orch-exec --retries 0 --agent planner="orch-agent --role planner" --agent builder=builder \
		--agent communicator=communicator --agent reviewer=reviewer | orch-decide >/dev/null
EOF
	start_server "{\"agent:planner\": [$(ok_step)]}"
	ORCH_DB=$BATS_TEST_TMPDIR/a.db ORCH_LLM_CASSETTE=$TAPE ORCH_LLM_CASSETTE_MODE=record \
		run -0 bash -e "$BATS_TEST_TMPDIR/world"
	assert_equal "$(requests)" 1
	assert_equal "$(wc -l <"$TAPE")" 1
	stop_server
	sleep 0.01
	ORCH_DB=$BATS_TEST_TMPDIR/b.db ORCH_LLM_CASSETTE=$TAPE run -0 bash -e "$BATS_TEST_TMPDIR/world"
	store_state "$BATS_TEST_TMPDIR/a.db" >"$BATS_TEST_TMPDIR/a.state"
	store_state "$BATS_TEST_TMPDIR/b.db" >"$BATS_TEST_TMPDIR/b.state"
	# The planner's turn made the todo of the recorded reply.
	grep -q 'add a dark mode toggle' "$BATS_TEST_TMPDIR/a.state" || fail "$(cat "$BATS_TEST_TMPDIR/a.state")"
	diff -u "$BATS_TEST_TMPDIR/a.state" "$BATS_TEST_TMPDIR/b.state"
}
