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

@test "orch-agent: a 429 honours x-ratelimit-reset-tokens; past the deadline it exits 75 with the wait" {
	serve "[{\"status\":429,\"headers\":{\"x-ratelimit-remaining-tokens\":\"0\",\"x-ratelimit-reset-tokens\":\"0.4s\",\"x-ratelimit-remaining-requests\":\"10\",\"x-ratelimit-reset-requests\":\"1m30s\"},\"error\":\"tokens\"},
	        $(ok_step),
	        {\"status\":429,\"headers\":{\"x-ratelimit-remaining-requests\":\"0\",\"x-ratelimit-reset-requests\":\"1m30s\"},\"error\":\"Rate limit reached for requests\"}]"
	run -0 orch-agent --role planner <"$CTX"
	local waited
	waited=$(jq -s '(.[1].t - .[0].t) * 1000 | floor' "$LOG")
	((waited >= 380 && waited < 2000)) || fail "waited $waited ms"
	SECONDS=0
	run -75 --separate-stderr orch-agent --role planner --deadline 5000 <"$CTX"
	((SECONDS < 3)) || fail "took $SECONDS s"
	# The retry contract: the error, then the wait on a line of its own.
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 429: Rate limit reached for requests; waiting 90000 ms more would pass the deadline
retry-after-ms: 90000"
	assert_equal "$output" ""
}

@test "retry contract: Retry-After past the deadline is one request, exit 75 and its wait; a refused key is 69, said once" {
	serve '[{"status":429,"headers":{"Retry-After":"600"},"error":"slow down"}]'
	run -75 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 429: slow down; waiting 600000 ms more would pass the deadline
retry-after-ms: 600000"
	assert_equal "$(requests)" 1
	# Without a wait from the server, no retry-after-ms line.
	serve '[{"status":503,"error":"busy"}]'
	run -75 --separate-stderr orch-agent --role planner --retries 0 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 1 attempt: HTTP 503: busy"
	serve '[{"status":401,"error":"Invalid API Key"}]'
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 401: Invalid API Key (the key was refused: check ORCH_LLM_API_KEY)"
	assert_equal "$(requests)" 1
}

@test "retry contract end to end: a 429 with Retry-After: 600 is one request in the cycle, and the stack's next run 600 s on" {
	serve '[{"status":429,"headers":{"Retry-After":"600"},"error":"slow down"},{"status":429,"headers":{"Retry-After":"600"},"error":"slow down"}]'
	orch-stack init
	orch-stack create alpha --idea "an idea"
	orch-stack start alpha
	local before after
	before=$(date +%s%3N)
	run -0 bash -c 'orch-detect --all --force | orch-graph |
		orch-exec --retries 3 --retry-delay 10 --agent planner="orch-agent --role planner" | orch-decide'
	after=$(date +%s%3N)
	assert_equal "$(requests)" 1
	assert_equal "$(jq -r '"\(.action) \(.rule)"' <<<"$output")" "pause retry_after"
	assert_equal "$(jq -r .reason <<<"$output")" \
		"planner asked to wait 600 s (retry_after_ms); 1 node failed (planner); 1st failed cycle in a row"
	local next
	next=$(jq -r .next_at <<<"$output")
	((next >= before + 600000 && next <= after + 600000)) || fail "next_at $next, cycle from $before to $after"
	assert_equal "$(sql 'SELECT next_run_at FROM stacks')" "$next"
	assert_equal "$(sql "SELECT attempt || ' ' || exit_status FROM traces")" "1 75"
	# Not due: the next pipeline runs nothing and asks nothing.
	orch-detect --all | orch-graph | orch-exec --agent planner="orch-agent --role planner" | orch-decide >/dev/null
	assert_equal "$(requests)" 1
}

@test "orch-agent: a 500 is retried on the same connection, then succeeds" {
	serve "[{\"status\":500,\"error\":\"internal\"}, {\"status\":503,\"body\":\"<html>busy</html>\"}, $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(requests)" 3
	assert_equal "$(jq -s '[.[].client_port] | unique | length' "$LOG")" 1
}

@test "orch-agent: 5xx past the retry bound fails with 75 (temporary) and the server's message" {
	serve '[{"status":502,"error":"bad gateway"},{"status":502,"error":"bad gateway"},{"status":502,"error":"bad gateway"}]'
	run -75 --separate-stderr orch-agent --role planner --retries 2 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 3 attempts: HTTP 502: bad gateway"
	assert_equal "$(requests)" 3
}

@test "orch-agent: a reply slower than --timeout is retried, then times out" {
	serve "[{\"delay\":1.5,\"reply\":{}}, $(ok_step), {\"delay\":1.5,\"reply\":{}}, {\"delay\":1.5,\"reply\":{}}]"
	run -0 orch-agent --role planner --timeout 300 <"$CTX"
	assert_equal "$(requests)" 2
	SECONDS=0
	run -75 --separate-stderr orch-agent --role planner --timeout 300 --retries 1 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 2 attempts: timed out after 300 ms"
	((SECONDS < 3)) || fail "took $SECONDS s"
}

@test "orch-agent: the overall deadline cuts a slow request short" {
	serve '[{"delay":3,"reply":{}}]'
	SECONDS=0
	run -75 --separate-stderr orch-agent --role planner --deadline 400 <"$CTX"
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
	run -75 --separate-stderr orch-agent --role planner --retries 0 <"$CTX"
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
	assert_equal "${stderr_lines[1]}" "orch-agent: $HOSTPORT: HTTP 401: bad key (the key was refused: check OTHER_KEY); trying $HOSTPORT"
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

@test "orch-agent: no key is 69; no provider reachable is 75 (temporary)" {
	unset ORCH_LLM_API_KEY
	run -69 --separate-stderr orch-agent --role planner --base-url http://127.0.0.1:9/v1 <"$CTX"
	assert_equal "$stderr" "orch-agent: 127.0.0.1:9: no API key: set ORCH_LLM_API_KEY or GROQ_API_KEY"
	export GROQ_API_KEY=$KEY
	run -75 --separate-stderr orch-agent --role planner --base-url http://127.0.0.1:9/v1 --retries 1 <"$CTX"
	[[ $stderr == "orch-agent: 127.0.0.1:9: gave up after 2 attempts: "*"onnect"* ]] || fail "$stderr"
	# One provider that may answer later makes the turn temporary.
	ORCH_LLM_FALLBACKS="http://127.0.0.1:9/x|m|NO_SUCH_VAR" run -75 --separate-stderr \
		orch-agent --role planner --base-url http://127.0.0.1:9/v1 --retries 0 <"$CTX"
	assert_equal "${stderr_lines[1]}" "orch-agent: 127.0.0.1:9: no API key: set NO_SUCH_VAR"
}

@test "orch-agent: the key appears only in the Authorization header" {
	serve "[{\"status\":500,\"error\":\"upstream rejected key $KEY\"}, {\"status\":401,\"error\":\"Invalid API Key: $KEY\"}]"
	run -69 --separate-stderr orch-agent --role planner -v --retries 1 <"$CTX"
	assert_equal "${stderr_lines[-1]}" "orch-agent: $HOSTPORT: HTTP 401: Invalid API Key: [redacted] (the key was refused: check ORCH_LLM_API_KEY)"
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
	assert_equal "$(sql "SELECT version || ':' || $(sql_text content) FROM artifacts")" "1:<!doctype html><title>t</title>"
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

# --- The compatibility suite: each provider behaviour of man/orch-agent.1's
# table, replayed by the scripted server, with the exact outcome, exit
# status and number of requests.

# A builder context with an artifact of N ASCII characters.
builder_ctx() {
	jq -c --argjson n "$1" '.agent = "builder" | .task = {"reason":"r","todo":{"id":3,"content":"x"}}
	       | .artifact_content = ("<p>" + ("x" * ($n - 3)))' "$CTX" >"$BATS_TEST_TMPDIR/builder.json"
}

# The artifact characters request N showed the model, from its note.
shown() {
	request "$1" '.body.messages[1].content' | sed 1d | jq -r .artifact_content |
		sed -n 's/.*only the first \([0-9]*\) are shown -->$/\1/p'
}

@test "compat: Groq 413 on the per-minute token limit: once more with a ceiling that fits, the builder's artifact cut with it" {
	builder_ctx 60000
	local too_large='Request too large for model `llama-3.3-70b-versatile` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 12000, Requested 30000, please reduce your message size and try again.'
	serve "[{\"status\":413,\"error\":\"$too_large\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}, $(ok_step)]"
	run -0 --separate-stderr orch-agent --role builder <"$BATS_TEST_TMPDIR/builder.json"
	assert_equal "$stderr" ""
	assert_equal "$(requests)" 2
	assert_equal "$(request 1 .body.max_tokens) $(shown 1)" "16000 50000"
	# Requested 30000 at a ceiling of 16000: a prompt of 14000 tokens. Of
	# the limit less 5%, 11400, half is the reply's: 5700; the artifact is
	# cut until the prompt fits the other half.
	assert_equal "$(request 2 .body.max_tokens)" 5700
	local shown2
	shown2=$(shown 2)
	((shown2 > 5000 && shown2 < 20000)) || fail "the artifact shown is $shown2 characters"
	(($(request 2 '.body.messages | map(.content | length) | add') / 3 + 5700 <= 12000)) ||
		fail "the second request does not fit the limit"
}

@test "compat: a 413 for a context without an artifact lowers the ceiling only; a second 413 gives up" {
	local too_large='Request too large for model `llama-3.1-8b-instant` on tokens per minute (TPM): Limit 6000, Requested 9500, please reduce your message size and try again.'
	serve "[{\"status\":413,\"error\":\"$too_large\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}, $(ok_step),
	        {\"status\":413,\"error\":\"$too_large\"}, {\"status\":413,\"error\":\"$too_large\"}]"
	run -0 orch-agent --role planner <"$CTX"
	# Requested 9500 at 8000: a prompt of 1500; 5700 - 1500 = 4200.
	assert_equal "$(request 2 '[.body.max_tokens, (.body.messages[1].content | contains("only the first"))] | @csv')" "4200,false"
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 413: $too_large (a smaller request was refused too)"
	assert_equal "$(requests)" 4
}

@test "compat: a 413 without numbers: the limit from x-ratelimit-limit-tokens, else half the ceiling" {
	serve "[{\"status\":413,\"error\":\"request too large\",\"headers\":{\"x-ratelimit-limit-tokens\":\"6000\"}}, $(ok_step),
	        {\"status\":413,\"body\":\"<html><body>413 Request Entity Too Large</body></html>\",\"content_type\":\"text/html\"}, $(ok_step)]"
	run -0 orch-agent --role planner <"$CTX"
	# The prompt estimated at a token for 3 bytes, the rest of 5700 the reply's.
	local prompt max
	prompt=$(request 1 '.body.messages | map(.content | utf8bytelength) | add')
	max=$(request 2 .body.max_tokens)
	assert_equal "$max" "$((5700 - (prompt / 3 + 1)))"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(request 4 .body.max_tokens)" 4000
	assert_equal "$(requests)" 4
}

@test "compat: OpenAI 429 'Request too large' is shrunk, not waited for; a 429 that only needs time is waited for" {
	local too_large='Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested REQ. The input or output tokens must be reduced in order to run successfully.'
	serve "[{\"status\":429,\"error\":\"${too_large/REQ/34000}\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\",\"headers\":{\"retry-after\":\"20\"}},
	        $(ok_step),
	        {\"status\":429,\"error\":\"Rate limit reached for model on tokens per minute (TPM): Limit 6000, Used 5900, Requested 900. Please try again in 300ms.\",\"headers\":{\"x-ratelimit-limit-tokens\":\"6000\",\"x-ratelimit-remaining-tokens\":\"0\",\"x-ratelimit-reset-tokens\":\"0.3s\"}},
	        $(ok_step),
	        {\"status\":429,\"error\":\"${too_large/REQ/40000}\",\"type\":\"tokens\"}]"
	SECONDS=0
	run -0 orch-agent --role planner <"$CTX"
	((SECONDS < 5)) || fail "waited for a request that can never fit"
	# Requested 34000 at 8000: a prompt of 26000; 28500 - 26000 = 2500.
	assert_equal "$(request 2 .body.max_tokens)" 2500
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(request 4 .body.max_tokens)" 8000
	local waited
	waited=$(jq -s '(.[3].t - .[2].t) * 1000 | floor' "$LOG")
	((waited >= 290 && waited < 1500)) || fail "waited $waited ms"
	# A prompt that alone passes the limit: said, never sent again.
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 429: ${too_large/REQ/40000}; the prompt alone, about 32000 tokens, leaves no room for a reply under the limit of 30000 tokens"
	assert_equal "$(requests)" 5
}

@test "compat: Groq 400 json_validate_failed goes through the corrective round with its failed_generation" {
	local msg="Generated JSON does not match the expected schema. Please adjust your prompt. See 'failed_generation' for more details. Error: jsonschema: '/actions/0/priority' does not validate with /properties/actions/items/anyOf/2/properties/priority/maximum: must be <= 5 but found 9"
	local gen='{"thinking":"t","actions":[{"type":"create_todo","content":"x","priority":9}]}'
	serve "[{\"status\":400,\"error\":\"$msg\",\"type\":\"invalid_request_error\",\"code\":\"json_validate_failed\",\"failed_generation\":$(jq -Rn --arg g "$gen" '$g')},
	        $(ok_step),
	        {\"status\":400,\"error\":\"$msg\",\"code\":\"json_validate_failed\",\"failed_generation\":\"{}\"},
	        {\"status\":400,\"error\":\"$msg\",\"code\":\"json_validate_failed\"}]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(requests)" 2
	assert_equal "$(request 2 '.body.messages[2] | [.role, .content] | @tsv')" "assistant	$gen"
	assert_equal "$(request 2 '.body.messages[3].content')" "Your reply was not a valid actions document: HTTP 400: $msg. Reply again with only one JSON object {\"thinking\": \"...\", \"actions\": [...]} using only the action types and fields of the system prompt."
	# Twice: the round was had, the reply never came; 65 like any invalid reply.
	run -65 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: the reply is not a valid actions document, even after a retry: HTTP 400: $msg"
	assert_equal "$(request 4 '.body.messages[2].content')" "{}"
	assert_equal "$(requests)" 4
}

@test "compat: a refused json_schema steps down, keyed on param, then on the wording: keywords, strict, json_object, no format" {
	# OpenAI: a keyword its strict mode does not take (param response_format).
	serve "[{\"status\":400,\"error\":\"Invalid schema for response_format 'orch_actions': In context=('properties', 'actions'), 'maxItems' is not permitted.\",\"type\":\"invalid_request_error\",\"param\":\"response_format\",\"code\":null},
	        {\"status\":400,\"error\":\"strict mode is not supported with this model\",\"param\":\"response_format\"},
	        {\"status\":400,\"error\":\"This model does not support response format \`json_schema\`. See supported models at https://console.groq.com/docs/structured-outputs#supported-models\",\"type\":\"invalid_request_error\"},
	        {\"status\":400,\"error\":\"response_format json_object is not supported by this backend\"},
	        $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	assert_equal "$(requests)" 5
	assert_equal "$(request 1 '.body.response_format | [.type, .json_schema.strict, (.json_schema.schema | tostring | contains("\"maxItems\""))] | @csv')" '"json_schema",true,true'
	assert_equal "$(request 2 '.body.response_format | [.type, .json_schema.strict, (.json_schema.schema | tostring | contains("\"maxItems\"") or contains("\"minimum\""))] | @csv')" '"json_schema",true,false'
	# What the keywords said stays said, in the descriptions.
	request 2 '.body.response_format.json_schema.schema | tostring' | grep -qF "1 (low) to 5 (urgent)"
	assert_equal "$(request 3 '.body.response_format | [.type, .json_schema.strict] | @csv')" '"json_schema",false'
	assert_equal "$(request 4 '.body.response_format | tojson')" '{"type":"json_object"}'
	assert_equal "$(request 5 '.body | has("response_format")')" false
	[[ $stderr == *"HTTP 400: This model does not support response format \`json_schema\`."*"; asking again for a json_object instead"* ]] || fail "$stderr"
	[[ $stderr == *"; asking again with no response_format, the prompt alone"* ]] || fail "$stderr"
}

@test "compat: OpenAI param/code errors adapt the request: max_completion_tokens, no temperature" {
	serve "[{\"status\":400,\"error\":\"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.\",\"type\":\"invalid_request_error\",\"param\":\"max_tokens\",\"code\":\"unsupported_parameter\"},
	        {\"status\":400,\"error\":\"Unsupported value: 'temperature' does not support 0.8 with this model. Only the default (1) value is supported.\",\"type\":\"invalid_request_error\",\"param\":\"temperature\",\"code\":\"unsupported_value\"},
	        $(ok_step),
	        {\"status\":400,\"error\":\"Unsupported parameter: 'max_tokens' is not supported with this model.\",\"param\":\"max_tokens\",\"code\":\"unsupported_parameter\"},
	        {\"status\":400,\"error\":\"Unsupported parameter: 'max_completion_tokens' is not supported with this model.\",\"param\":\"max_completion_tokens\",\"code\":\"unsupported_parameter\"}]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(requests)" 3
	assert_equal "$(request 2 '.body | [has("max_tokens"), .max_completion_tokens, .temperature] | @csv')" 'false,8000,0.8'
	assert_equal "$(request 3 '.body | [has("max_tokens"), .max_completion_tokens, has("temperature")] | @csv')" 'false,8000,false'
	# A param refused after its adaptation is refused for good: the next provider.
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 400: Unsupported parameter: 'max_completion_tokens' is not supported with this model."
	assert_equal "$(requests)" 5
}

@test "compat: local servers' refusals: a 422 with FastAPI's detail, Gemini's array body" {
	serve "[{\"status\":422,\"body\":{\"detail\":[{\"type\":\"literal_error\",\"loc\":[\"body\",\"response_format\",\"type\"],\"msg\":\"Input should be 'text' or 'json_object'\",\"input\":\"json_schema\"}]}},
	        $(ok_step),
	        {\"status\":400,\"body\":[{\"error\":{\"code\":400,\"message\":\"Invalid JSON payload received. Unknown name \\\"strict\\\" at 'response_format.json_schema': Cannot find field.\",\"status\":\"INVALID_ARGUMENT\"}}]},
	        $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$(request 2 '.body.response_format | tojson')" '{"type":"json_object"}'
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$(request 4 '.body.response_format | [.type, .json_schema.strict] | @csv')" '"json_schema",false'
	assert_equal "$(requests)" 4
}

@test "compat: the server's own words are kept: {\"error\": X, \"message\": ...}, a 200 with an error object" {
	serve '[{"status":400,"body":{"error":"Bad Request","message":"max_tokens must be at most 4096"}},
	        {"status":200,"body":{"error":{"message":"upstream provider overloaded","code":502}}},
	        {"status":200,"body":{"error":{"message":"Invalid API key","code":401}}}]'
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 400: Bad Request: max_tokens must be at most 4096"
	# A 200 carrying an error is that error: a 502 is retried, a 401 not.
	run -75 --separate-stderr orch-agent --role planner --retries 0 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 1 attempt: HTTP 200 with an error: upstream provider overloaded"
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 200 with an error: Invalid API key (the key was refused: check ORCH_LLM_API_KEY)"
	assert_equal "$(requests)" 3
}

@test "compat: billing and auth errors move to the next provider at once, and say which" {
	serve "{\"/a\":[{\"status\":429,\"error\":\"You exceeded your current quota, please check your plan and billing details.\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}],
	        \"/b\":[{\"status\":402,\"error\":\"Insufficient credits\"}],
	        \"/c\":[{\"status\":403,\"error\":\"Forbidden\"}],
	        \"/d\":[$(ok_step)]}"
	export ORCH_LLM_BASE_URL=http://$HOSTPORT/a
	export ORCH_LLM_FALLBACKS="http://$HOSTPORT/b|m|; http://$HOSTPORT/c|m|; http://$HOSTPORT/d|m|"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: HTTP 429: You exceeded your current quota, please check your plan and billing details. (billing: no credit or quota left); trying $HOSTPORT
orch-agent: $HOSTPORT: HTTP 402: Insufficient credits (billing: no credit or quota left); trying $HOSTPORT
orch-agent: $HOSTPORT: HTTP 403: Forbidden (the key was refused: check ORCH_LLM_API_KEY); trying $HOSTPORT"
	assert_equal "$(jq -s -r 'map(.path) | join(" ")' "$LOG")" \
		"/a/chat/completions /b/chat/completions /c/chat/completions /d/chat/completions"
}

@test "compat: Retry-After is honoured on a 503, with a floor; a 408 is retried" {
	serve "[{\"status\":503,\"headers\":{\"Retry-After\":\"2\"},\"error\":\"overloaded\"}, $(ok_step),
	        {\"status\":503,\"headers\":{\"Retry-After\":\"0.005\"},\"error\":\"overloaded\"}, $(ok_step),
	        {\"status\":408,\"error\":\"request timeout\"}, $(ok_step)]"
	run -0 orch-agent --role planner <"$CTX"
	local waited
	waited=$(jq -s '(.[1].t - .[0].t) * 1000 | floor' "$LOG")
	# 2 s, and at most a fifth more of jitter.
	((waited >= 1990 && waited < 2700)) || fail "waited $waited ms for a Retry-After of 2 s"
	# A server's wait of 5 ms is taken as the first backoff at least.
	ORCH_LLM_BACKOFF_MS=400 run -0 orch-agent --role planner <"$CTX"
	waited=$(jq -s '(.[3].t - .[2].t) * 1000 | floor' "$LOG")
	((waited >= 390 && waited < 1200)) || fail "waited $waited ms for a Retry-After of 5 ms"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests)" 6
}

@test "compat: reply shapes: text parts, a <think> prefix, prose before a fenced block, reasoning_content" {
	local doc='{"thinking":"t","actions":[{"type":"set_phase","phase":"building"}]}'
	local fenced
	fenced=$(jq -Rn --arg d "$doc" '"Sure! Here is the plan:\n\n```json\n" + $d + "\n```\nLet me know."')
	serve "[{\"parts\":[\"{\\\"thinking\\\":\\\"parts\\\",\", \"\\\"actions\\\":[]}\"]},
	        {\"content\":\"<think>\\nthe user wants dark mode\\n</think>\\n{\\\"actions\\\":[]}\"},
	        {\"content\":$fenced},
	        {\"content\":\"{\\\"actions\\\":[]}\",\"reasoning_content\":\"deepseek thought\"},
	        {\"content\":\"I think this is right: {\\\"thinking\\\":\\\"inline\\\",\\\"actions\\\":[]} -- done\"}]"
	local expect
	for expect in '["parts",[]]' '["the user wants dark mode",[]]' '["t",[{"type":"set_phase","phase":"building"}]]' \
		'["deepseek thought",[]]' '["inline",[]]'; do
		run -0 --separate-stderr orch-agent --role planner <"$CTX"
		assert_equal "$(jq -c '[.thinking, .actions]' <<<"$output")" "$expect"
	done
	# Each read at once: no corrective round.
	assert_equal "$(requests)" 5
}

@test "compat: a refusal (content null) keeps the model's words; fed back once" {
	serve "[{\"refusal\":\"I can't help with that.\"}, $(ok_step),
	        {\"refusal\":\"I can't help with that.\"}, {\"refusal\":\"Still no.\"}]"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(request 2 '.body.messages[3].content' | cut -c1-80)" "Your reply was not a valid actions document: the model refused: I can't help wit"
	run -65 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: the reply is not a valid actions document, even after a retry: the model refused: Still no."
	assert_equal "$(requests)" 4
}

@test "compat: an event stream sent though none was asked for is read once, or refused once, never bought again" {
	serve "[{\"stream\":true,\"reply\":$(cat "$FIXTURES/orch-agent/reply.json"),\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":20}},
	        {\"status\":200,\"content_type\":\"text/event-stream\",\"body\":\"data: {\\\"choices\\\":[{\\\"delta\\\":{\\\"content\\\":\\\"{\\\\\\\"act\\\"}}]}\\n\\ndata: {\\\"error\\\":{\\\"message\\\":\\\"upstream went away\\\"}}\\n\\n\"},
	        $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	assert_equal "$(jq -c 'del(.usage)' <<<"$output")" "$(jq -c . "$FIXTURES/orch-agent/reply.json")"
	assert_equal "$(jq -c '[.usage.prompt_tokens, .usage.completion_tokens]' <<<"$output")" "[30,20]"
	run -69 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: an event stream came back, though none was asked for, and the event stream carries an error: upstream went away; not asking again, which would be billed again"
	assert_equal "$(requests)" 2
}

@test "compat: a 400 'maximum context length' is shrunk like a token limit" {
	builder_ctx 60000
	serve "[{\"status\":400,\"body\":{\"object\":\"error\",\"message\":\"This model's maximum context length is 32768 tokens. However, you requested 45000 tokens (29000 in the messages, 16000 in the completion). Please reduce the length of the messages or completion.\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}},
	        $(ok_step)]"
	run -0 --separate-stderr orch-agent --role builder <"$BATS_TEST_TMPDIR/builder.json"
	assert_equal "$(requests)" 2
	# 31130 - 29000 = 2130 leaves the reply too little: half each, the artifact cut.
	assert_equal "$(request 2 .body.max_tokens)" 15565
	(($(shown 2) < 50000)) || fail "the artifact was not cut"
}

# --- Model settings in the configuration file.

@test "orch-agent: model settings come from the configuration file; variables and flags win" {
	serve "[$(ok_step), $(ok_step), $(ok_step), $(ok_step), $(ok_step)]"
	unset ORCH_LLM_BASE_URL
	mkdir -p "$HOME/.config/orch"
	cat >"$HOME/.config/orch/config" <<-EOF
	llm.base_url = http://$HOSTPORT/v1
	llm.model = file-model
	llm.planner.model = planner-model
	llm.planner.temperature = 0.25
	llm.planner.max_tokens = 3000
	llm.builder.max_tokens = 5000
	llm.max_tokens_by_model = planner-model=1000, other/model = 50
	EOF
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	jq -c '.agent = "builder"' "$CTX" >"$BATS_TEST_TMPDIR/builder.json"
	run -0 orch-agent --role builder <"$BATS_TEST_TMPDIR/builder.json"
	ORCH_LLM_MODEL=env-model run -0 orch-agent --role planner <"$CTX"
	ORCH_LLM_MODEL=env-model run -0 orch-agent --role planner --model flag-model <"$CTX"
	run -0 orch-agent --role planner --config /dev/null --base-url "http://$HOSTPORT/v1" <"$CTX"
	# The role's model, its sampling, and the model's ceiling under the role's;
	# another role takes llm.model; the variable and the flag win over the file.
	assert_equal "$(jq -c '[.body.model, .body.temperature, .body.max_tokens]' "$LOG" | paste -sd ' ')" \
		'["planner-model",0.25,1000] ["file-model",0.7,5000] ["env-model",0.25,3000] ["flag-model",0.25,3000] ["llama-3.3-70b-versatile",0.8,8000]'
}

@test "orch-agent: the file's fallbacks and numbers; a bad value is 65 naming key and line; an unknown key a warning" {
	serve "{\"/a\":[{\"status\":500,\"error\":\"down\"}], \"/b\":[$(ok_step), $(ok_step)]}"
	local f=$BATS_TEST_TMPDIR/orch.conf
	printf '%s\n' "llm.base_url = http://$HOSTPORT/a" "llm.fallbacks = http://$HOSTPORT/b|model-b|" \
		'llm.retries = 0' 'llm.tokens = 5' >"$f"
	unset ORCH_LLM_BASE_URL
	run -0 --separate-stderr orch-agent --role planner --config "$f" <"$CTX"
	assert_equal "$stderr" "orch-agent: $f:4: unknown key 'llm.tokens'
orch-agent: $HOSTPORT: gave up after 1 attempt: HTTP 500: down; trying $HOSTPORT"
	assert_equal "$(jq -s -r 'map(.path + " " + .body.model) | join(", ")' "$LOG")" \
		"/a/chat/completions llama-3.3-70b-versatile, /b/chat/completions model-b"
	printf '%s\n' 'llm.planner.temperature = hot' >"$f"
	run -65 --separate-stderr orch-agent --role planner --config "$f" <"$CTX"
	assert_equal "$stderr" "orch-agent: llm.planner.temperature = 'hot' ($f:1): expected a number from 0 to 2"
	printf '%s\n' 'llm.fallbacks = http://x/v1' >"$f"
	run -65 --separate-stderr orch-agent --role planner --config "$f" <"$CTX"
	assert_equal "$stderr" "orch-agent: llm.fallbacks ($f:1): entry 1: expected URL|MODEL|KEYVAR"
	printf '%s\n' 'llm.base_url = ftp://x' >"$f"
	run -65 --separate-stderr orch-agent --role planner --config "$f" <"$CTX"
	assert_equal "$stderr" "orch-agent: llm.base_url ($f:1): 'ftp://x' is not an http or https URL"
	printf '%s\n' 'llm.retries = 30' 'llm.timeout = 0' >"$f"
	run -65 --separate-stderr orch-agent --role planner --config "$f" <"$CTX"
	assert_equal "$stderr" "orch-agent: llm.retries = '30' ($f:1): expected a whole number from 0 to 20"
	# ORCH_LLM_TIMEOUT_MS (set for these tests) wins over the file's value.
	printf '%s\n' 'llm.timeout = 0' >"$f"
	run -0 orch-agent --role planner --config "$f" --base-url "http://$HOSTPORT/b" <"$CTX"
	run -66 --separate-stderr orch-agent --role planner --config "$BATS_TEST_TMPDIR/none" <"$CTX"
	assert_equal "$stderr" "orch-agent: cannot open configuration file '$BATS_TEST_TMPDIR/none': No such file or directory"
	assert_equal "$(requests)" 3
}

# --- What providers refuse, remembered in the store for a day.

@test "orch-agent: a refusal is remembered for a day: the next process asks the way that works at once" {
	orch-stack init
	serve "[{\"status\":400,\"error\":\"This model does not support response format \`json_schema\`.\"},
	        {\"status\":400,\"error\":\"Unsupported parameter: 'max_tokens' is not supported with this model.\",\"param\":\"max_tokens\",\"code\":\"unsupported_parameter\"},
	        $(ok_step), $(ok_step), $(ok_step)]"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(requests)" 3
	assert_equal "$(sql "SELECT base_url || ' ' || model || ' ' || capability || ' ' || value FROM provider_caps ORDER BY capability")" \
		"http://$HOSTPORT/v1 llama-3.3-70b-versatile json_schema_refused 1
http://$HOSTPORT/v1 llama-3.3-70b-versatile max_completion_tokens 1"
	# The next process: one request, shaped as the server takes it.
	run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	assert_equal "$(requests)" 4
	assert_equal "$(request 4 '[.body.response_format.type, .body.max_completion_tokens, (.body | has("max_tokens"))] | @csv')" '"json_object",8000,false'
	[[ $stderr == *"$HOSTPORT: known: json_schema_refused; asking for a json_object instead"* ]] || fail "$stderr"
	# Another model at the same server knows nothing of it.
	run -0 orch-agent --role planner --model other-model <"$CTX"
	assert_equal "$(request 5 '.body.response_format.type')" json_schema
	# A day later it is forgotten, and asked again.
	sql "UPDATE provider_caps SET learned_at = learned_at - 86400000"
	serve "[$(ok_step)]"
	run -0 orch-agent --role planner <"$CTX"
	assert_equal "$(request 1 '[.body.response_format.type, .body.max_tokens] | @csv')" '"json_schema",8000'
}

@test "orch-agent: a token limit learned from a 413 shapes the next builder turn before it is refused" {
	orch-stack init
	builder_ctx 60000
	local too_large='Request too large for model `llama-3.3-70b-versatile` on tokens per minute (TPM): Limit 12000, Requested 30000, please reduce your message size and try again.'
	serve "[{\"status\":413,\"error\":\"$too_large\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}, $(ok_step), $(ok_step)]"
	run -0 orch-agent --role builder <"$BATS_TEST_TMPDIR/builder.json"
	assert_equal "$(sql "SELECT capability || ' ' || value FROM provider_caps")" "token_limit 12000"
	run -0 orch-agent --role builder <"$BATS_TEST_TMPDIR/builder.json"
	assert_equal "$(requests)" 3
	# Asked small from the start: the ceiling half the limit less 5%, the
	# artifact cut so the prompt, as estimated, fits the other half.
	assert_equal "$(request 3 .body.max_tokens)" 5700
	(($(shown 3) < 20000)) || fail "the artifact was not cut: $(shown 3)"
}

@test "orch-agent: no memory is no failure: a missing, foreign or locked database; none is ever created" {
	skip_unless_sqlite "SQLite files: missing, foreign, locked"
	serve "[{\"status\":400,\"error\":\"response_format json_schema is not supported\"}, $(ok_step),
	        {\"status\":400,\"error\":\"response_format json_schema is not supported\"}, $(ok_step),
	        {\"status\":400,\"error\":\"response_format json_schema is not supported\"}, $(ok_step)]"
	run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	assert_equal "$(grep -c 'not remembered' <<<"$stderr")" 1
	[[ $stderr == *"orch-agent: what providers refuse is not remembered: no database at '$ORCH_DB'"* ]] || fail "$stderr"
	[ ! -e "$ORCH_DB" ] || fail "orch-agent created the database"
	# Without -v, nothing is said.
	sqlite3 "$ORCH_DB" "CREATE TABLE other (x)"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	rm "$ORCH_DB"
	# A writer holding the lock: the turn ends as soon, its answer printed.
	orch-stack init
	python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(10)' "$ORCH_DB" "$BATS_TEST_TMPDIR/locked" &
	local holder=$!
	wait_file "$BATS_TEST_TMPDIR/locked"
	SECONDS=0
	run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	# At most the provider memory's 200 ms and the usage's 2 s of waiting
	# (whole seconds, and slower under the sanitizers): never the holder's 10.
	((SECONDS < 6)) || fail "the lock held the turn for $SECONDS s"
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	assert_equal "$(jq -c 'del(.usage)' <<<"$output")" "$(jq -c . "$FIXTURES/orch-agent/reply.json")"
	[[ $stderr == *"orch-agent: what providers refuse is not remembered: database is locked"* ]] || fail "$stderr"
	assert_equal "$(sql "SELECT count(*) FROM provider_caps")" 0
	assert_equal "$(requests)" 6
}

@test "orch-agent: the schema refuses what the validator refuses: ranges, empty text, lengths, patterns, counts" {
	python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed"
	serve "[$(ok_step)]"
	run -0 orch-agent --role planner <"$CTX"
	request 1 '.body.response_format.json_schema.schema' >"$BATS_TEST_TMPDIR/schema.json"
	local docs=$BATS_TEST_TMPDIR/docs
	jq -c . >"$docs" <<-'EOF'
	[{"type":"create_todo","content":"x","priority":0}]
	[{"type":"create_todo","content":"x","priority":9}]
	[{"type":"complete_todo","id":0}]
	[{"type":"create_todo","content":"","priority":null}]
	[{"type":"set_project","title":"","description":"d"}]
	[{"type":"write_artifact","content":"<p>","artifact_type":"HTML"}]
	[{"type":"set_phase","phase":""}]
	[{"type":"set_phase","phase":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]
	[{"type":"send_message","content":"hi","to":0}]
	[{"type":"reply_user","message_id":0,"content":"hi"}]
	[{"type":"remember","key":"","value":1}]
	[{"type":"update_todo","id":3,"content":null,"priority":null,"status":"in_progress"}]
	EOF
	jq -c '[range(101) | {"type":"complete_todo","id":1}]' <<<null >>"$docs"
	# Each, as a whole document: refused by the schema, and by the validator
	# (served twice, the corrective round refused too: 65).
	local verdicts
	verdicts=$(python3 -c 'import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
for line in open(sys.argv[2]):
    doc = {"thinking": "", "actions": json.loads(line)}
    print("refused" if list(jsonschema.Draft202012Validator(schema).iter_errors(doc)) else "allowed")
good = json.load(open(sys.argv[3]))
print("fixture " + ("refused" if list(jsonschema.Draft202012Validator(schema).iter_errors(good)) else "allowed"))' \
		"$BATS_TEST_TMPDIR/schema.json" "$docs" "$FIXTURES/orch-agent/reply.json")
	assert_equal "$(sort <<<"$verdicts" | uniq -c | sed 's/^ *//')" "1 fixture allowed
13 refused"
	local actions steps=
	while read -r actions; do
		steps+="${steps:+,}{\"reply\":{\"thinking\":\"\",\"actions\":$actions}},{\"reply\":{\"thinking\":\"\",\"actions\":$actions}}"
	done <"$docs"
	serve "[$steps]"
	while read -r actions; do
		run -65 orch-agent --role planner <"$CTX"
	done <"$docs"
}

# A store with alpha (stack 1), the stack of the fixture's context.
usage_store() {
	orch-stack init
	orch-stack create alpha
}

# Every request recorded, one line each.
recorded() {
	sql "SELECT stack_id, execution_id IS NULL, cycle, agent, run_at, run_ok, seq, round,
	     retry, model, http_status, outcome, prompt_tokens, completion_tokens,
	     coalesce(CAST(cached_tokens AS TEXT), '-') FROM llm_requests ORDER BY seq"
}

@test "usage: an invalid reply then a valid one are two requests, counted exactly" {
	usage_store
	serve "[{\"content\":\"Sure! Here is the plan.\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5}},
	        {\"reply\":{\"thinking\":\"fixed\",\"actions\":[]},\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9,\"prompt_tokens_details\":{\"cached_tokens\":64}}}]"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	# execution 12 is not in this store: none; cycle 4 and the run's time
	# come from the context.
	assert_equal "$(recorded)" "1|1|4|planner|1700000005000|1|1|0|0|llama-3.3-70b-versatile|200|invalid|100|5|-
1|1|4|planner|1700000005000|1|2|1|0|llama-3.3-70b-versatile|200|reply|120|9|64"
	assert_equal "$(sql "SELECT count(*) FROM llm_requests WHERE duration_ms >= 0 AND started_at > 0
	                     AND provider = '$HOSTPORT' AND base_url = 'http://$HOSTPORT/v1'")" 2
	run -0 --separate-stderr orch-stack usage alpha --json
	assert_equal "$output" '{"agent":"planner","model":"llama-3.3-70b-versatile","day":"'"$(date -u +%F)"'","runs":0,"failed_runs":0,"requests":2,"prompt_tokens":220,"completion_tokens":14,"cached_tokens":64,"total_tokens":234,"failed_tokens":0}'
}

@test "usage: a turn that fails is counted, every request with its tokens" {
	usage_store
	serve '[{"status":503,"error":"busy"},
	        {"reply":{"actions":[{"type":"create_todo","priority":4}]},"usage":{"prompt_tokens":300,"completion_tokens":30}},
	        {"reply":{"actions":[{"type":"create_todo","content":"x","priority":9}]},"usage":{"prompt_tokens":330,"completion_tokens":33}}]'
	run -65 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$output" ""
	assert_equal "$(recorded)" "1|1|4|planner|1700000005000|0|1|0|0|llama-3.3-70b-versatile|503|retry|||-
1|1|4|planner|1700000005000|0|2|0|1|llama-3.3-70b-versatile|200|invalid|300|30|-
1|1|4|planner|1700000005000|0|3|1|0|llama-3.3-70b-versatile|200|invalid|330|33|-"
	run -0 --separate-stderr orch-stack usage
	assert_equal "$stderr" ""
	assert_equal "$output" "AGENT        MODEL        DAY        RUNS REQS       PROMPT COMPLETION   FAILED
planner      llama-3.3... $(date -u +%F)    0    3          630         63      693
total                                   0    3          630         63      693
693 tokens, 0 of the prompt cached, 693 spent in failed runs"
}

@test "usage: a connection that fails is a request with no status and no tokens" {
	usage_store
	export ORCH_LLM_BASE_URL=http://127.0.0.1:1/v1
	run -75 --separate-stderr orch-agent --role planner --retries 1 <"$CTX"
	assert_equal "$(sql "SELECT seq || ' ' || coalesce(CAST(http_status AS TEXT), 'none') || ' ' || outcome
	                     || ' ' || coalesce(CAST(prompt_tokens AS TEXT), 'none') FROM llm_requests ORDER BY seq")" \
		"1 none retry none
2 none failed none"
}

@test "usage: no store, or one that cannot take them, never fails the turn" {
	skip_unless_sqlite "SQLite files that cannot take them"
	serve "[$(ok_step), $(ok_step)]"
	# No database: nothing said.
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$stderr" ""
	# A database too old to have the table: said with -v only.
	sqlite3 "$ORCH_DB" "CREATE TABLE t (x)"
	run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	[[ $stderr == *"orch-agent: 1 request not counted in usage: the database '$ORCH_DB' is of a schema without it"* ]] ||
		fail "$stderr"
}
