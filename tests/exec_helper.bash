# Loaded by the suites that run orch-exec on graphs (tests/orch-exec.bats,
# tests/estimate.bats): the stacks, graphs and agent flags they share.

# exec_setup: a database, and $AGENTS for agent commands.
exec_setup() {
	orch_test_env
	AGENTS=$BATS_TEST_TMPDIR/agents
	mkdir -p "$AGENTS"
	orch-stack init
}

# stack NAME: a running stack with an idea, a todo and a user message,
# so all four agents have work.
stack() {
	orch-stack create "$1" --idea "an idea"
	orch-stack todo add "$1" "build it" --priority 4
	orch-stack say "$1" "hello there"
	orch-stack start "$1"
}

# graph NAME AGENT...: the orch.graph of stack NAME where AGENTs have work,
# with the standard dependencies, made by orch-graph itself.
graph() {
	local name=$1 id
	shift
	id=$(sql "SELECT id FROM stacks WHERE name = '$name'")
	jq -cn --argjson id "$id" --arg name "$name" --args '
	  {planner: [], builder: ["planner"], communicator: [], reviewer: ["builder"]} as $deps
	  | {type: "orch.work_status", version: 1,
	     stack: {id: $id, name: $name, phase: "planning", execution_state: "running", created_at: 1},
	     computed_at: 1, cached: false,
	     agents: ($deps | with_entries(.key as $a | .value = {
	        has_work: ($ARGS.positional | index($a) != null),
	        priority: (if ($ARGS.positional | index($a)) != null then 5 else 0 end),
	        reason: "test", depends_on: $deps[$a]}))}' --args "$@" | orch-graph
}

# every AGENT-COMMAND for all four agents, as --agent flags.
all_agents() {
	local a
	for a in planner builder communicator reviewer; do
		printf -- '--agent\n%s=%s\n' "$a" "$1"
	done
}

# node FIELD AGENT: a field of AGENT's node in $output.
node() {
	jq -r --arg a "$2" ".nodes[] | select(.agent == \$a) | .$1" <<<"$output"
}
