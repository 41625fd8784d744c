#!/usr/bin/env bats
# orch-stack artifact: the content of each version, byte for byte, the
# versions with the cycle and todo that produced each, and diffs.

load test_helper

# 2026-11-25 01:02:03 UTC, in ms.
T=1795568523000

setup() {
	orch_test_env
	orch-stack init
	orch-stack create alpha --idea "a timer"
}

# Two cycles of the example builder: versions 1 (todo 1) and 2 (todo 2).
build_two() {
	orch-stack todo add alpha "build the timer" --priority 5
	orch-stack todo add alpha "add a dark mode" --priority 4
	orch-stack start alpha
	run_cycle
	run_cycle
}

# on_tty COMMAND: run COMMAND with a terminal on stdout.
on_tty() {
	script -qec "$1" /dev/null
}

hex() {
	od -An -tx1 -v | tr -d ' \n'
}

@test "artifact list: each version with its size, type, time, cycle and todo, newest first" {
	build_two
	sql "UPDATE artifacts SET created_at = $T + version * 1000"
	run -0 --separate-stderr orch-stack artifact list alpha
	assert_equal "$stderr" ""
	assert_equal "${lines[0]}" "VERSION  CREATED                 SIZE  TYPE    CYCLE  TODO"
	assert_equal "${lines[1]}" "      2  2026-11-25 01:02:05      110  html        2  #2 add a dark mode"
	assert_equal "${lines[2]}" "      1  2026-11-25 01:02:04       81  html        1  #1 build the timer"
	run -0 orch-stack artifact list alpha --json
	assert_equal "$output" '{"version":2,"type":"html","size":110,"created_at":1795568525000,"cycle":2,"todo_id":2,"todo":"add a dark mode"}
{"version":1,"type":"html","size":81,"created_at":1795568524000,"cycle":1,"todo_id":1,"todo":"build the timer"}'
	run -0 orch-stack artifact versions alpha
	assert_equal "$output" "$(printf '2\n1')"
}

@test "artifact list: a version of unknown origin, or whose todo is gone, shows '-'" {
	build_two
	sql "INSERT INTO artifacts (stack_id, version, type, content, created_at) VALUES (1, 3, 'md', 'x', $T)"
	orch-stack todo add alpha "short-lived"
	sql "DELETE FROM todos WHERE id = 1"
	run -0 orch-stack artifact list alpha
	assert_equal "${lines[1]}" "      3  2026-11-25 01:02:03        1  md          -  -"
	[[ ${lines[3]} == "      1  "*"       81  html        1  -" ]] || fail "${lines[3]}"
	run -0 orch-stack artifact list alpha --json
	assert_equal "$(jq -c '[.version, .cycle, .todo_id, .todo]' <<<"$output" | tr '\n' ' ')" \
		'[3,null,null,null] [2,2,2,"add a dark mode"] [1,1,null,null] '
}

@test "artifact: the latest version, or --version N, byte for byte, to stdout or -o FILE" {
	build_two
	run -0 --separate-stderr orch-stack artifact alpha
	assert_equal "$output" "$(sql "SELECT $(sql_text content) FROM artifacts WHERE version = 2")"
	orch-stack artifact alpha >"$BATS_TEST_TMPDIR/latest"
	assert_equal "$(hex <"$BATS_TEST_TMPDIR/latest")" "$(sql "SELECT $(sql_hex content) FROM artifacts WHERE version = 2")"
	run -0 --separate-stderr orch-stack artifact alpha --version 1 -o "$BATS_TEST_TMPDIR/v1"
	assert_equal "$output" ""
	assert_equal "$(hex <"$BATS_TEST_TMPDIR/v1")" "$(sql "SELECT $(sql_hex content) FROM artifacts WHERE version = 1")"
	# Bytes a terminal must not see still reach a file whole.
	sql "UPDATE artifacts SET content = CAST(X'3c703e1b5b33316d00ff0a' AS TEXT) WHERE version = 2"
	orch-stack artifact alpha --output "$BATS_TEST_TMPDIR/raw"
	assert_equal "$(hex <"$BATS_TEST_TMPDIR/raw")" "3c703e1b5b33316d00ff0a"
}

@test "artifact: binary-looking or huge content is not written to a terminal unless -o says so" {
	build_two
	run -0 on_tty "orch-stack artifact alpha --version 1"
	assert_output --partial "<p>done: build the timer</p>"
	sql "UPDATE artifacts SET content = 'red ' || char(27) || '[31m' WHERE version = 2"
	run -64 on_tty "orch-stack artifact alpha"
	assert_output --partial "orch-stack: version 2 of the artifact of stack 'alpha' is binary, or holds control characters: not written to a terminal (-o FILE writes it to FILE, -o - here)"
	run -0 on_tty "orch-stack artifact alpha -o -"
	[[ $output == "red "$'\033'"[31m"* ]] || fail "$(cat -A <<<"$output")"
	if engine_is_sqlite; then
		sql "UPDATE artifacts SET content = CAST(zeroblob(300000) AS TEXT) WHERE version = 2;
		     UPDATE artifacts SET content = replace(content, char(0), 'a') WHERE version = 2"
	else
		sql "UPDATE artifacts SET content = repeat('a', 300000) WHERE version = 2"
	fi
	run -64 on_tty "orch-stack artifact alpha"
	assert_output --partial "is large: not written to a terminal"
	# Not a terminal: written as it is.
	run -0 bash -c 'orch-stack artifact alpha | wc -c'
	assert_output "300000"
}

@test "artifact diff: a unified diff by diff(1); the same version twice is no diff" {
	build_two
	run -0 --separate-stderr orch-stack artifact diff alpha 1 2
	assert_equal "$stderr" ""
	assert_equal "$output" "--- alpha version 1
+++ alpha version 2
@@ -2,3 +2,4 @@
 <title>alpha</title>
 <h1>alpha</h1>
 <p>done: build the timer</p>
+<p>done: add a dark mode</p>"
	run -0 orch-stack artifact diff alpha 2 2
	assert_output ""
	# It applies: patch(1) turns version 1 into version 2.
	orch-stack artifact alpha --version 1 -o "$BATS_TEST_TMPDIR/page.html"
	orch-stack artifact diff alpha 1 2 >"$BATS_TEST_TMPDIR/page.diff"
	run -0 patch "$BATS_TEST_TMPDIR/page.html" "$BATS_TEST_TMPDIR/page.diff"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/page.html")" "$(orch-stack artifact alpha)"
}

@test "artifact diff: escape sequences are made harmless on a terminal, kept in a pipe" {
	build_two
	sql "UPDATE artifacts SET content = 'red ' || char(27) || '[31m' || char(10) WHERE version = 2"
	run -0 on_tty "orch-stack artifact diff alpha 1 2"
	[[ $output != *$'\033'* ]] || fail "an escape reached the terminal: $(cat -A <<<"$output")"
	assert_output --partial "+red  [31m"
	run -0 bash -c 'orch-stack artifact diff alpha 1 2 | grep -c $'"'"'\033'"'"
	assert_output "1"
}

@test "artifact: bad input is one line on stderr and its status" {
	run -66 --separate-stderr orch-stack artifact beta
	assert_equal "$stderr" "orch-stack: no stack 'beta'"
	run -66 --separate-stderr orch-stack artifact alpha
	assert_equal "$stderr" "orch-stack: stack 'alpha' has no artifact yet"
	run -66 --separate-stderr orch-stack artifact diff alpha 1 2
	assert_equal "$stderr" "orch-stack: no version 1 of the artifact of stack 'alpha'"
	build_two
	run -66 --separate-stderr orch-stack artifact alpha --version 3
	assert_equal "$stderr" "orch-stack: no version 3 of the artifact of stack 'alpha'"
	run -66 --separate-stderr orch-stack artifact diff alpha 1 9
	assert_equal "$stderr" "orch-stack: no version 9 of the artifact of stack 'alpha'"
	run -64 --separate-stderr orch-stack artifact diff alpha 1 x
	assert_equal "${stderr_lines[0]}" "orch-stack: version: 'x' is not a whole number from 1 to 9223372036854775807"
	run -64 --separate-stderr orch-stack artifact alpha --version 0
	assert_equal "${stderr_lines[0]}" "orch-stack: --version: '0' is not a whole number from 1 to 9223372036854775807"
	run -64 --separate-stderr orch-stack artifact alpha --version
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--version' needs a value"
	run -64 --separate-stderr orch-stack artifact list alpha --version 1
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--version' does not apply to 'artifact list'"
	run -64 --separate-stderr orch-stack artifact diff alpha 1
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack artifact diff STACK A B"
	output_errors artifact alpha
	# Anywhere else --version is still the program's version.
	run -0 orch-stack list --version
	assert_output "orch-stack 0.1.0"
}

@test "artifact diff: no diff(1) on PATH is 69" {
	build_two
	run -69 --separate-stderr env PATH="$TEST_BUILD/bin" orch-stack artifact diff alpha 1 2
	assert_equal "$stderr" "orch-stack: cannot run 'diff': No such file or directory"
}
