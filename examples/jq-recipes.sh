#!/bin/sh
# jq recipes over orch.execution documents: the JSON orch-exec prints, one
# line per stack and cycle, each node with its agent, status and time. Keep
# them with tee,
#
#   orch-detect --all | orch-graph | orch-exec | tee -a executions.jsonl | orch-decide
#
# or read them back from the store, which records every cycle's:
# `orch-stack cycle STACK N` prints one, so for every stack and cycle
#
#   orch-stack names | while read -r s; do
#           orch-stack history "$s" --limit 100000 --json |
#                   jq -r 'select(.status != "running") | .cycle' |
#                   while read -r n; do orch-stack cycle "$s" "$n"; done
#   done | jq-recipes.sh failures
#
# Usage: jq-recipes.sh RECIPE [FILE ...]   (standard input without FILE)
#
#   had-work   which agents had work: "STACK AGENT CYCLES", the cycles in
#              which the agent was a node
#   slowest    the slowest node of each cycle: "STACK CYCLE AGENT MS"
#   failures   "STACK AGENT N failed M skipped of NODES" per agent
#
# Documents with "ran": false (another pipeline held the stack) count for
# none of them. Every recipe is one jq program: copy the one you need.
set -eu

case ${1:-} in
had-work)
	prog='[inputs | select(.ran) | .stack.name as $s | .nodes[] | {s: $s, agent}]
	      | group_by([.s, .agent])[]
	      | "\(.[0].s) \(.[0].agent) \(length)"'
	;;
slowest)
	prog='inputs | select(.ran)
	      | (.nodes | map(select(.duration_ms != null))) as $timed
	      | select($timed | length > 0)
	      | ($timed | max_by(.duration_ms)) as $n
	      | "\(.stack.name) \(.cycle) \($n.agent) \($n.duration_ms)"'
	;;
failures)
	prog='[inputs | select(.ran) | .stack.name as $s | .nodes[] | {s: $s, agent, status}]
	      | group_by([.s, .agent])[]
	      | "\(.[0].s) \(.[0].agent)"
	        + " \(map(select(.status == "failed")) | length) failed"
	        + " \(map(select(.status == "skipped")) | length) skipped"
	        + " of \(length)"'
	;;
*)
	echo "usage: jq-recipes.sh had-work|slowest|failures [FILE ...]" >&2
	exit 64
	;;
esac
shift
exec jq -n -r "$prog" "$@"
