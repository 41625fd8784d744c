#!/usr/bin/env bats
# orch-stack messages: the conversation a person has with a stack, and the
# messages between stacks.

load test_helper

# 2026-11-25 01:02:03 UTC, in ms.
T=1795568523000

setup() {
	orch_test_env
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack create beta
}

@test "messages: each user message with the communicator's reply, oldest first" {
	orch-stack --now $T say alpha "what are you building?" --from ann
	orch-stack --now $((T + 1000)) say alpha "and when?"
	orch-stack start alpha
	run_cycle
	sql "UPDATE user_messages SET responded_at = $T + 60000 WHERE id = 1"
	run -0 --separate-stderr orch-stack messages alpha
	assert_equal "$stderr" ""
	assert_equal "$output" '2026-11-25 01:02:03 UTC  ann  (message 1)
  what are you building?
2026-11-25 01:03:03 UTC  communicator
  Thanks, ann! Noted: "what are you building?".

2026-11-25 01:02:04 UTC  user  (message 2)
  and when?
  (no reply yet: the communicator answers at a coming cycle)'
	run -0 orch-stack messages alpha --unanswered
	assert_equal "${lines[0]}" "2026-11-25 01:02:04 UTC  user  (message 2)"
	assert_equal "${#lines[@]}" 3
	# The next cycle answers the second.
	run_cycle
	run -0 orch-stack messages alpha --unanswered
	assert_output ""
}

@test "messages --json: one object a line, null where there is no reply" {
	orch-stack --now $T say alpha "hello" --from ann
	orch-stack --now $((T + 5)) say alpha "again"
	sql "UPDATE user_messages SET processed = 1, response = 'hi ann', responded_at = $T + 9 WHERE id = 1"
	run -0 orch-stack messages alpha --json
	assert_equal "$output" '{"id":1,"sender":"ann","content":"hello","created_at":1795568523000,"processed":true,"reply":"hi ann","replied_at":1795568523009,"attempts":0,"last_error":null,"parked_at":null}
{"id":2,"sender":"user","content":"again","created_at":1795568523005,"processed":false,"reply":null,"replied_at":null,"attempts":0,"last_error":null,"parked_at":null}'
	run -0 orch-stack messages alpha --json --unanswered
	assert_equal "$(jq -r .id <<<"$output")" "2"
	run -0 orch-stack messages beta --json
	assert_output ""
}

@test "messages: a message dealt with but not answered says so" {
	orch-stack --now $T say alpha "noise"
	sql "UPDATE user_messages SET processed = 1"
	run -0 orch-stack messages alpha --unanswered
	assert_line --index 2 "  (no reply: the communicator dealt with it without one)"
}

@test "messages: escape sequences are made harmless, long lines wrapped to 80 columns" {
	orch-stack --now $T say alpha "$(printf 'red \033[31mtext\033[0m\r\nand a bell\a')" --from "$(printf 'x\033]0;title\a')"
	local reply
	reply="$(printf 'word %.0s' {1..30})"
	sql "UPDATE user_messages SET processed = 1, response = '$reply', responded_at = $T"
	run -0 orch-stack messages alpha
	[[ $output != *$'\033'* && $output != *$'\a'* && $output != *$'\r'* ]] || fail "control bytes reached the terminal: $(cat -A <<<"$output")"
	assert_line --index 0 "2026-11-25 01:02:03 UTC  x ]0;title   (message 1)"
	assert_line --index 1 "  red  [31mtext [0m"
	assert_line --index 2 "  and a bell "
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	assert_line --index 4 "  $(printf 'word %.0s' {1..14})word"
	# --json keeps the bytes, JSON-escaped.
	run -0 orch-stack messages alpha --json
	assert_equal "$(jq -r .content <<<"$output" | od -c | head -1 | tr -s ' ')" \
		"$(printf 'red \033[31mtext\033[0m\r\nand a bell\a' | od -c | head -1 | tr -s ' ')"
}

@test "messages --stacks: sent and received, direct and broadcast, read ones too" {
	orch-stack create gamma
	sql "INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES
	     (2, 1, 'direct from beta', $T),
	     (2, NULL, 'broadcast from beta', $T + 1000),
	     (1, 2, 'alpha to beta', $T + 2000),
	     (1, NULL, 'alpha to all', $T + 3000),
	     (3, 2, 'gamma to beta, not alpha''s', $T + 4000);
	     INSERT INTO message_reads VALUES (1, 1, $T + 60000), (4, 2, $T + 5000), (4, 3, $T + 6000)"
	run -0 --separate-stderr orch-stack messages alpha --stacks
	assert_equal "$output" "2026-11-25 01:02:03 UTC  beta -> alpha  (message 1, read 2026-11-25 01:03:03 UTC)
  direct from beta

2026-11-25 01:02:04 UTC  beta -> all stacks  (message 2, unread)
  broadcast from beta

2026-11-25 01:02:05 UTC  alpha -> beta  (message 3, unread)
  alpha to beta

2026-11-25 01:02:06 UTC  alpha -> all stacks  (message 4, read by 2 stacks)
  alpha to all"
	run -0 orch-stack messages alpha --stacks --json
	assert_equal "$(jq -c '[.id, .direction, .from, .to, .read_at, .readers]' <<<"$output" | tr '\n' ' ')" \
		'[1,"received","beta","alpha",1795568583000,1] [2,"received","beta",null,null,0] [3,"sent","alpha","beta",null,0] [4,"sent","alpha",null,1795568528000,2] '
	# A deleted sender stays, as such.
	orch-stack rm beta
	run -0 orch-stack messages alpha --stacks
	assert_line --index 0 "2026-11-25 01:02:03 UTC  (a deleted stack) -> alpha  (message 1, read 2026-11-25 01:03:03 UTC)"
}

@test "messages: no such stack is 66, flags that do not go together 64, text that is not UTF-8 65" {
	run -66 --separate-stderr orch-stack messages delta
	assert_equal "$stderr" "orch-stack: no stack 'delta'"
	run -64 --separate-stderr orch-stack messages alpha --stacks --unanswered
	assert_equal "${stderr_lines[0]}" "orch-stack: --unanswered and --stacks do not go together"
	run -64 --separate-stderr orch-stack messages alpha --limit 3
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--limit' does not apply to 'messages'"
	run -64 --separate-stderr orch-stack messages
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack messages STACK [--unanswered | --stacks] [--json]"
	engine_is_sqlite || return 0 # PostgreSQL text is always UTF-8
	sql "INSERT INTO user_messages (stack_id, sender, content, created_at) VALUES (1, 'ann', CAST(X'61ff62' AS TEXT), $T)"
	run -65 --separate-stderr orch-stack messages alpha --json
	assert_equal "$stderr" "orch-stack: content of user message 1 is not valid UTF-8"
	run -0 orch-stack messages alpha
	assert_line --index 1 "  a?b"
}

@test "messages: a write error exits 70" {
	orch-stack say alpha "hello"
	run -70 --separate-stderr bash -c 'orch-stack messages alpha >/dev/full'
	[[ $stderr == "orch-stack: write error"* ]] || fail "$stderr"
}
