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

# --- budgets (README.md, "Budgets") ---

# First of the budget tests: the server idles out after 60 s without a
# request, which the tests after it may take under valgrind.
@test "budget: orch-agent takes the tokens left as its ceiling, and the model never sees them" {
	orch-stack budget alpha --daily 3000
	serve "[{\"reply\":$VALID,\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":9}}]"
	local before
	before=$(wc -l <"$BATS_FILE_TMPDIR/requests.log")
	planner_cycle
	tail -n +$((before + 1)) "$BATS_FILE_TMPDIR/requests.log" >"$BATS_TEST_TMPDIR/sent"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/sent")" 1
	# 3000 less the prompt, as orch-agent estimates it (bytes / 3 + 1):
	# less than the planner's 8000, and less than 3000.
	local max prompt
	max=$(jq '.body.max_tokens // .body.max_completion_tokens' "$BATS_TEST_TMPDIR/sent")
	prompt=$(jq '[.body.messages[].content | length] | add' "$BATS_TEST_TMPDIR/sent")
	assert [ "$max" -lt 3000 ]
	assert [ "$max" -ge $((3000 - prompt / 3 - 100)) ]
	run -1 grep -c tokens_left "$BATS_TEST_TMPDIR/sent"
}

# spender NAME PROMPT COMPLETION: a command agent at $BATS_TEST_TMPDIR/NAME
# that does its task (the example team's way) and says it spent PROMPT and
# COMPLETION tokens; the planner also plans one todo, and every context it
# was given is kept in NAME.ctx.
spender() {
	cat >"$BATS_TEST_TMPDIR/$1" <<SH
#!/bin/sh
tee -a "$BATS_TEST_TMPDIR/$1.ctx" | jq -c '{actions: (
  (if .agent == "planner" then [{type: "create_todo", content: "build it", priority: 3}] else [] end)
  + (if .task.user_message then [{type: "reply_user", message_id: .task.user_message.id, content: "ok"}] else [] end)
  + (if .task.todo then [{type: "write_artifact", content: "<p>x</p>"}, {type: "complete_todo", id: .task.todo.id}] else [] end)),
  usage: {prompt_tokens: $2, completion_tokens: $3}}'
SH
	chmod +x "$BATS_TEST_TMPDIR/$1"
}

# budget_cycle: one cycle of every running stack with the spenders, its
# decisions on stdout as "stack rule action".
budget_cycle() {
	orch-detect --all --force | orch-graph |
		orch-exec -q --agent planner="$BATS_TEST_TMPDIR/planner" \
			--agent builder="$BATS_TEST_TMPDIR/builder" \
			--agent communicator="$BATS_TEST_TMPDIR/communicator" \
			--agent reviewer=reviewer --retries 0 "$@" |
		orch-decide | jq -r '[.stack.name, .rule, .action] | join(" ")'
}

# The next 00:00 UTC, in ms.
midnight() {
	echo $(( ($(date +%s) / 86400 + 1) * 86400000 ))
}

@test "budget: a stack over its daily budget is held, paused until 00:00 UTC, and woken when it is raised" {
	spender planner 400 200
	spender builder 300 200
	run -0 orch-stack budget alpha --daily 1000
	assert_line --index 1 --regexp '^stack +daily +1000 +0 +1000  00:00 UTC  own$'
	assert_line --index 5 "alpha: 1000 tokens left before its daily token budget is reached"
	run -0 budget_cycle
	assert_output "alpha new_work continue"
	# The builder's run was told what was left, 1000 - 600.
	run -0 budget_cycle
	assert_output "alpha budget pause"
	assert_equal "$(jq -s '.[-1].tokens_left' "$BATS_TEST_TMPDIR/builder.ctx")" 400
	assert_equal "$(sql "SELECT next_run_at = $(midnight) FROM stacks")" 1
	local reason="over its daily token budget: 1100 of 1000 tokens today; resets at 00:00 UTC"
	assert_equal "$(sql "SELECT reason FROM executions ORDER BY id DESC LIMIT 1")" "$reason"
	# Detection says why nothing runs, whatever is waiting.
	orch-stack todo add alpha "more"
	run -0 --separate-stderr orch-detect --stack alpha --no-cache
	assert_equal "$(jq -r '.agents.builder | [.has_work, .priority, .reason] | join("|")' <<<"$output")" \
		"false|0|$reason; waiting: 1 pending todo (1 high priority)"
	assert_equal "$(jq -c '.budget | [.over, .scope, .period, .limit, .spent]' <<<"$output")" \
		'[true,"stack","daily",1000,1100]'
	run -0 orch-stack show alpha
	assert_line "budget         ${reason% at 00:00 UTC} at"
	run -0 orch-stack budget alpha
	assert_line --index 5 "alpha: $reason"
	# The todo added woke it, and the cycle it got ran nothing.
	run -0 budget_cycle
	assert_output "alpha budget pause"
	assert_equal "$(sql "SELECT count(*) FROM traces")" 2
	# A raised budget runs what waits at once.
	run -0 orch-stack budget alpha --daily 5000
	assert_equal "$(sql "SELECT next_run_at <= $(date +%s%3N) FROM stacks")" 1
	# It continues: the reviewer's recommendation is new work (new_work);
	# within orch-detect's 5 s cache the detection is the one made before
	# the raise, so the raise is also a wake after it (woken), named first.
	run -0 budget_cycle
	assert_output --regexp '^alpha (new_work|woken) continue$'
	assert_equal "$(sql "SELECT count(*) FROM traces WHERE agent = 'builder'")" 2
}

@test "budget: a total budget reached stops the stack until a person raises it and starts it" {
	spender planner 400 200
	spender builder 300 200
	mkdir -p "$HOME/.config/orch"
	printf 'budget.stack_total_tokens = 500\n' >"$HOME/.config/orch/config"
	run -0 budget_cycle
	assert_output "alpha budget stop"
	run -0 orch-stack list
	assert_line --regexp '^1 +alpha +stopped '
	assert_equal "$(sql "SELECT reason FROM executions")" \
		"over its total token budget: 600 of 500 tokens; raise it (orch-stack budget) and start the stack again"
	run -0 orch-stack budget alpha
	assert_line --index 2 --regexp '^stack +total +500 +600 +0  never      budget.stack_total_tokens$'
	run -0 orch-stack budget alpha --total 0
	assert_line --index 2 --regexp '^stack +total +none +600 +-  never      own$'
	orch-stack start alpha
	run -0 budget_cycle
	assert_output "alpha progress pause"
	assert_equal "$(sql "SELECT status FROM todos")" completed
}

@test "budget: the store's daily budget holds every stack, each saying whose budget it is" {
	spender planner 400 200
	orch-stack create beta --idea "a clock"
	orch-stack start beta
	mkdir -p "$HOME/.config/orch"
	printf 'budget.daily_tokens = 1000\n' >"$HOME/.config/orch/config"
	# Each planner ran; whichever stack is decided last is over already.
	budget_cycle
	assert_equal "$(sql "SELECT count(*) FROM traces WHERE agent = 'planner'")" 2
	run -0 --separate-stderr orch-detect --all --force
	assert_equal "$(jq -r '.agents.builder.reason' <<<"$output" | cut -d';' -f1 | sort -u)" \
		"over the store's daily token budget: 1200 of 1000 tokens today"
	run -0 budget_cycle
	assert_output "alpha budget pause
beta budget pause"
}

@test "budget: a run whose context alone would cross what is left is not started, its todo given back" {
	spender planner 400 200
	spender builder 300 200
	orch-stack budget alpha --daily 700
	run -0 budget_cycle
	assert_output "alpha new_work continue"
	# 100 tokens left, and the builder's context is more than 400 bytes:
	# the dry run says so, and the cycle does it.
	run -0 --separate-stderr bash -c "orch-detect --all --force | orch-graph | orch-exec -n"
	assert_equal "$(jq -c '[.budget.left, (.nodes[] | select(.agent == "builder") | .status, .budget)]' <<<"$output")" \
		'[100,"skipped",true]'
	run -0 budget_cycle
	assert_output "alpha budget pause"
	assert_equal "$(sql "SELECT count(*) FROM traces WHERE agent = 'builder'")" 0
	assert_equal "$(sql "SELECT status FROM todos")" pending
	assert_equal "$(sql "SELECT attempts, last_error IS NULL FROM todos")" "0|1"
	run -0 orch-stack cycle alpha 2
	assert_equal "$(jq -c '.nodes[] | select(.agent == "builder") | [.status, .budget, .attempts]' <<<"$output")" \
		'["skipped",true,0]'
	assert_regex "$(jq -r '.nodes[] | select(.agent == "builder") | .error' <<<"$output")" \
		'^100 tokens left under its daily token budget, and its context alone is about [0-9]+$'
}

@test "budget: bad limits are refused with the documented status, nothing written" {
	run -64 --separate-stderr orch-stack budget alpha --daily -5
	assert_equal "${stderr_lines[0]}" "orch-stack: --daily: '-5' is not a whole number from 0 to 1000000000000000"
	run -64 --separate-stderr orch-stack budget alpha --total lots
	assert_equal "${stderr_lines[0]}" "orch-stack: --total: 'lots' is not a whole number from 0 to 1000000000000000"
	run -64 --separate-stderr orch-stack show alpha --daily 5
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--daily' does not apply to 'show'"
	run -66 --separate-stderr orch-stack budget gamma --daily 5
	assert_equal "$stderr" "orch-stack: no stack 'gamma'"
	assert_equal "$(sql "SELECT count(*) FROM stack_budgets")" 0
	# "default" follows the configuration again.
	orch-stack budget alpha --daily 5 --total 6
	run -0 orch-stack budget alpha --daily default --total default --json
	assert_equal "$(jq -c '[.limits[0].set_by, .limits[1].set_by]' <<<"$output")" '["none","none"]'
	assert_equal "$(sql "SELECT count(*) FROM stack_budgets")" 0
	# A bad configured limit stops the pipeline's programs before they
	# run anything; show still shows the rest.
	mkdir -p "$HOME/.config/orch"
	printf 'budget.daily_tokens = -1\n' >"$HOME/.config/orch/config"
	run -65 --separate-stderr orch-detect --all
	assert_regex "$stderr" "^orch-detect: budget.daily_tokens = '-1' \(.*config:1\): expected a whole number from 0 to 1000000000000000$"
	run -65 --separate-stderr orch-exec </dev/null
	run -65 --separate-stderr orch-decide </dev/null
	run -0 orch-stack show alpha
	assert_line --regexp "^budget +unknown: budget.daily_tokens "
}

@test "budget: the README's example limits are accepted as they are" {
	local f=$BATS_TEST_TMPDIR/config
	awk '/^\*\*Budgets\.\*\*/ { on = 1 } on && /^```$/ { n++; if (n == 2) exit; next } on && n == 1' \
		"$ORCH_ROOT/README.md" >"$f"
	assert_equal "$(grep -c '^budget\.' "$f")" 4
	run -0 --separate-stderr orch-stack config --config "$f" --json
	assert_equal "$(jq -r 'select(.key == "budget.stack_daily_tokens") | .value' <<<"$output")" 200000
	run -0 orch-stack budget alpha --config "$f"
	assert_line --index 5 "alpha: 200000 tokens left before its daily token budget is reached"
}
