#!/usr/bin/env bats
# bash completion, driven the way bash drives it: COMP_WORDS and COMP_CWORD.

load test_helper

# complete WORD...: the candidates for the last word, one per line.
complete_words() {
	source "$ORCH_ROOT/completions/orch.bash"
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_orch
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "orch completes its subcommands" {
	run -0 complete_words orch de
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "decide detect "
}

@test "options come from the program's own --help" {
	run -0 complete_words orch-graph --for
	assert_equal "$output" "--format"
	run -0 complete_words orch-graph --format ""
	assert_equal "$(echo "$output" | tr '\n' ' ')" "json dot mermaid "
}

@test "orch SUB completes like orch-SUB" {
	run -0 complete_words orch graph --format m
	assert_equal "$output" "mermaid"
}

@test "agent names complete for --agent and --role" {
	run -0 complete_words orch-exec --agent b
	assert_equal "$output" "builder="
}

@test "stack names come from the store" {
	orch-stack init
	orch-stack create alpha
	orch-stack create alpine
	orch-stack create beta
	run -0 complete_words orch-stack start al
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "alpha alpine "
	run -0 complete_words orch-detect --stack b
	assert_equal "$output" "beta"
	run -0 complete_words orch-stack todo add b
	assert_equal "$output" "beta"
}

@test "orch-stack completes its subcommands" {
	run -0 complete_words orch-stack st
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "start stop "
}
