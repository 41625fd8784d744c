#!/usr/bin/env bats
# What agents spend: every request orch-agent sends counted through the
# whole pipeline (orch-exec's traces beside orch-agent's own records,
# counted once), failed runs too, and kept through retention.

load test_helper

KEY=gsk_TEST_budget_6c1d0e9a

setup_file() {
	llm_server_start
}

teardown_file() {
	llm_server_stop
}

setup() {
	orch_test_env
	export ORCH_LLM_API_KEY=$KEY ORCH_LLM_BACKOFF_MS=50 ORCH_LLM_TIMEOUT_MS=5000
	[ -s "$BATS_FILE_TMPDIR/port" ] ||
		fail "the test server did not start: $(cat "$BATS_FILE_TMPDIR/server.out")"
	export ORCH_LLM_BASE_URL=http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/port")/v1
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack start alpha
}

# serve SCRIPT: the test server's next replies.
serve() {
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/script.json"
	jq -e . "$BATS_TEST_TMPDIR/script.json" >/dev/null || fail "bad script: $1"
	mv "$BATS_TEST_TMPDIR/script.json" "$BATS_FILE_TMPDIR/script.json"
}

# One cycle of alpha with orch-agent as its planner, no retry by orch-exec.
planner_cycle() {
	run_cycle --agent planner='orch-agent --role planner' --retries 0 >/dev/null
}

# The planner's row of usage, as "runs failed_runs requests prompt
# completion cached failed_tokens".
planner_usage() {
	orch-stack usage "$@" --json |
		jq -r 'select(.agent == "planner") | [.runs, .failed_runs, .requests, .prompt_tokens,
		       .completion_tokens, .cached_tokens, .failed_tokens] | join(" ")'
}

VALID='{"thinking":"plan","actions":[{"type":"create_todo","content":"build it","priority":2}]}'

@test "usage: an invalid reply then a valid one, through the pipeline, counted once" {
	serve "[{\"content\":\"Sure!\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5}},
	        {\"reply\":$VALID,\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9}}]"
	planner_cycle
	# The trace has the turn's usage, 220 + 14, and the store its two
	# requests: counted once, by the requests.
	assert_equal "$(sql "SELECT status, json_extract(usage, '$.prompt_tokens') FROM traces")" "completed|220"
	assert_equal "$(sql "SELECT count(*) FROM llm_requests r JOIN traces t
	                     ON t.stack_id = r.stack_id AND t.agent = r.agent AND t.started_at = r.run_at
	                     AND t.execution_id = r.execution_id")" 2
	assert_equal "$(planner_usage alpha)" "1 0 2 220 14 0 0"
}

@test "usage: a turn that fails, through the pipeline, costs what it spent" {
	serve '[{"reply":{"actions":[{"type":"create_todo","priority":4}]},"usage":{"prompt_tokens":300,"completion_tokens":30}},
	        {"reply":{"actions":[{"type":"create_todo","content":"x","priority":9}]},"usage":{"prompt_tokens":330,"completion_tokens":33}}]'
	planner_cycle
	assert_equal "$(sql "SELECT status, usage IS NULL FROM traces")" "failed|1"
	assert_equal "$(planner_usage alpha)" "1 1 2 630 63 0 693"
	assert_equal "$(planner_usage)" "1 1 2 630 63 0 693"
}

@test "usage: what retention prunes still counts, requests and failures included" {
	serve "[{\"content\":\"Sure!\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5}},
	        {\"reply\":$VALID,\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9}},
	        {\"status\":500,\"body\":{\"error\":{\"message\":\"down\"},\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":0}}},
	        {\"status\":500,\"error\":\"down\"}]"
	planner_cycle
	# The second cycle: the builder (the example agent) builds the todo,
	# the communicator, for a message, fails, an error that says its cost
	# and one that does not.
	orch-stack say alpha "hello"
	ORCH_LLM_RETRIES=1 run_cycle --agent communicator='orch-agent --role communicator' \
		--retries 0 >/dev/null
	local before
	before=$(orch-stack usage alpha --json)
	assert_equal "$(jq -r '[.agent, .runs, .failed_runs, .requests, .prompt_tokens, .failed_tokens]
	                       | join(" ")' <<<"$before")" "planner 1 0 2 220 0
builder 1 0 0 0 0
communicator 1 1 2 7 7"
	# Only the newest cycle kept: the first goes, its run and requests
	# into usage_days, and usage says the same.
	mkdir -p "$HOME/.config/orch"
	printf 'retain.cycles = 1\nretain.age = 0\n' >"$HOME/.config/orch/config"
	run -0 orch-stack gc alpha
	assert_equal "$(sql "SELECT count(*) FROM llm_requests")" 2
	assert_equal "$(sql "SELECT agent || ' ' || runs || ' ' || requests || ' ' || prompt_tokens FROM usage_days")" \
		"planner 1 2 220"
	assert_equal "$(orch-stack usage alpha --json)" "$before"
}
