#!/usr/bin/env bats
# tests/run-lanes.sh, make check's runner: files dealt to lanes that run
# at once, every lane's output whole at the end, a failure named as it
# comes and the run's status.

load test_helper

setup() {
	orch_test_env
	D=$BATS_TEST_TMPDIR
	RUN_LANES=$ORCH_ROOT/tests/run-lanes.sh
	export ORCH_BUILD=$TEST_BUILD
}

# suite NAME TESTS...: a bats file of one test per argument, "ok" passes
# and "fail" fails; each takes 2 s, and an "ok" writes "NAME START END"
# (ms) to $D/spans, so lanes that run at once show it.
suite() {
	local name=$1 t i=0
	shift
	for t in "$@"; do
		i=$((i + 1))
		if [ "$t" = fail ]; then
			printf '@test "%s %d fails" { sleep 2; false; }\n' "$name" "$i"
		else
			printf '@test "%s %d" { s=$(date +%%s%%3N); sleep 2; echo "%s $s $(date +%%s%%3N)" >>"%s/spans"; echo "$ORCH_TEST_ENGINE" >>"%s/engines"; }\n' \
				"$name" "$i" "$name" "$D" "$D"
		fi
	done >"$D/$name.bats"
}

@test "run-lanes: each engine's files are dealt to its lanes and run at once, every lane shown whole" {
	suite a ok ok ok
	suite b ok ok
	suite c ok
	run -0 --separate-stderr env ORCH_TEST_PG_BINDIR=/nonexistent "$RUN_LANES" sqlite:2 "$D/a.bats" "$D/b.bats" "$D/c.bats" \
		postgres:1 "$D/c.bats"
	# Three tests in one lane, three in the other, at once: each lane
	# began before the other ended (by the tests' own clocks, which a
	# loaded machine only stretches).
	local as ae bs be
	read -r as ae < <(awk '$1 == "a" { if (!s || $2 < s) s = $2; if ($3 > e) e = $3 } END { print s, e }' "$D/spans")
	read -r bs be < <(awk '$1 != "a" { if (!s || $2 < s) s = $2; if ($3 > e) e = $3 } END { print s, e }' "$D/spans")
	(( as < be && bs < ae )) || fail "one lane after the other: a.bats $as-$ae, b.bats and c.bats $bs-$be"
	assert_line "run-lanes.sh: PostgreSQL skipped: no server in /nonexistent (make deps installs it)"
	assert_line "# sqlite.0: $D/a.bats "
	assert_line "# sqlite.1: $D/b.bats $D/c.bats "
	assert_equal "$(grep -c '^ok ' <<<"$output")" 6
	assert_equal "$(sort -u "$D/engines")" sqlite
	assert_equal "$stderr" ""
}

@test "run-lanes: a failing lane is named as it fails, shown whole, and the run is 1" {
	suite a ok fail
	suite b ok
	run -1 --separate-stderr "$RUN_LANES" sqlite:2 "$D/a.bats" "$D/b.bats"
	assert_line "run-lanes.sh: sqlite.0: not ok 2 a 2 fails"
	assert_line "not ok 2 a 2 fails"
	assert_line "ok 1 b 1"
	assert_equal "$stderr" "run-lanes.sh: a lane failed"
}

@test "run-lanes: usage errors are 64, before any test runs" {
	suite a ok
	run -64 --separate-stderr "$RUN_LANES"
	assert_equal "$stderr" "run-lanes.sh: usage: tests/run-lanes.sh ENGINE:LANES FILE... [ENGINE:LANES FILE...]..."
	run -64 --separate-stderr "$RUN_LANES" "$D/a.bats" sqlite:1
	assert_equal "$stderr" "run-lanes.sh: '$D/a.bats' before any ENGINE:LANES"
	run -64 --separate-stderr "$RUN_LANES" sqlite:1 "$D/none.bats"
	assert_equal "$stderr" "run-lanes.sh: no test file '$D/none.bats'"
	run -64 --separate-stderr "$RUN_LANES" sqlite:1
	assert_equal "$stderr" "run-lanes.sh: sqlite:1 has no files"
	run -64 --separate-stderr env -u ORCH_BUILD "$RUN_LANES" sqlite:1 "$D/a.bats"
	assert_equal "$stderr" "run-lanes.sh: ORCH_BUILD is not set (the build whose programs to test)"
	[ ! -e "$D/engines" ] || fail "a test ran"
}
