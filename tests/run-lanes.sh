#!/usr/bin/env bash
# run-lanes.sh - the suite in lanes that run at once: make check's runner.
#
# usage: tests/run-lanes.sh ENGINE:LANES FILE... [ENGINE:LANES FILE...]...
#   ENGINE  sqlite or postgres (ORCH_TEST_ENGINE for its bats runs)
#   LANES   how many bats runs share that engine's FILEs
#
# The tests wait on processes, servers and clocks far more than they use
# the CPU, so a few bats runs at once take little more than the longest
# of them. Each engine's files are dealt to its lanes longest first (by
# their number of tests) to the lane with the fewest so far; each lane is
# one bats run (on PostgreSQL, one throwaway cluster: tests/pg.bash).
# While they run, a line a minute says how far they are and each failure
# is named as it comes; every lane's output is printed whole when all
# have ended, and the status is 1 if any failed. The programs come from $ORCH_BUILD, as for bats.
# PostgreSQL lanes are skipped, saying so, without its server's programs.
set -uo pipefail

die() { echo "run-lanes.sh: $*" >&2; exit 64; }

[ $# -gt 0 ] || die "usage: tests/run-lanes.sh ENGINE:LANES FILE... [ENGINE:LANES FILE...]..."
[ -n "${ORCH_BUILD-}" ] || die "ORCH_BUILD is not set (the build whose programs to test)"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/orch-lanes.XXXXXX") || exit 70
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$OUT"' EXIT
trap 'exit 130' INT TERM

# deal ENGINE LANES FILE...: the files into LANES lists, $OUT/ENGINE.K,
# and each list's number of tests into $OUT/ENGINE.K.tests.
deal() {
	local engine=$1 lanes=$2 f k best
	shift 2
	local -a load
	for ((k = 0; k < lanes; k++)); do
		load[k]=0
		: >"$OUT/$engine.$k"
	done
	while read -r n f; do
		best=0
		for ((k = 1; k < lanes; k++)); do
			((load[k] < load[best])) && best=$k
		done
		echo "$f" >>"$OUT/$engine.$best"
		load[best]=$((load[best] + n))
	done < <(for f in "$@"; do
		echo "$(grep -c '^@test' "$f") $f"
	done | sort -rn -k1,1)
	for ((k = 0; k < lanes; k++)); do
		echo "${load[k]}" >"$OUT/$engine.$k.tests"
	done
}

# Read the groups: ENGINE:LANES, then its files.
engine="" lanes=""
declare -a files groups
flush() {
	[ -n "$engine" ] || return 0
	[ ${#files[@]} -gt 0 ] || die "$engine:$lanes has no files"
	deal "$engine" "$lanes" "${files[@]}"
	groups+=("$engine:$lanes")
}
for a in "$@"; do
	if [[ $a =~ ^(sqlite|postgres):([1-9][0-9]?)$ ]]; then
		flush
		engine=${BASH_REMATCH[1]} lanes=${BASH_REMATCH[2]} files=()
	elif [ -z "$engine" ]; then
		die "'$a' before any ENGINE:LANES"
	else
		[ -f "$a" ] || die "no test file '$a'"
		files+=("$a")
	fi
done
flush

PG_BINDIR=${ORCH_TEST_PG_BINDIR:-/usr/lib/postgresql/15/bin}
declare -a lane_names
for g in "${groups[@]}"; do
	engine=${g%%:*} lanes=${g#*:}
	if [ "$engine" = postgres ] && ! { [ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/pg_ctl" ] && [ -x "$PG_BINDIR/postgres" ]; }; then
		echo "run-lanes.sh: PostgreSQL skipped: no server in $PG_BINDIR (make deps installs it)"
		continue
	fi
	for ((k = 0; k < lanes; k++)); do
		[ -s "$OUT/$engine.$k" ] || continue
		mapfile -t lane <"$OUT/$engine.$k"
		ORCH_TEST_ENGINE=$engine bats "${lane[@]}" >"$OUT/$engine.$k.log" 2>&1 </dev/null &
		PIDS+=($!)
		lane_names+=("$engine.$k")
	done
done

# While they run: a line a minute with how far they are, and each failure
# as it comes (its details follow in its lane's output at the end).
total=0
for name in "${lane_names[@]}"; do
	total=$((total + $(<"$OUT/$name.tests")))
done
shown=0 ticks=0
while :; do
	running=0
	for p in "${PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && running=1
	done
	logs=()
	for name in "${lane_names[@]}"; do
		logs+=("$OUT/$name.log")
	done
	[ ${#logs[@]} -gt 0 ] || break
	mapfile -t failed < <(grep -H '^not ok ' "${logs[@]}" | sed "s|^$OUT/\(.*\)\.log:|\1: |")
	for ((i = shown; i < ${#failed[@]}; i++)); do
		echo "run-lanes.sh: ${failed[$i]}"
	done
	shown=${#failed[@]}
	[ "$running" = 1 ] || break
	if ((++ticks % 30 == 0)); then
		echo "run-lanes.sh: $(cat "${logs[@]}" | grep -c '^\(not \)\{0,1\}ok ') of about $total tests run, $shown failed"
	fi
	sleep 2
done
status=0
for i in "${!PIDS[@]}"; do
	wait "${PIDS[$i]}" || status=1
done
PIDS=()
for name in "${lane_names[@]}"; do
	echo "# $name: $(tr '\n' ' ' <"$OUT/$name")"
	cat "$OUT/$name.log"
done
[ "$status" = 0 ] || echo "run-lanes.sh: a lane failed" >&2
exit "$status"
