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

@test "orch-stack completes graph, usage and config, and stacks after graph and usage" {
	orch-stack init
	orch-stack create alpha
	run -0 complete_words orch-stack u
	assert_equal "$output" "usage"
	run -0 complete_words orch-stack co
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "config copy "
	run -0 complete_words orch-stack gr
	assert_equal "$output" "graph"
	run -0 complete_words orch-stack graph a
	assert_equal "$output" "alpha"
	run -0 complete_words orch stack usage ""
	assert_equal "$output" "alpha"
	run -0 complete_words orch-stack usage alpha ""
	assert_equal "$output" ""
}

@test "orch-stack skips the value of every option that takes one" {
	orch-stack init
	orch-stack create alpha
	# The options the completion treats as taking a value: read from --help.
	run -0 bash -c "source '$ORCH_ROOT/completions/orch.bash'; _orch_value_options orch-stack | tr '\n' ' '"
	assert_equal "$output" "--agent --config --cycle --daily --db --format --from --idea --limit --now --priority --since --status --timeout --to --total --version -o -q "
	local opt
	for opt in --db --now --idea --from --priority --limit --cycle --since --config -o; do
		# "orch-stack OPT VALUE <TAB>" still offers the subcommands.
		run -0 complete_words orch-stack "$opt" start st
		assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "start stop " || fail "after $opt"
		# and "orch-stack show OPT VALUE <TAB>" the stacks.
		run -0 complete_words orch-stack show "$opt" alpha ""
		assert_equal "$output" "alpha" || fail "after show $opt"
	done
	# A value of the user's own gets no candidates.
	run -0 complete_words orch-stack history alpha --limit ""
	assert_equal "$output" ""
	run -0 complete_words orch-stack usage alpha --since ""
	assert_equal "$output" ""
}

@test "orch-stack offers the options of the subcommand given" {
	run -0 complete_words orch-stack history alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --json --limit --now "
	run -0 complete_words orch-stack usage alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --json --now --since "
	run -0 complete_words orch-stack config --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--config --db --json --now "
	run -0 complete_words orch-stack todo add alpha x --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --now --priority "
	run -0 complete_words orch-stack messages alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --json --now --stacks --unanswered "
	run -0 complete_words orch-stack budget alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--config --daily --db --json --now --total "
	run -0 complete_words orch-stack --d
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--daily --db --dry-run "
}

@test "orch-stack gc and the repairs: their words, the stacks, agents and statuses" {
	orch-stack init
	orch-stack create alpha
	orch-stack create beta
	run -0 complete_words orch-stack g
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "gc graph "
	run -0 complete_words orch-stack gc b
	assert_equal "$output" "beta"
	run -0 complete_words orch-stack gc alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--config --db --dry-run --json --now "
	run -0 complete_words orch-stack todo ""
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "add clear list retry rm "
	run -0 complete_words orch-stack todo clear a
	assert_equal "$output" "alpha"
	run -0 complete_words orch-stack todo clear alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --now --status "
	run -0 complete_words orch-stack todo clear alpha --status c
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "cancelled completed "
	run -0 complete_words orch-stack messages c
	assert_equal "$output" "clear"
	run -0 complete_words orch-stack messages re
	assert_equal "$output" "retry"
	run -0 complete_words orch-stack messages retry a
	assert_equal "$output" "alpha"
	run -0 complete_words orch-stack messages clear b
	assert_equal "$output" "beta"
	run -0 complete_words orch-stack messages clear beta --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --now --stacks --unanswered "
	run -0 complete_words orch-stack me
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "memory messages "
	run -0 complete_words orch-stack memory ""
	assert_equal "$output" "clear"
	run -0 complete_words orch-stack memory clear a
	assert_equal "$output" "alpha"
	run -0 complete_words orch-stack memory clear alpha b
	assert_equal "$output" "builder"
}

@test "orch-stack artifact: its words, the stacks, and --version's values from the store" {
	orch-stack init
	orch-stack create alpha
	orch-stack create beta
	sql "INSERT INTO artifacts (stack_id, version, type, content, created_at)
	     VALUES (1, 1, 'html', 'a', 1), (1, 2, 'html', 'b', 2), (1, 3, 'html', 'c', 3)"
	run -0 complete_words orch-stack ar
	assert_equal "$output" "artifact"
	run -0 complete_words orch-stack artifact ""
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "alpha beta diff list versions "
	run -0 complete_words orch-stack artifact list b
	assert_equal "$output" "beta"
	run -0 complete_words orch-stack artifact alpha --version ""
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "1 2 3 "
	run -0 complete_words orch stack artifact beta --version ""
	assert_equal "$output" ""
	run -0 complete_words orch-stack artifact diff alpha 1 ""
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "1 2 3 "
	run -0 complete_words orch-stack artifact alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --now --version "
	run -0 complete_words orch-stack artifact list alpha --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --json --now "
}

@test "orch-stack log and cycle: stacks, show, --agent names, and no value for -q" {
	orch-stack init
	orch-stack create alpha
	run -0 complete_words orch-stack lo
	assert_equal "$output" "log"
	run -0 complete_words orch-stack cy
	assert_equal "$output" "cycle"
	run -0 complete_words orch-stack log ""
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "alpha show "
	run -0 complete_words orch-stack cycle a
	assert_equal "$output" "alpha"
	run -0 complete_words orch-stack log alpha --agent b
	assert_equal "$output" "builder"
	run -0 complete_words orch-stack log alpha -q ""
	assert_equal "$output" ""
	run -0 complete_words orch-stack rep
	assert_equal "$output" "report"
	run -0 complete_words orch-stack report a
	assert_equal "$output" "alpha"
	run -0 complete_words orch-stack graph alpha --format ""
	assert_equal "$(echo "$output" | tr '\n' ' ')" "dot mermaid "
	run -0 complete_words orch-stack log alpha -q word --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--agent --cycle --db --failed --json --limit --now --since "
	run -0 complete_words orch-stack log show 3 --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --json --now "
}

@test "orch-agent completes its options and --role values" {
	run -0 complete_words orch-agent --ro
	assert_equal "$output" "--role"
	run -0 complete_words orch-agent --role ""
	assert_equal "$(echo "$output" | tr '\n' ' ')" "planner builder communicator reviewer "
	run -0 complete_words orch agent --role c
	assert_equal "$output" "communicator"
	run -0 complete_words orch-agent --model ""
	assert_equal "$output" ""
	run -0 complete_words orch-agent -
	local opt
	for opt in --role --prompt --model --base-url --timeout --deadline --retries --backoff --verbose --help --version; do
		assert_line "$opt"
	done
}

@test "every program completes the options its --help lists" {
	local p opt
	for p in orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent; do
		run -0 complete_words "$p" --
		for opt in $("$p" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
			assert_line "$opt"
		done
	done
}

@test "orch-stack copy completes its options, and a file after --to" {
	run -0 complete_words orch-stack copy --
	assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "--db --json --now --to "
	touch "$BATS_TEST_TMPDIR/dest.db"
	cd "$BATS_TEST_TMPDIR"
	run -0 complete_words orch-stack copy --to de
	assert_equal "$output" "dest.db"
}

@test "orch help completes the subcommands" {
	run -0 complete_words orch help e
	assert_equal "$output" "exec"
}

# zsh: the real completion system (compinit), driven through a
# pseudo-terminal: once the line editor is up, type LINE and Tab, print
# what compadd would offer, sorted. The markers are split in the typed
# text so only the output matches them; Tab runs a widget that completes,
# then marks the end.
zsh_complete() {
	cat >"$BATS_TEST_TMPDIR/capture.zsh" <<'ZSH'
zmodload zsh/zpty
# wait_for MARKER: read the terminal until MARKER has appeared (60 s at
# most) into $out, polling: a blocking pattern read can hang.
wait_for() {
	local chunk end=$((SECONDS + 60))
	out=
	while (( SECONDS < end )); do
		if zpty -r -t z chunk; then
			out+=$chunk
			[[ $out == *${~1}* ]] && return 0
		else
			sleep 0.02
		fi
	done
	print -r -- "no $1 in: ${(q+)out}" >&2
	return 1
}
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=('$1' \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() { local -a m; builtin compadd -O m "$@"; print -rl -- "<m>"${^m}; }'
zpty -w z '_files() { print -r -- "<m>(files)"; }'
zpty -w z 'tab() { zle complete-word; print -r -- "<do""ne>"; }; zle -N tab; bindkey "^I" tab'
zpty -w z 'zle-line-init() { print -rn -- "<z""le>"; }; zle -N zle-line-init; print -r -- "<rea""dy>"'
wait_for '<ready>*<zle>' || exit 1
zpty -w -n z "$2"
wait_for "$2" || exit 1
zpty -w -n z $'\t'
wait_for '<done>' || exit 1
zpty -d z
print -r -- $out | grep -o '<m>[^<]*' | sed 's/^<m>//' | tr -d '\r' | sort -u
ZSH
	# LeakSanitizer's exit-time scan can hang in a process on a
	# pseudo-terminal; the other suites check these programs for leaks.
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
		timeout 150 zsh -f "$BATS_TEST_TMPDIR/capture.zsh" "$ORCH_ROOT/completions" "$1"
}

@test "zsh: _orch parses" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	run -0 zsh -n "$ORCH_ROOT/completions/_orch"
	run -0 head -n 1 "$ORCH_ROOT/completions/_orch"
	assert_output "#compdef orch orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent"
}

@test "zsh: subcommands, stacks, options and option values" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	orch-stack init
	orch-stack create alpha
	orch-stack create alpine
	orch-stack create beta
	run -0 zsh_complete "orch de"
	assert_equal "$(echo $output)" "decide detect"
	run -0 zsh_complete "orch-stack st"
	assert_equal "$(echo $output)" "start stop"
	run -0 zsh_complete "orch-stack start al"
	assert_equal "$(echo $output)" "alpha alpine"
	run -0 zsh_complete "orch stack --db $ORCH_DB --limit 5 todo add b"
	assert_equal "$(echo $output)" "beta"
	run -0 zsh_complete "orch-stack history alpha --"
	assert_equal "$(echo $output)" "--db --json --limit --now"
	run -0 zsh_complete "orch-stack mess"
	assert_equal "$output" "messages"
	run -0 zsh_complete "orch-stack messages b"
	assert_equal "$output" "beta"
	run -0 zsh_complete "orch-stack gc a"
	assert_equal "$(echo $output)" "alpha alpine"
	run -0 zsh_complete "orch-stack todo r"
	assert_equal "$(echo $output)" "retry rm"
	run -0 zsh_complete "orch-stack todo clear alpha --status can"
	assert_equal "$output" "cancelled"
	run -0 zsh_complete "orch-stack memory clear alpha c"
	assert_equal "$output" "communicator"
	sql "INSERT INTO artifacts (stack_id, version, type, content, created_at)
	     VALUES (1, 1, 'html', 'a', 1), (1, 2, 'html', 'b', 2)"
	run -0 zsh_complete "orch-stack artifact alpha --version "
	assert_equal "$(echo $output)" "1 2"
	run -0 zsh_complete "orch-stack artifact diff alpha 2 "
	assert_equal "$(echo $output)" "1 2"
	run -0 zsh_complete "orch-stack artifact alpha -o "
	assert_equal "$output" "(files)"
	run -0 zsh_complete "orch-stack log alpha --agent c"
	assert_equal "$output" "communicator"
	run -0 zsh_complete "orch-stack log s"
	assert_equal "$output" "show"
	run -0 zsh_complete "orch-stack usage alpha --since "
	assert_equal "$output" ""
	run -0 zsh_complete "orch-graph --format "
	assert_equal "$(echo $output)" "dot json mermaid"
	run -0 zsh_complete "orch-exec --agent b"
	assert_equal "$output" "builder="
	run -0 zsh_complete "orch agent --role c"
	assert_equal "$output" "communicator"
	run -0 zsh_complete "orch-detect --stack b"
	assert_equal "$output" "beta"
	run -0 zsh_complete "orch-exec --con"
	assert_equal "$output" "--config"
	run -0 zsh_complete "orch-exec --config "
	assert_equal "$output" "(files)"
}
