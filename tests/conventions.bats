#!/usr/bin/env bats
# What every orch program promises, checked for each of them: help, version,
# usage errors, write errors, and a man page that lints clean.

load test_helper

@test "every program: --help prints the usage on stdout and exits 0" {
	for p in $ORCH_PROGRAMS; do
		run -0 --separate-stderr "$p" --help
		assert_equal "$stderr" ""
		[[ ${lines[0]} == "usage: $p"* ]] || fail "$p --help first line: ${lines[0]}"
	done
}

@test "every program: -h is --help" {
	for p in $ORCH_PROGRAMS; do
		run -0 "$p" --help
		local long=$output
		run -0 "$p" -h
		assert_equal "$output" "$long"
	done
}

@test "every program: --version prints one line 'NAME 0.1.0'" {
	for p in $ORCH_PROGRAMS; do
		run -0 --separate-stderr "$p" --version
		assert_equal "$output" "$p 0.1.0"
		assert_equal "$stderr" ""
	done
}

@test "every program: an unknown flag exits 64 with the usage and a hint" {
	for p in $ORCH_PROGRAMS; do
		run -64 --separate-stderr "$p" --no-such-flag
		assert_equal "$output" ""
		[[ ${stderr_lines[0]} == "$p: "* ]] || fail "$p: first line: ${stderr_lines[0]}"
		[[ ${stderr_lines[1]} == "usage: $p"* ]] || fail "$p: second line: ${stderr_lines[1]}"
		assert_equal "${stderr_lines[2]}" "Try '$p --help' for more information."
	done
}

@test "every program: a usage error shows the argument it echoes escaped, never obeyed" {
	local evil=$'\e]0;pwned\a\e[2J\x9b\xc2\x9bx\ny'
	for p in $ORCH_PROGRAMS; do
		run -64 --separate-stderr "$p" "--$evil"
		assert_equal "${stderr_lines[0]}" "$p: unknown option '-- ]0;pwned  [2J? x y'"
		assert_equal "${#stderr_lines[@]}" 3
	done
	# An option's value, a subcommand, an operand: each echoed escaped.
	run -64 --separate-stderr orch-stack --now "1$evil"
	assert_equal "${stderr_lines[0]}" "orch-stack: --now: '1 ]0;pwned  [2J? x y' is not a whole number from 0 to 4611686018427387903"
	run -64 --separate-stderr orch-exec -j "$evil"
	assert_equal "${stderr_lines[0]}" "orch-exec: --jobs: ' ]0;pwned  [2J? x y' is not a whole number from 1 to 10000"
	run -64 --separate-stderr orch "$evil"
	assert_equal "${stderr_lines[0]}" "orch: ' ]0;pwned  [2J? x y' is not an orch subcommand"
	orch-stack init
	run -66 --separate-stderr orch-stack show "$evil"
	assert_equal "$stderr" "orch-stack: no stack ' ]0;pwned  [2J? x y'"
}

@test "every program: a write error on stdout exits 70 and says so" {
	for p in $ORCH_PROGRAMS; do
		run -70 --separate-stderr bash -c "$p --help >/dev/full"
		[[ $stderr == "$p: write error"* ]] || fail "$p: $stderr"
	done
}

@test "every program: the help's first line is the man page's SYNOPSIS" {
	for p in $ORCH_PROGRAMS; do
		local page=$ORCH_ROOT/man/$p.1
		[ -f "$page" ] || fail "no man page for $p"
		local usage synopsis
		usage=$("$p" --help | head -n 1 | sed 's/^usage: //')
		synopsis=$(mandoc -T utf8 -O width=1000 "$page" | sed 's/.\x08//g' |
			awk '/^SYNOPSIS/{getline; print; exit}' | sed 's/^ *//')
		assert_equal "$synopsis" "$usage"
	done
}

@test "every man page lints clean with mandoc and groff" {
	local page
	for page in "$ORCH_ROOT"/man/*.[17]; do
		run -0 mandoc -T lint -W warning "$page"
		assert_equal "$output" ""
		run -0 bash -c "groff -ww -z -mandoc '$page' 2>&1"
		assert_equal "$output" ""
	done
}

@test "every program that reads the configuration file warns once of each unknown key" {
	mkdir -p "$HOME/.config/orch"
	local f=$HOME/.config/orch/config
	printf '%s\n' 'exec.timeout = 1000' 'exec.tiemout = 2000' '# fine' 'detect.sleepy = yes' >"$f"
	orch-stack init
	local warned="$f:2: unknown key 'exec.tiemout'
$f:4: unknown key 'detect.sleepy'"
	run -0 --separate-stderr orch-exec </dev/null
	assert_equal "$stderr" "$(sed 's/^/orch-exec: /' <<<"$warned")"
	run -0 --separate-stderr orch-detect - </dev/null
	assert_equal "$stderr" "$(sed 's/^/orch-detect: /' <<<"$warned")"
	run -0 --separate-stderr orch-decide --no-db </dev/null
	assert_equal "$stderr" "$(sed 's/^/orch-decide: /' <<<"$warned")"
	run -65 --separate-stderr orch-agent --role planner </dev/null
	assert_equal "$stderr" "$(sed 's/^/orch-agent: /' <<<"$warned")
orch-agent: no input: expected an orch.context document"
	# orch-stack config lists them in its table, and warns once, not twice.
	run -0 --separate-stderr orch-stack config
	assert_equal "$stderr" "$(sed 's/^/orch-stack: /' <<<"$warned")"
	# --config FILE is read the same way.
	run -0 --separate-stderr orch-decide --no-db --config "$f" </dev/null
	assert_equal "${#stderr_lines[@]}" 2
}
