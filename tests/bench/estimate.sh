#!/usr/bin/env bash
# estimate.sh - how far orch-exec --dry-run's estimate is from the cycle
# that follows it (issue 13).
#
# usage: tests/bench/estimate.sh [--cycles N] [--warmup N] [--stacks N] [--out DIR]
#
# The world: N stacks (default 4), each given a todo and a user message
# before every cycle, so the builder and the communicator have work each
# time and the planner and the reviewer as detection finds it. Agents
# sleep like LLM calls, each run a random time from half to one and a
# half times its agent's base (planner 0.3 s, builder 0.5 s, communicator
# 0.2 s, reviewer 0.3 s), report completion tokens drawn the same way
# around 400, 800, 150 and 300, and note the bytes of the context they
# read. Each cycle: orch-detect --all --force | orch-graph, then
# orch-exec -n on those graphs, then orch-exec on the same graphs.
#
# After --warmup cycles (default 5; their estimates have little history),
# each estimate is set against the run that followed it, node by node:
#   duration     expected duration_ms against the node's duration_ms
#   completion   expected completion_tokens against what the run reported
#   prompt       prompt_bytes against the bytes the agent read
#   cycle        critical_path_ms against the cycle's duration_ms
# as the median and p90 of |estimate - actual| / actual, over the nodes
# (the stacks' cycles) that ran and completed and had an estimate.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${ORCH_BUILD:-$ROOT/build}
CYCLES=30
WARMUP=5
STACKS=4
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--cycles) CYCLES=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--stacks) STACKS=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "estimate.sh: unknown argument '$1'" >&2; exit 64 ;;
	esac
	shift
done
export PATH=$BUILD/bin:$PATH
unset XDG_CONFIG_HOME
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/orch-estimate.XXXXXX")
	trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT/agents"
export HOME=$OUT/home ORCH_DB=$OUT/orch.db
mkdir -p "$HOME"
rm -f "$ORCH_DB" "$ORCH_DB-wal" "$ORCH_DB-shm" "$OUT/actual" "$OUT/pairs"

# agent NAME SECONDS TOKENS JQ: sleeps SECONDS x U(0.5, 1.5), notes
# "STACK AGENT CYCLE BYTES TOKENS" in $OUT/actual, prints what JQ makes
# of the context with a usage of TOKENS x U(0.5, 1.5) completion tokens.
agent() {
	printf '%s\n' "$4" >"$OUT/agents/$1.jq"
	cat >"$OUT/agents/$1" <<EOF
#!/bin/sh
in=\$(cat)
r=\$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
tokens=\$(( $3 * (32768 + r) / 65536 ))
sleep "\$(awk -v s=$2 -v r="\$r" 'BEGIN { printf "%.3f", s * (0.5 + r / 65536) }')"
printf '%s %s %s %s %s\n' "\$(printf %s "\$in" | jq -r '"\(.snapshot.stack.name) \(.agent) \(.cycle)"')" \
	"\$(printf %s "\$in" | wc -c)" "\$tokens" >>'$OUT/actual'
printf %s "\$in" | jq -c -f '$OUT/agents/$1.jq' | jq -c --argjson t "\$tokens" '. + {usage: {completion_tokens: \$t}}'
EOF
	chmod +x "$OUT/agents/$1"
}
agent planner 0.3 400 '{thinking: "plan", actions: []}'
agent builder 0.5 800 '{thinking: "build", actions: [{type: "write_artifact", content: "<p>\(.task.todo.content)</p>"}]}'
agent communicator 0.2 150 '
  if .task.user_message then {actions: [{type: "reply_user", message_id: .task.user_message.id, content: "noted"}]}
  else {actions: []} end'
agent reviewer 0.3 300 '{thinking: "reviewed", actions: []}'
TEAM=(--agent "planner=$OUT/agents/planner" --agent "builder=$OUT/agents/builder"
      --agent "communicator=$OUT/agents/communicator" --agent "reviewer=$OUT/agents/reviewer")

orch-stack init
for ((i = 1; i <= STACKS; i++)); do
	orch-stack create "e$i" --idea "a page" >/dev/null
	orch-stack start "e$i" >/dev/null
done

for ((c = 1; c <= CYCLES; c++)); do
	for ((i = 1; i <= STACKS; i++)); do
		orch-stack todo add "e$i" "part $c" >/dev/null
		orch-stack say "e$i" "how is part $c going?" >/dev/null
	done
	orch-detect --all --force | orch-graph >"$OUT/graphs"
	orch-exec -n "$OUT/graphs" >"$OUT/estimate.$c"
	orch-exec -q "${TEAM[@]}" "$OUT/graphs" >"$OUT/execution.$c"
	[ "$c" -le "$WARMUP" ] && continue
	# "KIND ESTIMATE ACTUAL" for each pair.
	jq -r --slurpfile x <(jq -s . "$OUT/execution.$c") '
	  .stack.name as $s
	  | ($x[0][] | select(.stack.name == $s)) as $run
	  | (.nodes[] | select(.status == "run") | . as $e
	     | ($run.nodes[] | select(.agent == $e.agent and .status == "completed")) as $r
	     | (if $e.duration_ms then "duration \($e.duration_ms) \($r.duration_ms)" else empty end),
	       "node \($s) \($e.agent) \($run.cycle) \($e.prompt_bytes) \($e.completion_tokens)"),
	    (if .totals.unknown_duration == 0 and $run.summary.failed == 0
	     then "cycle \(.totals.critical_path_ms) \($run.summary.duration_ms)" else empty end)' \
		"$OUT/estimate.$c" >>"$OUT/pairs"
done

# The prompt and completion pairs, from what the agents noted.
awk 'NR == FNR { bytes[$1" "$2" "$3] = $4; tokens[$1" "$2" "$3] = $5; next }
     $1 == "node" { k = $2" "$3" "$4
                    if (k in bytes) print "prompt", $5, bytes[k]
                    if (k in tokens && $6 != "null") print "completion", $6, tokens[k]; next }
     { print }' "$OUT/actual" "$OUT/pairs" >"$OUT/pairs.all"

printf '# estimate: %d stacks, %d cycles (%d warm-up), agents sleep 0.3/0.5/0.2/0.3 s x U(0.5, 1.5)\n' \
	"$STACKS" "$CYCLES" "$WARMUP"
printf '%-11s %6s %12s %10s %14s %14s\n' what pairs median_error p90_error median_estimate median_actual
for kind in duration completion prompt cycle; do
	awk -v k="$kind" '$1 == k && $3 > 0 { e = $2 - $3; if (e < 0) e = -e; print e / $3, $2, $3 }' \
		"$OUT/pairs.all" >"$OUT/err.$kind"
	n=$(wc -l <"$OUT/err.$kind")
	if [ "$n" -eq 0 ]; then
		printf '%-11s %6d\n' "$kind" 0
		continue
	fi
	col() { cut -d ' ' -f "$1" "$OUT/err.$kind" | sort -g | awk -v p="$2" '{ v[NR] = $1 }
		END { i = int(p * NR / 100 + 0.999999); if (i < 1) i = 1; print v[i] }'; }
	printf '%-11s %6d %12.3f %10.3f %14s %14s\n' "$kind" "$n" "$(col 1 50)" "$(col 1 90)" \
		"$(col 2 50)" "$(col 3 50)"
done
