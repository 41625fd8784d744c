#!/usr/bin/env bats
# One quota for every process (lib/quota.h): orch-agent processes on one
# store take turns at a provider's rate limits, against tests/llm-server.py
# enforcing one as Groq does (--limit-*).

load test_helper

KEY=gsk_QUOTA_secret_8e3d5a1f6c

setup() {
	orch_test_env
	export ORCH_LLM_API_KEY=$KEY
	export ORCH_LLM_BACKOFF_MS=50 ORCH_LLM_TIMEOUT_MS=5000 ORCH_LLM_DEADLINE_MS=20000
	CTX=$FIXTURES/orch-agent/planner.json
	LOG=$BATS_TEST_TMPDIR/requests.log
	KEY_ID=$(printf %s "$KEY" | sha256sum | cut -c1-16)
	orch-stack init >/dev/null
}

teardown() {
	if [ -n "${SERVER_PID:-}" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
}

# server N [LLM-SERVER FLAG...]: a server of its own for the test, with N
# valid replies, and ORCH_LLM_BASE_URL pointing at it.
server() {
	local n=$1 i
	shift
	jq -n --argjson n "$n" --slurpfile r "$FIXTURES/orch-agent/reply.json" \
		'[range($n) | {reply: $r[0]}]' >"$BATS_TEST_TMPDIR/script.json"
	python3 "$BATS_TEST_DIRNAME/llm-server.py" --script "$BATS_TEST_TMPDIR/script.json" \
		--log "$LOG" --port-file "$BATS_TEST_TMPDIR/port" --idle 30 "$@" \
		>"$BATS_TEST_TMPDIR/server.out" 2>&1 3>&- &
	SERVER_PID=$!
	for i in $(seq 200); do
		[ -s "$BATS_TEST_TMPDIR/port" ] && break
		sleep 0.05
	done
	[ -s "$BATS_TEST_TMPDIR/port" ] || fail "the server did not start: $(cat "$BATS_TEST_TMPDIR/server.out")"
	HOSTPORT=127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")
	export ORCH_LLM_BASE_URL=http://$HOSTPORT/v1
}

# agents N: N planner turns at once; each one's status in $BATS_TEST_TMPDIR/rc.I.
agents() {
	local i pids=()
	for i in $(seq "$1"); do
		{ orch-agent --role planner <"$CTX" >"$BATS_TEST_TMPDIR/out.$i" 2>"$BATS_TEST_TMPDIR/err.$i"
		  echo $? >"$BATS_TEST_TMPDIR/rc.$i"; } &
		pids+=($!)
	done
	wait "${pids[@]}"
}

refused() {
	jq -s 'map(select(.limited)) | length' "$LOG"
}

# quota_row COLUMNS...: set the provider's row as if answers had said so.
quota_row() {
	sql "DELETE FROM provider_quota WHERE base_url = '$ORCH_LLM_BASE_URL' AND key_id = '$KEY_ID'" \
	    "INSERT INTO provider_quota (base_url, key_id, $1, updated_at)
	     VALUES ('$ORCH_LLM_BASE_URL', '$KEY_ID', $2, $(date +%s%3N))"
}

@test "quota: processes at once take turns instead of being refused" {
	server 6 --limit-requests 3 --limit-window 1
	agents 6
	local i
	for i in $(seq 6); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/rc.$i")" 0
	done
	# Six answered, none refused: the second three waited for the window.
	assert_equal "$(jq -s 'map(select(.limited | not)) | length' "$LOG")" 6
	assert_equal "$(refused)" 0
	local first fourth
	first=$(jq -s 'sort_by(.t) | .[0].t' "$LOG")
	fourth=$(jq -s 'sort_by(.t) | .[3].t' "$LOG")
	awk -v a="$first" -v b="$fourth" 'BEGIN { exit !(b - a >= 0.95) }' ||
		fail "the fourth request came $first -> $fourth, inside the first window"
	# The row: the server's numbers, the key's identity, never the key.
	assert_equal "$(sql "SELECT base_url, key_id, requests_limit FROM provider_quota")" \
		"$ORCH_LLM_BASE_URL|$KEY_ID|3"
	if engine_is_sqlite; then
		run -1 grep -a -c -F "$KEY" "$ORCH_DB"
		[ ! -e "$ORCH_DB-wal" ] || run -1 grep -a -c -F "$KEY" "$ORCH_DB-wal"
	else
		run -1 grep -a -c -F "$KEY" <<<"$(sql .dump)"
	fi
}

@test "quota: without it (llm.shared_quota = 0, or no store) each process is refused as it would be alone" {
	server 12 --limit-requests 3 --limit-window 1
	ORCH_LLM_SHARED_QUOTA=0 agents 6
	local i
	for i in $(seq 6); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/rc.$i")" 0
	done
	# All six at once: three refused, and retried after Retry-After.
	[ "$(refused)" -ge 3 ] || fail "$(refused) refused"
	assert_equal "$(sql "SELECT count(*) FROM provider_quota")" 0
	# No store: the same, and -v says why.
	export ORCH_DB=$BATS_TEST_TMPDIR/none.db
	run -0 --separate-stderr orch-agent -v --role planner <"$CTX"
	grep -Fx "orch-agent: rate limits are not shared: no database at '$ORCH_DB'" <<<"$stderr"
	run -64 --separate-stderr env ORCH_LLM_SHARED_QUOTA=2 orch-agent --role planner <"$CTX"
	assert_equal "${stderr_lines[0]}" "orch-agent: ORCH_LLM_SHARED_QUOTA: '2' is not a whole number from 0 to 1"
}

@test "quota: a process waits for the reset when the store says none are left" {
	server 1
	local t0 t1
	t0=$(date +%s%3N)
	# The reset 1,500 ms after the row is written, by the store's clock:
	# on a loaded machine writing it has taken longer than that.
	local written
	if engine_is_sqlite; then
		written="CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
	else
		written="CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"
	fi
	quota_row "requests_limit, requests_left, requests_reset_at, heard_at" \
		"5, 0, $written + 1500, 0"
	run -0 --separate-stderr orch-agent -v --role planner <"$CTX"
	t1=$(date +%s%3N)
	[ $((t1 - t0)) -ge 1400 ] || fail "answered after $((t1 - t0)) ms"
	assert_equal "$(wc -l <"$LOG")" 1
	# The wait is what was left of the 1,500 ms when it read the row
	# (writing the row takes a while on a busy PostgreSQL).
	local line wait
	line=$(grep -E "^orch-agent: $HOSTPORT: the rate limit is reached; waiting [0-9]+ ms for a turn$" <<<"$stderr") ||
		fail "no wait in: $stderr"
	wait=${line##*waiting }
	wait=${wait%% ms*}
	(( wait > 0 && wait <= 1500 )) || fail "waited $wait ms"
	# The reset came: the limit whole again, less this request.
	assert_equal "$(sql "SELECT requests_left FROM provider_quota")" 4
}

@test "quota: a request that needs more tokens than are left waits for their reset" {
	server 1
	local t0 t1
	# The wait is timed from the reset's own clock: writing the row takes
	# a while on PostgreSQL (a psql process).
	t0=$(date +%s%3N)
	quota_row "tokens_limit, tokens_left, tokens_reset_at" "50000, 1000, $((t0 + 1000))"
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	t1=$(date +%s%3N)
	[ $((t1 - t0)) -ge 900 ] || fail "answered after $((t1 - t0)) ms"
	# Its reservation, the prompt's estimate and the ceiling of 8000, taken.
	local left
	left=$(sql "SELECT tokens_left FROM provider_quota")
	[ "$left" -lt 42000 ] && [ "$left" -gt 30000 ] || fail "tokens_left $left"
}

@test "quota: a wait past the deadline is the retry contract's 75, with the wait" {
	server 1
	quota_row "requests_limit, requests_left, requests_reset_at" \
		"5, 0, $(($(date +%s%3N) + 60000))"
	ORCH_LLM_DEADLINE_MS=2000 run -75 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "${#stderr_lines[@]}" 2
	[[ ${stderr_lines[0]} =~ ^orch-agent:\ $HOSTPORT:\ the\ rate\ limit\ shared\ through\ the\ store\ is\ reached\;\ the\ next\ request\ in\ [0-9]+\ ms\ would\ pass\ the\ deadline$ ]] ||
		fail "${stderr_lines[0]}"
	[[ ${stderr_lines[1]} =~ ^retry-after-ms:\ (5[89][0-9]{3}|60[0-9]{3})$ ]] || fail "${stderr_lines[1]}"
	# Nothing was sent.
	assert_equal "$(wc -l <"$LOG")" 0
}

@test "quota: a 429's Retry-After holds back every process" {
	server 4 --limit-requests 1 --limit-window 2
	ORCH_LLM_SHARED_QUOTA=0 run -0 orch-agent --role planner <"$CTX"
	# The store believes requests are left: sent, refused, and the 429's
	# Retry-After kept for the others.
	quota_row "requests_limit, requests_left" "10, 10"
	ORCH_LLM_RETRIES=0 run -75 --separate-stderr orch-agent --role planner <"$CTX"
	[[ ${stderr_lines[1]} =~ ^retry-after-ms:\ [12][0-9]{3}$ ]] || fail "${stderr_lines[1]}"
	local nb now
	nb=$(sql "SELECT not_before FROM provider_quota")
	now=$(date +%s%3N)
	[ "$nb" -gt "$now" ] || fail "not_before $nb, now $now"
	# The next sharing process waits for the window instead.
	run -0 --separate-stderr orch-agent --role planner <"$CTX"
	assert_equal "$(refused)" 1
	assert_equal "$(wc -l <"$LOG")" 3
}

@test "quota: a provider that says no limits is not waited for" {
	server 3
	agents 3
	local i
	for i in 1 2 3; do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/rc.$i")" 0
	done
	assert_equal "$(sql "SELECT coalesce(CAST(requests_left AS TEXT), 'null'), coalesce(CAST(requests_limit AS TEXT), 'null') FROM provider_quota")" "null|null"
}
