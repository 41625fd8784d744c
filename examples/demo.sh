#!/bin/sh
# The orch demo: one stack of offline example agents, run cycle by cycle
# through the real pipeline until it has nothing left to do.
#
#   sh examples/demo.sh            (make demo builds first and runs this)
#
# The agents in examples/agents/ are small jq scripts that need no network.
# Without the --agent overrides below, every agent would be the built-in LLM
# agent, `orch-agent --role NAME`, which needs an API key.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PATH="$root/bin:$PATH"
agents="$here/agents"
work=$(mktemp -d "${TMPDIR:-/tmp}/orch-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ORCH_DB="$work/orch.db"
cycles=${ORCH_DEMO_CYCLES:-12}

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
[ -t 1 ] && [ -z "${NO_COLOR:-}" ] || say() { printf '\n== %s\n' "$*"; }

say "A new stack with an idea, and a user message waiting for it"
orch-stack init
orch-stack create alpha --idea "a pomodoro timer web app"
orch-stack say alpha "please add a dark mode instead of the white page"
orch-stack start alpha
orch-stack list

i=1
while [ "$i" -le "$cycles" ]; do
	say "Cycle $i: orch-detect --all | orch-graph | orch-exec | orch-decide --wait"
	orch-detect --all |
		orch-graph |
		orch-exec -j 4 --timeout 10000 \
			--agent planner="$agents/planner" \
			--agent builder="$agents/builder" \
			--agent communicator="$agents/communicator" \
			--agent reviewer="$agents/reviewer" >"$work/exec.json"
	jq -r '"waves: " + ([.waves[] | join(" + ")] | join("  ->  ") | if . == "" then "(no agent has work)" else . end),
	       (.nodes[] | "  \(.agent): \(.status) in \(.duration_ms // 0) ms, priority \(.priority): \(.reason)" +
	                   (if .error then " [\(.error)]" else "" end))' "$work/exec.json"
	wait=--wait
	[ "$(jq '.nodes | length' "$work/exec.json")" -gt 0 ] || wait=
	status=0
	orch-decide $wait <"$work/exec.json" >"$work/decision.json" || status=$?
	jq -r '"decision: \(.action)" + (if .pause_ms > 0 then " for \(.pause_ms) ms" else "" end) + " (\(.reason))"' \
		"$work/decision.json"
	[ "$status" -eq 0 ] || break
	if [ -z "$wait" ]; then
		say "Nothing left to do: the stack pauses until new work arrives"
		break
	fi
	i=$((i + 1))
done

say "What the agents did"
orch-stack todo list alpha
orch-stack history alpha
sqlite3 "$ORCH_DB" "SELECT 'artifact version ' || version || ': ' || length(content) || ' bytes' FROM artifacts ORDER BY version" 2>/dev/null || true
sqlite3 "$ORCH_DB" "SELECT 'reply to \"' || content || '\": ' || response FROM user_messages" 2>/dev/null || true
