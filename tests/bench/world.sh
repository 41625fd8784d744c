#!/usr/bin/env bash
# world.sh - the design's headline figures on a simulated world, for orch
# and for the round-robin executor it replaced, in the same run.
#
# usage: tests/bench/world.sh [--seconds N] [--stacks N] [--out DIR] [--executor orch|rr|both]
#
# The world: N stacks (default 4) with an idea each; agents that sleep like
# LLM calls (planner 0.3 s, builder 0.5 s, communicator 0.2 s, reviewer
# 0.3 s) and say in their own output ("thinking": "idle: ...") when they
# had nothing to do; a planner that plans two rounds of todos and then has
# nothing to add; a user message every 2.5 s, to each stack in turn; so
# the stacks finish their work and go quiet while their users still talk.
#
# The executors, each on a fresh copy of the world for --seconds (default
# 120, long enough for the round-robin executor to finish the work too):
#   orch  the daemon: orch-detect --all --follow | orch-graph | orch-exec
#         | orch-decide, with the default configuration
#   rr    the legacy round-robin executor the design replaced: every 5 s,
#         each running stack runs its next agent in turn (planner, builder,
#         communicator, reviewer), through the same orch-exec
#
# The figures, from the store each run leaves:
#   idle       % of agent runs that had nothing to do
#   response   user message written to reply recorded: p50, p95, max (a
#              message unanswered at the end counts as answered then)
#   parallel   % of a stack's busy time with two of its agents at once
#   quiet/h    agent runs per hour on a stack that has finished its work,
#              from 10 s after its last todo was completed (its last
#              review done), replies to its users aside
# printed beside the design's expectations (idle about 40% -> under 5%;
# response 5-20 s -> 1-8 s; parallel 0% -> 30-50%) and orch's targets
# (idle at most 2%, p95 within the communicator's 0.2 s plus 500 ms, no
# run on a quiet stack between its periodic checks).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${ORCH_BUILD:-$ROOT/build}
SECONDS_RUN=120
STACKS=4
OUT=
EXECUTORS="orch rr"
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECONDS_RUN=$2; shift ;;
	--stacks) STACKS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--executor) case $2 in orch|rr) EXECUTORS=$2 ;; both) EXECUTORS="orch rr" ;;
		*) echo "world.sh: --executor: orch, rr or both, not '$2'" >&2; exit 64 ;; esac; shift ;;
	-h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "world.sh: unknown argument '$1'" >&2; exit 64 ;;
	esac
	shift
done
export PATH=$BUILD/bin:$PATH
unset ORCH_DB XDG_CONFIG_HOME
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/orch-world.XXXXXX")
	trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT/agents"
export HOME=$OUT/home # the default configuration: no file
mkdir -p "$HOME"

# --- the agents: sleep like an LLM call, then answer from the context ---

# agent NAME SECONDS JQ: an agent that sleeps, then prints what the jq
# program JQ makes of its context.
agent() {
	printf '%s\n' "$3" >"$OUT/agents/$1.jq"
	printf '#!/bin/sh\nin=$(cat)\nsleep %s\nprintf %%s "$in" | exec jq -c -f %s\n' \
		"$2" "$OUT/agents/$1.jq" >"$OUT/agents/$1"
	chmod +x "$OUT/agents/$1"
}

# sql DB QUERY: read the store, waiting for a writer as orch's programs do.
sql() {
	sqlite3 -cmd '.timeout 30000' "$1" "$2"
}
# Two rounds: three todos for a stack that has none, two more once the
# first three are done, saying the plan is done (README.md: the phase
# "done"); then nothing to add.
agent planner 0.3 '
  .snapshot.todos as $t
  | ($t | map(select(.status == "completed")) | length) as $done
  | if ($t | length) == 0 then
      {thinking: "round 1", actions: [range(3) | {type: "create_todo", content: "round 1, part \(.)", priority: 3}]}
    elif ($t | length) == 3 and $done == 3 then
      {thinking: "round 2", actions: ([range(2) | {type: "create_todo", content: "round 2, part \(.)", priority: 3}]
                                      + [{type: "set_phase", phase: "done"}])}
    else {thinking: "idle: nothing to add", actions: []} end'
agent builder 0.5 '
  {thinking: "todo \(.task.todo.id)",
   actions: [{type: "write_artifact", content: "<p>\(.task.todo.content)</p>"}]}'
agent communicator 0.2 '
  if .task.user_message then
    {thinking: "answering", actions: [{type: "reply_user", message_id: .task.user_message.id, content: "noted"}]}
  else {thinking: "idle: no message", actions: []} end'
# A review is work when there is an artifact it has not reviewed.
agent reviewer 0.3 '
  if .snapshot.artifact != null and .snapshot.artifact.created_at > .snapshot.memory.reviewer.last_review_time
  then {thinking: "reviewed version \(.snapshot.artifact.version)", actions: []}
  else {thinking: "idle: nothing new", actions: []} end'
TEAM=(--agent "planner=$OUT/agents/planner" --agent "builder=$OUT/agents/builder"
      --agent "communicator=$OUT/agents/communicator" --agent "reviewer=$OUT/agents/reviewer")

now_ms() { date +%s%3N; }

# world DB: the stacks, started.
world() {
	local i
	ORCH_DB=$1 orch-stack init
	for ((i = 1; i <= STACKS; i++)); do
		ORCH_DB=$1 orch-stack create "w$i" --idea "a page" >/dev/null
		ORCH_DB=$1 orch-stack start "w$i" >/dev/null
	done
}

# users DB END: a user message every 2.5 s, to each stack in turn, until
# END (ms).
users() {
	local db=$1 end=$2 n=0 t0 due
	t0=$(now_ms)
	while :; do
		due=$((t0 + 2500 * (n + 1)))
		while [ "$(now_ms)" -lt "$due" ]; do sleep 0.05; done
		[ "$due" -lt "$end" ] || break
		ORCH_DB=$db orch-stack say "w$((n % STACKS + 1))" "hello, how is it going? ($n)" >/dev/null
		n=$((n + 1))
	done
}

run_orch() {
	local db=$1 end=$2 pid
	set -m
	ORCH_DB=$db bash -c 'orch-detect --all --follow | orch-graph |
		orch-exec -q "$@" | orch-decide >/dev/null' _ "${TEAM[@]}" 2>"$OUT/orch.err" &
	pid=$!
	set +m
	users "$db" "$end"
	kill -TERM -- -"$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# The round-robin executor: every 5 s, each running stack's next agent.
run_rr() {
	local db=$1 end=$2 tick=0 t0 due upid
	users "$db" "$end" &
	upid=$!
	t0=$(now_ms)
	while [ "$(now_ms)" -lt "$end" ]; do
		sql "$db" "SELECT id, name FROM stacks WHERE execution_state = 'running'" |
		while IFS='|' read -r id name; do
			jq -cn --argjson id "$id" --arg name "$name" --argjson tick "$tick" '
			  ["planner", "builder", "communicator", "reviewer"][$tick % 4] as $a
			  | {type: "orch.graph", version: 1,
			     stack: {id: $id, name: $name, phase: "p", execution_state: "running", created_at: 0},
			     created_at: 0, max_priority: 1,
			     nodes: [{id: "\($name)/\($a)", agent: $a, priority: 1, reason: "its turn", deps: [], wave: 0}],
			     waves: [[$a]]}'
		done | ORCH_DB=$db orch-exec -q -j "$STACKS" "${TEAM[@]}" >/dev/null
		tick=$((tick + 1))
		due=$((t0 + 5000 * tick))
		while [ "$(now_ms)" -lt "$due" ] && [ "$(now_ms)" -lt "$end" ]; do sleep 0.05; done
	done
	wait "$upid"
}

# figures DB END: "idle_pct runs p50 p95 max parallel_pct quiet_per_hour"
figures() {
	local db=$1 end=$2
	sql "$db" "
	  WITH runs AS (SELECT stack_id, agent, started_at, ended_at,
	                       json_extract(output, '$.thinking') LIKE 'idle:%' AS idle
	                FROM traces WHERE status = 'completed'),
	  -- when each stack finished: both planning rounds done, nothing left
	  finished AS (SELECT stack_id, max(completed_at) AS at FROM todos GROUP BY stack_id
	               HAVING count(*) = 5 AND count(*) FILTER (WHERE status <> 'completed') = 0),
	  quiet AS (SELECT count(*) AS n,
	                   (SELECT coalesce(sum(max($end - at - 10000, 0)), 0) FROM finished) AS ms
	            FROM runs r JOIN finished f USING (stack_id)
	            WHERE r.started_at > f.at + 10000 AND r.agent <> 'communicator')
	  SELECT (SELECT printf('%.1f', 100.0 * sum(idle) / max(count(*), 1)) FROM runs),
	         (SELECT count(*) FROM runs),
	         (SELECT CASE WHEN ms > 0 THEN printf('%.1f', 1.0 * n * 3600000 / ms) ELSE '-' END
	          FROM quiet);" |
	tr '|' ' '
}

# responses DB END: the response times in ms, one per message, sorted; a
# message still unanswered at END counts as answered then (a lower bound).
responses() {
	sql "$1" "SELECT coalesce(responded_at, $2) - created_at FROM user_messages ORDER BY 1"
}

# percentile P: of the sorted numbers on stdin.
percentile() {
	awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
		i = int(p * NR / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}

# parallel DB: % of the stacks' busy time (union of their agents' runs)
# during which two or more of a stack's agents ran at once.
parallel() {
	sql "$1" "SELECT stack_id, started_at, 1 FROM traces UNION ALL
	          SELECT stack_id, ended_at, -1 FROM traces ORDER BY 1, 2, 3" |
	awk -F'|' '
		$1 != s { s = $1; n = 0; last = $2 }
		{ if (n >= 1) busy += $2 - last; if (n >= 2) both += $2 - last; n += $3; last = $2 }
		END { printf "%.1f", (busy > 0 ? 100 * both / busy : 0) }'
}

printf '# world: %d stacks, %d s, a user message every 2.5 s; agents sleep 0.3/0.5/0.2/0.3 s\n' \
	"$STACKS" "$SECONDS_RUN"
printf '%-12s %7s %6s %8s %8s %8s %8s %9s %8s\n' executor idle runs answered p50_ms p95_ms max_ms parallel quiet/h
for ex in $EXECUTORS; do
	db=$OUT/$ex.db
	rm -f "$db" "$db-wal" "$db-shm"
	world "$db"
	end=$(( $(now_ms) + SECONDS_RUN * 1000 ))
	"run_$ex" "$db" "$end"
	read -r idle runs quiet <<<"$(figures "$db" "$end")"
	resp=$(responses "$db" "$end")
	printf '%-12s %6s%% %6s %8s %8s %8s %8s %8s%% %8s\n' "$ex" "$idle" "$runs" \
		"$(sql "$db" 'SELECT count(*) FILTER (WHERE processed = 1) || '"'/'"' || count(*) FROM user_messages')" \
		"$(percentile 50 <<<"$resp")" "$(percentile 95 <<<"$resp")" "$(percentile 100 <<<"$resp")" \
		"$(parallel "$db")" "$quiet"
done
printf '%-12s %7s %6s %8s %8s %8s %8s %9s %8s\n' design "40->5%" "" "" "" "1-8 s" "" "0->30-50%" ""
printf '%-12s %7s %6s %8s %8s %8s %8s %9s %8s\n' "orch target" "<=2%" "" "" "" "<=700" "" "" "0"
