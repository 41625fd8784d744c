#!/usr/bin/env bats
# ORCH_FAULTS: provider faults injected in orch-agent's HTTP layer against
# the loopback server (tests/llm-server.py): each outcome the documented
# one, the same sequence for the same seed.

load test_helper

KEY=gsk_TEST_secret_4f9a1c2b7d

setup_file() {
	llm_server_start
}

teardown_file() {
	llm_server_stop
}

setup() {
	orch_test_env
	export ORCH_LLM_API_KEY=$KEY
	export ORCH_LLM_BACKOFF_MS=20 ORCH_LLM_TIMEOUT_MS=5000 ORCH_LLM_DEADLINE_MS=20000
	CTX=$FIXTURES/orch-agent/planner.json
	LOG=$BATS_FILE_TMPDIR/requests.log
	[ -s "$BATS_FILE_TMPDIR/port" ] ||
		fail "the test server did not start: $(cat "$BATS_FILE_TMPDIR/server.out")"
	HOSTPORT=127.0.0.1:$(cat "$BATS_FILE_TMPDIR/port")
	export ORCH_LLM_BASE_URL=http://$HOSTPORT/v1
}

# serve N: N valid replies, the request log emptied.
serve() {
	local i steps=
	for ((i = 0; i < $1; i++)); do
		steps+="${steps:+,}{\"reply\":$(cat "$FIXTURES/orch-agent/reply.json")}"
	done
	printf '[%s]\n' "$steps" >"$BATS_TEST_TMPDIR/script.json"
	mv "$BATS_TEST_TMPDIR/script.json" "$BATS_FILE_TMPDIR/script.json"
	: >"$LOG"
}

requests() {
	wc -l <"$LOG" | tr -d ' '
}

# calls FILE [N]: N (200) orch-agent turns of one request each (no
# retries), each for a context of its own, their outcomes in FILE, one a
# line: the exit status and what it was.
calls() {
	local i rc err n=${2:-200}
	: >"$1"
	mkdir -p "$BATS_TEST_TMPDIR/ctx"
	jq -c --argjson n "$n" '. as $c | range(1; $n + 1) | . as $i | $c | .cycle = $i' "$CTX" |
		split -l 1 -d -a 3 - "$BATS_TEST_TMPDIR/ctx/"
	for ((i = 0; i < n; i++)); do
		rc=0
		orch-agent --role planner --retries 0 <"$BATS_TEST_TMPDIR/ctx/$(printf '%03d' "$i")" \
			>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
		err=$(cat "$BATS_TEST_TMPDIR/err")
		case "$rc:$err" in
		0:)
			jq -e '.actions | length == 2' "$BATS_TEST_TMPDIR/out" >/dev/null || return 1
			echo "0 ok" ;;
		"75:orch-agent: $HOSTPORT: gave up after 1 attempt: HTTP 429: HTTP 429 injected by ORCH_FAULTS
retry-after-ms: 1000")
			echo "75 429" ;;
		"75:orch-agent: $HOSTPORT: gave up after 1 attempt: HTTP 503: HTTP 503 injected by ORCH_FAULTS")
			echo "75 503" ;;
		"75:orch-agent: $HOSTPORT: gave up after 1 attempt: timed out after 5000 ms (injected by ORCH_FAULTS)")
			echo "75 timeout" ;;
		"75:orch-agent: $HOSTPORT: gave up after 1 attempt: connection closed after "*" bytes of the response (injected by ORCH_FAULTS)")
			echo "75 cut" ;;
		*)
			echo "unexpected: $rc: $err" ;;
		esac >>"$1"
	done
}

# count WHAT FILE: the calls of FILE that ended as WHAT.
count() {
	grep -c -x "$1" "$2" || true
}

@test "faults: 200 calls, each the documented outcome, the same for the same seed" {
	export ORCH_FAULTS=429@0.2,503@0.1,timeout@0.05,cut@0.05,seed=42
	serve 200
	calls "$BATS_TEST_TMPDIR/first"
	run -1 grep unexpected "$BATS_TEST_TMPDIR/first"
	local ok c429 c503 ctimeout ccut
	ok=$(count "0 ok" "$BATS_TEST_TMPDIR/first")
	c429=$(count "75 429" "$BATS_TEST_TMPDIR/first")
	c503=$(count "75 503" "$BATS_TEST_TMPDIR/first")
	ctimeout=$(count "75 timeout" "$BATS_TEST_TMPDIR/first")
	ccut=$(count "75 cut" "$BATS_TEST_TMPDIR/first")
	assert_equal $((ok + c429 + c503 + ctimeout + ccut)) 200
	# Each near its share (expected 120, 40, 20, 10, 10): a draw that is
	# not uniform, or faults in the wrong order, lands outside.
	((ok >= 95 && ok <= 145)) || fail "ok: $ok"
	((c429 >= 22 && c429 <= 60)) || fail "429: $c429"
	((c503 >= 8 && c503 <= 34)) || fail "503: $c503"
	((ctimeout >= 2 && ctimeout <= 20)) || fail "timeout: $ctimeout"
	((ccut >= 2 && ccut <= 20)) || fail "cut: $ccut"
	# Only a cut reply and a success reached the server.
	assert_equal "$(requests)" $((ok + ccut))

	# The same seed, the same sequence: the first 60 calls tell (each
	# kind of fault is among them).
	serve 60
	calls "$BATS_TEST_TMPDIR/second" 60
	run -0 diff <(head -60 "$BATS_TEST_TMPDIR/first") "$BATS_TEST_TMPDIR/second"
	assert_equal "$(head -60 "$BATS_TEST_TMPDIR/first" | cut -d' ' -f2 | sort -u | tr '\n' ' ')" \
		"429 503 cut ok timeout "
	assert_equal "$(requests)" \
		$(($(count "0 ok" "$BATS_TEST_TMPDIR/second") + $(count "75 cut" "$BATS_TEST_TMPDIR/second")))
	# Another seed, another sequence: the first 40 calls tell.
	serve 40
	ORCH_FAULTS=429@0.2,503@0.1,timeout@0.05,cut@0.05,seed=43 calls "$BATS_TEST_TMPDIR/third" 40
	run -1 diff -q <(head -40 "$BATS_TEST_TMPDIR/first") "$BATS_TEST_TMPDIR/third"
}

@test "faults: a turn retries through them: a 429 waits its Retry-After, then a reply" {
	serve 5
	# seed=6 draws 429, 429, then nothing for this context (the same each run).
	ORCH_FAULTS=429@0.6,retry-after=1,seed=6 run -0 --separate-stderr orch-agent --role planner -v <"$CTX"
	assert_equal "$(grep -c 'fault injected: 429' <<<"$stderr")" 2
	grep -q "HTTP 429: HTTP 429 injected by ORCH_FAULTS; retry 1 of 3 in 1[0-9][0-9][0-9] ms" <<<"$stderr" ||
		fail "$stderr"
	assert_equal "$(requests)" 1
	jq -e '.actions | length == 2' <<<"$output"
	# Every call a 503: the retries run out, 75 (a provider may answer
	# later: the retry contract).
	serve 5
	ORCH_FAULTS=503@1 run -75 --separate-stderr orch-agent --role planner --retries 2 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 3 attempts: HTTP 503: HTTP 503 injected by ORCH_FAULTS"
	assert_equal "$(requests)" 0
	# A 401 is given up at once, as a refused key is.
	ORCH_FAULTS=401@1 run -69 --separate-stderr orch-agent --role planner <"$CTX"
	[[ $stderr == "orch-agent: $HOSTPORT: HTTP 401: HTTP 401 injected by ORCH_FAULTS"* ]] || fail "$stderr"
	# A fallback provider is tried after the first one fails: seed=2 draws
	# a 503 for the first, nothing for the second (another model, another
	# request).
	serve 1
	ORCH_FAULTS=503@0.5,seed=2 ORCH_LLM_FALLBACKS="http://$HOSTPORT/b/v1|m2|" \
		run -0 --separate-stderr orch-agent --role planner --retries 0 <"$CTX"
	assert_equal "$stderr" "orch-agent: $HOSTPORT: gave up after 1 attempt: HTTP 503: HTTP 503 injected by ORCH_FAULTS; trying $HOSTPORT"
	assert_equal "$(requests)" 1
	assert_equal "$(jq -r .path "$LOG")" "/b/v1/chat/completions"
}

@test "faults: an unknown fault or a bad probability is one line with 64" {
	serve 0
	bad() {
		ORCH_FAULTS=$1 run -64 --separate-stderr orch-agent --role planner <"$CTX"
		assert_equal "$stderr" "orch-agent: ORCH_FAULTS: $2"
		assert_equal "$output" ""
	}
	bad 'boom@0.1' "unknown fault 'boom' (an HTTP status from 400 to 599, timeout, cut, seed=N or retry-after=S)"
	bad '200@0.1' "unknown fault '200' (an HTTP status from 400 to 599, timeout, cut, seed=N or retry-after=S)"
	bad '429' "'429': expected 429@P with P a probability from 0 to 1"
	bad '429@1.5' "'429': expected 429@P with P a probability from 0 to 1"
	bad '429@-0.1' "'429': expected 429@P with P a probability from 0 to 1"
	bad '429@nan' "'429': expected 429@P with P a probability from 0 to 1"
	bad '429@0.6,cut@0.6' "the probabilities add up to more than 1"
	bad '429@0.1,429@0.1' "'429' is given twice"
	bad '429@0.1,,cut@0.1' "an empty item in '429@0.1,,cut@0.1'"
	bad 'seed=x' "'seed=x': the seed is not a whole number from 0 to 2^64-1"
	bad 'retry-after=-1' "'retry-after=-1': retry-after is not whole seconds from 0 to 86400"
	assert_equal "$(requests)" 0
}
