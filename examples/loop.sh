#!/bin/sh
# The whole orch daemon as one shell loop: a cycle of every stack that is
# due, then `orch-decide --wait` sleeps until the next one is due. The loop
# ends when no stack is left running (orch-decide --wait exits 1), or on
# the first error, with its status. Decisions go to standard output, one
# JSON document a line: a log.
#
#   sh examples/loop.sh >>orch.log
#
# Agent commands, timeouts and retries come from the configuration file,
# ~/.config/orch/config (see `orch-stack config`). ORCH_LOOP_CYCLES=N stops
# after N cycles; the tests use it.
set -u

n=0
while :; do
	orch-detect --all | orch-graph | orch-exec | orch-decide --wait
	status=$?
	[ "$status" -eq 0 ] || break
	n=$((n + 1))
	if [ -n "${ORCH_LOOP_CYCLES:-}" ] && [ "$n" -ge "$ORCH_LOOP_CYCLES" ]; then
		break
	fi
done
# 1: no stack is left running, the normal end.
[ "$status" -eq 1 ] && status=0
exit "$status"
