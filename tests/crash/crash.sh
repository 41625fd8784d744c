#!/bin/bash
# crash.sh - kill parts of a running pipeline with SIGKILL at random
# moments, let the next cycle recover on its own, and check that nothing
# was lost, run twice or corrupted.
#
#   crash.sh [-n KILLS] [-t exec|agent|decide|mix] [-s SEED] [-k STACKS] WORKDIR
#
# Each round starts the whole pipeline on a populated store,
#
#   orch-detect --all --force | orch-graph | orch-exec | orch-decide
#
# (the example team of examples/agents, each run behind a random delay of
# up to 80 ms so kills land inside agent runs too, and each leaving
# processes behind: one in its process group, one in a session of its
# own, one whose parent has exited), waits a random 0-250 ms and sends
# SIGKILL to the target: orch-exec, one of orch-exec's agent children, or
# orch-decide. A round whose target had already exited is not counted.
# Then one plain pipeline runs (the recovery) and the checks of
# check_store and check_left run; the first violation is printed and the
# script exits 1.
#
# The programs are taken from PATH; WORKDIR gets the database and logs.
set -u

kills=10 target=mix seed=${RANDOM} nstacks=3
while getopts n:t:s:k: opt; do
	case $opt in
	n) kills=$OPTARG ;;
	t) target=$OPTARG ;;
	s) seed=$OPTARG ;;
	k) nstacks=$OPTARG ;;
	*) echo "usage: crash.sh [-n KILLS] [-t exec|agent|decide|mix] [-s SEED] [-k STACKS] WORKDIR" >&2; exit 64 ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || { echo "crash.sh: expected WORKDIR" >&2; exit 64; }
work=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$work"
export ORCH_DB=$work/orch.db
RANDOM=$seed

# The example team behind a random delay: slow enough to be hit.
agents=$work/agents
mkdir -p "$agents"
# What they leave behind, "PID START" a line: none may outlive the round.
left=$work/left
: >"$left"
for a in planner builder communicator reviewer; do
	cat >"$agents/$a" <<-EOF
	#!/bin/bash
	note() { echo "\$1 \$(awk '{print \$22}' /proc/\$1/stat)" >>"$left"; }
	sleep 300 </dev/null >/dev/null 2>&1 & note \$!
	setsid sleep 300 </dev/null >/dev/null 2>&1 & note \$!
	bash -c 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo \$!' | { read -r p; note "\$p"; }
	sleep "0.0\$((RANDOM % 6))"
	exec "$root/examples/agents/$a"
	EOF
	chmod +x "$agents/$a"
done
team=(--retries 1 --retry-delay 10)
for a in planner builder communicator reviewer; do
	team+=(--agent "$a=$agents/$a")
done

# The shell's own notes (a killed job) go to a log; findings to fd 3.
exec 3>&2 2>>"$work/stderr"
die() {
	echo >&3 "crash.sh: seed $seed, kill $hits ($what): $*" >&2
	exit 1
}

sql() {
	sqlite3 -batch -bail -cmd '.timeout 30000' "$ORCH_DB" "$@"
}

said=0
# Work for every agent: a todo and a user message per stack, each round
# (one transaction, as orch-stack todo add and say would write them).
top_up() {
	sql "BEGIN IMMEDIATE;
	     INSERT INTO todos (stack_id, content, priority, created_at)
	       SELECT id, 'todo $round of ' || name, $((RANDOM % 5 + 1)), $(date +%s%3N) FROM stacks;
	     INSERT INTO user_messages (stack_id, sender, content, created_at)
	       SELECT id, 'user', 'message $round for ' || name, $(date +%s%3N) FROM stacks;
	     COMMIT;" || die "top-up failed"
	said=$((said + nstacks))
}

# Invariants of a store at rest (no pipeline running): one query, one
# line per violation.
check_store() {
	local v
	v=$(sql "PRAGMA integrity_check")
	[ "$v" = ok ] || die "integrity_check: $v"
	v=$(sql "PRAGMA foreign_key_check")
	[ -z "$v" ] || die "foreign_key_check: $v"
	v=$(sql "
	SELECT count(*) || ' todos left in_progress with no pipeline running'
	  FROM todos WHERE status = 'in_progress' HAVING count(*) > 0;
	SELECT count(*) || ' executions left running or without an end'
	  FROM executions WHERE status = 'running' OR ended_at IS NULL HAVING count(*) > 0;
	SELECT count(*) || ' leases held with no pipeline running'
	  FROM stacks WHERE lease_owner IS NOT NULL HAVING count(*) > 0;
	-- No user message lost: every one said is there, answered or waiting.
	SELECT count(*) || ' user messages stored, $said said'
	  FROM user_messages HAVING count(*) != $said;
	SELECT count(*) || ' user messages processed without an answer, or answered but not processed'
	  FROM user_messages WHERE processed != (response IS NOT NULL) HAVING count(*) > 0;
	-- Nobody answered twice: one applied reply_user per message at most.
	SELECT 'message ' || m || ' answered ' || n || ' times' FROM (
	  SELECT json_extract(a.value, '\$.message_id') AS m, count(*) AS n
	    FROM traces t, json_each(t.output, '\$.actions') a
	   WHERE t.status = 'completed' AND json_valid(t.output)
	     AND json_extract(a.value, '\$.type') = 'reply_user'
	   GROUP BY m HAVING count(*) > 1);
	-- Artifact versions 1..N without a gap, per stack.
	SELECT 'artifact versions not contiguous in stack ' || stack_id FROM artifacts
	 GROUP BY stack_id HAVING min(version) != 1 OR max(version) != count(*);
	-- Cycle numbers 1..N without a gap or a repeat, per stack.
	SELECT 'cycle numbers not contiguous in stack ' || stack_id FROM executions
	 GROUP BY stack_id HAVING min(cycle) != 1 OR max(cycle) != count(DISTINCT cycle)
	    OR count(DISTINCT cycle) != count(*);
	-- Two cycles of one stack never overlapped in time.
	SELECT 'cycles ' || a.id || ' and ' || b.id || ' overlap' FROM executions a
	  JOIN executions b ON a.stack_id = b.stack_id AND a.id < b.id
	 WHERE b.started_at < a.ended_at AND a.started_at < b.ended_at;")
	[ -z "$v" ] || die "$v"
}

# Nothing an agent left behind is running once a round and its recovery
# are over (a pid is the same process only with the same start time).
check_left() {
	local pid start now state i n
	for ((i = 0; i < 100; i++)); do
		n=0
		while read -r pid start; do
			read -r now state < <(awk '{print $22, $3}' "/proc/$pid/stat" 2>/dev/null)
			[ "$now" = "$start" ] && [ "$state" != Z ] && n=$((n + 1))
		done <"$left"
		[ "$n" = 0 ] && break
		sleep 0.02
	done
	[ "$n" = 0 ] || die "$n processes the agents left are still running"
	: >"$left"
}

pipeline_bg() {
	local d=$1
	rm -f "$d"/p1 "$d"/p2 "$d"/p3
	mkfifo "$d/p1" "$d/p2" "$d/p3"
	orch-detect --all --force >"$d/p1" 2>"$d/detect.err" &
	detect_pid=$!
	orch-graph <"$d/p1" >"$d/p2" 2>"$d/graph.err" &
	graph_pid=$!
	orch-exec "${team[@]}" <"$d/p2" >"$d/p3" 2>"$d/exec.err" &
	exec_pid=$!
	orch-decide <"$d/p3" >"$d/decide.out" 2>"$d/decide.err" &
	decide_pid=$!
}

# wait_for VAR PID: VAR = PID's exit status, 137 for SIGKILL (quietly).
wait_for() {
	local s=0
	wait "$2" 2>/dev/null || s=$?
	printf -v "$1" %s "$s"
}

# running_as PID NAME: once PID, a stage's subshell, has become program
# NAME (polled for up to 1 s), whether it is still running. The subshell
# opens its FIFOs before it execs, and one killed in open(2) would leave
# its partners blocked there for ever: only the program itself is killed.
running_as() {
	local i
	for ((i = 0; i < 500; i++)); do
		[ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && break
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.002
	done
	kill -0 "$1" 2>/dev/null
}

# A child of orch-exec (an agent), polled for up to 1.5 s.
agent_child() {
	local i c
	for ((i = 0; i < 150; i++)); do
		c=$(pgrep -P "$exec_pid" 2>/dev/null | head -n 1)
		[ -n "$c" ] && { echo "$c"; return 0; }
		kill -0 "$exec_pid" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

orch-stack init >/dev/null || die "init failed"
for ((i = 1; i <= nstacks; i++)); do
	orch-stack create "s$i" --idea "crash test stack $i" >/dev/null || die "create failed"
	orch-stack start "s$i" >/dev/null || die "start failed"
done

hits=0 misses=0 round=0 what=none
declare -A by_target=([exec]=0 [agent]=0 [decide]=0)
t0=$SECONDS
while ((hits < kills)); do
	round=$((round + 1))
	((round <= kills * 8 + 20)) || die "only $hits of $kills kills landed in $round rounds"
	if [ "$target" = mix ]; then
		what=$(printf '%s\n' exec exec agent decide | sed -n "$((RANDOM % 4 + 1))p")
	else
		what=$target
	fi
	top_up
	d=$work/round
	mkdir -p "$d"
	pipeline_bg "$d"
	delay=$((RANDOM % 250))
	victim=
	case $what in
	exec)
		sleep "$(printf '0.%03d' "$delay")"
		running_as "$exec_pid" orch-exec && victim=$exec_pid ;;
	decide)
		sleep "$(printf '0.%03d' "$delay")"
		running_as "$decide_pid" orch-decide && victim=$decide_pid ;;
	agent)
		sleep "$(printf '0.%03d' $((delay / 4)))"
		victim=$(agent_child) || victim= ;;
	esac
	# Which stacks orch-exec held at the moment of the kill.
	held=
	[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null && {
		[ "$what" = exec ] && held=$(sql "SELECT group_concat(id) FROM stacks WHERE lease_pid = $exec_pid")
	}
	{
		wait_for s_detect "$detect_pid"
		wait_for s_graph "$graph_pid"
		wait_for s_exec "$exec_pid"
		wait_for s_decide "$decide_pid"
	} 2>/dev/null
	# A process that had exited but was not yet reaped still takes a
	# signal without error: the kill landed only if it died of it.
	case $what in
	exec) [ "$s_exec" = 137 ] || { victim= held=; } ;;
	decide) [ "$s_decide" = 137 ] || victim= ;;
	esac
	if [ -z "$victim" ]; then
		misses=$((misses + 1))
	else
		hits=$((hits + 1))
		by_target[$what]=$((by_target[$what] + 1))
	fi
	# What each stage may do when another one dies beside it.
	case $what in
	exec)
		[ -n "$victim" ] || [ "$s_exec" = 0 ] || die "orch-exec exited $s_exec: $(cat "$d/exec.err")"
		[[ $s_decide =~ ^(0|65)$ ]] || die "orch-decide exited $s_decide: $(cat "$d/decide.err")" ;;
	agent)
		[ "$s_exec" = 0 ] || die "orch-exec exited $s_exec after an agent was killed: $(cat "$d/exec.err")"
		[ -s "$d/exec.err" ] && die "orch-exec wrote to stderr: $(cat "$d/exec.err")"
		[ "$s_decide" = 0 ] || die "orch-decide exited $s_decide: $(cat "$d/decide.err")" ;;
	decide)
		# orch-exec finds its reader gone: a write error, after recording.
		[[ $s_exec =~ ^(0|70)$ ]] || die "orch-exec exited $s_exec after orch-decide was killed: $(cat "$d/exec.err")" ;;
	esac
	# Upstream of a killed stage, a writer may find its reader gone: a
	# write error (70), or SIGPIPE (141) as for any filter in a pipe.
	[[ $s_detect =~ ^(0|70|141)$ ]] || die "orch-detect exited $s_detect: $(cat "$d/detect.err")"
	[[ $s_graph =~ ^(0|70|141)$ ]] || die "orch-graph exited $s_graph: $(cat "$d/graph.err")"
	# Before the recovery: an in_progress todo only in a stack whose
	# holder is gone (a live run cannot exist: every pipeline has ended).
	v=$(sql "SELECT count(*) FROM todos t JOIN stacks s ON s.id = t.stack_id
	         WHERE t.status = 'in_progress' AND s.lease_owner IS NULL")
	[ "$v" = 0 ] || die "$v todos in_progress in stacks nobody holds"
	# The recovery: the next pipeline, untouched, takes every lease over.
	orch-detect --all --force 2>"$d/r.err" | orch-graph 2>>"$d/r.err" |
		orch-exec "${team[@]}" 2>>"$d/r.err" | tee "$d/recovery.json" |
		orch-decide >/dev/null 2>>"$d/r.err"
	st=("${PIPESTATUS[@]}")
	[ "${st[*]}" = "0 0 0 0 0" ] || die "recovery pipeline exited ${st[*]}: $(cat "$d/r.err")"
	[ -s "$d/r.err" ] && die "recovery wrote to stderr: $(cat "$d/r.err")"
	v=$(jq -s 'map(select(.ran != true)) | length' "$d/recovery.json")
	[ "$v" = 0 ] || die "the recovery skipped $v stacks: $(jq -c 'select(.ran != true) | .skip_reason' "$d/recovery.json")"
	v=$(jq -s length "$d/recovery.json")
	[ "$v" = "$nstacks" ] || die "the recovery ran $v stacks of $nstacks"
	if [ -n "$held" ]; then
		host_pid=$(jq -r --argjson id "${held%%,*}" 'select(.stack.id == $id) | .recovered.abandoned_by' "$d/recovery.json")
		[[ $host_pid == *":$exec_pid" ]] || die "stack ${held%%,*} not taken over from pid $exec_pid: $host_pid"
		for id in ${held//,/ }; do
			v=$(sql "SELECT status || '|' || error FROM executions WHERE stack_id = $id AND owner LIKE '%:$exec_pid:%'
			         ORDER BY id DESC LIMIT 1")
			[ "$v" = "failed|abandoned: its orch-exec ($host_pid) is gone" ] ||
				die "stack $id: the abandoned cycle is '$v'"
		done
	fi
	check_store
	check_left
	printf 'crash.sh: round %d: kill %s %s after %d ms (exec %s, decide %s)%s\n' \
		"$round" "$what" "${victim:-(missed)}" "$delay" "$s_exec" "$s_decide" \
		"${held:+, held stacks $held}" >>"$work/log"
done
printf >&3 'crash.sh: seed %s: %d kills (exec %d, agent %d, decide %d), %d missed, %d rounds, %d cycles, %d s\n' \
	"$seed" "$hits" "${by_target[exec]}" "${by_target[agent]}" "${by_target[decide]}" \
	"$misses" "$round" "$(sql "SELECT count(*) FROM executions")" $((SECONDS - t0))
