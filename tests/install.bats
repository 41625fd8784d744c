#!/usr/bin/env bats
# make install and make uninstall, as a packager runs them: a build of its
# own with PREFIX compiled in, staged under DESTDIR; and a plain install
# whose programs find their data with no environment variables.

load test_helper

setup_file() {
	export B=$BATS_FILE_TMPDIR/build P=$BATS_FILE_TMPDIR/prefix D=$BATS_FILE_TMPDIR/stage
	# Built once, with -j: every test installs from it without compiling.
	make -C "$BATS_TEST_DIRNAME/.." -j4 BUILD="$B" PREFIX="$P" DESTDIR="$D" install \
		>"$BATS_FILE_TMPDIR/make.log" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/make.log" >&3; return 1; }
}

# The files a PREFIX install must hold, relative to PREFIX, sorted.
expected_files() {
	local p f
	for p in $ORCH_PROGRAMS; do
		echo "bin/$p"
		echo "share/bash-completion/completions/$p"
	done
	for f in "$ORCH_ROOT"/man/*.1; do echo "share/man/man1/${f##*/}"; done
	for f in "$ORCH_ROOT"/man/*.7; do echo "share/man/man7/${f##*/}"; done
	for f in "$ORCH_ROOT"/prompts/*.md; do echo "share/orch/prompts/${f##*/}"; done
	echo share/doc/orch/README.md
	for f in "$ORCH_ROOT"/examples/agents/*; do echo "share/doc/orch/examples/agents/${f##*/}"; done
	for f in "$ORCH_ROOT"/examples/*; do
		[ -d "$f" ] || echo "share/doc/orch/examples/${f##*/}"
	done
	echo share/zsh/vendor-completions/_orch
}

@test "install stages every program, page, completion, prompt and example under DESTDIR" {
	local root=$D$P
	run -0 bash -c "cd '$root' && find . \\( -type f -o -type l \\) | sed 's|^\\./||' | LC_ALL=C sort"
	assert_equal "$output" "$(expected_files | LC_ALL=C sort)"
	# Nothing outside DESTDIR, and nothing in the source tree's bin/ changed.
	[ ! -e "$P" ] || fail "installed outside DESTDIR: $P"
	local p
	for p in $ORCH_PROGRAMS; do
		[ -x "$root/bin/$p" ] || fail "bin/$p is not executable"
		assert_equal "$(stat -c %a "$root/share/man/man1/$p.1")" "644"
		assert_equal "$(readlink "$root/share/bash-completion/completions/$p")" \
			"$([ "$p" = orch ] || echo orch)"
	done
	assert_equal "$(stat -c %a "$root/share/doc/orch/examples/loop.sh")" "755"
	assert_equal "$(stat -c %a "$root/share/doc/orch/examples/crontab")" "644"
	cmp "$ORCH_ROOT/completions/_orch" "$root/share/zsh/vendor-completions/_orch"
	cmp "$ORCH_ROOT/completions/orch.bash" "$root/share/bash-completion/completions/orch"
	run -0 "$root/bin/orch" stack --version
	assert_output "orch-stack 0.1.0"
}

@test "the installed orch-agent finds its installed prompts with no environment" {
	make -C "$ORCH_ROOT" BUILD="$B" PREFIX="$P" install >"$BATS_TEST_TMPDIR/make.log" 2>&1 ||
		fail "$(cat "$BATS_TEST_TMPDIR/make.log")"
	# From elsewhere, with nothing set: the prompt dir is compiled in.
	cd "$BATS_TEST_TMPDIR"
	run -65 --separate-stderr env -i PATH=/usr/bin:/bin HOME="$HOME" \
		"$P/bin/orch-agent" -v --role reviewer </dev/null
	assert_equal "${stderr_lines[0]}" "orch-agent: prompt: $P/share/orch/prompts/reviewer.md"
	assert_equal "${stderr_lines[1]}" "orch-agent: no input: expected an orch.context document"
	# The umbrella finds the programs beside it; man finds the pages.
	run -0 env -i PATH=/usr/bin:/bin "$P/bin/orch" agent --version
	assert_output "orch-agent 0.1.0"
	if command -v man >/dev/null; then
		run -0 env -i PATH=/usr/bin:/bin MANPATH="$P/share/man" MANPAGER=cat man -P cat 1 orch-stack
		assert_output --partial "orch-stack"
	fi
	make -C "$ORCH_ROOT" BUILD="$B" PREFIX="$P" uninstall >/dev/null
}

@test "the installed completions load and complete" {
	local root=$D$P
	run -0 bash -c "source '$root/share/bash-completion/completions/orch-stack'
		COMP_WORDS=(orch-stack us); COMP_CWORD=1; _orch; echo \"\${COMPREPLY[@]}\""
	assert_output "usage"
	if command -v zsh >/dev/null; then
		run -0 zsh -n "$root/share/zsh/vendor-completions/_orch"
	fi
}

@test "uninstall removes every file install put there" {
	local d=$BATS_TEST_TMPDIR/stage2
	make -C "$ORCH_ROOT" BUILD="$B" PREFIX="$P" DESTDIR="$d" install >/dev/null 2>&1
	[ -x "$d$P/bin/orch-agent" ]
	run -0 make -C "$ORCH_ROOT" BUILD="$B" PREFIX="$P" DESTDIR="$d" uninstall
	run -0 find "$d" \( -type f -o -type l \)
	assert_output ""
}
