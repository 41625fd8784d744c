#!/usr/bin/env bash
# hosts.sh - many hosts on one PostgreSQL store (issue 15): 1, 2 and 4
# "hosts" (pipelines with distinct ORCH_HOST, each looping
# orch-detect --all | orch-graph | orch-exec -j 8 | orch-decide) over the
# same stacks, whose agents wait 200 ms; nodes per second for each host
# count, as a ratio to one host; whether any stack ever ran two cycles at
# once (from the recorded cycles); and, with two hosts, how long after a
# kill -9 of one host's orch-exec its stacks run elsewhere, against the
# lease. SQLite on one host is printed beside it.
#
# One machine's "hosts" share its CPUs, and one host alone can keep them
# busy: then the run measures the machine, not how the store lets hosts
# scale. So, where the kernel lets this script (root, a writable cgroup
# cpu controller, v1 or v2), each host runs in a cgroup of its own with a
# fixed CPU share (--host-cpu), as a machine of that size would; the
# server is not limited. Elsewhere the hosts run unlimited, and say so.
#
# usage: tests/bench/hosts.sh [--quick] [--stacks N] [--secs S]
#                             [--host-cpu CPUS] [--out DIR]
#   --quick          40 stacks, 4 s a run, a 1.5 s lease (the smoke test)
#   default          400 stacks, 30 s a run
#   --host-cpu CPUS  each host's CPU share (default 0.15; 0 = unlimited)
# The programs come from $ORCH_BUILD/bin (default build/ of this tree); the
# server is a throwaway cluster (tests/pg.bash), stopped at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/tests/bench
BUILD=${ORCH_BUILD:-$ROOT/build}
STACKS=400
SECS=30
JOBS=8
AGENT_MS=200
LEASE_MS=5000
HOST_CPU=0.15
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) STACKS=40; SECS=4; LEASE_MS=1500 ;;
	--stacks) STACKS=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--host-cpu) HOST_CPU=$2; shift ;;
	-h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "hosts.sh: unknown argument '$1'" >&2; exit 64 ;;
	esac
	shift
done
[[ $HOST_CPU =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
	{ echo "hosts.sh: --host-cpu: '$HOST_CPU' is not a number of CPUs" >&2; exit 64; }
for p in orch-stack orch-detect orch-graph orch-exec orch-decide; do
	[ -x "$BUILD/bin/$p" ] || { echo "hosts.sh: no $BUILD/bin/$p (build first: make)" >&2; exit 66; }
done
# shellcheck source=../pg.bash
. "$ROOT/tests/pg.bash"
pg_have_server || { echo "hosts.sh: no PostgreSQL server (apt-get install postgresql)" >&2; exit 69; }
export PATH=$BUILD/bin:$PATH
unset ORCH_DB ORCH_CONFIG XDG_CONFIG_HOME
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/orch-hosts.XXXXXX")
	KEEP=0
else
	mkdir -p "$OUT"
	KEEP=1
fi
PGDIR=$(mktemp -d /tmp/orch-hosts-pg.XXXXXX)
HOSTPIDS=()

# The hosts' CPU cgroups: CGROUP_BASE/hN, each limited to HOST_CPU CPUs
# (cgroup v2's cpu.max, else v1's CFS quota); CGROUP_BASE stays empty
# when the kernel does not let this script make them.
CGROUP_BASE=
CGROUP_WHY=
cgroups_init() {
	local quota
	quota=$(awk -v c="$HOST_CPU" 'BEGIN { printf "%d", c * 100000 }')
	if [ "$quota" -le 0 ]; then
		CGROUP_WHY="unlimited (--host-cpu 0)"
		return
	fi
	if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
		CGROUP_BASE=/sys/fs/cgroup/orch-hosts.$$ && mkdir "$CGROUP_BASE" 2>/dev/null; then
		echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
		echo +cpu >"$CGROUP_BASE/cgroup.subtree_control" 2>/dev/null || true
		CGROUP_SET="echo '$quota 100000' >\"\$g/cpu.max\""
	elif CGROUP_BASE=/sys/fs/cgroup/cpu/orch-hosts.$$ && mkdir "$CGROUP_BASE" 2>/dev/null; then
		CGROUP_SET="echo 100000 >\"\$g/cpu.cfs_period_us\" && echo $quota >\"\$g/cpu.cfs_quota_us\""
	else
		CGROUP_BASE=
		CGROUP_WHY="unlimited (no cgroup this script may make: not root, or no cpu controller)"
		return
	fi
	local i g
	for i in 1 2 3 4; do
		g=$CGROUP_BASE/h$i
		if ! mkdir "$g" 2>/dev/null || ! eval "$CGROUP_SET" 2>/dev/null; then
			cgroups_remove
			CGROUP_WHY="unlimited (the kernel refused a CPU limit in $CGROUP_BASE)"
			return
		fi
	done
	CGROUP_WHY="$HOST_CPU CPU each (a cgroup per host)"
}
# cgroups_remove: the hosts' cgroups gone. A cgroup with a process in it
# cannot be removed, so what is left of the hosts (told to stop, or not:
# the script may be ending on an error) is killed first, for at most 5 s.
cgroups_remove() {
	local g i left
	[ -n "$CGROUP_BASE" ] || return 0
	for g in "$CGROUP_BASE"/h*; do
		for ((i = 0; i < 50; i++)); do
			left=$(cat "$g/cgroup.procs" 2>/dev/null) || break
			[ -n "$left" ] || break
			# shellcheck disable=SC2086 # a list of pids
			kill -KILL $left 2>/dev/null || true
			sleep 0.1
		done
		rmdir "$g" 2>/dev/null || true
	done
	rmdir "$CGROUP_BASE" 2>/dev/null ||
		echo "hosts.sh: cannot remove $CGROUP_BASE (remove it with rmdir)" >&2
	CGROUP_BASE=
}

cleanup() {
	local p
	for p in "${HOSTPIDS[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null || true
	done
	cgroups_remove
	pg_cluster_stop "$PGDIR" >/dev/null 2>&1 || true
	rm -rf "$PGDIR"
	[ "$KEEP" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT
export HOME=$OUT/home
mkdir -p "$HOME"
pg_cluster_start "$PGDIR" || exit 69
PGUSER_=$(pg_run_user)
uri() { printf 'postgresql:///%s?host=%s&user=%s\n' "$1" "$PGDIR" "$PGUSER_"; }
psql_() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

cc -O2 -o "$OUT/instant" "$BENCH/instant.c"
cat >"$OUT/config" <<EOF
agent.planner = $OUT/instant $AGENT_MS
agent.builder = $OUT/instant $AGENT_MS
agent.communicator = $OUT/instant $AGENT_MS
agent.reviewer = $OUT/instant $AGENT_MS
exec.lease = $LEASE_MS
exec.retries = 0
EOF
export ORCH_CONFIG=$OUT/config

# populate DB: STACKS running stacks, each a project and 200 pending todos
# (the builder always has one), planned and reviewed just now.
populate() {
	local db=$1 now
	now=$(($(date +%s%3N)))
	orch-stack --db "$db" init >/dev/null
	local sql="
	INSERT INTO stacks (id, name, execution_state, created_at, started_at, next_run_at)
	SELECT i, 's' || i, 'running', $now, $now, 0 FROM generate_series(1, $STACKS) i;
	INSERT INTO projects (stack_id, title, description, created_at, updated_at)
	SELECT id, name, 'a benchmark project', $now, $now FROM stacks;
	INSERT INTO todos (stack_id, content, priority, created_at)
	SELECT s.id, 'todo ' || j, 3, $now + j FROM stacks s, generate_series(1, 200) j;
	INSERT INTO agent_runs (stack_id, agent, started_at, ended_at, seen_version)
	SELECT s.id, a, $now, $now, s.content_version FROM stacks s,
	  (VALUES ('planner'), ('reviewer')) v(a);"
	if [[ $db == postgresql:* ]]; then
		# Analyzed, as autovacuum would have it after a while: a table
		# loaded a moment ago has no statistics, and the first run's
		# plans would be guesses.
		psql_ "$db" -c "$sql" -c "ANALYZE" >/dev/null
	else
		sql=${sql//generate_series(1, $STACKS) i/(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $STACKS) SELECT i FROM c)}
		sql=${sql//generate_series(1, 200) j/(WITH RECURSIVE d(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM d WHERE j < 200) SELECT j FROM d)}
		sql=${sql//v(a)/v}
		sql=${sql//SELECT s.id, a,/SELECT s.id, column1,}
		sqlite3 -batch -bail "$db" "$sql"
	fi
}

# host NAME DB SECS [CGROUP [CYCLES]]: one host's loop until SECS have
# passed, in CGROUP (a directory) when given, the time each pass began
# added to the file CYCLES when given; the loop's pid is its process
# group's.
host() {
	local name=$1 db=$2 until
	until=$(($(date +%s) + $3))
	[ -z "${4-}" ] || echo "$BASHPID" >"$4/cgroup.procs"
	export ORCH_HOST=$name ORCH_DB=$db
	while [ "$(date +%s)" -lt "$until" ]; do
		[ -z "${5-}" ] || date +%s%3N >>"$5"
		orch-detect --all | orch-graph | orch-exec -j "$JOBS" -q | orch-decide >/dev/null || true
	done
}

# query DB SQL: one value.
query() {
	if [[ $1 == postgresql:* ]]; then
		psql_ "$1" -c "$2"
	else
		sqlite3 -batch -bail -cmd ".timeout 30000" "$1" "$2"
	fi
}

# ratio A B DIGITS: A / B with DIGITS decimals.
ratio() {
	awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { printf "%.*f", d, b ? a / b : 0 }'
}

# stop_hosts: SIGTERM to each host's process group, as a person stops
# them, then wait until every process of theirs has ended (orch-exec
# records its cycles on the way out).
stop_hosts() {
	local p i
	exec 3>&2 2>/dev/null
	for p in "${HOSTPIDS[@]}"; do
		kill -TERM -- "-$p" || true
	done
	wait "${HOSTPIDS[@]}" || true
	for p in "${HOSTPIDS[@]}"; do
		for ((i = 0; i < 300; i++)); do
			pgrep -g "$p" >/dev/null || break
			sleep 0.1
		done
	done
	exec 2>&3 3>&-
	HOSTPIDS=()
}

# busy: the machine's CPU time so far, all CPUs, in clock ticks (/proc/stat):
# on one machine the "hosts" share its CPUs, and a run that keeps them all
# busy measures the machine, not how orch scales across machines.
busy() {
	awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat
}

# server_cpu: the PostgreSQL server's CPU time so far, in clock ticks:
# the postmaster's own and its ended backends' (its cutime and cstime),
# and those of the children still running. On one machine this splits
# what the store costs from what the hosts' programs and agents do.
server_cpu() {
	local pm
	[ -f "$PGDIR/data/postmaster.pid" ] || { echo 0; return; }
	pm=$(head -n 1 "$PGDIR/data/postmaster.pid")
	{
		sed 's/.*) //' "/proc/$pm/stat" | awk '{ print $12 + $13 + $14 + $15 }'
		# (A backend may end between pgrep and its read.)
		for p in $(pgrep -P "$pm"); do
			sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true
		done
	} | awk '{ t += $1 } END { print t + 0 }'
}

# run DB HOSTS: HOSTS hosts for SECS, then stopped (SIGTERM, as a person
# stops them); prints "NODES NODES_PER_S OVERLAPS CPU_BUSY SERVER_MS
# REST_MS": the nodes those that started within the SECS and completed,
# and the CPU time per node the server took and the rest of the machine
# (the hosts' programs and agents) took.
run() {
	local db=$1 n=$2 i t0 nodes over p b0 cpu s0 s1 b1
	HOSTPIDS=()
	t0=$(date +%s%3N)
	b0=$(busy)
	s0=$(server_cpu)
	for ((i = 1; i <= n; i++)); do
		setsid bash -c "$(declare -f host); JOBS=$JOBS; host h$i '$db' $((SECS * 10)) ${CGROUP_BASE:+$CGROUP_BASE/h$i}" \
			>"$OUT/host-$n-$i.log" 2>&1 &
		HOSTPIDS+=($!)
	done
	# How many transactions wait for a write lock (the store's, or a
	# stack's: the advisory locks writes take), sampled while the hosts run.
	local waiters=$OUT/waiters-$n
	: >"$waiters"
	if [[ $db == postgresql:* ]]; then
		local until_ms=$((t0 + SECS * 1000))
		while [ "$(date +%s%3N)" -lt "$until_ms" ]; do
			query "$db" "SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted" >>"$waiters" || true
			sleep 0.5
		done
	fi
	local left=$((t0 + SECS * 1000 - $(date +%s%3N)))
	[ "$left" -le 0 ] || sleep "$(ratio "$left" 1000 3)"
	# The CPUs' share busy over the run: 100% is all of them.
	b1=$(busy)
	s1=$(server_cpu)
	cpu=$(awk -v b="$b1" -v b0="$b0" -v hz="$(getconf CLK_TCK)" -v s="$SECS" -v n="$(nproc)" \
		'BEGIN { printf "%d", (b - b0) * 100 / (hz * s * n) }')
	stop_hosts
	nodes=$(query "$db" "SELECT count(*) FROM traces WHERE status = 'completed'
		AND started_at BETWEEN $t0 AND $((t0 + SECS * 1000))")
	# Two cycles of one stack at once: an execution that started before
	# another of the same stack had ended.
	over=$(query "$db" "SELECT count(*) FROM executions a JOIN executions b
		ON a.stack_id = b.stack_id AND a.id < b.id
		AND b.started_at < COALESCE(a.ended_at, 9223372036854775807)
		AND a.started_at < COALESCE(b.ended_at, 9223372036854775807)")
	echo "$nodes $(ratio "$nodes" "$SECS" 1) $over $cpu%" \
		"$(ratio "$(( (s1 - s0) * 1000 / $(getconf CLK_TCK) ))" "$nodes" 1)" \
		"$(ratio "$(( (b1 - b0 - s1 + s0) * 1000 / $(getconf CLK_TCK) ))" "$nodes" 1)" \
		"$(awk '{ t += $1; n++ } END { if (n) printf "%.1f", t / n; else print "-" }' "$waiters")"
}

cgroups_init
echo "# hosts: $STACKS stacks, agents wait ${AGENT_MS} ms, -j $JOBS a host, $SECS s a run; CPU $CGROUP_WHY" | tee "$OUT/results.txt"
# Then CPU ms per node, the server's and the rest's, and the mean number
# of transactions waiting for a write lock.
ROW='%-22s %8s %10s %8s %9s %9s %11s %9s %8s\n'
printf "$ROW" "store, hosts" nodes "nodes/s" "x 1 host" overlaps "CPU busy" \
	"server ms" "rest ms" waiting | tee -a "$OUT/results.txt"
base=
for n in 1 2 4; do
	psql_ "$(uri postgres)" -c "CREATE DATABASE hosts$n" >/dev/null
	populate "$(uri "hosts$n")"
	read -r nodes rate over cpu sms rms wait < <(run "$(uri "hosts$n")" "$n")
	[ -n "$base" ] || base=$rate
	printf "$ROW" "PostgreSQL, $n" "$nodes" "$rate" \
		"x$(ratio "$rate" "$base" 2)" "$over" "$cpu" "$sms" "$rms" "$wait" | tee -a "$OUT/results.txt"
done
populate "$OUT/sqlite.db"
read -r nodes rate over cpu sms rms wait < <(run "$OUT/sqlite.db" 1)
printf "$ROW" "SQLite, 1" "$nodes" "$rate" \
	"x$(ratio "$rate" "$base" 2)" "$over" "$cpu" "-" "$rms" "$wait" | tee -a "$OUT/results.txt"

# A host killed: two hosts; two seconds in, host 1's orch-exec is killed
# with SIGKILL and its loop stopped. Its stacks (their leases still naming
# it) must run on host 2 once the lease has run out, in the pass host 2
# is in then or the next: within the lease and two of its passes.
db=$(uri hostskill)
psql_ "$(uri postgres)" -c "CREATE DATABASE hostskill" >/dev/null
populate "$db"
sed -i "s/^exec.lease = .*/exec.lease = $LEASE_MS/" "$OUT/config"
HOSTPIDS=()
KILL_AFTER=2
# Host 2 runs until it has run them all, or this long.
KILL_SECS=$((KILL_AFTER + LEASE_MS / 1000 + 180))
for i in 1 2; do
	setsid bash -c "$(declare -f host); JOBS=$JOBS; host h$i '$db' $KILL_SECS '${CGROUP_BASE:+$CGROUP_BASE/h$i}' '$OUT/kill-passes-$i'" \
		>"$OUT/kill-$i.log" 2>&1 &
	HOSTPIDS+=($!)
done
sleep "$KILL_AFTER"
# Killed while it holds stacks (between its pipelines it holds none).
for ((i = 0; i < 200; i++)); do
	[ "$(query "$db" "SELECT count(*) FROM stacks WHERE lease_owner LIKE 'h1:%'")" -gt 0 ] && break
	sleep 0.05
done
# (The shell's own word on a job it saw killed is not this script's.)
exec 3>&2 2>/dev/null
kill -STOP -- "-${HOSTPIDS[0]}" || true
killed_at=$(date +%s%3N)
pkill -KILL -g "${HOSTPIDS[0]}" -x orch-exec || true
kill -KILL -- "-${HOSTPIDS[0]}" || true
wait "${HOSTPIDS[0]}" || true
exec 2>&3 3>&-
HOSTPIDS=("${HOSTPIDS[1]}")
HELD="executions a WHERE a.owner LIKE 'h1:%'
	AND a.started_at <= $killed_at AND (a.ended_at IS NULL OR a.ended_at > $killed_at)"
NOT_RUN="NOT EXISTS (SELECT 1 FROM executions b WHERE b.stack_id = a.stack_id
	  AND b.owner LIKE 'h2:%' AND b.started_at > $killed_at)"
while [ "$(query "$db" "SELECT count(*) FROM $HELD AND $NOT_RUN")" -gt 0 ] &&
	[ $(($(date +%s%3N) - killed_at)) -lt $((LEASE_MS + 170000)) ]; do
	sleep 0.5
done
stop_hosts
# For each stack host 1 held when killed: when host 2 started its next cycle.
held=$(query "$db" "SELECT count(*) FROM $HELD")
worst=$(query "$db" "SELECT COALESCE(max(
	(SELECT min(b.started_at) FROM executions b WHERE b.stack_id = a.stack_id
	  AND b.owner LIKE 'h2:%' AND b.started_at > $killed_at) - $killed_at), -1)
	FROM $HELD")
never=$(query "$db" "SELECT count(*) FROM $HELD AND $NOT_RUN")
over=$(query "$db" "SELECT count(*) FROM executions a JOIN executions b
	ON a.stack_id = b.stack_id AND a.id < b.id AND a.status <> 'running'
	AND b.started_at < a.ended_at AND a.started_at < b.ended_at")
# Host 2's longest pass (pipeline) that ended.
pass=$(awk 'NR > 1 && $1 - prev > m { m = $1 - prev } { prev = $1 } END { print m + 0 }' \
	"$OUT/kill-passes-2" 2>/dev/null || echo 0)
echo "kill -9 of host 1's orch-exec: $held stacks it held; host 2 ran them within $worst ms (lease $LEASE_MS ms, host 2's longest pass $pass ms), $never never; $over overlaps" |
	tee -a "$OUT/results.txt"
