#!/usr/bin/env bats
# orch-stack report: one self-contained HTML page, checked in a real
# headless Chromium (tests/browser.py, over the DevTools protocol) for what
# a person would see, and for what a hostile agent cannot do to it.

load test_helper

setup() {
	orch_test_env
	command -v chromium >/dev/null || skip "chromium is not installed (make deps installs it)"
	orch-stack init
}

# look FILE [SELECTOR...]: what Chromium shows of FILE, as browser.py's JSON.
look() {
	local file=$1 sel args=()
	shift
	for sel in "$@"; do
		args+=(--count "$sel")
	done
	python3 "$BATS_TEST_DIRNAME/browser.py" "$file" "${args[@]}" \
		--screenshot "$BATS_TEST_TMPDIR/page.png"
}

@test "report: a real demo stack's page shows its artifact in the frame, each message, a lane per agent" {
	orch-stack create alpha --idea "a pomodoro timer web app"
	orch-stack todo add alpha "build the timer" --priority 4
	orch-stack say alpha "please add a dark mode" --from ann
	orch-stack say alpha "and a sound when it rings"
	orch-stack start alpha
	local i
	for i in 1 2 3; do
		run_cycle
	done
	run -0 --separate-stderr orch-stack report alpha -o "$BATS_TEST_TMPDIR/alpha.html"
	assert_equal "$output$stderr" ""
	# Self-contained: nothing to fetch, no script of its own.
	run -1 grep -Eo '(src|href)="(https?:)?//' "$BATS_TEST_TMPDIR/alpha.html"
	run -0 look "$BATS_TEST_TMPDIR/alpha.html" tr.message tr.version "g.lane" \
		"g.lane rect.attempt" ".column li.todo" "#graph svg g.node" "tr.usage"
	local page=$output
	assert_equal "$(jq -r .title <<<"$page")" "orch: alpha"
	assert_equal "$(jq -r .scripts <<<"$page")" "0"
	assert_equal "$(jq -r .pwned <<<"$page")" "false"
	# The latest artifact, rendered, in its frame.
	assert_equal "$(jq -r '.frames | length' <<<"$page")" "1"
	assert_equal "$(jq -r '.frames[0].text' <<<"$page" | head -n 1)" "alpha"
	jq -r '.frames[0].text' <<<"$page" | grep -qx "done: build the timer" ||
		fail "the frame shows: $(jq -r '.frames[0].text' <<<"$page")"
	# Beside it, a row per version.
	assert_equal "$(jq -r '.counts["tr.version"]' <<<"$page")" "$(sql "SELECT count(*) FROM artifacts")"
	# One row per user message, with its reply.
	assert_equal "$(jq -r '.counts["tr.message"]' <<<"$page")" "2"
	local text
	text=$(jq -r .text <<<"$page")
	[[ $text == *'please add a dark mode	Thanks, ann! Noted: "please add a dark mode".'* ]] || fail "$text"
	# A lane per agent, named, with the attempts in them.
	assert_equal "$(jq -r '.counts["g.lane"]' <<<"$page")" "4"
	assert_equal "$(jq -r '.counts["g.lane rect.attempt"]' <<<"$page")" "$(sql "SELECT count(*) FROM traces")"
	[[ $text == *$'planner\nbuilder\ncommunicator\nreviewer'* ]] || fail "no lane names in: $text"
	# The todo board, the tokens, the last graph, the state.
	assert_equal "$(jq -r '.counts[".column li.todo"]' <<<"$page")" "$(sql "SELECT count(*) FROM todos")"
	assert_equal "$(jq -r '.counts["tr.usage"]' <<<"$page")" "4"
	(( $(jq -r '.counts["#graph svg g.node"]' <<<"$page") >= 1 )) || fail "no graph drawn"
	[[ $text == *$'state\nrunning'* && $text == *"a pomodoro timer web app"* ]] || fail "$text"
	[ -s "$BATS_TEST_TMPDIR/page.png" ]
}

@test "report: what agents and users write stays text, and the artifact's scripts stay in their sandbox" {
	local evil='</script><script>window.pwned=1;document.title="pwned"</script><img src=x onerror="window.pwned=1"><b data-pwned=1>bold</b>'
	orch-stack create alpha --idea "$evil"
	orch-stack todo add alpha "$evil" --priority 5
	orch-stack say alpha "$evil" --from "$evil"
	orch-stack start alpha
	# Agents that write it everywhere they can: replies, todos, phase,
	# memory, thinking, an artifact whose scripts reach for the page, and
	# an error a failing reviewer prints.
	cat >"$BATS_TEST_TMPDIR/evil-builder" <<'AGENT'
#!/bin/sh
jq -c '{thinking: "</script><script>window.pwned=1</script>",
        actions: [{type: "write_artifact", content: "<!doctype html><title>art</title><p>artifact text</p><script>try { parent.document.title = \"pwned\"; top.pwned = 1; parent.document.body.setAttribute(\"data-pwned\", 1) } catch (e) { document.body.append(\" blocked: \" + e.name) } document.body.append(\" artifact script ran\")</script>"},
                  {type: "set_phase", phase: "<script>window.pwned=1</script>"}]}'
AGENT
	cat >"$BATS_TEST_TMPDIR/evil-communicator" <<'AGENT'
#!/bin/sh
jq -c '{thinking: "x", actions: [{type: "reply_user", message_id: .task.user_message.id,
        content: "</script><script>window.pwned=1</script><iframe srcdoc=\"<script>parent.pwned=1</script>\"></iframe>"},
        {type: "create_todo", content: "<style>body{display:none}</style><script>window.pwned=1</script>"}]}'
AGENT
	cat >"$BATS_TEST_TMPDIR/evil-reviewer" <<'AGENT'
#!/bin/sh
cat >/dev/null
echo '</title><script>window.pwned=1</script>' >&2
exit 1
AGENT
	chmod +x "$BATS_TEST_TMPDIR"/evil-*
	orch-stack create beta
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at)
	     VALUES (2, 1, '<script>window.pwned=1</script>', 1)"
	run_cycle --agent builder="$BATS_TEST_TMPDIR/evil-builder" \
		--agent communicator="$BATS_TEST_TMPDIR/evil-communicator" \
		--agent reviewer="$BATS_TEST_TMPDIR/evil-reviewer" --retries 0
	orch-stack report alpha -o "$BATS_TEST_TMPDIR/evil.html"
	run -0 look "$BATS_TEST_TMPDIR/evil.html" tr.message "[data-pwned]" "img" "b"
	local page=$output text
	assert_equal "$(jq -r .title <<<"$page")" "orch: alpha"
	assert_equal "$(jq -r .pwned <<<"$page")" "false"
	assert_equal "$(jq -r .scripts <<<"$page")" "0"
	assert_equal "$(jq -r '.counts["img"]' <<<"$page")" "0"
	assert_equal "$(jq -r '.counts["b"]' <<<"$page")" "0"
	assert_equal "$(jq -r '.counts["tr.message"]' <<<"$page")" "1"
	# It is all there, as text a person can read.
	text=$(jq -r .text <<<"$page")
	[[ $text == *"$evil"* ]] || fail "the idea is not shown as text: $text"
	[[ $text == *'<iframe srcdoc="<script>parent.pwned=1</script>"></iframe>'* ]] || fail "the reply is not text"
	# The artifact rendered, its script ran, and the page was out of its reach.
	assert_equal "$(jq -r '.frames | length' <<<"$page")" "1"
	assert_equal "$(jq -r '.frames[0].text' <<<"$page")" "artifact text

blocked: SecurityError artifact script ran"
}

@test "report: a new stack's page says there is nothing yet; a failing one says why, with the fix" {
	orch-stack create gamma
	run -0 orch-stack report gamma
	assert_output --partial "No artifact yet"
	assert_output --partial "No user message yet"
	assert_output --partial "No cycle has run yet."
	orch-stack start gamma
	local i
	for i in 1 2; do
		run_cycle --agent planner=no-such-agent --retries 0
	done
	orch-stack report gamma -o "$BATS_TEST_TMPDIR/gamma.html"
	run -0 look "$BATS_TEST_TMPDIR/gamma.html" ".problem" "g.lane rect.attempt.failed" "g.cycle.failed"
	assert_equal "$(jq -r '.counts[".problem"]' <<<"$output")" "1"
	assert_equal "$(jq -r '.counts["g.cycle.failed"]' <<<"$output")" "2"
	(( $(jq -r '.counts["g.lane rect.attempt.failed"]' <<<"$output") >= 2 )) || fail "$output"
	[[ $(jq -r .text <<<"$output") == *"Problem: the last 2 cycles failed: the agent command 'no-such-agent' cannot be run"* ]] ||
		fail "$(jq -r .text <<<"$output")"
}

@test "report: bad input is one line on stderr and its status" {
	orch-stack create alpha
	run -66 --separate-stderr orch-stack report beta
	assert_equal "$stderr" "orch-stack: no stack 'beta'"
	output_errors report alpha
	run -64 --separate-stderr orch-stack report alpha --json
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--json' does not apply to 'report'"
}
