#!/usr/bin/env bash
# run.sh - orch's benchmarks (issue 6): each figure beside the same work
# done by an anchor in the same run, as a ratio. See tests/bench/README.md.
#
# usage: tests/bench/run.sh [--quick] [--jobs N] [--out DIR] [BENCH...]
#   BENCH: graph detect cycle linear llm quota world retention estimate (default: all)
#   --quick  small sizes, for the smoke test (tests/bench.bats)
#   --jobs   -j for orch-exec, ninja and make in graph and cycle (default 16)
#   --out    keep the databases, graphs and logs there (default: a temp dir)
# The programs come from $ORCH_BUILD/bin (default build/ of this tree).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/tests/bench
BUILD=${ORCH_BUILD:-$ROOT/build}
QUICK=0
JOBS=16
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--jobs) JOBS=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option '$1'" >&2; exit 64 ;;
	*) break ;;
	esac
	shift
done
WHICH=${*:-graph detect cycle linear llm quota world retention estimate}
for b in $WHICH; do
	case $b in
	graph|detect|cycle|linear|llm|quota|world|retention|estimate) ;;
	*) echo "run.sh: unknown benchmark '$b'" >&2; exit 64 ;;
	esac
done

# --- what it needs ---
missing=
for tool in sqlite3 jq ninja make python3 cc curl openssl; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
[ -x /usr/bin/time ] || missing="$missing time"
if [ -n "$missing" ]; then
	pkgs=$(echo "$missing" | sed 's/\bninja\b/ninja-build/; s/\bcc\b/build-essential/')
	echo "run.sh: missing:$missing; install with: sudo apt-get install$pkgs" >&2
	exit 69
fi
for p in orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent; do
	[ -x "$BUILD/bin/$p" ] || { echo "run.sh: no $BUILD/bin/$p (build first: make)" >&2; exit 66; }
done
export PATH=$BUILD/bin:$PATH
unset ORCH_DB ORCH_LLM_BASE_URL ORCH_LLM_MODEL ORCH_LLM_FALLBACKS ORCH_LLM_CA_BUNDLE XDG_CONFIG_HOME
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench.XXXXXX")
	trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
export HOME=$OUT/home # no user configuration file
mkdir -p "$HOME"

# The instant agent, static when the toolchain allows (no loader: the same
# cheap exec for orch-exec, ninja and make).
INSTANT=$OUT/instant
cc -O2 -static -o "$INSTANT" "$BENCH/instant.c" 2>/dev/null ||
	cc -O2 -o "$INSTANT" "$BENCH/instant.c"

. "$BENCH/populate.sh"

if [ $QUICK = 1 ]; then
	S2=20 S3=10 S4=16 DETECT=100 CYCLE=20 LLM=5 QUOTA=6 WORLD=6 RETAIN=40 ESTIMATE=3
else
	S2=1000 S3=1000 S4=200 DETECT=10000 CYCLE=1000 LLM="100 1000" QUOTA=20 WORLD=120 RETAIN=1000 ESTIMATE=30
fi

# --- helpers ---
now_ns() { date +%s%N; }
# secs START END: seconds between two now_ns, 3 decimals.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# ratio A B: A / B, 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# per A N: A seconds over N, in ms, 2 decimals.
per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.2f", (n > 0 ? 1000 * a / n : 0) }'; }
row() { printf '%-10s %s\n' "$1" "$2" | tee -a "$OUT/results.txt"; }

# graphs DB N AGENTS: the orch.graph documents of DB's N stacks, keeping
# the nodes of AGENTS (a jq array) only; deps and waves follow.
graphs() {
	local db=$1 agents=$2
	orch-detect --db "$db" --all --no-cache --now 2000000000000 |
		orch-graph --now 2000000000000 |
		jq -c --argjson keep "$agents" '
			.nodes |= map(select(.agent as $a | $keep | index($a)))
			| .nodes |= map(.deps |= map(select(. as $d | $keep | index($d))))
			| .waves |= (map(map(select(. as $a | $keep | index($a)))) | map(select(length > 0)))'
}

# anchors GRAPHS MS DIR: a build.ninja and a Makefile in DIR running
# "$INSTANT MS" once per node of GRAPHS, with the graphs' dependencies.
anchors() {
	local graphs=$1 ms=$2 dir=$3
	mkdir -p "$dir"
	jq -r --arg cmd "$INSTANT $ms" '
		.stack.name as $s | .nodes[] |
		"build \($s).\(.agent): a" +
		(if (.deps | length) > 0 then " | " + (.deps | map("\($s).\(.)") | join(" ")) else "" end)
	' "$graphs" | { printf 'rule a\n  command = %s %s\n' "$INSTANT" "$ms"; cat; } >"$dir/build.ninja"
	{
		printf '.PHONY: all\nall:'
		jq -r '.stack.name as $s | .nodes[] | " \($s).\(.agent)"' "$graphs" | tr -d '\n'
		printf '\n'
		jq -r --arg cmd "$INSTANT $ms" '
			.stack.name as $s | .nodes[] |
			".PHONY: \($s).\(.agent)\n\($s).\(.agent):" +
			(.deps | map(" \($s).\(.)") | join("")) + "\n\t@\($cmd)"
		' "$graphs"
	} >"$dir/Makefile"
}

# run_exec TEMPLATE GRAPHS MS JOBS: orch-exec over GRAPHS on a fresh copy
# of TEMPLATE with every agent "$INSTANT MS"; prints the seconds.
run_exec() {
	local template=$1 graphs=$2 ms=$3 jobs=$4 db=$OUT/run.db a t0 t1 args=()
	rm -f "$db" "$db-wal" "$db-shm"
	cp "$template" "$db"
	for a in planner builder communicator reviewer; do
		args+=(--agent "$a=$INSTANT $ms")
	done
	t0=$(now_ns)
	orch-exec --db "$db" -j "$jobs" --retries 0 "${args[@]}" "$graphs" >"$OUT/exec.out"
	t1=$(now_ns)
	jq -e -s 'all(.[]; .summary.failed == 0 and .ran)' "$OUT/exec.out" >/dev/null ||
		{ echo "run.sh: orch-exec had failures, see $OUT/exec.out" >&2; exit 70; }
	secs "$t0" "$t1"
}

run_ninja() {
	local t0 t1
	rm -f "$1/.ninja_log" "$1/.ninja_deps"
	t0=$(now_ns)
	ninja -C "$1" -j "$2" >/dev/null </dev/null
	t1=$(now_ns)
	secs "$t0" "$t1"
}

run_make() {
	local t0 t1
	t0=$(now_ns)
	make -C "$1" -j "$2" -s >/dev/null </dev/null
	t1=$(now_ns)
	secs "$t0" "$t1"
}

# scenario NAME STACKS AGENTS MS JOBS IDEAL: one graph-execution figure.
scenario() {
	local name=$1 n=$2 agents=$3 ms=$4 jobs=$5 ideal=$6 db=$OUT/$1.db nodes o ni mk
	populate_cycle "$db" "$n"
	graphs "$db" "$agents" >"$OUT/$name.graphs"
	nodes=$(jq -s 'map(.nodes | length) | add' "$OUT/$name.graphs")
	anchors "$OUT/$name.graphs" "$ms" "$OUT/$name.anchors"
	o=$(run_exec "$db" "$OUT/$name.graphs" "$ms" "$jobs")
	ni=$(run_ninja "$OUT/$name.anchors" "$jobs")
	mk=$(run_make "$OUT/$name.anchors" "$jobs")
	row "$name" "$(printf '%5d nodes -j%-3d ideal %6.3f s | orch-exec %7.3f s (%5.2f ms/node, x%s ideal) | ninja %7.3f s (%5.2f ms/node) orch/ninja x%s | make %7.3f s (%5.2f ms/node) orch/make x%s' \
		"$nodes" "$jobs" "$ideal" "$o" "$(per "$(awk -v o="$o" -v i="$ideal" 'BEGIN{print o-i}')" "$nodes")" "$(ratio "$o" "$ideal")" \
		"$ni" "$(per "$(awk -v o="$ni" -v i="$ideal" 'BEGIN{print o-i}')" "$nodes")" "$(ratio "$o" "$ni")" \
		"$mk" "$(per "$(awk -v o="$mk" -v i="$ideal" 'BEGIN{print o-i}')" "$nodes")" "$(ratio "$o" "$mk")")"
}

bench_graph() {
	local all='["planner","builder","communicator","reviewer"]'
	echo "# graph execution: wall time; ms/node = (wall - ideal) / nodes" | tee -a "$OUT/results.txt"
	scenario S1 1 "$all" 200 "$JOBS" 0.6
	scenario S2 "$S2" '["communicator"]' 0 "$JOBS" 0
	scenario S3 "$S3" "$all" 0 "$JOBS" 0
	scenario S4 "$S4" '["communicator"]' 50 16 "$(awk -v n="$S4" 'BEGIN { printf "%.3f", int((n + 15) / 16) * 0.05 }')"
}

bench_detect() {
	local db=$OUT/detect.db t0 t1 raw cold warm nocache rss
	echo "# detection: $DETECT running stacks, 100 todos and 20 messages each" | tee -a "$OUT/results.txt"
	populate_detect "$db" "$DETECT"
	sqlite3 "$db" <"$BENCH/detect-raw.sql" >/dev/null # warm the page cache
	t0=$(now_ns); sqlite3 "$db" <"$BENCH/detect-raw.sql" >"$OUT/raw.out"; t1=$(now_ns)
	raw=$(secs "$t0" "$t1")
	t0=$(now_ns); orch-detect --db "$db" --all --no-cache >"$OUT/detect.out"; t1=$(now_ns)
	nocache=$(secs "$t0" "$t1")
	t0=$(now_ns)
	/usr/bin/time -f %M -o "$OUT/detect.rss" orch-detect --db "$db" --all --cache-ttl 600000 >/dev/null
	t1=$(now_ns)
	cold=$(secs "$t0" "$t1")
	rss=$(cat "$OUT/detect.rss")
	t0=$(now_ns); orch-detect --db "$db" --all --cache-ttl 600000 >/dev/null; t1=$(now_ns)
	warm=$(secs "$t0" "$t1")
	[ "$(wc -l <"$OUT/detect.out")" = "$DETECT" ] && [ "$(wc -l <"$OUT/raw.out")" = "$DETECT" ] ||
		{ echo "run.sh: detection printed the wrong number of stacks" >&2; exit 70; }
	row detect "$(printf 'raw SQL query %.3f s | orch-detect --all --no-cache %.3f s x%s | cold cache (computes, files 10k entries) %.3f s x%s, peak RSS %d KB | warm cache %.3f s x%s' \
		"$raw" "$nocache" "$(ratio "$nocache" "$raw")" "$cold" "$(ratio "$cold" "$raw")" "$rss" "$warm" "$(ratio "$warm" "$raw")")"
}

# cycle N: the whole pipeline once over N stacks whose four agents all have
# work, instant agents; prints "SECONDS RSS_DETECT RSS_GRAPH RSS_EXEC RSS_DECIDE".
cycle() {
	local n=$1 db=$OUT/cycle.db t0 t1 a args=()
	populate_cycle "$db" "$n"
	for a in planner builder communicator reviewer; do
		args+=(--agent "$a=$INSTANT 0")
	done
	t0=$(now_ns)
	/usr/bin/time -f %M -o "$OUT/rss.detect" orch-detect --db "$db" --all |
		/usr/bin/time -f %M -o "$OUT/rss.graph" orch-graph |
		/usr/bin/time -f %M -o "$OUT/rss.exec" orch-exec --db "$db" -j "$JOBS" --retries 0 "${args[@]}" |
		/usr/bin/time -f %M -o "$OUT/rss.decide" orch-decide --db "$db" >"$OUT/cycle.out"
	t1=$(now_ns)
	[ "$(jq -s 'map(select(.action)) | length' "$OUT/cycle.out")" = "$n" ] ||
		{ echo "run.sh: the cycle did not decide every stack, see $OUT/cycle.out" >&2; exit 70; }
	echo "$(secs "$t0" "$t1") $(cat "$OUT/rss.detect") $(cat "$OUT/rss.graph") $(cat "$OUT/rss.exec") $(cat "$OUT/rss.decide")"
}

bench_cycle() {
	local r s ni
	echo "# whole cycle: orch-detect --all | orch-graph | orch-exec -j$JOBS | orch-decide, $CYCLE stacks x 4 instant agents" | tee -a "$OUT/results.txt"
	read -r s d g e c <<<"$(cycle "$CYCLE")"
	# The anchor: ninja running the same 4N nodes (the graphs of the same state).
	populate_cycle "$OUT/cycle.db" "$CYCLE"
	graphs "$OUT/cycle.db" '["planner","builder","communicator","reviewer"]' >"$OUT/cycle.graphs"
	anchors "$OUT/cycle.graphs" 0 "$OUT/cycle.anchors"
	ni=$(run_ninja "$OUT/cycle.anchors" "$JOBS")
	row cycle "$(printf '%d stacks %.3f s = %.0f stacks/s (target: under 2 s) | ninja, same %d nodes, %.3f s, cycle/ninja x%s | peak RSS KB: detect %d, graph %d, exec %d, decide %d' \
		"$CYCLE" "$s" "$(awk -v n="$CYCLE" -v s="$s" 'BEGIN { print n / s }')" $((CYCLE * 4)) "$ni" "$(ratio "$s" "$ni")" "$d" "$g" "$e" "$c")"
}

bench_linear() {
	local n s base=
	echo "# linearity: the whole cycle at three sizes (ms per stack should stay flat)" | tee -a "$OUT/results.txt"
	for n in $((CYCLE / 4)) $((CYCLE / 2)) "$CYCLE"; do
		read -r s d g e c <<<"$(cycle "$n")"
		[ -n "$base" ] || base=$(per "$s" "$n")
		row linear "$(printf '%5d stacks %7.3f s  %5.2f ms/stack (x%s the smallest)  peak RSS KB: detect %d, exec %d, decide %d' \
			"$n" "$s" "$(per "$s" "$n")" "$(ratio "$(per "$s" "$n")" "$base")" "$d" "$e" "$c")"
	done
}

# llm_server SCHEME: the loopback server (tests/llm-server.py, through
# llm-server-wide.py for a thousand connections at once), over TLS with the
# bench's certificate (tls_cert) when SCHEME is https; sets URL and
# SERVER_PID. Each run puts its own script in place (llm_script).
llm_server() {
	local tls=() i
	[ "$1" = http ] || tls=(--tls "$OUT/tls/cert.pem" "$OUT/tls/key.pem")
	rm -f "$OUT/port" "$OUT/script.json"
	python3 "$BENCH/llm-server-wide.py" --script "$OUT/script.json" --log "$OUT/requests.log" \
		--port-file "$OUT/port" --idle 30 "${tls[@]}" >"$OUT/server.out" 2>&1 &
	SERVER_PID=$!
	for i in $(seq 200); do
		[ -s "$OUT/port" ] && break
		sleep 0.05
	done
	[ -s "$OUT/port" ] || { echo "run.sh: llm: the test server did not start, see $OUT/server.out" >&2; exit 70; }
	URL=$1://127.0.0.1:$(cat "$OUT/port")/v1
}

# llm_script N: N replies after 200 ms for the server's next requests, and
# an empty log (the server appends to it).
llm_script() {
	jq -n --argjson n "$1" '[range($n) | {delay: 0.2, reply: {thinking: "", actions: []}}]' >"$OUT/script.json.tmp"
	mv "$OUT/script.json.tmp" "$OUT/script.json"
	: >"$OUT/requests.log"
}

# tls_cert: a throwaway certificate for 127.0.0.1 in $OUT/tls, which orch
# (ORCH_LLM_CA_BUNDLE) and curl (--cacert) trust instead of the system's
# CAs. An EC key: the cheaper handshake for the test server, which makes a
# thousand of them on one CPU (Python's).
tls_cert() {
	mkdir -p "$OUT/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$OUT/tls/key.pem" -out "$OUT/tls/cert.pem" 2>/dev/null
}

# server_cpu: the test server's CPU time so far (user + system), seconds.
server_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}

# llm_measure WHAT N COMMAND...: COMMAND's N requests to the server with
# a fresh script; prints "WALL CPU RSS SERVER REQUESTS
# CONNECTIONS": seconds, user + system seconds of COMMAND and all its
# children, the peak RSS of its largest process (KB), the server's CPU
# seconds meanwhile, and from its log the requests and the connections
# they came on.
llm_measure() {
	local what=$1 n=$2 t0 t1 s0 s1 u s m reqs
	shift 2
	llm_script "$n"
	s0=$(server_cpu)
	t0=$(now_ns)
	/usr/bin/time -f '%U %S %M' -o "$OUT/llm.time" "$@" >"$OUT/llm.out" 2>"$OUT/llm.err" ||
		{ echo "run.sh: llm: $what failed: $(head -n 1 "$OUT/llm.err")" >&2; exit 70; }
	t1=$(now_ns)
	# A warning fails the run too: orch-exec only warns of a key it does
	# not know, and would measure the process path twice.
	[ ! -s "$OUT/llm.err" ] || { echo "run.sh: llm: $what: $(head -n 1 "$OUT/llm.err")" >&2; exit 70; }
	s1=$(server_cpu)
	reqs=$(wc -l <"$OUT/requests.log")
	[ "$reqs" = "$n" ] ||
		{ echo "run.sh: llm: $what sent $reqs requests for $n calls, see $OUT/requests.log" >&2; exit 70; }
	read -r u s m <<<"$(tail -n 1 "$OUT/llm.time")"
	echo "$(secs "$t0" "$t1") $(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }') $m" \
		"$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }') $reqs" \
		"$(jq -r .connection "$OUT/requests.log" | sort -u | wc -l)"
}

# llm_orch N SCHEME CONFIG: N planner turns at -j N through orch-exec and
# its built-in agent, CONFIG choosing the path; llm_measure's figures.
# The first run's first request is the body the curl anchors send.
llm_orch() {
	local n=$1 scheme=$2 config=$3 db=$OUT/llm.db env=(ORCH_LLM_API_KEY=bench-key) f
	rm -f "$db" "$db-wal" "$db-shm"
	cp "$OUT/llm-$n.db" "$db"
	env+=(ORCH_LLM_BASE_URL="$URL")
	[ "$scheme" = http ] || env+=(ORCH_LLM_CA_BUNDLE="$OUT/tls/cert.pem")
	# One call first, as a store that has run before has made: the shared
	# quota (llm.shared_quota) holds every request of a provider it has
	# never heard from until the first answer says its limits, once.
	llm_script 1
	head -n 1 "$OUT/llm-$n.graphs" | env "${env[@]}" orch-exec --db "$db" --config "$config" \
		--retries 0 >/dev/null 2>"$OUT/llm.err" ||
		{ echo "run.sh: llm: the first call failed: $(head -n 1 "$OUT/llm.err")" >&2; exit 70; }
	f=$(llm_measure "orch-exec --config $config" "$n" env "${env[@]}" \
		orch-exec --db "$db" --config "$config" -j "$n" --retries 0 "$OUT/llm-$n.graphs") || exit
	jq -e -s 'all(.[]; .summary.failed == 0)' "$OUT/llm.out" >/dev/null ||
		{ echo "run.sh: llm: agent calls failed, see $OUT/llm.out" >&2; exit 70; }
	[ -s "$OUT/llm-body.json" ] || jq -c .body "$OUT/requests.log" | head -n 1 >"$OUT/llm-body.json"
	echo "$f"
}

# llm_curl N SCHEME PROCS: the same N POSTs of orch's body to the same
# server from PROCS curl processes at once, each sending its share of the
# requests at once (--parallel), one each when PROCS is N; llm_measure's
# figures.
llm_curl() {
	local n=$1 scheme=$2 procs=$3 share=$((($1 + $3 - 1) / $3)) i args
	args=(-sS --no-progress-meter --fail -H "Authorization: Bearer bench-key" -H "Content-Type: application/json"
		--data-binary "@$OUT/llm-body.json")
	[ "$scheme" = http ] || args+=(--cacert "$OUT/tls/cert.pem")
	[ "$share" = 1 ] || args+=(--parallel --parallel-immediate --parallel-max "$share")
	rm -rf "$OUT/curl"
	mkdir "$OUT/curl"
	for ((i = 0; i < n; i++)); do
		printf 'url = "%s/chat/completions"\noutput = "/dev/null"\n' "$URL" >>"$OUT/curl/$((i / share))"
	done
	printf '%s\n' "$OUT"/curl/* >"$OUT/curl.list"
	llm_measure curl "$n" xargs -P "$procs" -n 1 -a "$OUT/curl.list" curl "${args[@]}" -K
}

# llm_row N SCHEME WHAT FIGURES ANCHOR [MORE]: one row of llm_measure's
# FIGURES, the wall time against the latency and the ANCHOR's wall time.
llm_row() {
	local w c r s q k
	read -r w c r s q k <<<"$4"
	row llm "$(printf '%4d calls %-5s %-20s %7.3f s x%-5s latency x%-5s curl -Z | CPU %6.2f ms/call | %d requests over %d connections (%s a 100 calls) | peak RSS %5.1f MiB | server CPU %5.2f s%s' \
		"$1" "$2" "$3" "$w" "$(ratio "$w" 0.2)" "$(ratio "$w" "$5")" "$(per "$c" "$1")" "$q" "$k" \
		"$(awk -v k="$k" -v n="$1" 'BEGIN { printf "%.0f", 100 * k / n }')" \
		"$(awk -v r="$r" 'BEGIN { print r / 1024 }')" "$s" "${6:-}")"
}

# The LLM path (issue 14): N planner turns at -j N (an answer with no
# actions is a whole turn for it) through orch-exec and its built-in
# agent, against the loopback server answering each after 200 ms, plain
# and over TLS: in-process (exec.in_process = 1, the default) and one
# orch-agent process a call (0). The anchor is the same N POSTs from one
# curl --parallel process, which keeps its connections and sends every
# request at once; N curl processes at once are the process path's.
bench_llm() {
	local n scheme procs inproc process anchor single
	echo "# LLM path: N calls at -j N through orch-exec, in-process and an orch-agent process a call, loopback server answering after 0.200 s; the anchor: one curl --parallel process" | tee -a "$OUT/results.txt"
	tls_cert
	printf 'exec.in_process = 1\n' >"$OUT/inproc.config"
	printf 'exec.in_process = 0\n' >"$OUT/process.config"
	rm -f "$OUT/llm-body.json"
	# At -j 1000 each turn holds a socket (and a process its pipes), and
	# curl and the server as many: more than the usual soft limit of 1,024.
	[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 8192 ] || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	for n in $LLM; do
		populate_cycle "$OUT/llm-$n.db" "$n"
		graphs "$OUT/llm-$n.db" '["planner"]' >"$OUT/llm-$n.graphs"
		for scheme in http https; do
			llm_server "$scheme"
			inproc=$(llm_orch "$n" "$scheme" "$OUT/inproc.config") || exit
			process=$(llm_orch "$n" "$scheme" "$OUT/process.config") || exit
			# curl caps --parallel-max at 300: above it, the fewest processes
			# that send every request at once.
			procs=$(((n + 299) / 300))
			anchor=$(llm_curl "$n" "$scheme" "$procs") || exit
			single=$(llm_curl "$n" "$scheme" "$n") || exit
			kill "$SERVER_PID" 2>/dev/null || true
			wait "$SERVER_PID" 2>/dev/null || true
			echo "# $n calls at -j $n over $scheme, each POST about $(wc -c <"$OUT/llm-body.json") bytes" | tee -a "$OUT/results.txt"
			llm_row "$n" "$scheme" "curl --parallel$([ "$procs" = 1 ] || echo " x$procs")" "$anchor" "${anchor%% *}"
			llm_row "$n" "$scheme" "orch-exec in-process" "$inproc" "${anchor%% *}"
			llm_row "$n" "$scheme" "orch-exec processes" "$process" "${anchor%% *}" \
				" | $n curl processes at once ${single%% *} s: orch/curl x$(ratio "${process%% *}" "${single%% *}")"
			llm_row "$n" "$scheme" "$n curl processes" "$single" "${anchor%% *}"
		done
	done
}

# quota_run SHARED: QUOTA planner turns at -j QUOTA through orch-exec
# against a server enforcing QUOTA_REQ requests and QUOTA_TOK tokens per
# QUOTA_WIN s (llm-server.py --limit-*), llm.shared_quota = SHARED; prints
# "SECONDS 429S".
quota_run() {
	local db=$OUT/quota.db t0 t1 i
	populate_cycle "$db" "$QUOTA" >/dev/null
	graphs "$db" '["planner"]' >"$OUT/quota.graphs"
	jq -n --argjson n "$QUOTA" '[range($n) | {reply: {thinking: "", actions: []}}]' >"$OUT/script.json"
	: >"$OUT/requests.log"
	rm -f "$OUT/port"
	python3 "$ROOT/tests/llm-server.py" --script "$OUT/script.json" --log "$OUT/requests.log" \
		--port-file "$OUT/port" --idle 30 --limit-requests "$QUOTA_REQ" \
		--limit-tokens "$QUOTA_TOK" --limit-window "$QUOTA_WIN" >"$OUT/server.out" 2>&1 &
	SERVER_PID=$!
	for i in $(seq 200); do
		[ -s "$OUT/port" ] && break
		sleep 0.05
	done
	t0=$(now_ns)
	ORCH_LLM_BASE_URL=http://127.0.0.1:$(cat "$OUT/port")/v1 ORCH_LLM_API_KEY=bench-key \
		ORCH_LLM_SHARED_QUOTA=$1 ORCH_LLM_BACKOFF_MS=100 ORCH_LLM_RETRIES=20 \
		orch-exec --db "$db" -j "$QUOTA" --retries 0 "$OUT/quota.graphs" >"$OUT/quota.out"
	t1=$(now_ns)
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	jq -e -s 'all(.[]; .summary.failed == 0)' "$OUT/quota.out" >/dev/null ||
		{ echo "run.sh: quota: agent calls failed, see $OUT/quota.out" >&2; exit 70; }
	echo "$(secs "$t0" "$t1") $(jq -s 'map(select(.limited)) | length' "$OUT/requests.log")"
}

# One quota for every process (issue 13): QUOTA orch-agent processes at
# -j QUOTA sharing a provider's limit of 5 requests (and, binding as
# much, 5 requests' tokens) per window, the window scaled down from
# Groq's minute to 2 s (1 s with --quick) to keep the run short. The
# ideal schedule: ceil(QUOTA / 5) windows, the last one's requests
# answered at once: (ceil(QUOTA / 5) - 1) windows and one turn's time.
# Each with the shared quota and without it (llm.shared_quota = 0:
# each process retries on its 429s after Retry-After), as ratios.
bench_quota() {
	local one on off windows ideal ts tu
	QUOTA_REQ=5 QUOTA_WIN=$([ $QUICK = 1 ] && echo 1 || echo 2)
	# A planner turn reserves its prompt (about 1,200 tokens as the server
	# counts them) and its ceiling of 8,000: five fit, a sixth does not.
	QUOTA_TOK=55000
	windows=$(((QUOTA + QUOTA_REQ - 1) / QUOTA_REQ))
	echo "# quota: $QUOTA orch-agent turns at -j $QUOTA, server enforcing $QUOTA_REQ requests and $QUOTA_TOK tokens per $QUOTA_WIN s" | tee -a "$OUT/results.txt"
	one=$(QUOTA=1; quota_run 1)
	ideal=$(awk -v w="$windows" -v s="$QUOTA_WIN" -v t="${one% *}" 'BEGIN { printf "%.3f", (w - 1) * s + t }')
	on=$(quota_run 1)
	off=$(quota_run 0)
	ts=${on% *} tu=${off% *}
	row quota "$(printf 'ideal %.3f s (%d windows of %s s, one turn alone %.3f s)' "$ideal" "$windows" "$QUOTA_WIN" "${one% *}")"
	row quota "$(printf 'shared   %.3f s x%s of ideal, %d 429s (%.2f a window)' "$ts" "$(ratio "$ts" "$ideal")" "${on#* }" "$(ratio "${on#* }" "$windows")")"
	row quota "$(printf 'unshared %.3f s x%s of ideal, %d 429s (%.2f a window)' "$tu" "$(ratio "$tu" "$ideal")" "${off#* }" "$(ratio "${off#* }" "$windows")")"
	row quota "$(printf 'shared/unshared: time x%s, 429s %d against %d' "$(ratio "$ts" "$tu")" "${on#* }" "${off#* }")"
}

# The design's headline figures on a simulated world (world.sh), orch's
# daemon beside the round-robin executor it replaced, in the same run.
bench_world() {
	"$BENCH/world.sh" --seconds "$WORLD" --out "$OUT/world" |
		sed 's/^\([^#]\)/world  \1/' | tee -a "$OUT/results.txt"
}

# How far orch-exec --dry-run's estimates are from the cycles that follow
# them (estimate.sh): ESTIMATE cycles of 4 stacks, the first 5 (1 with
# --quick) a warm-up.
bench_estimate() {
	"$BENCH/estimate.sh" --cycles "$ESTIMATE" --warmup $((ESTIMATE > 5 ? 5 : 1)) \
		--out "$OUT/estimate" | sed 's/^\([^#]\)/estimate  \1/' | tee -a "$OUT/results.txt"
}

# retention_agent NAME JQ: an agent at $OUT/retention/NAME that prints
# what the jq program JQ makes of its context.
retention_agent() {
	printf '%s\n' "$2" >"$OUT/retention/$1.jq"
	printf '#!/bin/sh\nexec jq -c -f %s\n' "$OUT/retention/$1.jq" >"$OUT/retention/$1"
	chmod +x "$OUT/retention/$1"
}

# Context size and database growth over RETAIN cycles of one busy stack,
# whose four agents keep working (each every cycle or every other, as
# detection gives them work): the planner adds a todo for the reviewer's
# recommendation, the builder completes one with a new 20 KB version of
# the artifact, the communicator answers the message a user sends each
# cycle, the reviewer recommends. Retention is on with its
# defaults (with --quick, scaled down: 8 cycles, 4 versions, so that it
# acts within 40 cycles). At a tenth, a quarter, half and all of the
# cycles: the largest context orch-exec built in that cycle (the traces
# keep each), the database's size (its pages, free ones included) and how
# much of it the kept runs' contexts are. Flat: the figures at the end
# within 20% of those at a quarter.
bench_retention() {
	local db=$OUT/retention.db t0 t1 i a args=() marks ctx size ctxs c250= d250= r250= c d r
	mkdir -p "$OUT/retention"
	echo "# retention: $RETAIN cycles of a busy stack, retention on" | tee -a "$OUT/results.txt"
	retention_agent planner '{thinking: "plan", actions: [{type: "create_todo", priority: 3,
		content: "next feature, after \((.task.recommendations // []) | length) recommendations"}]}'
	retention_agent builder '{thinking: "build", actions: (if .task.todo then
		[{type: "write_artifact", artifact_type: "html",
		  content: ("<!doctype html><title>t</title><p>todo \(.task.todo.id)</p>" + ("<p>filler</p>" * 1600))},
		 {type: "complete_todo", id: .task.todo.id}] else [] end)}'
	retention_agent communicator '{thinking: "answer", actions: (if .task.user_message then
		[{type: "reply_user", message_id: .task.user_message.id, content: "working on it"}] else [] end)}'
	retention_agent reviewer '{thinking: "review", actions: [{type: "recommend", recommendation: "keep going"}]}'
	for a in planner builder communicator reviewer; do
		args+=(--agent "$a=$OUT/retention/$a")
	done
	if [ $QUICK = 1 ]; then
		printf 'retain.cycles = 8\nretain.versions = 4\n' >"$OUT/retention.config"
	else
		: >"$OUT/retention.config"
	fi
	rm -f "$db" "$db-wal" "$db-shm"
	orch-stack --db "$db" init
	orch-stack --db "$db" create busy --idea "a busy stack"
	orch-stack --db "$db" start busy
	marks=" $((RETAIN / 10)) $((RETAIN / 4)) $((RETAIN / 2)) $RETAIN "
	t0=$(now_ns)
	for ((i = 1; i <= RETAIN; i++)); do
		orch-stack --db "$db" say busy "message $i"
		orch-detect --db "$db" --all --force --config "$OUT/retention.config" |
			orch-graph |
			orch-exec --db "$db" --config "$OUT/retention.config" --retries 0 "${args[@]}" |
			orch-decide --db "$db" --config "$OUT/retention.config" >"$OUT/retention.out"
		[[ $marks == *" $i "* ]] || continue
		ctx=$(sqlite3 "$db" "SELECT max(length(CAST(input AS BLOB))) FROM traces
			WHERE execution_id = (SELECT max(id) FROM executions)")
		size=$(sqlite3 "$db" "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
		ctxs=$(sqlite3 "$db" "SELECT sum(length(CAST(input AS BLOB))) FROM traces")
		row retention "$(printf 'cycle %5d  context %8d B  database %9d B, its runs'"'"' contexts %9d B  (%d cycles, %d runs, %d versions, %d todos kept)' \
			"$i" "$ctx" "$size" "$ctxs" "$(sqlite3 "$db" 'SELECT count(*) FROM executions')" \
			"$(sqlite3 "$db" 'SELECT count(*) FROM traces')" "$(sqlite3 "$db" 'SELECT count(*) FROM artifacts')" \
			"$(sqlite3 "$db" 'SELECT count(*) FROM todos')")"
		if [ "$i" = $((RETAIN / 4)) ]; then
			c250=$ctx d250=$size r250=$((size - ctxs))
		fi
		c=$ctx d=$size r=$((size - ctxs))
	done
	t1=$(now_ns)
	[ "$(sqlite3 "$db" "SELECT count(*) FROM executions WHERE status = 'failed'")" = 0 ] ||
		{ echo "run.sh: retention: cycles failed, see $db" >&2; exit 70; }
	row retention "$(printf 'from cycle %d to %d: context x%s, database x%s, database less the contexts x%s (flat: x0.80 to x1.20) | %.3f s a cycle' \
		$((RETAIN / 4)) "$RETAIN" "$(ratio "$c" "$c250")" "$(ratio "$d" "$d250")" "$(ratio "$r" "$r250")" \
		"$(awk -v a="$(secs "$t0" "$t1")" -v n="$RETAIN" 'BEGIN { print a / n }')")"
}

echo "# orch benchmarks $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, build $BUILD$([ $QUICK = 1 ] && echo ', --quick')" | tee "$OUT/results.txt"
for b in $WHICH; do
	"bench_$b"
done
