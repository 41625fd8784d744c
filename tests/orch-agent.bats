#!/usr/bin/env bats
# orch-agent against a scripted OpenAI-compatible server on loopback
# (tests/llm-server.py): replies, retries, rate limits, fallbacks, limits,
# and a key that never leaks.

load test_helper

KEY=gsk_TEST_secret_4f9a1c2b7d

# One server for the file (Python starts slowly); each test gives it a
# new script with serve.
setup_file() {
	llm_server_start
}

teardown_file() {
	llm_server_stop
}

setup() {
	orch_test_env
	export ORCH_LLM_API_KEY=$KEY
	# Small bounds so failure paths stay fast.
	export ORCH_LLM_BACKOFF_MS=50 ORCH_LLM_TIMEOUT_MS=5000 ORCH_LLM_DEADLINE_MS=20000
	LOG=$BATS_FILE_TMPDIR/requests.log
	CTX=$FIXTURES/orch-agent/planner.json
	[ -s "$BATS_FILE_TMPDIR/port" ] ||
		fail "the test server did not start: $(cat "$BATS_FILE_TMPDIR/server.out")"
	PORT=$(cat "$BATS_FILE_TMPDIR/port")
	HOSTPORT=127.0.0.1:$PORT
}

# serve SCRIPT: give the test server SCRIPT (JSON), empty its request log,
# and point ORCH_LLM_BASE_URL at it.
serve() {
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/script.json"
	jq -e . "$BATS_TEST_TMPDIR/script.json" >/dev/null || fail "bad script: $1"
	mv "$BATS_TEST_TMPDIR/script.json" "$BATS_FILE_TMPDIR/script.json"
	: >"$LOG"
	export ORCH_LLM_BASE_URL=http://$HOSTPORT/v1
}

# The reply step for a valid actions document.
ok_step() {
	printf '{"reply":%s}' "$(cat "$FIXTURES/orch-agent/reply.json")"
}

requests() {
	wc -l <"$LOG" | tr -d ' '
}

# jq over request N (from 1) of the log.
request() {
	sed -n "${1}p" "$LOG" | jq -r "$2"
}

@test "orch-agent: a canned reply is validated and printed with its usage" {
	serve "[$(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(jq -c 'del(.usage)' <<<"$output")" "$(jq -c . "$FIXTURES/orch-agent/reply.json")"
	assert_equal "$(jq -c '.usage | del(.latency_ms)' <<<"$output")" \
		"{\"prompt_tokens\":11,\"completion_tokens\":7,\"model\":\"llama-3.3-70b-versatile\",\"provider\":\"$HOSTPORT\"}"
	jq -e '.usage.latency_ms | type == "number"' <<<"$output"
	assert_equal "$(requests)" 1
	assert_equal "$(request 1 '.method + " " + .path')" "POST /v1/chat/completions"
	assert_equal "$(request 1 .headers.Authorization)" "Bearer $KEY"
	assert_equal "$(request 1 '.body.model')" "llama-3.3-70b-versatile"
	assert_equal "$(request 1 '[.body.temperature, .body.max_tokens] | @csv')" "0.8,8000"
	assert_equal "$(request 1 '.body.response_format | [.type, .json_schema.strict] | @csv')" '"json_schema",true'
	assert_equal "$(request 1 '.body.response_format.json_schema.schema.properties.actions.items.anyOf | length')" 13
	# The system prompt is the role's file, found from the build tree.
	assert_equal "$(request 1 '.body.messages[0].content')" "$(cat "$ORCH_ROOT/prompts/planner.md")"
	request 1 '.body.messages[1].content' | sed 1d | jq -e '.agent == "planner" and .snapshot.stack.name == "alpha"'
}

@test "orch-agent: every role has a prompt and its own sampling" {
	local role
	serve "[$(ok_step), $(ok_step), $(ok_step), $(ok_step)]"
	for role in planner builder communicator reviewer; do
		jq -c --arg r "$role" '.agent = $r' "$CTX" >"$BATS_TEST_TMPDIR/$role.json"
		run -0 orch-agent --role "$role" <"$BATS_TEST_TMPDIR/$role.json"
	done
	assert_equal "$(jq -c '[.body.temperature, .body.max_tokens]' "$LOG" | paste -sd ' ')" \
		"[0.8,8000] [0.7,16000] [0.7,2000] [0.5,4000]"
	for role in builder communicator reviewer; do
		assert_equal "$(jq -s --rawfile p "$ORCH_ROOT/prompts/$role.md" \
			'map(select(.body.messages[0].content == $p)) | length' "$LOG")" 1
	done
}

@test "orch-agent: --prompt and ORCH_PROMPTS_DIR override the prompt; a missing one is 66" {
	serve "[$(ok_step), $(ok_step)]"
	echo "custom planner prompt (JSON)" >"$BATS_TEST_TMPDIR/mine.md"
	run -0 orch-agent --role planner --prompt "$BATS_TEST_TMPDIR/mine.md" <"$CTX"
	mkdir "$BATS_TEST_TMPDIR/prompts"
	echo "dir planner prompt (JSON)" >"$BATS_TEST_TMPDIR/prompts/planner.md"
	ORCH_PROMPTS_DIR=$BATS_TEST_TMPDIR/prompts run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(request 1 '.body.messages[0].content')" "custom planner prompt (JSON)"
	assert_equal "$(request 2 '.body.messages[0].content')" "dir planner prompt (JSON)"
	ORCH_PROMPTS_DIR=$BATS_TEST_TMPDIR/prompts run -66 --separate-stderr orch-agent --role builder <"$CTX"
	assert_equal "$stderr" "orch-agent: cannot open '$BATS_TEST_TMPDIR/prompts/builder.md': No such file or directory"
	run -66 --separate-stderr orch-agent --role planner --prompt /nonexistent.md <"$CTX"
	assert_equal "$stderr" "orch-agent: cannot open '/nonexistent.md': No such file or directory"
	assert_equal "$(requests)" 2
}

@test "orch-agent: a 429 waits for Retry-After, then succeeds" {
	serve "[{\"status\":429,\"headers\":{\"Retry-After\":\"1\"},\"error\":\"slow down\"}, $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(requests)" 2
	local waited
	waited=$(jq -s '(.[1].t - .[0].t) * 1000 | floor' "$LOG")
	((waited >= 950 && waited < 3000)) || fail "waited $waited ms"
}

@test "orch-agent: a 429 honours x-ratelimit-reset-tokens, and gives up when it passes the deadline" {
	serve "[{\"status\":429,\"headers\":{\"x-ratelimit-remaining-tokens\":\"0\",\"x-ratelimit-reset-tokens\":\"0.4s\",\"x-ratelimit-remaining-requests\":\"10\",\"x-ratelimit-reset-requests\":\"1m30s\"},\"error\":\"tokens\"},
	        $(ok_step),
	        {\"status\":429,\"headers\":{\"x-ratelimit-remaining-requests\":\"0\",\"x-ratelimit-reset-requests\":\"1m30s\"},\"error\":\"Rate limit reached for requests\"}]"
	run -0 orch-agent --role planner <"$CTX"
	local waited
	waited=$(jq -s '(.[1].t - .[0].t) * 1000 | floor' "$LOG")
	((waited >= 380 && waited < 2000)) || fail "waited $waited ms"
	SECONDS=0
	run -69 --separate-stderr orch-agent --role planner --deadline 5000 <"$CTX"
	((SECONDS < 3)) || fail "took $SECONDS s"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 429: Rate limit reached for requests; waiting 90000 ms more would pass the deadline"
	assert_equal "$output" ""
}

@test "orch-agent: a 500 is retried on the same connection, then succeeds" {
	serve "[{\"status\":500,\"error\":\"internal\"}, {\"status\":503,\"body\":\"<html>busy</html>\"}, $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(requests)" 3
	assert_equal "$(jq -s '[.[].client_port] | unique | length' "$LOG")" 1
}

@test "orch-agent: 5xx past the retry bound fails with 69 and the server's message" {
	serve '[{"status":502,"error":"bad gateway"},{"status":502,"error":"bad gateway"},{"status":502,"error":"bad gateway"}]'
	run -69 --separate-stderr orch-agent --role planner --retries 2 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 3 attempts: HTTP 502: bad gateway"
	assert_equal "$(requests)" 3
}

@test "orch-agent: a reply slower than --timeout is retried, then times out" {
	serve "[{\"delay\":1.5,\"reply\":{}}, $(ok_step), {\"delay\":1.5,\"reply\":{}}, {\"delay\":1.5,\"reply\":{}}]"
	run -0 orch-agent --role planner --timeout 300 <"$CTX"
	assert_equal "$(requests)" 2
	SECONDS=0
	run -69 --separate-stderr orch-agent --role planner --timeout 300 --retries 1 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 2 attempts: timed out after 300 ms"
	((SECONDS < 3)) || fail "took $SECONDS s"
}

@test "orch-agent: the overall deadline cuts a slow request short" {
	serve '[{"delay":3,"reply":{}}]'
	SECONDS=0
	run -69 --separate-stderr orch-agent --role planner --deadline 400 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: deadline of 400 ms passed"
	((SECONDS < 2)) || fail "took $SECONDS s"
}

@test "orch-agent: an invalid reply is retried once with the error fed back" {
	serve "[{\"content\":\"Sure! Here is the plan.\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5}},
	        {\"reply\":{\"thinking\":\"fixed\",\"actions\":[]},\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9}}]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$(jq -c '[.thinking, .actions, .usage.prompt_tokens, .usage.completion_tokens]' <<<"$output")" \
		'["fixed",[],220,14]'
	assert_equal "$(request 2 '.body.messages | length')" 4
	assert_equal "$(request 2 '.body.messages[2] | [.role, .content] | @tsv')" "assistant	Sure! Here is the plan."
	request 2 '.body.messages[3].content' | grep -q "^Your reply was not a valid actions document: the reply is not JSON: "
}

@test "orch-agent: a reply still invalid after the retry fails with 65" {
	serve '[{"reply":{"actions":[{"type":"create_todo","priority":4}]}},
	        {"reply":{"actions":[{"type":"create_todo","content":"x","priority":9}]}}]'
	run -65 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: the reply is not a valid actions document, even after a retry: action 1 (create_todo): 'priority' must be an integer from 1 to 5"
	assert_equal "$output" ""
	request 2 '.body.messages[3].content' | grep -qF "action 1 (create_todo): 'content' must be a string"
}

@test "orch-agent: code fences are stripped and model reasoning becomes thinking" {
	serve '[{"content":"```json\n{\"actions\":[]}\n```","reasoning":"thought about it"}]'
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(jq -c '[.thinking, .actions]' <<<"$output")" '["thought about it",[]]'
}

@test "orch-agent: a reply cut off mid-body is retried" {
	serve "[{\"reply\":{\"actions\":[]},\"cut\":40}, $(ok_step), {\"reply\":{\"actions\":[]},\"cut\":40}]"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests)" 2
	run -69 --separate-stderr orch-agent --role planner --retries 0 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 1 attempt: connection closed after 40 bytes of the response"
}

@test "orch-agent: a refused JSON schema falls back to json_object" {
	serve "[{\"status\":400,\"error\":\"response_format: json_schema is not supported by this model\"}, $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(request 1 .body.response_format.type)" json_schema
	assert_equal "$(request 2 '.body.response_format | tojson')" '{"type":"json_object"}'
}

@test "orch-agent: an oversized body is an error, never truncated, and not retried" {
	serve '[{"size":9000000},{"size":9000000,"chunked":true}]'
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: response larger than 8388608 bytes"
	assert_equal "$output" ""
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: response larger than 8388608 bytes"
	assert_equal "$(requests)" 2
}

@test "orch-agent: providers are tried in order, each with its own key and model" {
	serve "{\"/a\":[{\"status\":500,\"error\":\"down\"},{\"status\":500,\"error\":\"down\"}],
	        \"/b\":[{\"status\":401,\"error\":\"bad key\"}],
	        \"/c\":[$(ok_step)]}"
	export OTHER_KEY=other_SECRET_key_77 THIRD_KEY=third_SECRET_key_88
	export ORCH_LLM_BASE_URL=http://$HOSTPORT/a
	export ORCH_LLM_FALLBACKS="http://$HOSTPORT/b|model-b|OTHER_KEY; http://$HOSTPORT/c/|model-c|THIRD_KEY;"
	run -0 --separate-stderr orch-agent --role planner --retries 1 <"$CTX"
	assert_equal "$(jq -s -r 'map(.path) | join(" ")' "$LOG")" \
		"/a/chat/completions /a/chat/completions /b/chat/completions /c/chat/completions"
	assert_equal "$(jq -s -r 'map(.body.model + " " + .headers.Authorization) | join(",")' "$LOG")" \
		"llama-3.3-70b-versatile Bearer $KEY,llama-3.3-70b-versatile Bearer $KEY,model-b Bearer $OTHER_KEY,model-c Bearer $THIRD_KEY"
	assert_equal "$(jq -r '.usage.model' <<<"$output")" model-c
	assert_equal "${stderr_lines[0]}" "orch-agent: $HOSTPORT: gave up after 2 attempts: HTTP 500: down; trying $HOSTPORT"
	assert_equal "${stderr_lines[1]}" "orch-agent: $HOSTPORT: HTTP 401: bad key; trying $HOSTPORT"
	assert_equal "${#stderr_lines[@]}" 2
}

@test "orch-agent: a 4xx fails at once with the server's message" {
	serve '[{"status":404,"error":"The model `nope` does not exist"}]'
	run -69 --separate-stderr orch-agent --role planner --model nope <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 404: The model \`nope\` does not exist"
	assert_equal "$(requests)" 1
}

@test "orch-agent: a bad context is 65 and sends nothing" {
	serve '[]'
	run -65 --separate-stderr orch-agent --role planner </dev/null
	assert_equal "$stderr" "orch-agent: no input: expected an orch.context document"
	run -65 --separate-stderr orch-agent --role planner <<<'{"type":"orch.snapshot","version":1}'
	assert_equal "$stderr" "orch-agent: expected an orch.context document, got 'orch.snapshot'"
	run -65 --separate-stderr orch-agent --role builder <"$CTX"
	assert_equal "$stderr" "orch-agent: the context is for the planner, not the builder"
	run -65 --separate-stderr orch-agent --role planner <<<'{"type":"orch.context",'
	[[ $stderr == "orch-agent: line 1: "* ]] || fail "$stderr"
	run -65 --separate-stderr bash -c "cat '$CTX' '$CTX' | orch-agent --role planner"
	[[ $stderr == "orch-agent: line "*": expected one orch.context document, found another" ]] || fail "$stderr"
	run -65 --separate-stderr orch-agent --role planner <<<'{"type":"orch.context","version":1,"agent":"planner","snapshot":{},"artifact_content":3}'
	assert_equal "$stderr" "orch-agent: 'artifact_content' must be a string or null"
	assert_equal "$(requests)" 0
}

@test "orch-agent: no provider that can answer is 69" {
	unset ORCH_LLM_API_KEY
	run -69 --separate-stderr orch-agent --role planner --base-url http://127.0.0.1:9/v1 <"$CTX"
	assert_equal "$stderr" "orch-agent: 127.0.0.1:9: no API key: set ORCH_LLM_API_KEY or GROQ_API_KEY"
	export GROQ_API_KEY=$KEY
	run -69 --separate-stderr orch-agent --role planner --base-url http://127.0.0.1:9/v1 --retries 1 <"$CTX"
	[[ $stderr == "orch-agent: 127.0.0.1:9: gave up after 2 attempts: "*"onnect"* ]] || fail "$stderr"
	ORCH_LLM_FALLBACKS="http://127.0.0.1:9/x|m|NO_SUCH_VAR" run -69 --separate-stderr \
		orch-agent --role planner --base-url http://127.0.0.1:9/v1 --retries 0 <"$CTX"
	assert_equal "${stderr_lines[1]}" "orch-agent: 127.0.0.1:9: no API key: set NO_SUCH_VAR"
}

@test "orch-agent: the key appears only in the Authorization header" {
	serve "[{\"status\":500,\"error\":\"upstream rejected key $KEY\"}, {\"status\":401,\"error\":\"Invalid API Key: $KEY\"}]"
	run -69 --separate-stderr orch-agent --role planner -v --retries 1 <"$CTX"
	assert_equal "${stderr_lines[-1]}" "orch-agent: $HOSTPORT: HTTP 401: Invalid API Key: [redacted]"
	[[ $stderr == *"Authorization: [redacted]"* ]] || fail "no redacted header in: $stderr"
	[[ $stderr == *"POST http://$HOSTPORT/v1/chat/completions"* ]] || fail "$stderr"
	[[ $stderr == *"HTTP 500 in "*" ms, "*" bytes; headers: "*"Content-Type"* ]] || fail "$stderr"
	[[ $stderr != *"$KEY"* ]] || fail "the key leaked to stderr"
	[[ $output != *"$KEY"* ]] || fail "the key leaked to stdout"
	assert_equal "$(grep -c -- "$KEY" "$LOG")" 2
	assert_equal "$(jq -c 'del(.headers.Authorization)' "$LOG" | grep -c -- "$KEY")" 0
	# A key pasted into the fallback list by mistake is not echoed.
	ORCH_LLM_FALLBACKS="http://x/|m|not-a-var-$KEY" run -64 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: ORCH_LLM_FALLBACKS: entry 1: KEYVAR must be the name of a variable"
}

@test "orch-agent: the builder sees the artifact cut at 50000 characters" {
	serve "[$(ok_step)]"
	jq -c '.agent = "builder" | .task = {"reason":"r","todo":{"id":3,"content":"x"}}
	       | .artifact_content = ("é" * 60000)' "$CTX" >"$BATS_TEST_TMPDIR/builder.json"
	run -0 orch-agent --role builder <"$BATS_TEST_TMPDIR/builder.json"
	local art
	art=$(request 1 '.body.messages[1].content' | sed 1d | jq -r .artifact_content)
	[[ $art == *"<!-- orch: truncated here: the artifact has 60000 characters, only the first 50000 are shown -->" ]] ||
		fail "no note: ${art: -120}"
	assert_equal "$(printf '%s' "${art%%$'\n'<!--*}" | wc -m)" 50000
}

@test "orch-agent: usage errors exit 64" {
	run -64 --separate-stderr orch-agent <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: --role is required"
	run -64 --separate-stderr orch-agent --role boss <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: --role: 'boss' is not planner, builder, communicator or reviewer"
	run -64 --separate-stderr orch-agent --role planner --timeout 0 <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: --timeout: '0' is not a whole number from 1 to 3600000"
	ORCH_LLM_RETRIES=many run -64 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: ORCH_LLM_RETRIES: 'many' is not a whole number from 0 to 20"
	run -64 --separate-stderr orch-agent --role planner --base-url ftp://example.org <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: --base-url: 'ftp://example.org' is not an http or https URL"
	ORCH_LLM_FALLBACKS="http://127.0.0.1:9/v1" run -64 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: ORCH_LLM_FALLBACKS: entry 1: expected URL|MODEL|KEYVAR"
	assert_equal "${stderr_lines[2]}" "Try 'orch-agent --help' for more information."
}

# A stack where all four agents have work, and its orch.graph (as
# tests/orch-exec.bats builds it) in $BATS_TEST_TMPDIR/g.json.
pipeline_stack() {
	orch-stack init
	orch-stack create alpha --idea "a pomodoro timer" >/dev/null
	orch-stack todo add alpha "build the timer" --priority 4 >/dev/null
	orch-stack say alpha "hello there" >/dev/null
	orch-stack start alpha >/dev/null
	jq -cn --argjson id "$(sql "SELECT id FROM stacks WHERE name = 'alpha'")" '
	  {planner: [], builder: ["planner"], communicator: [], reviewer: ["builder"]} as $deps
	  | {type: "orch.work_status", version: 1,
	     stack: {id: $id, name: "alpha", phase: "planning", execution_state: "running", created_at: 1},
	     computed_at: 1, cached: false,
	     agents: ($deps | with_entries(.key as $a | .value = {has_work: true, priority: 5,
	        reason: "test", depends_on: $deps[$a]}))}' | orch-graph >"$BATS_TEST_TMPDIR/g.json"
}

@test "orch-agent: a pipeline cycle of all four roles through orch-exec" {
	pipeline_stack
	local msg
	msg=$(sql "SELECT id FROM user_messages")
	serve "{\"agent:planner\":[{\"reply\":{\"thinking\":\"p\",\"actions\":[{\"type\":\"create_todo\",\"content\":\"add a dark mode\",\"priority\":3}]}}],
	        \"agent:builder\":[{\"reply\":{\"thinking\":\"b\",\"actions\":[{\"type\":\"write_artifact\",\"artifact_type\":\"html\",\"content\":\"<!doctype html><title>t</title>\"}]}}],
	        \"agent:communicator\":[{\"reply\":{\"thinking\":\"c\",\"actions\":[{\"type\":\"reply_user\",\"message_id\":$msg,\"content\":\"hi!\"}]}}],
	        \"agent:reviewer\":[{\"reply\":{\"thinking\":\"r\",\"actions\":[{\"type\":\"recommend\",\"recommendation\":\"add sound\"}]}}]}"
	run -0 --separate-stderr orch-exec --retries 0 "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '.nodes | map("\(.agent)=\(.status)") | sort | join(" ")' <<<"$output")" \
		"builder=completed communicator=completed planner=completed reviewer=completed"
	assert_equal "$(requests)" 4
	assert_equal "$(sql "SELECT content || ':' || status FROM todos ORDER BY id" | paste -sd ' ')" \
		"build the timer:completed add a dark mode:pending"
	assert_equal "$(sql "SELECT version || ':' || content FROM artifacts")" "1:<!doctype html><title>t</title>"
	assert_equal "$(sql "SELECT processed || ':' || response FROM user_messages")" "1:hi!"
	assert_equal "$(sql "SELECT json_extract(data, '$.reviewer_recommendations[0]') FROM memory WHERE agent = 'planner'")" "add sound"
	assert_equal "$(sql "SELECT DISTINCT json_extract(usage, '$.provider') || ' ' || json_extract(usage, '$.prompt_tokens') FROM traces")" "$HOSTPORT 11"
	# The key is in no table.
	sqlite3 "$ORCH_DB" .dump | grep -c -- "$KEY" | grep -qx 0
}

@test "orch-agent: a failed agent leaves the store untouched" {
	pipeline_stack
	serve '{"agent:planner":[{"reply":{"actions":[]}}],
	        "agent:communicator":[{"reply":{"actions":[]}}],
	        "agent:builder":[{"status":401,"error":"Invalid API Key"}]}'
	run -0 --separate-stderr orch-exec --retries 0 "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$(jq -r '.nodes[] | select(.agent == "builder") | .status' <<<"$output")" failed
	assert_equal "$(sql "SELECT content || ':' || status FROM todos")" "build the timer:pending"
	assert_equal "$(sql "SELECT count(*) FROM artifacts")" 0
	assert_equal "$(sql "SELECT exit_status FROM traces WHERE agent = 'builder'")" 69
	sql "SELECT error FROM traces WHERE agent = 'builder'" | grep -qF "HTTP 401: Invalid API Key"
	sqlite3 "$ORCH_DB" .dump | grep -c -- "$KEY" | grep -qx 0
}

@test "orch-agent: TLS is verified: an untrusted server is refused before the key is sent; --cacert trusts one" {
	command -v openssl >/dev/null || skip "openssl is not installed"
	local d=$BATS_TEST_TMPDIR/tls
	mkdir "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
	echo "[$(ok_step)]" >"$d/script.json"
	python3 "$BATS_TEST_DIRNAME/llm-server.py" --script "$d/script.json" --log "$d/requests.log" \
		--port-file "$d/port" --idle 20 --tls "$d/cert.pem" "$d/key.pem" >"$d/server.out" 2>&1 3>&- &
	local server=$! i
	for i in $(seq 200); do
		[ -s "$d/port" ] && break
		sleep 0.05
	done
	[ -s "$d/port" ] || fail "the TLS server did not start: $(cat "$d/server.out")"
	local url=https://127.0.0.1:$(cat "$d/port")/v1
	run -69 --separate-stderr orch-agent --role planner --retries 0 --base-url "$url" <"$CTX"
	assert_equal "${#stderr_lines[@]}" "1"
	[[ $stderr == "orch-agent: 127.0.0.1:$(cat "$d/port"): "*"certificate"* ]] || fail "$stderr"
	[[ $stderr != *"$KEY"* ]] || fail "the key leaked to stderr"
	assert_equal "$output" ""
	# The handshake failed, so no request, and no key, reached the server.
	assert_equal "$(wc -l <"$d/requests.log")" "0"
	# Told to trust the server's own certificate, it talks to it: by flag,
	# or by ORCH_LLM_CA_BUNDLE (as orch-exec's children would be told).
	run -0 --separate-stderr orch-agent --role planner --retries 0 --base-url "$url" --cacert "$d/cert.pem" <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(jq -c 'del(.usage)' <<<"$output")" "$(jq -c . "$FIXTURES/orch-agent/reply.json")"
	assert_equal "$(wc -l <"$d/requests.log")" "1"
	assert_equal "$(sed -n 1p "$d/requests.log" | jq -r .headers.Authorization)" "Bearer $KEY"
	echo "[$(ok_step)]" >"$d/script.json"
	ORCH_LLM_CA_BUNDLE=$d/cert.pem run -0 orch-agent --role planner --retries 0 --base-url "$url" <"$CTX"
	assert_equal "$(wc -l <"$d/requests.log")" "2"
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	# A CA file that cannot be read is said at once, and nothing is sent.
	run -66 --separate-stderr orch-agent --role planner --base-url "$url" --cacert "$d/none.pem" <"$CTX"
	assert_equal "$stderr" "orch-agent: cannot read CA file '$d/none.pem': No such file or directory"
}
