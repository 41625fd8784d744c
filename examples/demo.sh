#!/bin/sh
# The orch demo, as far as the pipeline is built: a stack with an idea and
# a waiting user message, what orch-detect finds, the graph orch-graph
# makes of it, and what orch-decide would decide for an empty cycle.
#
#   make demo            builds first, then runs this
#
# orch-exec, which runs the agents (examples/agents/ holds an offline team
# of example agents for it; the default agent is the LLM agent
# `orch-agent --role NAME`), is not built yet: see the README.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PATH="${ORCH_DEMO_BIN:-$root/bin}:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/orch-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ORCH_DB="$work/orch.db"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

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

say "orch-graph: the execution graph, in waves"
orch-graph <"$work/status.json" >"$work/graph.json"
jq -r '.waves | to_entries[] | "  wave \(.key): \(.value | join(" + "))"' "$work/graph.json"

say "orch-graph --format dot: the same graph for Graphviz"
orch-graph --format dot <"$work/status.json"

say "orch-decide --no-db: the decision for two imagined outcomes of this graph"
for outcome in completed failed; do
	jq -c --arg outcome "$outcome" '
	  {type: "orch.execution", version: 1, stack, execution_id: null, cycle: null,
	   ran: true, skip_reason: null, max_priority,
	   nodes: [.nodes[] | .status = (if .agent == "builder" then $outcome else "completed" end)]}' \
		"$work/graph.json" |
		orch-decide --no-db |
		jq -r --arg outcome "$outcome" '"  builder \($outcome): \(.action)" +
		      (if .pause_ms > 0 then " for \(.pause_ms) ms" else "" end) + " (\(.reason))"'
done
