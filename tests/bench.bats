#!/usr/bin/env bats
# The benchmarks' smoke run (tests/bench/run.sh --quick): every benchmark
# runs at a tiny size and prints its row, so they do not rot. The figures
# themselves are `make bench`'s (tests/bench/README.md).

load test_helper

@test "bench: every benchmark runs at a small size and prints its figures" {
	command -v ninja >/dev/null || skip "ninja is not installed (apt-get install ninja-build)"
	[ -x /usr/bin/time ] || skip "/usr/bin/time is not installed (apt-get install time)"
	command -v curl >/dev/null || skip "curl is not installed (apt-get install curl)"
	run -0 --separate-stderr "$ORCH_ROOT/tests/bench/run.sh" --quick --out "$BATS_TEST_TMPDIR/bench"
	assert_equal "$stderr" ""
	local name
	for name in S1 S2 S3 S4 detect cycle linear llm; do
		assert_line --regexp "^$name +"
	done
	# The world: orch and the round-robin executor, with every figure.
	assert_line --regexp '^world +orch +[0-9.]+% +[0-9]+ +[0-9]+/[0-9]+ +[0-9-]+ +[0-9-]+ +[0-9-]+ +[0-9.]+% +'
	assert_line --regexp '^world +rr +[0-9.]+% +[0-9]+ +[0-9]+/[0-9]+ '
	assert_line --regexp '^world +design '
	# Retention: the figures at each mark, and the ratios.
	local mark
	for mark in 4 10 20 40; do
		assert_line --regexp "^retention +cycle +$mark +context +[0-9]+ B +database +[0-9]+ B, its runs' contexts +[0-9]+ B "
	done
	assert_line --regexp '^retention +from cycle 10 to 40: context x[0-9.]+, database x[0-9.]+, database less the contexts x[0-9.]+ '
	# Retention acted: at most 8 cycles and 4 versions kept at the end.
	assert_line --regexp '^retention +cycle +40 .*\(8 cycles, [0-9]+ runs, 4 versions, '

	# The shared quota: the ideal schedule, each run against it, the ratios.
	assert_line --regexp '^quota +ideal [0-9.]+ s \(2 windows of 1 s, one turn alone [0-9.]+ s\)$'
	assert_line --regexp '^quota +shared +[0-9.]+ s x[0-9.]+ of ideal, [0-9]+ 429s \([0-9.]+ a window\)$'
	assert_line --regexp '^quota +unshared +[0-9.]+ s x[0-9.]+ of ideal, [0-9]+ 429s \([0-9.]+ a window\)$'
	assert_line --regexp '^quota +shared/unshared: time x[0-9.]+, 429s [0-9]+ against [0-9]+$'

	# The dry run's error against the cycles that followed it.
	local kind
	for kind in duration completion prompt cycle; do
		assert_line --regexp "^estimate +$kind +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+$"
	done

	assert_equal "$(grep -c '^linear ' <<<"$output")" 3
	# The anchors ran too: ninja and make beside orch-exec, the raw query
	# beside orch-detect, and the loopback server answered every call.
	assert_line --regexp '^S2 .* ninja +[0-9.]+ s .* make +[0-9.]+ s'
	assert_line --regexp '^detect +raw SQL query [0-9.]+ s'
	assert_line --regexp '^llm +5 calls .* 5 requests over 5 connections .* 5 curl processes at once [0-9.]+ s: orch/curl x[0-9.]+$'
	# Both paths and the anchor, plain and over TLS.
	assert_line --regexp '^llm +5 calls http +orch-exec in-process .* 5 requests over [1-5] connections '
	assert_line --regexp '^llm +5 calls https +orch-exec in-process .* 5 requests over [1-5] connections '
	assert_line --regexp '^llm +5 calls https +curl --parallel '
}

@test "bench: a missing benchmark name is a usage error" {
	run -64 --separate-stderr "$ORCH_ROOT/tests/bench/run.sh" --quick nonsense
	assert_equal "$stderr" "run.sh: unknown benchmark 'nonsense'"
}

@test "bench: hosts on one PostgreSQL run at a small size: figures, no stack run twice, a killed host's stacks taken over" {
	[ -x "${ORCH_TEST_PG_BINDIR:-/usr/lib/postgresql/15/bin}/initdb" ] ||
		skip "no PostgreSQL server (apt-get install postgresql)"
	run -0 --separate-stderr "$ORCH_ROOT/tests/bench/hosts.sh" --quick
	assert_equal "$stderr" ""
	local n
	for n in 1 2 4; do
		assert_line --regexp "^PostgreSQL, $n +[0-9]+ +[0-9.]+ +x[0-9.]+ +0 +[0-9]+% +[0-9.]+ +[0-9.]+ +[0-9.]+$"
	done
	assert_line --regexp '^SQLite, 1 +[0-9]+ +[0-9.]+ +x[0-9.]+ +0 +[0-9]+% +- +[0-9.]+ +-$'
	assert_line --regexp "^kill -9 of host 1's orch-exec: [0-9]+ stacks it held; host 2 ran them within [0-9]+ ms \(lease 1500 ms, host 2's longest pass [0-9]+ ms\), 0 never; 0 overlaps$"
	# Within the lease and two passes of host 2's: the one it was in when
	# the lease ran out, and the next, which runs them.
	[[ $output =~ within\ ([0-9]+)\ ms.*longest\ pass\ ([0-9]+)\ ms ]]
	(( BASH_REMATCH[1] <= 1500 + 2 * BASH_REMATCH[2] )) ||
		fail "ran ${BASH_REMATCH[1]} ms after the kill: past the lease and two passes of ${BASH_REMATCH[2]} ms"
}
