#!/usr/bin/env bats
# orch-detect: the detection rules (through '-', a pure filter), the choice
# of stacks from the database, the cache, and every way input can be wrong.

load test_helper

teardown() {
	# An orch-detect --follow a test left running in the background.
	if [ -n "${PIPE_PID:-}" ]; then
		kill "$PIPE_PID" 2>/dev/null || true
		wait "$PIPE_PID" 2>/dev/null || true
	fi
}

F=$BATS_TEST_DIRNAME/fixtures/orch-detect
# base.json at NOW: planned and reviewed 1000 ms ago, one pending todo of
# priority 2; only the builder has work (6).
NOW=1700000300000

# snap FILTER: base.json changed by the jq FILTER, on one line.
snap() {
	jq -c "$1" "$F/base.json"
}

# verdict FILTER AGENT [NOW]: "has_work priority reason" of AGENT.
verdict() {
	set -o pipefail
	snap "$1" | orch-detect --now "${3:-$NOW}" - |
		jq -r --arg a "$2" '.agents[$a] | "\(.has_work) \(.priority) \(.reason)"'
}

# deps FILTER AGENT: AGENT's depends_on, compact.
deps() {
	set -o pipefail
	snap "$1" | orch-detect --now "$NOW" - | jq -c --arg a "$2" '.agents[$a].depends_on'
}

# A user message with CONTENT, as a jq object.
umsg() {
	jq -cn --arg c "$1" --argjson t $((NOW - 500)) '{id: 1, sender: "user", content: $c, created_at: $t}'
}

# A string of N copies of CHAR.
repeat() {
	local s=
	for ((i = 0; i < $1; i++)); do s+=$2; done
	printf '%s' "$s"
}

# --- golden files ---

@test "golden: the README's example stack and a busy one" {
	run -0 bash -c "orch-detect --now 1700000005000 - <'$F/busy.in.json' | diff -u '$F/busy.out.json' -"
}

@test "golden: a stack where nobody has work" {
	run -0 bash -c "orch-detect --now 1700000005000 - <'$F/quiet.in.json' | diff -u '$F/quiet.out.json' -"
}

@test "the base fixture: only the builder has work" {
	run -0 --separate-stderr bash -c "orch-detect --now $NOW - <'$F/base.json'"
	assert_equal "$stderr" ""
	assert_equal "$(jq -c '[.type, .version, .computed_at, .cached, .stack.name]' <<<"$output")" \
		'["orch.work_status",1,1700000300000,false,"alpha"]'
	assert_equal "$(jq -r '[.agents[] | .has_work] | map(tostring) | join(" ")' <<<"$output")" \
		"false true false false"
}

@test "the stack header is copied, and only its five members" {
	run -0 bash -c "jq -c '.stack.extra = 1' '$F/base.json' | orch-detect --now $NOW - | jq -c .stack"
	assert_output '{"id":1,"name":"alpha","phase":"building","execution_state":"running","created_at":1700000000000}'
}

@test "a stream of snapshots gives one status per line, in order" {
	run -0 bash -c "cat '$F/busy.in.json' '$F/quiet.in.json' | orch-detect --now 1 - | jq -r .stack.name"
	assert_output $'alpha\nbeta\nquiet'
}

@test "empty input: no output, exit 0" {
	run -0 --separate-stderr orch-detect - </dev/null
	assert_output ""
	assert_equal "$stderr" ""
}

@test "--pretty indents the same document" {
	run -0 bash -c "orch-detect --pretty --now $NOW - <'$F/base.json'"
	assert_equal "${lines[0]}" "{"
	assert_equal "${lines[1]}" '  "type": "orch.work_status",'
	assert_equal "$(jq -c . <<<"$output")" "$(orch-detect --now $NOW - <"$F/base.json")"
}

# --- planner ---

@test "planner: no project idea is 10, and wins over everything" {
	run -0 verdict '.project = null | .todos = []' planner
	assert_output "true 10 no project idea"
}

@test "planner: no pending todos is 9 (completed and in-progress ones do not count)" {
	run -0 verdict '.todos[0].status = "completed" | .todos += [.todos[0] | .status = "in_progress"]' planner
	assert_output "true 9 no pending todos"
	run -0 verdict '.todos = []' planner
	assert_output "true 9 no pending todos"
}

@test "planner: reviewer recommendations are 8, counted" {
	run -0 verdict '.memory.planner.reviewer_recommendations = ["add tests"]' planner
	assert_output "true 8 1 reviewer recommendation"
	run -0 verdict '.memory.planner.reviewer_recommendations = ["a", "b"]' planner
	assert_output "true 8 2 reviewer recommendations"
	run -0 verdict '.memory.planner.reviewer_recommendations = []' planner
	assert_output "false 0 nothing to plan"
	run -0 verdict 'del(.memory.planner.reviewer_recommendations)' planner
	assert_output "false 0 nothing to plan"
}

@test "planner: each strategic keyword, in any case and inside words, is 7" {
	local m
	for m in "a new feature" "please ADD a button" "Change Project to a blog" \
		"something Different" "use red instead" "MODIFY the title" "padding"; do
		run -0 verdict ".user_messages = [$(umsg "$m")]" planner
		assert_equal "$output" "true 7 1 strategic user message since the last planning"
	done
}

@test "planner: a plain message is not strategic; two strategic ones are counted" {
	run -0 verdict ".user_messages = [$(umsg "hello, how is it going?"), $(umsg "change the project")]" planner
	assert_output "false 0 nothing to plan"
	run -0 verdict ".user_messages = [$(umsg "add a"), $(umsg "hi"), $(umsg "do it differently")]" planner
	assert_output "true 7 2 strategic user messages since the last planning"
}

@test "planner: exactly 100 characters is not strategic, 101 is" {
	run -0 verdict ".user_messages = [$(umsg "$(repeat 100 x)")]" planner
	assert_output "false 0 nothing to plan"
	run -0 verdict ".user_messages = [$(umsg "$(repeat 101 x)")]" planner
	assert_output "true 7 1 strategic user message since the last planning"
}

@test "planner: length counts UTF-8 code points, not bytes" {
	# 100 two-byte characters are 200 bytes but 100 characters.
	run -0 verdict ".user_messages = [$(umsg "$(repeat 100 é)")]" planner
	assert_output "false 0 nothing to plan"
	run -0 verdict ".user_messages = [$(umsg "$(repeat 101 é)")]" planner
	assert_output "true 7 1 strategic user message since the last planning"
	run -0 verdict ".user_messages = [$(umsg "$(repeat 100 '😀')")]" planner
	assert_output "false 0 nothing to plan"
}

@test "planner: exactly 300000 ms since the last planning is no work, 300001 is 4" {
	run -0 verdict ".memory.planner.last_planning_time = $((NOW - 300000))" planner
	assert_output "false 0 nothing to plan"
	run -0 verdict ".memory.planner.last_planning_time = $((NOW - 300001))" planner
	assert_output "true 4 last planned 300001 ms ago"
}

@test "planner: never planned counts from the stack's creation" {
	run -0 verdict ".memory.planner.last_planning_time = 0 | .stack.created_at = $((NOW - 300000))" planner
	assert_output "false 0 nothing to plan"
	run -0 verdict ".memory.planner.last_planning_time = 0 | .stack.created_at = $((NOW - 300001))" planner
	assert_output "true 4 never planned, stack created 300001 ms ago"
	run -0 verdict "del(.memory.planner.last_planning_time) | .stack.created_at = $((NOW - 300001))" planner
	assert_output "true 4 never planned, stack created 300001 ms ago"
}

@test "planner: a clock behind the last planning is no work" {
	run -0 verdict '.' planner 1700000000000
	assert_output "false 0 nothing to plan"
}

@test "planner: the first matching rule wins" {
	run -0 verdict ".todos = [] | .memory.planner.reviewer_recommendations = [\"x\"]" planner
	assert_output "true 9 no pending todos"
	run -0 verdict ".memory.planner.reviewer_recommendations = [\"x\"] | .user_messages = [$(umsg add)]" planner
	assert_output "true 8 1 reviewer recommendation"
	run -0 verdict ".user_messages = [$(umsg add)] | .memory.planner.last_planning_time = 1" planner
	assert_output "true 7 1 strategic user message since the last planning"
}

# --- builder ---

@test "builder: no pending todos is no work" {
	run -0 verdict '.todos[0].status = "in_progress"' builder
	assert_output "false 0 no pending todos"
}

@test "builder: pending todos of priority 0 are no work" {
	run -0 verdict '.todos[0].priority = 0' builder
	assert_output "false 0 1 pending todo, none above priority 0"
}

@test "builder: priority 2 is 6, priority 3 is 8" {
	run -0 verdict '.todos[0].priority = 1' builder
	assert_output "true 6 1 pending todo"
	run -0 verdict '.todos[0].priority = 2' builder
	assert_output "true 6 1 pending todo"
	run -0 verdict '.todos[0].priority = 3' builder
	assert_output "true 8 1 pending todo (1 high priority)"
}

@test "builder: counts pending todos above 0 and the high-priority ones" {
	run -0 verdict '.todos = [.todos[0] | (.priority = 5), (.priority = 1), (.priority = 2),
	                 (.priority = 0), (.status = "completed" | .priority = 5)]' builder
	assert_output "true 8 3 pending todos (1 high priority)"
	run -0 verdict '.todos = [.todos[0] | (.priority = 4), (.priority = 3)]' builder
	assert_output "true 8 2 pending todos (2 high priority)"
	run -0 verdict '.todos = [.todos[0] | (.priority = 1), (.priority = 2)]' builder
	assert_output "true 6 2 pending todos"
}

# --- communicator ---

@test "communicator: unprocessed user messages are 10, counted" {
	run -0 verdict ".user_messages = [$(umsg hi)]" communicator
	assert_output "true 10 1 unprocessed user message"
	run -0 verdict ".user_messages = [$(umsg hi), $(umsg there)] | .messages = [{}]" communicator
	assert_output "true 10 2 unprocessed user messages"
}

@test "communicator: unread inter-stack messages are 7; none is no work" {
	run -0 verdict '.messages = [{"id":5,"from_stack_id":2,"content":"hi","created_at":1}]' communicator
	assert_output "true 7 1 unread inter-stack message"
	run -0 verdict '.messages = [{}, {}]' communicator
	assert_output "true 7 2 unread inter-stack messages"
	run -0 verdict '.' communicator
	assert_output "false 0 no messages"
}

# --- reviewer ---

# Todos completed at the given offsets from the last review.
completed() {
	local t out=
	for t in "$@"; do
		out+="${out:+,}{\"id\":9,\"content\":\"c\",\"status\":\"completed\",\"priority\":3,\"created_at\":1,\"completed_at\":$((NOW - 1000 + t))}"
	done
	printf '.todos += [%s]' "$out"
}

@test "reviewer: two todos completed after the last review are 6, one is not" {
	run -0 verdict "$(completed 1 1)" reviewer
	assert_output "true 6 2 todos completed since the last review"
	run -0 verdict "$(completed 1 2 3)" reviewer
	assert_output "true 6 3 todos completed since the last review"
	run -0 verdict "$(completed 1)" reviewer
	assert_output "false 0 nothing to review"
}

@test "reviewer: a todo completed exactly at the last review does not count" {
	run -0 verdict "$(completed 1 0)" reviewer
	assert_output "false 0 nothing to review"
	run -0 verdict "$(completed 1 -5)" reviewer
	assert_output "false 0 nothing to review"
}

@test "reviewer: only status completed counts, whatever completed_at says" {
	run -0 verdict "$(completed 1 1) | .todos[-1].status = \"cancelled\"" reviewer
	assert_output "false 0 nothing to review"
	run -0 verdict "$(completed 1 1) | .todos[-1].completed_at = null" reviewer
	assert_output "false 0 nothing to review"
}

@test "reviewer: an artifact newer than the last review is 6, one as old is not" {
	run -0 verdict ".artifact = {version: 1, type: \"html\", created_at: $((NOW - 999)), size: 1}" reviewer
	assert_output "true 6 a new artifact since the last review"
	run -0 verdict ".artifact = {version: 1, type: \"html\", created_at: $((NOW - 1000)), size: 1}" reviewer
	assert_output "false 0 nothing to review"
}

# A todo completed long ago: something to review, yet no review rule of
# its own (one completed todo is fewer than detect.review_min_completed).
OLD_WORK='.todos += [{id: 2, content: "done", status: "completed", priority: 3, created_at: 1, completed_at: 5}]'

@test "reviewer: exactly 180000 ms since the last review is no work, 180001 is 4" {
	run -0 verdict "$OLD_WORK | .memory.reviewer.last_review_time = $((NOW - 180000))" reviewer
	assert_output "false 0 nothing to review"
	run -0 verdict "$OLD_WORK | .memory.reviewer.last_review_time = $((NOW - 180001))" reviewer
	assert_output "true 4 last reviewed 180001 ms ago"
}

@test "reviewer: never reviewed (0 or absent) is 4" {
	run -0 verdict "$OLD_WORK | .memory.reviewer.last_review_time = 0" reviewer
	assert_output "true 4 never reviewed"
	run -0 verdict "$OLD_WORK | .memory.reviewer = {}" reviewer
	assert_output "true 4 never reviewed"
	run -0 verdict "$OLD_WORK | .memory.reviewer = {}" reviewer 180000
	assert_output "false 0 nothing to review"
}

@test "reviewer: the periodic review needs something to look at, an artifact or a todo done" {
	run -0 verdict '.memory.reviewer.last_review_time = 0' reviewer
	assert_output "false 0 nothing to review"
	run -0 verdict '.memory.reviewer.last_review_time = 0 | .todos[0].status = "completed" | .todos[0].completed_at = 3' reviewer
	assert_output "true 4 never reviewed"
}

# --- dependencies ---

# --- what the planner and the reviewer last saw ---

# seen AGENT VERSION [CYCLE]: a jq filter giving AGENT's last run, having
# seen VERSION, in cycle CYCLE (default 12), and the stack at version 40.
seen() {
	printf '.content_version = 40 | .last_runs.%s = {cycle: %s, started_at: %s, ended_at: %s, seen_version: %s}' \
		"$1" "${3:-12}" $((NOW - 1000)) $((NOW - 900)) "$2"
}

@test "seen: a rule on a state the planner ran on is no work, and says why" {
	run -0 verdict ".todos = [] | $(seen planner 40)" planner
	assert_output "false 0 no pending todos, but nothing changed since its run in cycle 12"
	# Any change since (another version) is work again.
	run -0 verdict ".todos = [] | $(seen planner 39)" planner
	assert_output "true 9 no pending todos"
	# A run outside a cycle, or one during which others wrote (-1 seen).
	run -0 verdict ".todos = [] | $(seen planner 40) | .last_runs.planner.cycle = null" planner
	assert_output "false 0 no pending todos, but nothing changed since its last run"
	run -0 verdict ".todos = [] | $(seen planner -1)" planner
	assert_output "true 9 no pending todos"
	# A snapshot without these members sees nothing: the rules as before.
	run -0 verdict ".todos = [] | $(seen planner 40) | del(.content_version)" planner
	assert_output "true 9 no pending todos"
}

@test "seen: the state rules are held back on seen work; the event rules and the queues never" {
	# State rules: no project, no pending todos, the periodic ones.
	run -0 verdict ".project = null | $(seen planner 40)" planner
	assert_output "false 0 no project idea, but nothing changed since its run in cycle 12"
	run -0 verdict ".memory.planner.last_planning_time = 1 | $(seen planner 40)" planner
	[[ $output == "false 0 last planned "*" ms ago, but nothing changed since its run in cycle 12" ]] || fail "$output"
	run -0 verdict "$OLD_WORK | .memory.reviewer.last_review_time = 1 | $(seen reviewer 40 7)" reviewer
	[[ $output == "false 0 last reviewed "*" ms ago, but nothing changed since its run in cycle 7" ]] || fail "$output"
	# Events come once each, seen or not: a request, a recommendation,
	# a new artifact, todos done since the last review.
	run -0 verdict ".todos = [] | .user_messages = [$(umsg "add a dark mode")] | $(seen planner 40)" planner
	assert_output "true 7 1 strategic user message since the last planning"
	run -0 verdict ".todos = [] | .memory.planner.reviewer_recommendations = [\"x\"] | $(seen planner 40)" planner
	assert_output "true 8 1 reviewer recommendation"
	run -0 verdict ".artifact = {version: 1, type: \"html\", created_at: $((NOW - 10)), size: 1} | $(seen reviewer 40)" reviewer
	assert_output "true 6 a new artifact since the last review"
	# A plain message is the communicator's, not a change to the work.
	run -0 verdict ".todos = [] | .user_messages = [$(umsg "hi there")] | $(seen planner 40)" planner
	assert_output "false 0 no pending todos, but nothing changed since its run in cycle 12"
	# The queues: the builder's and the communicator's.
	run -0 verdict ".todos[0].priority = 4 | $(seen builder 40)" builder
	assert_output "true 8 1 pending todo (1 high priority)"
	run -0 verdict ".user_messages = [$(umsg hi)] | $(seen communicator 40)" communicator
	assert_output "true 10 1 unprocessed user message"
}

@test "seen: detect.unchanged_interval reruns them on an unchanged stack, at the periodic priority" {
	mkdir -p "$HOME/.config/orch"
	echo 'detect.unchanged_interval = 500' >"$HOME/.config/orch/config"
	# The run ended 900 ms ago and started 1000 ms ago: past 500 ms.
	run -0 verdict ".todos = [] | $(seen planner 40)" planner
	assert_output "true 4 no pending todos; unchanged for 1000 ms since its run in cycle 12, a periodic check"
	echo 'detect.unchanged_interval = 1000' >"$HOME/.config/orch/config"
	run -0 verdict ".todos = [] | $(seen planner 40)" planner
	assert_output "false 0 no pending todos, but nothing changed since its run in cycle 12"
}

@test "next_check_at: when a clock could next give work, null when only a change can" {
	# base.json: planned and reviewed 1000 ms ago; the reviewer's 180000
	# ms come first.
	run -0 bash -c "jq -c '$(seen builder 1)' '$F/base.json' | orch-detect --now $NOW - | jq .next_check_at"
	assert_output "$((NOW - 1000 + 180001))"
	# Both seen the stack as it is: only a change can.
	run -0 bash -c "jq -c '$(seen planner 40) | $(seen reviewer 40)' '$F/base.json' | orch-detect --now $NOW - | jq .next_check_at"
	assert_output "null"
	# ... unless detect.unchanged_interval says when.
	mkdir -p "$HOME/.config/orch"
	echo 'detect.unchanged_interval = 86400000' >"$HOME/.config/orch/config"
	run -0 bash -c "jq -c '$(seen planner 40) | $(seen reviewer 40)' '$F/base.json' | orch-detect --now $NOW - | jq .next_check_at"
	assert_output "$((NOW - 1000 + 86400001))"
}

@test "seen: a bad last_runs or content_version is 65, naming it" {
	check() {
		run -65 --separate-stderr bash -c "jq -c '$1' '$F/base.json' | orch-detect --now $NOW -"
		assert_equal "$stderr" "orch-detect: line 1: $2"
	}
	check '.content_version = -1' "'content_version' must be a non-negative integer"
	check '.last_runs = []' "'last_runs' must be an object"
	check '.last_runs.planner = 3' "'last_runs.planner' must be an object or null"
	check '.last_runs.planner = {seen_version: -2}' "'last_runs.planner.seen_version' must be an integer from -1"
	check '.last_runs.reviewer = {seen_version: 1, cycle: 0}' "'last_runs.reviewer.cycle' must be a positive integer or null"
	check '.user_messages = [{content: "x", processed: 1}]' "'user_messages[0].processed' must be true or false"
	check '.user_messages = [{content: "x", created_at: -5}]' "'user_messages[0].created_at' must be a non-negative integer"
}

@test "planner: in a phase the plan is done (detect.done_phases), no pending todos is no work" {
	run -0 verdict '.todos = [] | .stack.phase = "done"' planner
	assert_output "false 0 no pending todos, and the plan is done"
	# Requests and recommendations still reach it.
	run -0 verdict ".todos = [] | .stack.phase = \"done\" | .user_messages = [$(umsg "add a dark mode")]" planner
	assert_output "true 7 1 strategic user message since the last planning"
	run -0 verdict '.todos = [] | .stack.phase = "done" | .memory.planner.reviewer_recommendations = ["x"]' planner
	assert_output "true 8 1 reviewer recommendation"
	# The phases come from the file; empty: none.
	mkdir -p "$HOME/.config/orch"
	echo 'detect.done_phases = finished, shipped' >"$HOME/.config/orch/config"
	run -0 verdict '.todos = [] | .stack.phase = "done"' planner
	assert_output "true 9 no pending todos"
	run -0 verdict '.todos = [] | .stack.phase = "shipped"' planner
	assert_output "false 0 no pending todos, and the plan is done"
	echo 'detect.done_phases =' >"$HOME/.config/orch/config"
	run -0 verdict '.todos = [] | .stack.phase = "done"' planner
	assert_output "true 9 no pending todos"
}

@test "planner: a strategic message answered before the planner ran still counts; one it planned does not" {
	run -0 verdict ".user_messages = [$(umsg "add a dark mode") + {processed: true, response: \"ok\"}]" planner
	assert_output "true 7 1 strategic user message since the last planning"
	run -0 verdict ".user_messages = [$(umsg "add a dark mode") + {created_at: $((NOW - 2000))}]" planner
	assert_output "false 0 nothing to plan"
	# The communicator still has the unanswered one.
	run -0 verdict ".user_messages = [$(umsg "add a dark mode") + {created_at: $((NOW - 2000))}]" communicator
	assert_output "true 10 1 unprocessed user message"
}

@test "depends_on: builder on planner only when both have work" {
	run -0 deps '.todos[0].priority = 3' builder
	assert_output '[]'
	run -0 deps ".todos[0].priority = 3 | .user_messages = [$(umsg "add x")]" builder
	assert_output '["planner"]'
}

@test "depends_on: reviewer on builder only when both have work" {
	run -0 deps "$OLD_WORK | .memory.reviewer.last_review_time = 0" reviewer
	assert_output '["builder"]'
	run -0 deps "$OLD_WORK | .memory.reviewer.last_review_time = 0 | .todos = []" reviewer
	assert_output '[]'
	run -0 deps '.todos = []' reviewer
	assert_output '[]'
}

@test "depends_on: the planner and communicator never depend" {
	local f=".user_messages = [$(umsg "add x")] | .memory.reviewer.last_review_time = 0"
	run -0 deps "$f" planner
	assert_output '[]'
	run -0 deps "$f" communicator
	assert_output '[]'
}

# --- bad input ---

# bad_input STDIN MESSAGE: orch-detect - exits 65 with MESSAGE.
bad_input() {
	run -65 --separate-stderr orch-detect --now "$NOW" - <<<"$1"
	assert_equal "$stderr" "orch-detect: $2"
}

@test "bad input: not JSON" {
	bad_input 'hello' "line 1: expected a JSON object"
	bad_input '{"type": "orch.snapshot",' "line 1: unexpected end of input inside a document"
	bad_input '[1, 2]' "line 1: expected a JSON object"
}

@test "bad input: the line number of the bad document, after good output" {
	run -65 --separate-stderr bash -c "{ cat '$F/base.json'; echo '{\"type\": oops}'; } | orch-detect --now $NOW -"
	assert_equal "$stderr" "orch-detect: line 10: invalid token near 'oops'"
	assert_equal "$(jq -r .stack.name <<<"$output")" "alpha"
}

@test "bad input: a valid JSON document of another type or version" {
	bad_input '{"type": "orch.graph", "version": 1}' "line 1: expected an orch.snapshot document, got 'orch.graph'"
	bad_input '{"version": 1}' "line 1: expected an orch.snapshot document, got no 'type'"
	bad_input "$(snap '.version = 2')" "line 1: unsupported orch.snapshot version 2"
	bad_input "$(snap '.version = "1"')" "line 1: orch.snapshot document has no integer 'version'"
}

@test "bad input: a missing member is named" {
	bad_input "$(snap 'del(.stack)')" "line 1: 'stack' must be an object"
	bad_input "$(snap 'del(.stack.created_at)')" "line 1: 'stack.created_at' must be a non-negative integer"
	bad_input "$(snap 'del(.stack.name)')" "line 1: 'stack.name' must be a string"
	bad_input "$(snap 'del(.project)')" "line 1: 'project' must be an object or null"
	bad_input "$(snap 'del(.artifact)')" "line 1: 'artifact' must be an object or null"
	bad_input "$(snap 'del(.todos)')" "line 1: 'todos' must be an array"
	bad_input "$(snap 'del(.todos[0].status)')" "line 1: 'todos[0].status' must be a string"
	bad_input "$(snap 'del(.user_messages)')" "line 1: 'user_messages' must be an array"
	bad_input "$(snap 'del(.messages)')" "line 1: 'messages' must be an array"
	bad_input "$(snap 'del(.memory)')" "line 1: 'memory' must be an object"
	bad_input "$(snap 'del(.memory.planner)')" "line 1: 'memory.planner' must be an object"
	bad_input "$(snap 'del(.memory.reviewer)')" "line 1: 'memory.reviewer' must be an object"
}

@test "bad input: a member of the wrong type is named" {
	bad_input "$(snap '.stack.id = "1"')" "line 1: 'stack.id' must be a positive integer"
	bad_input "$(snap '.stack.created_at = -1')" "line 1: 'stack.created_at' must be a non-negative integer"
	bad_input "$(snap '.project = "an idea"')" "line 1: 'project' must be an object or null"
	bad_input "$(snap '.todos = [.todos[0], 3]')" "line 1: 'todos[1]' must be an object"
	bad_input "$(snap '.todos += [.todos[0] | .priority = "high"]')" "line 1: 'todos[1].priority' must be an integer"
	bad_input "$(snap '.todos[0].priority = 2.5')" "line 1: 'todos[0].priority' must be an integer"
	bad_input "$(snap '.todos[0].completed_at = "yesterday"')" \
		"line 1: 'todos[0].completed_at' must be a non-negative integer or null"
	bad_input "$(snap '.user_messages = [{"content": 5}]')" "line 1: 'user_messages[0].content' must be a string"
	bad_input "$(snap '.artifact = {"version": 1}')" "line 1: 'artifact.created_at' must be a non-negative integer"
	bad_input "$(snap '.memory.planner.reviewer_recommendations = "x"')" \
		"line 1: 'memory.planner.reviewer_recommendations' must be an array"
	bad_input "$(snap '.memory.planner.last_planning_time = "now"')" \
		"line 1: 'memory.planner.last_planning_time' must be a non-negative integer"
	bad_input "$(snap '.memory.reviewer.last_review_time = true')" \
		"line 1: 'memory.reviewer.last_review_time' must be a non-negative integer"
}

@test "bad input: the second document's line, pretty-printed input" {
	run -65 --separate-stderr bash -c "{ jq . '$F/base.json'; jq 'del(.todos)' '$F/base.json'; } | orch-detect --now $NOW -"
	local first
	first=$(jq . "$F/base.json" | wc -l)
	assert_equal "$stderr" "orch-detect: line $((first + 1)): 'todos' must be an array"
}

# --- usage ---

# usage_error MESSAGE ARGS...: exits 64 with MESSAGE, the usage, the hint.
usage_error() {
	local msg=$1
	shift
	run -64 --separate-stderr orch-detect "$@"
	assert_equal "$output" ""
	assert_equal "${stderr_lines[0]}" "orch-detect: $msg"
	assert_equal "${stderr_lines[1]}" "$(orch-detect --help | head -n 1)"
	assert_equal "${stderr_lines[2]}" "Try 'orch-detect --help' for more information."
}

@test "usage: no source" {
	usage_error "no stacks given: use --stack, --all or '-'"
	usage_error "no stacks given: use --stack, --all or '-'" --now 5 --pretty
}

@test "usage: sources that do not mix" {
	usage_error "'-' cannot be mixed with --stack or --all" --stack alpha -
	usage_error "'-' cannot be mixed with --stack or --all" - --all
	usage_error "--stack and --all cannot be used together" --stack alpha --all
	usage_error "--force needs --all" --force --stack alpha
	usage_error "--cache-ttl and --no-cache cannot be used together" --all --cache-ttl 5 --no-cache
	usage_error "--cache-ttl and --no-cache cannot be used together" --all --no-cache --cache-ttl 5
}

@test "usage: bad flag values and arguments" {
	usage_error "--now: 'soon' is not a whole number from 0 to 9223372036854775807" --now soon -
	usage_error "--now: '-1' is not a whole number from 0 to 9223372036854775807" --now -1 -
	usage_error "--now: '' is not a whole number from 0 to 9223372036854775807" --now '' -
	usage_error "--cache-ttl: '5s' is not a whole number from 0 to 9223372036854775807" --all --cache-ttl 5s
	usage_error "option '--stack' needs a value" --stack
	usage_error "unexpected argument 'alpha'" alpha
	usage_error "unexpected argument '-'" - -
	usage_error "unknown option '--bogus'" --bogus -
}

# --- the database ---

# stack NAME STATE NEXT_RUN_AT: a stack with a project and a pending todo.
stack() {
	sql "INSERT INTO stacks (name, execution_state, created_at, next_run_at)
	     VALUES ('$1', '$2', 1000000, $3);
	     INSERT INTO projects SELECT id, '$1', 'idea', 1, 1 FROM stacks WHERE name = '$1';
	     INSERT INTO todos (stack_id, content, priority, created_at)
	     SELECT id, 'todo', 3, 1 FROM stacks WHERE name = '$1';"
}

@test "database: none there" {
	run -66 --separate-stderr orch-detect --all
	assert_equal "$stderr" "orch-detect: no database at '$ORCH_DB' (run 'orch-stack init')"
	run -66 --separate-stderr orch-detect --db "$BATS_TEST_TMPDIR/nope.db" --stack a
	assert_equal "$stderr" "orch-detect: no database at '$BATS_TEST_TMPDIR/nope.db' (run 'orch-stack init')"
	[ ! -e "$BATS_TEST_TMPDIR/nope.db" ]
}

@test "database: --stack by name and by id, once each, in the order named" {
	orch-stack init
	stack alpha running 0
	stack beta paused 0
	stack 1 idle 0
	run -0 --separate-stderr bash -c "orch-detect --stack beta --stack 2 --stack alpha --stack 1 --stack alpha | jq -r .stack.name"
	assert_output $'beta\nalpha\n1'
	# "1" names stack 3, not id 1; id 1 is still reachable by name
	run -0 bash -c "orch-detect --stack 1 | jq -r '[.stack.id, .stack.name, .stack.execution_state] | join(\" \")'"
	assert_output "3 1 idle"
}

@test "database: an unknown stack exits 66 before printing anything" {
	orch-stack init
	stack alpha running 0
	run -66 --separate-stderr orch-detect --stack alpha --stack nope
	assert_equal "$stderr" "orch-detect: no stack 'nope'"
	assert_output ""
	run -66 --separate-stderr orch-detect --stack 99
	assert_equal "$stderr" "orch-detect: no stack '99'"
}

@test "database: --all takes running stacks whose next_run_at has come, by id" {
	orch-stack init
	stack later running 2001
	stack due running 2000
	stack idle idle 0
	stack paused paused 0
	stack stopped stopped 0
	stack early running 0
	run -0 bash -c "orch-detect --all --now 2000 | jq -r .stack.name"
	assert_output $'due\nearly'
	run -0 bash -c "orch-detect --all --now 2001 | jq -r .stack.name"
	assert_output $'later\ndue\nearly'
}

@test "database: --all --force takes every running stack" {
	orch-stack init
	stack later running 99999999
	stack idle idle 0
	stack early running 0
	run -0 bash -c "orch-detect --all --force --now 2000 | jq -r .stack.name"
	assert_output $'later\nearly'
}

@test "database: no due stack prints nothing and succeeds" {
	orch-stack init
	stack idle idle 0
	run -0 --separate-stderr orch-detect --all
	assert_output ""
	assert_equal "$stderr" ""
}

# --- --explain: why nothing ran ---

# explain_world: the stacks of the --explain tests, at $NOW: paused,
# stopped, never started, due in 12 s, in backoff, one due whose four
# agents have no work, and a paused one whose name holds an escape
# sequence.
explain_world() {
	orch-stack init
	stack paused paused 0
	stack stopped stopped 0
	stack new idle 0
	stack later running $((NOW + 12000))
	stack failing running $((NOW + 90000))
	stack done running 0
	sql "UPDATE stacks SET consecutive_failures = 3 WHERE name = 'failing';
	     UPDATE stacks SET name = 'evil' || char(27) || '[2J' || char(7) WHERE name = 'paused';
	     DELETE FROM todos WHERE stack_id = 6;
	     INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version)
	       SELECT id, 'planner', 12, 1000, 1000, content_version FROM stacks WHERE id = 6;"
}

@test "--explain: why each stack --all left out was, and why each agent has no work" {
	explain_world
	run -0 --separate-stderr orch-detect --all --explain --now "$NOW" --no-cache
	assert_equal "$(jq -r .stack.name <<<"$output")" "done"
	assert_equal "$stderr" "$(cat <<-'EOF2'
	orch-detect: explain: evil [2J : not running (paused)
	orch-detect: explain: stopped: not running (stopped)
	orch-detect: explain: new: not running (idle: never started)
	orch-detect: explain: later: due at 2023-11-14 22:18:32 UTC, in 12s
	orch-detect: explain: failing: due at 2023-11-14 22:19:50 UTC, in 1m, in failure backoff after 3 failed cycles in a row
	orch-detect: explain: done: planner: no work: no pending todos, but nothing changed since its run in cycle 12
	orch-detect: explain: done: builder: no work: no pending todos
	orch-detect: explain: done: communicator: no work: no messages
	orch-detect: explain: done: reviewer: no work: nothing to review
	EOF2
	)"
	# Nothing of the name reaches the terminal as it is.
	[[ $stderr != *$'\e'* && $stderr != *$'\a'* ]]
	# Standard output is the same document with and without it.
	local with=$output
	run -0 --separate-stderr orch-detect --all --now "$NOW" --no-cache
	assert_equal "$stderr" ""
	assert_equal "$output" "$with"
}

@test "--explain: with --force only the stacks not running; with --stack and '-' the agents" {
	explain_world
	sql "UPDATE stacks SET consecutive_failures = 1 WHERE name = 'later'"
	run -0 --separate-stderr orch-detect --all --force --explain --now "$NOW" --no-cache
	assert_equal "$(jq -r .stack.name <<<"$output" | tr '\n' ' ')" "later failing done "
	assert_equal "$(grep -c ': not running (' <<<"$stderr")" 3
	assert_equal "$(grep -v ': not running (' <<<"$stderr" | grep -vc ': no work: ')" 0
	# A failure streak of one, said in the singular.
	run -0 --separate-stderr orch-detect --all --explain --now "$NOW" --no-cache
	assert_equal "${stderr_lines[3]}" \
		"orch-detect: explain: later: due at 2023-11-14 22:18:32 UTC, in 12s, in failure backoff after 1 failed cycle"
	# Every named stack is printed: only its agents are explained.
	run -0 --separate-stderr orch-detect --stack 1 --stack later --explain --now "$NOW" --no-cache
	assert_equal "$stderr" "$(cat <<-'EOF2'
	orch-detect: explain: evil [2J : communicator: no work: no messages
	orch-detect: explain: evil [2J : reviewer: no work: nothing to review
	orch-detect: explain: later: communicator: no work: no messages
	orch-detect: explain: later: reviewer: no work: nothing to review
	EOF2
	)"
	run -0 --separate-stderr bash -c "orch-detect --explain --now $NOW - <'$F/base.json'"
	assert_equal "${#stderr_lines[@]}" 3
	assert_equal "${stderr_lines[1]}" "orch-detect: explain: alpha: communicator: no work: no messages"
}

@test "--explain --follow: each left-out stack once per change, a stack in flight included" {
	orch-stack init
	stack paused paused 0
	stack alpha running 0
	orch-detect --all --follow --explain >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	PIPE_PID=$!
	local i
	for i in $(seq 200); do grep -q 'handed on' "$BATS_TEST_TMPDIR/err" && break; sleep 0.05; done
	# A write that changes nothing either explains: no line again.
	sql "UPDATE stacks SET phase = 'x' WHERE name = 'paused'"
	sleep 0.3
	assert_equal "$(grep -v ': no work: ' "$BATS_TEST_TMPDIR/err")" "$(cat <<-'EOF2'
	orch-detect: explain: paused: not running (paused)
	orch-detect: explain: alpha: handed on, waiting for orch-decide to record its cycle
	EOF2
	)"
	# Decided, with a pause of an hour: said once more, with its time.
	local next=$(( $(date +%s%3N) + 3600000 ))
	sql "UPDATE stacks SET total_cycles = total_cycles + 1, next_run_at = $next WHERE name = 'alpha'"
	for i in $(seq 200); do grep -q 'due at' "$BATS_TEST_TMPDIR/err" && break; sleep 0.05; done
	sleep 0.3
	assert_equal "$(grep -v ': no work: ' "$BATS_TEST_TMPDIR/err" | tail -n 1)" \
		"orch-detect: explain: alpha: due at $(date -u -d @$((next / 1000)) '+%F %T') UTC, in 59m"
	assert_equal "$(grep -c 'due at' "$BATS_TEST_TMPDIR/err")" 1
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/out")" 1
	kill "$PIPE_PID"
	wait "$PIPE_PID" || true
	PIPE_PID=
}

@test "database: the status reflects the stored state" {
	orch-stack init
	stack alpha running 0
	stack beta running 0
	sql "INSERT INTO user_messages (stack_id, sender, content, created_at) VALUES (1, 'user', 'add a dark mode', 5);
	     INSERT INTO user_messages (stack_id, sender, content, created_at, processed) VALUES (1, 'user', 'old', 5, 1);
	     INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (2, NULL, 'hello all', 6);
	     INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, 2, 'to beta', 6);
	     INSERT INTO artifacts (stack_id, version, type, content, created_at) VALUES (1, 1, 'html', 'x', 1999000);
	     INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version) VALUES
	       (1, 'planner', 1, 4, 4, -1), (1, 'reviewer', 1, 1998000, 1998000, -1);"
	run -0 bash -c "orch-detect --stack alpha --now 2000000 --no-cache |
		jq -r '.agents | to_entries[] | \"\(.key) \(.value.priority) \(.value.reason) \(.value.depends_on)\"'"
	assert_output - <<-'EOF'
	planner 7 1 strategic user message since the last planning []
	builder 8 1 pending todo (1 high priority) ["planner"]
	communicator 10 1 unprocessed user message []
	reviewer 6 a new artifact since the last review ["builder"]
	EOF
}

@test "database: the set-based --all and the snapshot of each stack agree, what agents saw included" {
	orch-stack init
	local i
	for i in 1 2 3 4 5 6; do stack "s$i" running 0; done
	sql "UPDATE todos SET status = 'completed', completed_at = 1500000 WHERE stack_id IN (2, 3, 4);
	     INSERT INTO user_messages (stack_id, sender, content, created_at, processed, response)
	       VALUES (3, 'user', 'add a dark mode', 1600000, 1, 'ok'), (4, 'user', 'add a dark mode', 900, 1, 'ok'),
	              (5, 'user', 'hello', 1700000, 0, NULL);
	     INSERT INTO artifacts (stack_id, version, type, content, created_at) VALUES (6, 1, 'html', 'x', 1999000);
	     INSERT INTO memory (stack_id, agent, data, updated_at) VALUES (6, 'planner', '{\"reviewer_recommendations\":[\"a\"]}', 1);"
	# s2 and s4: the planner and the reviewer saw them as they are; s3: a
	# request came after its planning; s6: saw an older version.
	sql "INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version)
	       SELECT id, 'planner', 3, 1000, 1000, content_version FROM stacks WHERE id IN (2, 4);
	     INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version)
	       SELECT id, 'planner', 3, 1000, 1000, content_version - 1 FROM stacks WHERE id = 3;
	     INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version)
	       SELECT id, 'reviewer', 4, 1000, 1000, content_version FROM stacks WHERE id IN (2, 4);
	     INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version)
	       SELECT id, 'planner', 5, 1000, 1000, content_version - 1 FROM stacks WHERE id = 6;"
	local all one
	all=$(orch-detect --all --force --now 2000000 --no-cache | jq -c 'del(.cached)')
	one=$(for i in 1 2 3 4 5 6; do orch-stack show --json "s$i" | orch-detect --now 2000000 -; done |
		jq -c 'del(.cached)')
	assert_equal "$all" "$one"
	# And the per-stack path from the store, once more.
	one=$(orch-detect --now 2000000 --no-cache --stack s1 --stack s2 --stack s3 --stack s4 --stack s5 --stack s6 |
		jq -c 'del(.cached)')
	assert_equal "$all" "$one"
	# What they say, which the three paths agree on.
	assert_equal "$(jq -r '.agents.planner.reason' <<<"$all" | tr '\n' '|')" \
		"never planned, stack created 1000000 ms ago|no pending todos, but nothing changed since its run in cycle 3|no pending todos|no pending todos, but nothing changed since its run in cycle 3|never planned, stack created 1000000 ms ago|1 reviewer recommendation|"
}

@test "database: a stored state the rules cannot read is that stack's error status, said on stderr" {
	skip_unless_sqlite "a PostgreSQL column holds only its own type"
	orch-stack init
	stack alpha running 0
	stack beta running 0
	sql "UPDATE todos SET completed_at = 'yesterday' WHERE stack_id = 2"
	run -0 --separate-stderr orch-detect --all
	assert_equal "$stderr" "orch-detect: stack 2 (beta): 'todos[0].completed_at' must be a non-negative integer or null"
	assert_equal "$(jq -c '[.stack.name, .error, ([.agents[] | .has_work] | any)]' <<<"$output")" \
		"$(printf '%s\n' '["alpha",null,true]' \
			'["beta","'"'"'todos[0].completed_at'"'"' must be a non-negative integer or null",false]')"
	sql "UPDATE todos SET completed_at = NULL;
	     INSERT INTO memory (stack_id, agent, data, updated_at) VALUES (2, 'planner', 'nope', 1)"
	run -0 --separate-stderr orch-detect --stack beta
	assert_equal "$stderr" "orch-detect: stack 2 (beta): memory of agent 'planner' is not a JSON object"
	assert_equal "$(jq -r .agents.planner.reason <<<"$output")" "the stack's state cannot be read"
}

# --- the cache ---

# detect_at NOW [FLAGS...]: "cached computed_at" of stack alpha.
detect_at() {
	local now=$1
	shift
	set -o pipefail
	orch-detect --stack alpha --now "$now" "$@" | jq -r '"\(.cached) \(.computed_at)"'
}

@test "cache: served within the ttl with its own computed_at, not at or after it" {
	orch-stack init
	stack alpha running 0
	run -0 detect_at 2000000
	assert_output "false 2000000"
	run -0 detect_at 2004999
	assert_output "true 2000000"
	run -0 detect_at 2005000
	assert_output "false 2005000"
}

@test "cache: a served status is the computed one but for 'cached'" {
	orch-stack init
	stack alpha running 0
	first=$(orch-detect --stack alpha --now 2000000)
	second=$(orch-detect --stack alpha --now 2000001)
	assert_equal "$(jq -c '.cached = true' <<<"$first")" "$second"
}

@test "cache: --cache-ttl sets the time to live; 0 never serves" {
	orch-stack init
	stack alpha running 0
	detect_at 2000000 >/dev/null
	run -0 detect_at 2000099 --cache-ttl 100
	assert_output "true 2000000"
	run -0 detect_at 2000100 --cache-ttl 100
	assert_output "false 2000100"
	run -0 detect_at 2000100 --cache-ttl 0
	assert_output "false 2000100"
}

@test "cache: --all uses it too" {
	orch-stack init
	stack alpha running 0
	stack beta running 0
	orch-detect --all --now 2000000 >/dev/null
	sql "INSERT INTO todos (stack_id, content, created_at) VALUES (2, 'more', 1)"
	run -0 bash -c "orch-detect --all --now 2000001 | jq -r '\"\(.stack.name) \(.cached)\"'"
	assert_output $'alpha true\nbeta false'
}

@test "cache: any change detection reads is never served stale" {
	orch-stack init
	stack alpha running 0
	stack beta running 0
	local change t=2000000
	for change in \
		"INSERT INTO todos (stack_id, content, created_at) VALUES (1, 'new', 1)" \
		"UPDATE todos SET status = 'completed', completed_at = 5 WHERE stack_id = 1" \
		"DELETE FROM todos WHERE stack_id = 1" \
		"UPDATE projects SET description = 'other' WHERE stack_id = 1" \
		"INSERT INTO user_messages (stack_id, sender, content, created_at) VALUES (1, 'user', 'hi', 1)" \
		"UPDATE user_messages SET processed = 1" \
		"INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (2, 1, 'hi', 1)" \
		"INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (2, NULL, 'all', 1)" \
		"INSERT INTO message_reads (message_id, stack_id, read_at) VALUES (1, 1, 1)" \
		"INSERT INTO artifacts (stack_id, version, type, content, created_at) VALUES (1, 1, 'html', 'x', 1)" \
		"INSERT INTO memory (stack_id, agent, data, updated_at) VALUES (1, 'reviewer', '{}', 1)" \
		"UPDATE memory SET data = '{\"last_review_time\": 2000000}'" \
		"UPDATE stacks SET phase = 'building' WHERE id = 1" \
		"UPDATE stacks SET execution_state = 'paused' WHERE id = 1"; do
		detect_at $((t++)) >/dev/null
		run -0 detect_at $((t++))
		assert_equal "$output" "true $((t - 2))"
		sql "$change"
		run -0 detect_at $t
		[[ $output == "false $t" ]] || fail "served stale after: $change"
	done
}

@test "cache: a change to another stack keeps this one's entry" {
	orch-stack init
	stack alpha running 0
	stack beta running 0
	detect_at 2000000 >/dev/null
	sql "INSERT INTO todos (stack_id, content, created_at) VALUES (2, 'more', 1);
	     INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, NULL, 'from alpha', 1)"
	run -0 detect_at 2000001
	assert_output "true 2000000"
}

@test "cache: --no-cache neither reads nor writes it" {
	orch-stack init
	stack alpha running 0
	run -0 detect_at 2000000 --no-cache
	assert_output "false 2000000"
	assert_equal "$(sql 'SELECT count(*) FROM detect_cache')" "0"
	detect_at 2000000 >/dev/null
	run -0 detect_at 2000001 --no-cache
	assert_output "false 2000001"
	assert_equal "$(sql 'SELECT computed_at FROM detect_cache')" "2000000"
}

@test "cache: the entry is filed under the state it was computed from" {
	orch-stack init
	stack alpha running 0
	detect_at 2000000 >/dev/null
	assert_equal "$(sql 'SELECT d.state_version = s.state_version FROM detect_cache d JOIN stacks s ON s.id = d.stack_id')" "1"
	assert_equal "$(sql "SELECT CASE WHEN json_type(status, '\$.cached') = 'false' THEN 0 ELSE 1 END FROM detect_cache")" "0"
}

@test "cache: a status computed after the clock is not served" {
	orch-stack init
	stack alpha running 0
	detect_at 2000000 >/dev/null
	run -0 detect_at 1999999
	assert_output "false 1999999"
}

@test "cache: an unreadable entry is recomputed, not an error" {
	orch-stack init
	stack alpha running 0
	detect_at 2000000 >/dev/null
	sql "UPDATE detect_cache SET status = 'garbage'"
	run -0 detect_at 2000001
	assert_output "false 2000001"
	run -0 detect_at 2000002
	assert_output "true 2000001"
}

# --- the manual ---

@test "man page: the strategic-message example gives what it shows" {
	run -0 bash -c "jq -c '.user_messages += [{\"id\":0,\"sender\":\"user\",
	         \"content\":\"add a timer\",\"created_at\":1800000000000}]
	         | .content_version += 1' '$F/base.json' |
	  orch-detect - | jq .agents.planner"
	local shown
	shown=$(mandoc -T utf8 "$ORCH_ROOT/man/orch-detect.1" | sed 's/.\x08//g' |
		awk '/"has_work": true/{p=1; print "{"} p{print} p && /^ *}$/{exit}' | sed 's/^           //')
	assert_equal "$output" "$shown"
}

@test "man page: lists every rule's priority and threshold" {
	local page
	page=$(mandoc -T utf8 "$ORCH_ROOT/man/orch-detect.1" | sed 's/.\x08//g')
	[[ $page == *"300000 ms"* && $page == *"180000 ms"* && $page == *"100 characters"* ]]
	[[ $page == *"default 5000 ms"* ]]
}

# --- the configuration file (detect.* and priority.* keys) ---

# conf LINE...: the lines as the default configuration file.
conf() {
	mkdir -p "$HOME/.config/orch"
	printf '%s\n' "$@" >"$HOME/.config/orch/config"
}

@test "config: priorities come from the file, rule by rule" {
	conf 'priority.builder.normal = 2' 'priority.communicator.user_message = 5'
	run -0 verdict '.' builder
	assert_output "true 2 1 pending todo"
	run -0 verdict ".user_messages = [$(umsg "hi")]" communicator
	assert_output "true 5 1 unprocessed user message"
	# A key the file does not set keeps its default.
	run -0 verdict '.todos[0].priority = 5' builder
	assert_output "true 8 1 pending todo (1 high priority)"
}

@test "config: thresholds come from the file" {
	conf 'detect.planning_interval = 500' 'detect.review_interval = 999' \
		'detect.high_priority = 2' 'detect.strategic_length = 3' 'detect.review_min_completed = 1'
	# base.json was planned and reviewed 1000 ms before NOW.
	run -0 verdict '.' planner
	assert_output "true 4 last planned 1000 ms ago"
	run -0 verdict "$OLD_WORK" reviewer
	assert_output "true 4 last reviewed 1000 ms ago"
	run -0 verdict '.' builder
	assert_output "true 8 1 pending todo (1 high priority)"
	run -0 verdict ".user_messages = [$(umsg "four")]" planner
	assert_output "true 7 1 strategic user message since the last planning"
}

@test "config: strategic keywords are a comma-separated list, or none" {
	conf 'detect.strategic_keywords = Rewrite, dark mode'
	run -0 verdict ".user_messages = [$(umsg "please REWRITE it")]" planner
	assert_output "true 7 1 strategic user message since the last planning"
	run -0 verdict ".user_messages = [$(umsg "go DARK MODE")]" planner
	assert_output "true 7 1 strategic user message since the last planning"
	run -0 verdict ".user_messages = [$(umsg "add a feature")]" planner
	assert_output "false 0 nothing to plan"
	conf 'detect.strategic_keywords ='
	run -0 verdict ".user_messages = [$(umsg "add a feature")]" planner
	assert_output "false 0 nothing to plan"
}

@test "config: --config FILE instead of the default file, which must exist" {
	conf 'priority.builder.normal = 2'
	echo 'priority.builder.normal = 3' >"$BATS_TEST_TMPDIR/c"
	run -0 bash -c "jq -c . '$F/base.json' | orch-detect --config '$BATS_TEST_TMPDIR/c' --now $NOW - | jq .agents.builder.priority"
	assert_output "3"
	run -66 --separate-stderr orch-detect --config "$BATS_TEST_TMPDIR/none" - </dev/null
	assert_equal "$stderr" "orch-detect: cannot open configuration file '$BATS_TEST_TMPDIR/none': No such file or directory"
}

@test "config: a value out of range or an empty keyword exits 65, naming key and line" {
	local f=$HOME/.config/orch/config
	conf '# rules' 'priority.planner.no_todos = 11'
	run -65 --separate-stderr orch-detect --now "$NOW" - <"$F/base.json"
	assert_equal "$stderr" "orch-detect: priority.planner.no_todos = '11' ($f:2): expected a whole number from 1 to 10"
	assert_equal "$output" ""
	conf 'detect.high_priority = 0'
	run -65 --separate-stderr orch-detect --now "$NOW" - <"$F/base.json"
	assert_equal "$stderr" "orch-detect: detect.high_priority = '0' ($f:1): expected a whole number from 1 to 5"
	conf 'detect.strategic_keywords = add, , feature'
	run -65 --separate-stderr orch-detect --now "$NOW" - <"$F/base.json"
	assert_equal "$stderr" "orch-detect: detect.strategic_keywords ($f:1): item 2 of the list is empty"
	conf 'detect.strategic_keywords = add,'
	run -65 --separate-stderr orch-detect --now "$NOW" - <"$F/base.json"
	assert_equal "$stderr" "orch-detect: detect.strategic_keywords ($f:1): item 2 of the list is empty"
}

@test "cache: a status computed under other rules is not served" {
	orch-stack init
	stack alpha running 0
	run -0 detect_at 2000000
	assert_output "false 2000000"
	run -0 detect_at 2000001
	assert_output "true 2000000"
	# New rules: the entry of the old ones is not served, and the status
	# shows the new priority.
	conf 'priority.builder.high = 5'
	run -0 bash -c "orch-detect --stack alpha --now 2000002 | jq -r '\"\(.cached) \(.agents.builder.priority)\"'"
	assert_output "false 5"
	run -0 bash -c "orch-detect --stack alpha --now 2000003 | jq -r '\"\(.cached) \(.agents.builder.priority)\"'"
	assert_output "true 5"
	# Back to the defaults: recomputed again, for --all as well.
	rm "$HOME/.config/orch/config"
	run -0 bash -c "orch-detect --all --now 2000004 | jq -r '\"\(.cached) \(.agents.builder.priority)\"'"
	assert_output "false 8"
	run -0 bash -c "orch-detect --all --now 2000005 | jq -r '\"\(.cached) \(.agents.builder.priority)\"'"
	assert_output "true 8"
}
