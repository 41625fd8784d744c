#!/bin/sh
# The orch demo: a stack with an idea and a waiting user message, run
# cycle after cycle of the whole pipeline until its team has finished,
#
#   orch-detect --all | orch-graph | orch-exec | orch-decide
#
# with the offline example team of examples/agents/ (small jq scripts, no
# network). Those are example agents: the default agent of every role is
# the built-in LLM agent, `orch-agent --role NAME`, and --agent replaces it.
#
#   make demo            builds first, then runs this
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PATH="${ORCH_DEMO_BIN:-$root/bin}:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/orch-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ORCH_DB="$work/orch.db"
cycles=${ORCH_DEMO_CYCLES:-10}

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

team="--agent planner=$here/agents/planner --agent builder=$here/agents/builder
      --agent communicator=$here/agents/communicator --agent reviewer=$here/agents/reviewer"

say "A new stack with an idea, a todo and a user message waiting for it"
orch-stack init
orch-stack create alpha --idea "a pomodoro timer web app"
orch-stack todo add alpha "build the timer" --priority 4
orch-stack say alpha "please add a dark mode instead of the white page"
orch-stack start alpha
orch-stack list

say "orch-detect --all: who has work, how urgent, and why"
orch-detect --all >"$work/status.json"
jq -r '.agents | to_entries[] |
       "  \(.key): " + (if .value.has_work then "priority \(.value.priority)" else "no work" end) +
       " (\(.value.reason))" +
       (if (.value.depends_on | length) > 0 then ", after \(.value.depends_on | join(", "))" else "" end)' \
	"$work/status.json"

say "orch-graph: the execution graph, in waves, and for Graphviz"
orch-graph <"$work/status.json" >"$work/graph.json"
jq -r '.waves | to_entries[] | "  wave \(.key): \(.value | join(" + "))"' "$work/graph.json"
orch-graph --format dot <"$work/status.json"

i=1
while [ "$i" -le "$cycles" ]; do
	say "Cycle $i: orch-detect --all --force | orch-graph | orch-exec | orch-decide"
	# --force: the demo does not wait out the pauses orch-decide chooses.
	# shellcheck disable=SC2086 # $team is words on purpose
	orch-detect --all --force | orch-graph | orch-exec $team |
		tee "$work/execution.json" | orch-decide >"$work/decision.json"
	jq -r '.nodes[] | "  \(.agent): \(.status) in \(.duration_ms // 0) ms" +
	       (if .result then " (\(.result))" else "" end) +
	       (if .error then " (\(.error))" else "" end)' "$work/execution.json"
	jq -r '"  decision: \(.action)" + (if .pause_ms > 0 then " for \(.pause_ms) ms" else "" end) +
	       " (\(.reason))"' "$work/decision.json"
	# The work is done: no agent had any.
	jq -e '.rule == "idle"' "$work/decision.json" >/dev/null && break
	i=$((i + 1))
done

say "What the team made"
orch-stack todo list alpha
orch-stack show --json alpha >"$work/snapshot.json"
jq -r '"  artifact: " + (if .artifact then "version \(.artifact.version), \(.artifact.size) bytes" else "none" end),
       "  unanswered user messages: \(.user_messages | map(select(.processed | not)) | length)"' "$work/snapshot.json"

say "orch-stack history alpha: every cycle and its decision, as recorded"
orch-stack history alpha

say "A finished stack costs nothing: no agent has work, and detection says why"
orch-detect --all --force | jq -r '.agents | to_entries[] | "  \(.key): \(.value.reason)"'
