#!/usr/bin/env bats
# orch-stack: what each subcommand writes, prints, and refuses.

load test_helper

@test "init creates the database 0600 in a 0700 directory" {
	export ORCH_DB=$BATS_TEST_TMPDIR/new/dir/orch.db
	run -0 orch-stack init
	assert_equal "$(stat -c %a "$ORCH_DB")" "600"
	assert_equal "$(stat -c %a "$BATS_TEST_TMPDIR/new/dir")" "700"
	run -0 orch-stack init
}

@test "without a database every other subcommand exits 66" {
	run -66 --separate-stderr orch-stack list
	assert_equal "$stderr" "orch-stack: no database at '$ORCH_DB' (run 'orch-stack init')"
}

@test "create writes an idle stack and its project idea" {
	orch-stack init
	run -0 orch-stack --now 5000 create alpha --idea "a timer"
	assert_equal "$(sql "SELECT name, execution_state, phase, created_at FROM stacks")" "alpha|idle|planning|5000"
	assert_equal "$(sql "SELECT title, description FROM projects")" "alpha|a timer"
	run -65 --separate-stderr orch-stack create alpha
	assert_equal "$stderr" "orch-stack: stack 'alpha' already exists"
}

@test "create refuses bad names with 64" {
	orch-stack init
	run -64 --separate-stderr orch-stack create 123
	assert_equal "${stderr_lines[0]}" "orch-stack: stack name '123' must not be all digits"
	run -64 --separate-stderr orch-stack create "a b"
	assert_equal "${stderr_lines[0]}" "orch-stack: stack name 'a b' may only hold letters, digits, '.', '_' and '-'"
	run -64 --separate-stderr orch-stack create "$(printf 'x%.0s' {1..65})"
	[[ ${stderr_lines[0]} == *"must be 1 to 64 characters" ]]
	assert_equal "$(sql "SELECT count(*) FROM stacks")" "0"
}

@test "start, pause and stop set the state and its time; start makes the stack due" {
	orch-stack init
	orch-stack create alpha
	orch-stack --now 7000 start alpha
	assert_equal "$(sql "SELECT execution_state, started_at, next_run_at FROM stacks")" "running|7000|7000"
	orch-stack --now 8000 pause 1
	assert_equal "$(sql "SELECT execution_state, paused_at FROM stacks")" "paused|8000"
	orch-stack --now 9000 stop alpha
	assert_equal "$(sql "SELECT execution_state, stopped_at FROM stacks")" "stopped|9000"
	run -66 --separate-stderr orch-stack start beta
	assert_equal "$stderr" "orch-stack: no stack 'beta'"
}

@test "say and todo add write rows; todo list shows them" {
	orch-stack init
	orch-stack create alpha
	orch-stack say alpha "hello there" --from ann
	orch-stack todo add alpha "build it" --priority 5
	orch-stack todo add alpha "test it"
	assert_equal "$(sql "SELECT sender, content, processed FROM user_messages")" "ann|hello there|0"
	assert_equal "$(sql "SELECT content, priority, status FROM todos ORDER BY id" | tr '\n' ' ')" \
		"build it|5|pending test it|3|pending "
	run -0 orch-stack todo list alpha --json
	assert_equal "$(jq -s -c 'map([.content, .priority])' <<<"$output")" '[["build it",5],["test it",3]]'
	run -64 --separate-stderr orch-stack todo add alpha x --priority 6
	assert_equal "${stderr_lines[0]}" "orch-stack: --priority: '6' is not a whole number from 1 to 5"
}

@test "show --json prints the snapshot document" {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack todo add alpha "build it"
	orch-stack say alpha "hi"
	run -0 orch-stack show --json alpha
	assert_equal "$(jq -r '.type, .project.description, .todos[0].content, .user_messages[0].content, .artifact, (.memory | keys | join(","))' <<<"$output" | tr '\n' ' ')" \
		"orch.snapshot a timer build it hi null builder,communicator,planner,reviewer "
	run -0 bash -c 'orch-stack show --json alpha | orch-detect - | jq -r .agents.communicator.priority'
	assert_equal "$output" "10"
}

@test "list fits 80 columns and names lists names" {
	orch-stack init
	orch-stack create alpha
	orch-stack create a-very-long-stack-name-that-goes-on-and-on-and-on
	run -0 orch-stack list
	local line
	for line in "${lines[@]}"; do
		(( ${#line} <= 80 )) || fail "too wide: $line"
	done
	assert_output --partial "a-very-long-stack..."
	run -0 orch-stack names
	assert_equal "$output" "$(printf 'a-very-long-stack-name-that-goes-on-and-on-and-on\nalpha')"
}

@test "rm deletes the stack and everything it holds" {
	orch-stack init
	orch-stack create alpha --idea x
	orch-stack todo add alpha t
	orch-stack rm alpha
	assert_equal "$(sql "SELECT (SELECT count(*) FROM stacks) + (SELECT count(*) FROM todos) + (SELECT count(*) FROM projects)")" "0"
}

@test "usage errors exit 64 with a message" {
	orch-stack init
	run -64 --separate-stderr orch-stack
	assert_equal "${stderr_lines[0]}" "orch-stack: no subcommand given"
	run -64 --separate-stderr orch-stack frobnicate
	assert_equal "${stderr_lines[0]}" "orch-stack: unknown subcommand 'frobnicate'"
	run -64 --separate-stderr orch-stack create
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack create NAME [--idea TEXT]"
	run -64 --separate-stderr orch-stack say alpha
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack say STACK TEXT [--from SENDER]"
	run -64 --separate-stderr orch-stack show alpha
	assert_equal "${stderr_lines[0]}" "orch-stack: show needs --json"
}
