#!/usr/bin/env bats
# orch-graph: the graph rules (order, deps, waves, max_priority), the stream,
# the drawings, and every way input can be wrong.

load test_helper
bats_require_minimum_version 1.5.0

F=$BATS_TEST_DIRNAME/fixtures/orch-graph
NOW=1700000006000

# base.json: stack alpha, nobody has work; the builder declares a dependency
# on the planner and the reviewer on the builder.

# status [AGENT=PRIORITY]... [-- JQ]: base.json on one line with each AGENT
# given work at PRIORITY (reason "AGENT work"), then the jq filter JQ.
status() {
	local filter=. kv
	while (($#)) && [[ $1 != -- ]]; do
		kv=$1
		shift
		filter+=" | .agents.${kv%%=*} += {has_work: true, priority: ${kv#*=}, reason: \"${kv%%=*} work\"}"
	done
	[[ ${1-} == -- ]] && filter+=" | $2"
	jq -c "$filter" "$F/base.json"
}

# graph JQ [ARG]...: the graph of status ARG... with JQ applied, compact.
graph() {
	local q=$1
	shift
	set -o pipefail
	status "$@" | orch-graph --now "$NOW" | jq -c "$q"
}

# fails ARG...: run orch-graph on status ARG..., expecting status 65.
fails() {
	status "$@" >"$BATS_TEST_TMPDIR/in.json"
	run -65 --separate-stderr orch-graph "$BATS_TEST_TMPDIR/in.json"
	assert_output ""
}

# --- golden files ---

@test "golden json: two busy stacks and a quiet one" {
	run -0 bash -c "orch-graph --now $NOW '$F/busy.in.json' | diff -u '$F/busy.out.json' -"
}

@test "golden dot: two busy stacks and a quiet one" {
	run -0 bash -c "orch-graph --format dot --now $NOW '$F/busy.in.json' | diff -u '$F/busy.out.dot' -"
}

@test "golden mermaid: two busy stacks and a quiet one" {
	run -0 bash -c "orch-graph --format mermaid --now $NOW '$F/busy.in.json' | diff -u '$F/busy.out.mmd' -"
}

@test "golden: quotes, backslashes, line breaks and markup in names and reasons" {
	run -0 bash -c "orch-graph --now $NOW '$F/escape.in.json' | diff -u '$F/escape.out.json' -"
	run -0 bash -c "orch-graph --format dot --now $NOW '$F/escape.in.json' | diff -u '$F/escape.out.dot' -"
	run -0 bash -c "orch-graph --format mermaid --now $NOW '$F/escape.in.json' | diff -u '$F/escape.out.mmd' -"
}

@test "golden: an orch.execution is drawn with outcomes, durations and colours" {
	run -0 bash -c "orch-graph --format dot '$F/executed.in.json' | diff -u '$F/executed.out.dot' -"
	run -0 bash -c "orch-graph --format mermaid '$F/executed.in.json' | diff -u '$F/executed.out.mmd' -"
}

@test "several stacks are one picture: Graphviz draws a cluster for each, named" {
	run -0 bash -c "orch-graph --format dot --now $NOW '$F/busy.in.json' | dot -Tsvg"
	assert_equal "$(grep -c '<svg' <<<"$output")" "1"
	assert_equal "$(grep -c 'class="cluster"' <<<"$output")" "3"
	assert_output --partial ">alpha</text>"
	assert_output --partial ">beta</text>"
	assert_output --partial ">quiet</text>"
	assert_output --partial ">no work</text>"
	assert_output --partial ">3 stacks</text>"
	# One stack alone is drawn as before, without a cluster.
	run -0 bash -c "head -n 1 '$F/busy.in.json' | orch-graph --format dot --now $NOW"
	assert_line --index 0 'digraph "alpha" {'
	refute_output --partial "cluster"
}

@test "a failed or skipped node says why, cut to 60 characters and escaped" {
	local long
	long="exit status 1: $(printf 'x%.0s' {1..80})"
	jq -c --arg long "$long" '.nodes[1].error = $long
		| .nodes[3].error = "dependency \"builder\" failed\n<script>&"' "$F/executed.in.json" >"$BATS_TEST_TMPDIR/e.json"
	run -0 orch-graph --format dot "$BATS_TEST_TMPDIR/e.json"
	assert_output --partial "failed in 30000 ms, 3 attempts\\nexit status 1: $(printf 'x%.0s' {1..42})...\""
	assert_output --partial 'skipped\ndependency \"builder\" failed\n<script>&"'
	run -0 orch-graph --format mermaid "$BATS_TEST_TMPDIR/e.json"
	assert_output --partial 'skipped<br>dependency #quot;builder#quot; failed<br>#lt;script#gt;#amp;"]'
	# A completed node's error is not shown, and an error must be text.
	run -0 bash -c "jq -c '.nodes[0].error = \"ignored\"' '$F/executed.in.json' | orch-graph --format dot"
	refute_output --partial "ignored"
	run -65 --separate-stderr bash -c "jq -c '.nodes[1].error = 5' '$F/executed.in.json' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: 'nodes[1].error' must be a string or null"
}

@test "a drawing is written once all is read: a bad later document leaves none" {
	run -65 --separate-stderr bash -c "{ head -n 1 '$F/busy.in.json'; echo '{\"type\":\"orch.graph\",\"version\":1}'; } | orch-graph --format dot"
	assert_equal "$output" ""
	[[ $stderr == "orch-graph: line 2: "* ]] || fail "$stderr"
}

@test "an orch.graph drawn again gives the same drawing as its work status" {
	run -0 bash -c "orch-graph --now $NOW '$F/busy.in.json' | orch-graph --format dot | diff -u '$F/busy.out.dot' -"
	run -0 bash -c "orch-graph --now $NOW '$F/busy.in.json' | orch-graph --format mermaid - | diff -u '$F/busy.out.mmd' -"
}

@test "the README's example: communicator and builder in one wave" {
	run -0 graph '[.max_priority, [.nodes[] | [.id, .deps, .wave]], .waves]' builder=8 communicator=10
	assert_output '[10,[["alpha/communicator",[],0],["alpha/builder",[],0]],[["communicator","builder"]]]'
}

# --- the document ---

@test "the graph's members, in order; created_at is --now; the stack is copied whole" {
	run -0 graph '[keys_unsorted, .type, .version, .created_at, .stack]' planner=3 -- '.stack.extra = [1]'
	assert_output '[["type","version","stack","created_at","detected_at","max_priority","nodes","waves"],"orch.graph",1,1700000006000,{"id":1,"name":"alpha","phase":"building","execution_state":"running","created_at":1700000000000,"extra":[1]}]'
}

@test "a node's members, in order, with its id STACK/AGENT" {
	run -0 graph '.nodes[0]' builder=6
	assert_output '{"id":"alpha/builder","agent":"builder","priority":6,"reason":"builder work","deps":[],"wave":0}'
}

@test "without --now, created_at is the clock" {
	local before after
	before=$(($(date +%s) * 1000))
	run -0 bash -c "jq -c . '$F/base.json' | orch-graph | jq .created_at"
	after=$(($(date +%s) * 1000 + 1000))
	((output >= before && output <= after)) || fail "created_at $output not in [$before, $after]"
}

@test "extra top-level members of the work status are ignored" {
	run -0 graph 'keys' planner=3 -- '.computed_at = "whenever" | .cached = 7 | .extra = {}'
	assert_output '["created_at","max_priority","nodes","stack","type","version","waves"]'
}

# --- order ---

@test "nodes by priority, highest first" {
	run -0 graph '[.nodes[].agent]' planner=4 builder=8 communicator=10 reviewer=6
	assert_output '["communicator","builder","reviewer","planner"]'
}

@test "ties go planner, builder, communicator, reviewer, whatever the input order" {
	run -0 graph '[.nodes[].agent]' planner=5 builder=5 communicator=5 reviewer=5 -- \
		'.agents |= {reviewer, communicator, builder, planner}'
	assert_output '["planner","builder","communicator","reviewer"]'
	run -0 graph '[.nodes[].agent]' reviewer=7 communicator=7 builder=2 planner=2
	assert_output '["communicator","reviewer","planner","builder"]'
}

@test "only agents with work are nodes, whatever their priority" {
	run -0 graph '[.nodes[].agent]' communicator=3 -- '.agents.planner.priority = 9'
	assert_output '["communicator"]'
}

# --- deps and waves ---

@test "all four with work: three waves" {
	run -0 graph '[.waves, [.nodes[] | [.agent, .deps, .wave]]]' planner=5 builder=5 communicator=5 reviewer=5
	assert_output '[[["planner","communicator"],["builder"],["reviewer"]],[["planner",[],0],["builder",["planner"],1],["communicator",[],0],["reviewer",["builder"],2]]]'
}

@test "a wave lists its agents in node order" {
	run -0 graph '.waves' planner=7 builder=8 communicator=10 reviewer=6
	assert_output '[["communicator","planner"],["builder"],["reviewer"]]'
}

@test "planner without work: the builder's dep is dropped and it runs in wave 0" {
	run -0 graph '[.waves, [.nodes[] | [.agent, .deps, .wave]]]' builder=8 communicator=10 reviewer=6
	assert_output '[[["communicator","builder"],["reviewer"]],[["communicator",[],0],["builder",[],0],["reviewer",["builder"],1]]]'
}

@test "builder without work: planner and reviewer both run in wave 0" {
	run -0 graph '[.waves, [.nodes[] | [.agent, .deps, .wave]]]' planner=9 communicator=7 reviewer=4
	assert_output '[[["planner","communicator","reviewer"]],[["planner",[],0],["communicator",[],0],["reviewer",[],0]]]'
}

@test "builder and reviewer: two waves" {
	run -0 graph '.waves' builder=6 reviewer=6
	assert_output '[["builder"],["reviewer"]]'
}

@test "planner and builder: two waves, even when the builder is more urgent" {
	run -0 graph '[[.nodes[].agent], .waves]' planner=4 builder=8
	assert_output '[["builder","planner"],[["planner"],["builder"]]]'
}

@test "one agent: one wave" {
	run -0 graph '[.waves, .nodes[0].deps]' reviewer=4
	assert_output '[[["reviewer"]],[]]'
}

@test "a node's wave is one more than its latest dep's" {
	run -0 graph '[.nodes[] | [.agent, .deps, .wave]]' planner=1 builder=1 communicator=1 reviewer=1 -- \
		'.agents.reviewer.depends_on = ["planner", "builder"] | .agents.communicator.depends_on = ["reviewer"]'
	assert_output '[["planner",[],0],["builder",["planner"],1],["communicator",["reviewer"],3],["reviewer",["planner","builder"],2]]'
}

@test "deps keep their declared order, without repeats" {
	run -0 graph '.nodes[] | select(.agent == "reviewer") | .deps' planner=1 builder=1 communicator=1 reviewer=1 -- \
		'.agents.reviewer.depends_on = ["communicator", "builder", "communicator", "planner"]'
	assert_output '["communicator","builder","planner"]'
}

# --- max_priority ---

@test "max_priority is the highest priority of any agent, with work or not" {
	run -0 graph '.max_priority' builder=6 reviewer=4
	assert_output 6
	run -0 graph '[.max_priority, [.nodes[].agent]]' builder=6 -- '.agents.planner.priority = 9'
	assert_output '[9,["builder"]]'
}

@test "nobody has work: no nodes, no waves, max_priority 0" {
	run -0 graph '[.max_priority, .nodes, .waves]'
	assert_output '[0,[],[]]'
}

# --- the stream ---

@test "NDJSON: one graph per document, in order" {
	run -0 bash -c "orch-graph --now $NOW <'$F/busy.in.json' | jq -c '[.stack.name, .waves]'"
	assert_output $'["alpha",[["communicator","planner"],["builder"]]]\n["beta",[["planner","communicator"],["builder"],["reviewer"]]]\n["quiet",[]]'
}

@test "pretty-printed documents in one stream" {
	run -0 bash -c "jq . '$F/busy.in.json' | orch-graph --now $NOW | diff -u '$F/busy.out.json' -"
}

@test "'-' is standard input" {
	run -0 bash -c "orch-graph --now $NOW - <'$F/busy.in.json' | diff -u '$F/busy.out.json' -"
}

@test "empty input: no output, exit 0" {
	run -0 --separate-stderr orch-graph </dev/null
	assert_output ""
	assert_equal "$stderr" ""
}

@test "--pretty indents the same document" {
	status planner=3 >"$BATS_TEST_TMPDIR/in.json"
	run -0 orch-graph --pretty --now "$NOW" "$BATS_TEST_TMPDIR/in.json"
	assert_equal "${lines[0]}" "{"
	assert_equal "${lines[1]}" '  "type": "orch.graph",'
	assert_equal "${lines[2]}" '  "version": 1,'
	assert_equal "$(jq -c . <<<"$output")" "$(orch-graph --now "$NOW" "$BATS_TEST_TMPDIR/in.json")"
}

@test "--pretty does not change a drawing" {
	run -0 bash -c "orch-graph --pretty --format dot --now $NOW '$F/busy.in.json' | diff -u '$F/busy.out.dot' -"
}

@test "a bad document stops the stream; the graphs before it are written" {
	{
		status planner=1
		status builder=2
		echo '{"type": "orch.work_status", "version": 2}'
		status reviewer=3
	} >"$BATS_TEST_TMPDIR/in.json"
	run -65 --separate-stderr orch-graph --now "$NOW" "$BATS_TEST_TMPDIR/in.json"
	assert_equal "$stderr" "orch-graph: line 3: unsupported orch.work_status version 2"
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -r '.nodes[].agent' <<<"$output" | tr '\n' ' ')" "planner builder "
}

@test "in a pretty-printed stream, the error names the line the document starts on" {
	local first
	first=$(jq . "$F/base.json" | wc -l)
	{
		jq . "$F/base.json"
		status -- '.agents.builder.priority = 11' | jq .
	} >"$BATS_TEST_TMPDIR/in.json"
	run -65 --separate-stderr orch-graph "$BATS_TEST_TMPDIR/in.json"
	assert_equal "$stderr" "orch-graph: line $((first + 1)): 'agents.builder.priority' must be an integer from 0 to 10"
	assert_equal "${#lines[@]}" 1
}

# --- bad input ---

@test "a dependency cycle is named" {
	fails builder=1 reviewer=1 -- '.agents.builder.depends_on = ["reviewer"]'
	assert_equal "$stderr" "orch-graph: line 1: dependency cycle: builder -> reviewer -> builder"
}

@test "a self-dependency is a cycle" {
	fails planner=1 -- '.agents.planner.depends_on = ["planner"]'
	assert_equal "$stderr" "orch-graph: line 1: dependency cycle: planner -> planner"
}

@test "a longer cycle is named in full" {
	fails planner=1 -- '.agents.planner.depends_on = ["reviewer"]'
	assert_equal "$stderr" "orch-graph: line 1: dependency cycle: planner -> reviewer -> builder -> planner"
	fails -- '.agents.communicator.depends_on = ["builder"] | .agents.builder.depends_on = ["communicator"]'
	assert_equal "$stderr" "orch-graph: line 1: dependency cycle: builder -> communicator -> builder"
}

@test "a cycle is an error even among agents without work" {
	fails communicator=5 -- '.agents.builder.depends_on = ["reviewer"]'
	assert_equal "$stderr" "orch-graph: line 1: dependency cycle: builder -> reviewer -> builder"
}

@test "an unknown agent" {
	fails -- '.agents.tester = {has_work: true, priority: 1, reason: "x", depends_on: []}'
	assert_equal "$stderr" "orch-graph: line 1: unknown agent 'tester'"
	fails -- '.agents.builder.depends_on = ["planner", "tester"]'
	assert_equal "$stderr" "orch-graph: line 1: unknown agent 'tester' in 'agents.builder.depends_on'"
}

@test "a missing agent" {
	fails -- 'del(.agents.reviewer)'
	assert_equal "$stderr" "orch-graph: line 1: 'agents.reviewer' must be an object"
	fails -- '.agents.planner = []'
	assert_equal "$stderr" "orch-graph: line 1: 'agents.planner' must be an object"
}

@test "priority must be an integer from 0 to 10" {
	local p
	for p in 11 -1 2.5 '"7"' null; do
		fails -- ".agents.builder.priority = $p"
		assert_equal "$stderr" "orch-graph: line 1: 'agents.builder.priority' must be an integer from 0 to 10"
	done
	run -0 graph '[.nodes[].priority]' planner=0 builder=10
	assert_output '[10,0]'
}

@test "the agents' members must have their types" {
	fails -- '.agents.planner.has_work = "yes"'
	assert_equal "$stderr" "orch-graph: line 1: 'agents.planner.has_work' must be true or false"
	fails -- 'del(.agents.communicator.reason)'
	assert_equal "$stderr" "orch-graph: line 1: 'agents.communicator.reason' must be a string"
	fails -- '.agents.reviewer.depends_on = "builder"'
	assert_equal "$stderr" "orch-graph: line 1: 'agents.reviewer.depends_on' must be an array"
	fails -- '.agents.reviewer.depends_on = ["builder", 2]'
	assert_equal "$stderr" "orch-graph: line 1: 'agents.reviewer.depends_on[1]' must be a string"
	fails -- '.agents = [1]'
	assert_equal "$stderr" "orch-graph: line 1: 'agents' must be an object"
}

@test "the stack must be an object with an id and a name" {
	fails -- 'del(.stack)'
	assert_equal "$stderr" "orch-graph: line 1: 'stack' must be an object"
	fails -- '.stack.id = "1"'
	assert_equal "$stderr" "orch-graph: line 1: 'stack.id' must be a positive integer"
	fails -- '.stack.id = 0'
	assert_equal "$stderr" "orch-graph: line 1: 'stack.id' must be a positive integer"
	fails -- '.stack.name = 5'
	assert_equal "$stderr" "orch-graph: line 1: 'stack.name' must be a string"
}

@test "the wrong document type or version" {
	fails -- '.type = "orch.snapshot"'
	assert_equal "$stderr" "orch-graph: line 1: expected an orch.work_status document, got 'orch.snapshot'"
	fails -- 'del(.type)'
	assert_equal "$stderr" "orch-graph: line 1: expected an orch.work_status document, got no 'type'"
	fails -- '.version = 2'
	assert_equal "$stderr" "orch-graph: line 1: unsupported orch.work_status version 2"
	fails -- '.version = "1"'
	assert_equal "$stderr" "orch-graph: line 1: orch.work_status document has no integer 'version'"
}

@test "an orch.graph is not a work status when the output is json" {
	status planner=1 | orch-graph >"$BATS_TEST_TMPDIR/g.json"
	run -65 --separate-stderr orch-graph "$BATS_TEST_TMPDIR/g.json"
	assert_equal "$stderr" "orch-graph: line 1: expected an orch.work_status document, got 'orch.graph'"
}

@test "truncated JSON, bad JSON, and what is not an object" {
	run -65 --separate-stderr bash -c "printf '{\"type\": \"orch.work_status\",\n\"agents\": {' | orch-graph"
	assert_equal "$stderr" "orch-graph: line 1: unexpected end of input inside a document"
	run -65 --separate-stderr bash -c "printf '{\"type\": }\n' | orch-graph"
	assert_equal "$stderr" "orch-graph: line 1: unexpected token near '}'"
	run -65 --separate-stderr bash -c "printf '[1]\n' | orch-graph"
	assert_equal "$stderr" "orch-graph: line 1: expected a JSON object"
	run -65 --separate-stderr bash -c "printf '\n\ntrue\n' | orch-graph"
	assert_equal "$stderr" "orch-graph: line 3: expected a JSON object"
}

@test "drawing checks the graph it draws" {
	local g='{"type":"orch.graph","version":1,"stack":{"id":1,"name":"a"},"nodes":[{"agent":"planner","priority":1,"reason":"r","deps":[],"wave":0}]}'
	run -0 bash -c "echo '$g' | orch-graph --format dot"
	assert_line --index 3 '	planner [label="planner\npriority 1\nr"];'
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.nodes[0].priority = 12' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: 'nodes[0].priority' must be an integer from 0 to 10"
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.nodes[0].agent = \"tester\"' | orch-graph --format mermaid"
	assert_equal "$stderr" "orch-graph: line 1: unknown agent 'tester'"
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.nodes[0].deps = [\"builder\"]' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: node 'planner' depends on 'builder', which is not in the graph"
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.nodes += .nodes' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: duplicate node 'planner'"
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.nodes[0].duration_ms = -5' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: 'nodes[0].duration_ms' must be a non-negative integer"
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.version = 3' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: unsupported orch.graph version 3"
	run -65 --separate-stderr bash -c "echo '$g' | jq -c '.type = \"orch.execution\" | .stack = 1' | orch-graph --format dot"
	assert_equal "$stderr" "orch-graph: line 1: 'stack' must be an object"
}

# --- usage ---

@test "a missing FILE exits 66" {
	run -66 --separate-stderr orch-graph "$BATS_TEST_TMPDIR/nope.json"
	assert_equal "$stderr" "orch-graph: cannot open '$BATS_TEST_TMPDIR/nope.json': No such file or directory"
	assert_output ""
	run -66 --separate-stderr orch-graph "$BATS_TEST_TMPDIR"
	assert_equal "$stderr" "orch-graph: read error: Is a directory"
}

@test "a bad --format exits 64 with the usage" {
	run -64 --separate-stderr orch-graph --format xml
	assert_equal "${stderr_lines[0]}" "orch-graph: --format: 'xml' is not json, dot or mermaid"
	assert_equal "${stderr_lines[1]}" "usage: orch-graph [--format json|dot|mermaid] [--now MS] [--pretty] [FILE]"
	assert_equal "${stderr_lines[2]}" "Try 'orch-graph --help' for more information."
	run -64 --separate-stderr orch-graph --format
	assert_equal "${stderr_lines[0]}" "orch-graph: option '--format' needs a value"
}

@test "a bad --now or a second FILE exits 64" {
	run -64 --separate-stderr orch-graph --now soon
	assert_equal "${stderr_lines[0]}" "orch-graph: --now: 'soon' is not a whole number from 0 to 9223372036854775807"
	run -64 --separate-stderr orch-graph a.json b.json
	assert_equal "${stderr_lines[0]}" "orch-graph: unexpected argument 'b.json'"
}

@test "--format json is the default; --format=VALUE works" {
	run -0 bash -c "orch-graph --format=json --now $NOW '$F/busy.in.json' | diff -u '$F/busy.out.json' -"
}

@test "a write error on standard output exits 70" {
	run -70 --separate-stderr bash -c "orch-graph '$F/busy.in.json' >/dev/full"
	assert_equal "$stderr" "orch-graph: write error on standard output: No space left on device"
	run -70 --separate-stderr bash -c "orch-graph --format dot '$F/busy.in.json' >/dev/full"
	assert_equal "$stderr" "orch-graph: write error on standard output: No space left on device"
}

# --- the manual ---

# page: the manual as plain text, each line's leading white space removed,
# into $BATS_TEST_TMPDIR/page.txt.
page() {
	mandoc -T ascii "$ORCH_ROOT/man/orch-graph.1" | sed 's/.\x08//g; s/^[[:space:]]*//' \
		>"$BATS_TEST_TMPDIR/page.txt"
}

@test "the manual's example graph is what orch-graph prints" {
	page
	run -0 bash -c "awk '/^\\{\"type\":\"orch.graph\"/, /\"waves\"/' '$BATS_TEST_TMPDIR/page.txt' | jq -c ."
	assert_output "$(head -n 1 "$F/busy.out.json")"
}

@test "the manual's example drawings are what orch-graph prints" {
	page
	awk '/^digraph "alpha"/, /^}/' "$BATS_TEST_TMPDIR/page.txt" >"$BATS_TEST_TMPDIR/man.dot"
	head -n 1 "$F/busy.in.json" | orch-graph --format dot --now $NOW |
		sed 's/^[[:space:]]*//' >"$BATS_TEST_TMPDIR/out.dot"
	run -0 diff -u "$BATS_TEST_TMPDIR/out.dot" "$BATS_TEST_TMPDIR/man.dot"
	awk '/^title: "alpha"/, /^planner --> builder/' "$BATS_TEST_TMPDIR/page.txt" >"$BATS_TEST_TMPDIR/man.mmd"
	head -n 1 "$F/busy.in.json" | orch-graph --format mermaid --now $NOW |
		sed -n '/^title: "alpha"/,/^\tplanner --> builder/p' | sed 's/^[[:space:]]*//' >"$BATS_TEST_TMPDIR/out.mmd"
	run -0 diff -u "$BATS_TEST_TMPDIR/out.mmd" "$BATS_TEST_TMPDIR/man.mmd"
	[ -s "$BATS_TEST_TMPDIR/man.dot" ] && [ -s "$BATS_TEST_TMPDIR/man.mmd" ] || fail "no example found"
}
