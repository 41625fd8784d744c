#!/usr/bin/env bats
# Every file of examples/ (but the demo, which tests/demo.bats runs), run
# the way its comments say, against a test database with the offline
# example agents of examples/agents/ set in the configuration file.

load test_helper

EX=$ORCH_ROOT/examples

setup() {
	orch_test_env
	mkdir -p "$HOME/.config/orch"
	local a
	for a in planner builder communicator reviewer; do
		echo "agent.$a = $EX/agents/$a"
	done >"$HOME/.config/orch/config"
	orch-stack init
}

# An agent that sleeps SECONDS first: slow SECONDS AGENT prints its path.
slow() {
	local path=$BATS_TEST_TMPDIR/slow-$2
	printf '#!/bin/sh\nsleep %s\nexec %s\n' "$1" "$EX/agents/$2" >"$path"
	chmod +x "$path"
	echo "$path"
}

@test "every example script parses; the ones run by name are executable" {
	local f
	for f in "$EX"/*.sh; do
		run -0 sh -n "$f"
	done
	for f in loop.sh jq-recipes.sh; do
		[ -x "$EX/$f" ] || fail "$f is not executable"
	done
}

@test "loop.sh runs cycle after cycle, and ends when no stack is running" {
	orch-stack create alpha --idea "a timer"
	orch-stack start alpha
	ORCH_LOOP_CYCLES=2 run -0 --separate-stderr "$EX/loop.sh"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r '"\(.type) \(.stack.name)"' <<<"$output" | tr '\n' ' ')" \
		"orch.decision alpha orch.decision alpha "
	assert_equal "$(sql "SELECT group_concat(cycle || ':' || status, ' ') FROM executions WHERE decision IS NOT NULL")" \
		"1:completed 2:completed"
	orch-stack stop alpha
	run -0 --separate-stderr "$EX/loop.sh"
	assert_equal "$output" ""
	assert_equal "$(sql "SELECT count(*) FROM executions")" "2"
}

@test "loop.sh stops at the first error, with its status" {
	export ORCH_DB=$BATS_TEST_TMPDIR/none.db
	run -66 --separate-stderr "$EX/loop.sh"
	[[ $stderr == *"no database at '$ORCH_DB'"* ]] || fail "$stderr"
}

# The command of the crontab's one schedule line.
cron_command() {
	grep -vE '^[[:space:]]*(#|$)|^[A-Z_]+=' "$EX/crontab" | sed -E 's/^([^ ]+ +){5}//'
}

@test "crontab: one schedule line, every minute, that runs a cycle into a log" {
	run -0 grep -vcE '^[[:space:]]*(#|$)|^[A-Z_]+=' "$EX/crontab"
	assert_output "1"
	run -0 grep -E '^\* \* \* \* \* ' "$EX/crontab"
	orch-stack create alpha --idea "a timer"
	orch-stack start alpha
	run -0 sh -c "$(cron_command)"
	assert_output ""
	run -0 jq -r '"\(.type) \(.stack.name) \(.recorded)"' "$HOME/.orch.log"
	assert_output "orch.decision alpha true"
	assert_equal "$(sql "SELECT cycle, status FROM executions")" "1|completed"
}

@test "crontab: two overlapping runs share out the stacks, with no flock" {
	grep -q flock "$EX/crontab"
	echo "agent.planner = $(slow 2 planner)" >>"$HOME/.config/orch/config"
	orch-stack create alpha --idea "a timer"
	orch-stack start alpha
	local cmd
	cmd=$(cron_command)
	sh -c "$cmd" &
	local first=$!
	sleep 0.5
	run -0 sh -c "$cmd"
	wait "$first"
	# alpha ran once, in the first pipeline; the second skipped it.
	assert_equal "$(sql "SELECT count(*) FROM executions")" "1"
	run -0 jq -r '.reason' "$HOME/.orch.log"
	assert_line --index 0 --partial "another pipeline holds the stack"
	assert_equal "${#lines[@]}" "2"
}

@test "systemd units: verified, and the service's command runs a cycle" {
	if command -v systemd-analyze >/dev/null; then
		cp "$EX/orch.service" "$EX/orch.timer" "$BATS_TEST_TMPDIR/"
		# Documentation= names man pages that are not installed here.
		run -0 systemd-analyze verify --man=no "$BATS_TEST_TMPDIR/orch.service" \
			"$BATS_TEST_TMPDIR/orch.timer"
		assert_output ""
	fi
	# Either way: the sections and settings the units rely on.
	run -0 grep -Fx -e '[Unit]' -e '[Service]' -e 'Type=oneshot' "$EX/orch.service"
	assert_equal "${#lines[@]}" "3"
	run -0 grep -Fx -e '[Timer]' -e 'OnCalendar=minutely' -e '[Install]' \
		-e 'WantedBy=timers.target' "$EX/orch.timer"
	assert_equal "${#lines[@]}" "4"
	orch-stack create alpha --idea "a timer"
	orch-stack start alpha
	local exec_start
	exec_start=$(sed -n 's/^ExecStart=//p' "$EX/orch.service")
	run -0 --separate-stderr sh -c "$exec_start"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r .action <<<"$output")" "continue"
	assert_equal "$(sql "SELECT count(*) FROM executions")" "1"
}

# workflow FIELD: a field of the workflow, as JSON, read by python3's YAML.
workflow() {
	python3 - "$EX/github-actions.yml" "$1" <<'PY'
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
# YAML 1.1 reads the key "on" as true.
doc["on"] = doc.pop(True, doc.get("on"))
print(json.dumps(eval(sys.argv[2], {"w": doc})))
PY
}

@test "github-actions.yml: valid YAML, scheduled, the database cached" {
	run -0 workflow 'w["on"]["schedule"][0]["cron"]'
	assert_output '"*/10 * * * *"'
	run -0 workflow 'w["concurrency"]["cancel-in-progress"]'
	assert_output 'false'
	run -0 workflow '[s.get("uses") for s in w["jobs"]["cycle"]["steps"]]'
	assert_output '["actions/checkout@v4", null, "actions/cache/restore@v4", null, null, "actions/cache/save@v4"]'
	# Restore and save the same directory, under the same key, and that
	# directory holds ORCH_DB.
	run -0 workflow '[(s["with"]["path"], s["with"]["key"]) for s in w["jobs"]["cycle"]["steps"] if "with" in s]'
	assert_output '[[".orch", "orch-db-${{ github.run_id }}-${{ github.run_attempt }}"], [".orch", "orch-db-${{ github.run_id }}-${{ github.run_attempt }}"]]'
	run -0 workflow 'w["jobs"]["cycle"]["env"]["ORCH_DB"]'
	assert_output '"${{ github.workspace }}/.orch/orch.db"'
	run -0 workflow '[s["if"] for s in w["jobs"]["cycle"]["steps"] if "cache/save" in s.get("uses", "")]'
	assert_output '["always()"]'
}

@test "github-actions.yml: its run steps, three builds against one database" {
	# The steps after the install, as GitHub runs them: bash -eo pipefail.
	python3 - "$EX/github-actions.yml" "$BATS_TEST_TMPDIR" <<'PY'
import sys, yaml
steps = yaml.safe_load(open(sys.argv[1]))["jobs"]["cycle"]["steps"]
runs = [s for s in steps if "run" in s and s.get("id") != "install"]
for i, s in enumerate(runs):
    open("%s/step%d.sh" % (sys.argv[2], i), "w").write(s["run"])
PY
	rm -f "$ORCH_DB"
	export ORCH_DB=$BATS_TEST_TMPDIR/workspace/.orch/orch.db ORCH_STACK=alpha ORCH_IDEA="a timer"
	local build step
	for build in 1 2 3; do
		for step in "$BATS_TEST_TMPDIR"/step*.sh; do
			run -0 bash --noprofile --norc -eo pipefail "$step"
		done
		# The next scheduled build finds the stack due.
		sql "UPDATE stacks SET next_run_at = 0"
	done
	# The last step printed the decision, the history and the usage.
	assert_equal "$(head -n 1 <<<"$output" | jq -r .type)" "orch.decision"
	assert_line --index 1 "CYCLE STARTED             DURATION STATUS    DECISION   REASON"
	assert_line --index 5 "AGENT        MODEL        DAY        RUNS REQS       PROMPT COMPLETION   FAILED"
	assert_line --partial "total  "
	assert_equal "$(orch-stack names)" "alpha"
	assert_equal "$(sql "SELECT group_concat(cycle || ':' || status, ' ') FROM executions")" \
		"1:completed 2:completed 3:completed"
	assert_equal "$(sql "SELECT description FROM projects")" "a timer"
}

@test "jq-recipes.sh: agents with work, the slowest node, failures, from real cycles" {
	# The planner is slow; the builder is slower and cannot build "build the
	# main feature", so the reviewer that depends on it is skipped.
	cat >"$BATS_TEST_TMPDIR/flaky-builder" <<AGENT
#!/bin/sh
ctx=\$(cat)
sleep 1
printf '%s' "\$ctx" | jq -e '.task.todo.content != "build the main feature"' >/dev/null || exit 1
printf '%s' "\$ctx" | $EX/agents/builder
AGENT
	chmod +x "$BATS_TEST_TMPDIR/flaky-builder"
	{
		echo "agent.planner = $(slow 0.7 planner)"
		echo "agent.builder = $BATS_TEST_TMPDIR/flaky-builder"
		echo "exec.retries = 0"
	} >>"$HOME/.config/orch/config"
	orch-stack create alpha --idea "a timer"
	orch-stack create beta --idea "a clock"
	orch-stack say beta "hello"
	orch-stack start alpha
	orch-stack start beta
	local i
	for i in 1 2 3 4; do
		orch-detect --all --force | orch-graph | orch-exec |
			tee -a "$BATS_TEST_TMPDIR/executions.jsonl" | orch-decide >/dev/null
	done
	# A pipeline that found the stacks busy counts for nothing.
	jq -c '.ran = false | .skip_reason = "another pipeline holds the stack"' \
		"$BATS_TEST_TMPDIR/executions.jsonl" >"$BATS_TEST_TMPDIR/skipped.jsonl"

	run -0 "$EX/jq-recipes.sh" had-work "$BATS_TEST_TMPDIR/executions.jsonl" "$BATS_TEST_TMPDIR/skipped.jsonl"
	assert_output "alpha builder 3
alpha planner 1
alpha reviewer 2
beta builder 3
beta communicator 1
beta planner 1
beta reviewer 2"
	run -0 "$EX/jq-recipes.sh" slowest "$BATS_TEST_TMPDIR/executions.jsonl"
	assert_equal "$(awk '{print $1, $2, $3}' <<<"$output" | sort | tr '\n' ',')" \
		"alpha 1 planner,alpha 2 builder,alpha 3 builder,alpha 4 builder,beta 1 planner,beta 2 builder,beta 3 builder,beta 4 builder,"
	local stack cycle agent ms
	while read -r stack cycle agent ms; do
		(( ms >= 700 )) || fail "$stack $cycle $agent: $ms ms"
	done <<<"$output"
	run -0 "$EX/jq-recipes.sh" failures "$BATS_TEST_TMPDIR/executions.jsonl"
	assert_output "alpha builder 2 failed 0 skipped of 3
alpha planner 0 failed 0 skipped of 1
alpha reviewer 0 failed 2 skipped of 2
beta builder 2 failed 0 skipped of 3
beta communicator 0 failed 0 skipped of 1
beta planner 0 failed 0 skipped of 1
beta reviewer 0 failed 2 skipped of 2"
	local failures=$output
	# Standard input, and the store's recorded graphs, say the same.
	run -0 "$EX/jq-recipes.sh" failures <"$BATS_TEST_TMPDIR/executions.jsonl"
	assert_output "$failures"
	# The loop its comment gives, as written: orch-stack, never sqlite3.
	local loop
	loop=$(sed -n '/^#   orch-stack names/,/^#   done/{s/^#   //; p}' "$EX/jq-recipes.sh" |
		sed "s|jq-recipes.sh|'$EX/jq-recipes.sh'|")
	[[ $loop == *"orch-stack cycle"* ]] || fail "no loop in the comment: $loop"
	run -0 bash -c "$loop"
	assert_output "$failures"
	run -1 grep -n sqlite3 "$EX/jq-recipes.sh"
	run -64 --separate-stderr "$EX/jq-recipes.sh" nonsense
	assert_equal "$stderr" "usage: jq-recipes.sh had-work|slowest|failures [FILE ...]"
}

@test "README: a real cycle drawn to PNG with Graphviz, by the README's own commands" {
	orch-stack create alpha --idea "a timer"
	orch-stack say alpha "hello"
	orch-stack start alpha
	orch-stack create beta --idea "a clock"
	orch-stack start beta
	orch-detect --all | orch-graph | orch-exec | orch-decide >/dev/null
	# Each README line that pipes into `dot -Tpng`, run as written (its
	# comment dropped), in a directory of its own.
	local cmd n=0
	mkdir "$BATS_TEST_TMPDIR/pictures"
	cd "$BATS_TEST_TMPDIR/pictures"
	while IFS= read -r cmd; do
		rm -f cycle.png
		run -0 --separate-stderr bash -c "set -o pipefail; $cmd"
		assert_equal "$stderr" ""
		# A PNG, and not an empty one: the signature, then its header.
		assert_equal "$(head -c 8 cycle.png | od -An -tx1 | tr -d ' \n')" "89504e470d0a1a0a"
		(( $(stat -c %s cycle.png) > 1000 )) || fail "'$cmd' drew a near-empty picture"
		# The pipeline's picture has every stack in it.
		if [[ $cmd == orch-detect* ]]; then
			run -0 bash -c "set -o pipefail; ${cmd/-Tpng -o cycle.png/-Tsvg}"
			assert_output --partial ">alpha</text>"
			assert_output --partial ">beta</text>"
		fi
		n=$((n + 1))
	done < <(sed -n 's/^    \(.*dot -Tpng -o cycle\.png\).*/\1/p' "$ORCH_ROOT/README.md")
	assert_equal "$n" "2"
}
