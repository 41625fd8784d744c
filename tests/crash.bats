#!/usr/bin/env bats
# Crash safety: SIGKILL at random moments to orch-exec, to an agent it
# runs, and to orch-decide, in the middle of full pipelines over a
# populated store; after each kill the next cycle recovers on its own.
# tests/crash/crash.sh does the killing and checks, after every kill:
# PRAGMA integrity_check is ok; no todo is left in_progress once no
# pipeline runs; no user message is lost or answered twice; artifact
# versions and cycle numbers are contiguous; no two cycles of a stack
# overlap; the abandoned cycle is recorded as failed, "abandoned: its
# orch-exec (HOST:PID) is gone"; the next pipeline takes every lease over.
#
# A quick subset runs here; `make crash` runs 200 kills and more.
# ORCH_CRASH_SEED=N replays a run; ORCH_CRASH_KILLS=N sets the count.

load test_helper

crash() {
	local target=$1 kills=$2 seed=${ORCH_CRASH_SEED:-$RANDOM}
	# A hang is a failure too, not a CI run that never ends.
	run --separate-stderr timeout 600 "$BATS_TEST_DIRNAME/crash/crash.sh" \
		-t "$target" -n "${ORCH_CRASH_KILLS:-$kills}" -s "$seed" "$BATS_TEST_TMPDIR/crash"
	# On failure, the finding and the rounds before it: the work
	# directory goes with the test.
	(( status == 0 )) && [[ $stderr == "crash.sh: seed $seed: "*" kills "* ]] || {
		cat "$BATS_TEST_TMPDIR/crash/log" 2>/dev/null
		fail "exit $status, seed $seed: $stderr"
	}
}

@test "SIGKILL of orch-exec mid-cycle: the next pipeline takes over, nothing lost" {
	crash exec 5
}

@test "SIGKILL of an agent: orch-exec retries or fails the node, the cycle is recorded" {
	crash agent 3
}

@test "SIGKILL of orch-decide: the cycles are recorded, the next pipeline goes on" {
	crash decide 2
}
