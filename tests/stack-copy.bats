#!/usr/bin/env bats
# orch-stack copy: the whole store into an empty one, on either engine,
# verified table by table.

load test_helper

# make_store: a store made through the commands: two stacks, a todo, a
# user message, two cycles of the example agents (executions, graphs,
# traces, an artifact, agent runs), a stack removed (so the ids have a
# gap and SQLite's sequence runs ahead of them), and one more artifact
# version whose bytes are not UTF-8 and hold a NUL.
make_store() {
	orch-stack init
	orch-stack create alpha --idea "a timer"
	orch-stack create beta
	orch-stack create gone
	orch-stack todo add alpha "build the timer" --priority 4
	orch-stack say alpha "hello"
	orch-stack start alpha
	run_cycle
	run_cycle
	orch-stack rm gone
	local bytes
	if engine_is_sqlite; then
		bytes="CAST(X'61ff00fe0a62' AS TEXT)"
	else
		bytes="decode('61ff00fe0a62', 'hex')"
	fi
	sql "INSERT INTO artifacts (stack_id, version, type, content, created_at)
	     VALUES (1, 9, 'bin', $bytes, 5)"
}

# in_copy ARG...: orch-stack on the copy.
in_copy() {
	orch-stack --db "$BATS_TEST_TMPDIR/copy.db" "$@"
}

@test "copy: every table into a new SQLite file, each verified, one line a table" {
	make_store
	run -0 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db"
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 20
	assert_line --index 0 --regexp '^stacks +2  ok$'
	assert_line --index 2 --regexp '^todos +1  ok$'
	assert_line --index 9 --regexp '^artifacts +[0-9]+  ok$'
	assert_line --index 11 --regexp '^traces +[1-9][0-9]*  ok$'
	refute_line --partial differs
	assert_line --index 19 --regexp "^[0-9]+ rows copied to '$BATS_TEST_TMPDIR/copy.db' and verified$"
	# Counted apart from the copy: each table as many rows on both.
	local t
	for t in $(sqlite3 "$BATS_TEST_TMPDIR/copy.db" "SELECT name FROM sqlite_master
	           WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'traces_fts%'"); do
		assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" "SELECT count(*) FROM $t")" \
			"$(sql "SELECT count(*) FROM $t")"
	done
}

@test "copy: show, log, history, messages and the artifact read the same on the copy" {
	make_store
	orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db" >/dev/null
	local cmd
	for cmd in "list" "show alpha" "show --json alpha" "log alpha" "log alpha --json" \
		"log alpha -q timer" "history alpha --json" "messages alpha" "todo list alpha --json" \
		"artifact list alpha" "cycle alpha 2" "usage --json"; do
		# shellcheck disable=SC2086
		assert_equal "$(in_copy $cmd)" "$(orch-stack $cmd)"
	done
	assert_equal "$(in_copy log show 3 --json)" "$(orch-stack log show 3 --json)"
	assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" "SELECT id, state_version, content_version FROM stacks")" \
		"$(sql "SELECT id, state_version, content_version FROM stacks ORDER BY id")"
}

@test "copy: an artifact that is not UTF-8 and holds a NUL survives byte for byte" {
	make_store
	orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db" >/dev/null
	in_copy artifact alpha --version 9 -o "$BATS_TEST_TMPDIR/copied"
	printf 'a\377\000\376\nb' >"$BATS_TEST_TMPDIR/expected"
	cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/copied"
	orch-stack artifact alpha -o "$BATS_TEST_TMPDIR/latest"
	in_copy artifact alpha -o "$BATS_TEST_TMPDIR/latest-copy"
	cmp "$BATS_TEST_TMPDIR/latest" "$BATS_TEST_TMPDIR/latest-copy"
}

@test "copy: the copy hands out ids above every copied one, and above those deleted" {
	make_store
	orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db" >/dev/null
	in_copy create gamma
	# Not 3: that was the stack "gone", removed from the source.
	assert_equal "$(in_copy show --json gamma | jq .stack.id)" 4
	in_copy todo add alpha "another"
	assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" "SELECT max(id) FROM todos")" 2
	# And it runs: a cycle on the copy records cycle 3.
	ORCH_DB=$BATS_TEST_TMPDIR/copy.db run_cycle
	assert_equal "$(in_copy history alpha --json --limit 1 | jq -r .cycle)" 3
}

@test "copy --json: the tables, their rows and both checksums" {
	make_store
	run -0 orch-stack copy --json --to "$BATS_TEST_TMPDIR/copy.db"
	assert_equal "$(jq -r '.ok, .destination, (.tables | length)' <<<"$output" | tr '\n' ' ')" \
		"true $BATS_TEST_TMPDIR/copy.db 19 "
	assert_equal "$(jq -r '.tables[0] | "\(.name) \(.rows) \(.dest_rows) \(.ok)"' <<<"$output")" "stacks 2 2 true"
	assert_equal "$(jq '[.tables[] | select(.sha256 != .dest_sha256 or .rows != .dest_rows)] | length' <<<"$output")" 0
	assert_equal "$(jq '[.tables[].rows] | add' <<<"$output")" "$(jq .rows <<<"$output")"
	# The checksum of no rows is SHA-256 of nothing.
	assert_equal "$(jq -r '.tables[] | select(.name == "provider_quota") | .sha256' <<<"$output")" \
		"$(printf '' | sha256sum | cut -d' ' -f1)"
}

@test "copy: a destination that holds anything is refused with 65, and left as it was" {
	make_store
	in_copy init
	in_copy create other
	local before
	before=$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" .dump)
	run -65 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db"
	assert_equal "$stderr" "orch-stack: destination '$BATS_TEST_TMPDIR/copy.db' is not empty (1 stack)"
	assert_equal "$output" ""
	assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" .dump)" "$before"
	# No stack, but a row elsewhere: still not empty.
	sqlite3 "$BATS_TEST_TMPDIR/copy.db" "DELETE FROM stacks; INSERT INTO provider_caps VALUES ('u', 'm', 'tools', 0, 1)"
	run -65 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db"
	assert_equal "$stderr" "orch-stack: destination '$BATS_TEST_TMPDIR/copy.db' is not empty (1 row in provider_caps)"
	# A store copied onto itself is not empty either.
	if engine_is_sqlite; then
		run -65 --separate-stderr orch-stack copy --to "$ORCH_DB"
		assert_equal "$stderr" "orch-stack: destination '$ORCH_DB' is not empty (2 stacks)"
	fi
}

@test "copy: a destination that cannot be made is 66" {
	make_store
	touch "$BATS_TEST_TMPDIR/file"
	run -66 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR/file/copy.db"
	assert_equal "$stderr" "orch-stack: cannot open database '$BATS_TEST_TMPDIR/file/copy.db': Not a directory"
	run -66 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR"
	assert_equal "$stderr" "orch-stack: cannot open database '$BATS_TEST_TMPDIR': is a directory"
	# A missing directory is made, as for any new database.
	run -0 orch-stack copy --to "$BATS_TEST_TMPDIR/new/dir/copy.db"
	assert_equal "$(stat -c %a "$BATS_TEST_TMPDIR/new/dir")" 700
}

@test "copy: a table the copy does not know is refused with 70 before anything is copied" {
	make_store
	sql "CREATE TABLE extra (x INTEGER)"
	run -70 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db"
	[[ $stderr == "orch-stack: '"*"' has a table this orch cannot copy: 'extra'" ]] || fail "$stderr"
	assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" "SELECT count(*) FROM stacks")" 0
}

@test "copy: every table of the schema is in the copy's list" {
	# copy_store refuses a table it does not know (the test above): the
	# schema as it is now must hold none.
	orch-stack init
	run -0 orch-stack copy --json --to "$BATS_TEST_TMPDIR/copy.db"
	assert_equal "$(jq -r '.tables[].name' <<<"$output" | sort)" \
		"$(sqlite3 "$BATS_TEST_TMPDIR/copy.db" "SELECT name FROM sqlite_master WHERE type = 'table'
		   AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'traces_fts%' ORDER BY name")"
}

@test "copy: a copy that differs is 70, and the summary says which table" {
	make_store
	orch-stack --db "$BATS_TEST_TMPDIR/copy.db" init
	# A destination that changes what it is given behind the copy's back.
	sqlite3 "$BATS_TEST_TMPDIR/copy.db" "CREATE TRIGGER garble AFTER INSERT ON todos BEGIN
	  UPDATE todos SET content = 'garbled' WHERE id = NEW.id; END"
	run -70 --separate-stderr orch-stack copy --to "$BATS_TEST_TMPDIR/copy.db"
	assert_equal "$stderr" "orch-stack: copy of todos differs: checksums differ over 1 row"
	assert_line --index 2 --regexp '^todos +1  differs$'
	assert_line --index 0 --regexp '^stacks +2  ok$'
	refute_line --partial "verified"
	rm "$BATS_TEST_TMPDIR/copy.db"*
	orch-stack --db "$BATS_TEST_TMPDIR/copy.db" init
	sqlite3 "$BATS_TEST_TMPDIR/copy.db" "CREATE TRIGGER drop_it AFTER INSERT ON user_messages BEGIN
	  DELETE FROM user_messages WHERE id = NEW.id; END"
	run -70 --separate-stderr orch-stack copy --json --to "$BATS_TEST_TMPDIR/copy.db"
	[[ $stderr == "orch-stack: copy of user_messages differs: 1 row in '"*"', 0 in '$BATS_TEST_TMPDIR/copy.db'" ]] || fail "$stderr"
	assert_equal "$(jq -r '.ok, (.tables[] | select(.ok | not) | .name)' <<<"$output" | tr '\n' ' ')" "false user_messages "
}

@test "copy: usage" {
	orch-stack init
	run -64 --separate-stderr orch-stack copy
	assert_equal "${stderr_lines[0]}" "orch-stack: usage: orch-stack copy --to DEST [--json]"
	run -64 --separate-stderr orch-stack list --to x
	assert_equal "${stderr_lines[0]}" "orch-stack: option '--to' does not apply to 'list'"
	run -64 --separate-stderr orch-stack copy x --to "$BATS_TEST_TMPDIR/c.db"
	assert_equal "${stderr_lines[0]}" "orch-stack: unexpected argument 'x'"
	run -70 --separate-stderr bash -c 'orch-stack copy --to "$1" >/dev/full' x "$BATS_TEST_TMPDIR/c.db"
	[[ $stderr == "orch-stack: write error"* ]] || fail "$stderr"
}

# A second database in the tests' PostgreSQL cluster (tests/pg.bash), as
# a URI on stdout.
second_pg_db() {
	local keep=$ORCH_DB
	pg_test_db >&2 || return 1
	echo "$ORCH_DB"
	ORCH_DB=$keep
}

# user_rows DB: every row of orch's tables in the SQLite file DB, as
# sqlite3 .dump writes them (not the full-text index's, which the triggers
# rebuild, nor sqlite_sequence, which follows the ids copied).
user_rows() {
	sqlite3 "$1" .dump | grep -a '^INSERT INTO' | grep -av -e '^INSERT INTO sqlite_sequence' \
		-e '^INSERT INTO traces_fts'
}

@test "copy: SQLite to PostgreSQL and back gives the same rows" {
	[ -n "$TEST_PGDIR" ] || skip "no PostgreSQL cluster (ORCH_TEST_ENGINE=postgres)"
	local pg there back back_bytes
	pg=$(second_pg_db)
	# The source a SQLite file, whichever engine the suite runs on.
	TEST_ENGINE=sqlite
	export ORCH_DB=$BATS_TEST_TMPDIR/orch.db
	make_store
	run -0 orch-stack copy --json --to "$pg"
	there=$output
	assert_equal "$(jq .ok <<<"$there")" true
	run -0 orch-stack --db "$pg" copy --json --to "$BATS_TEST_TMPDIR/back.db"
	back=$output
	assert_equal "$(jq -c '[.tables[] | [.name, .rows, .sha256]]' <<<"$back")" \
		"$(jq -c '[.tables[] | [.name, .rows, .sha256]]' <<<"$there")"
	assert_equal "$(user_rows "$BATS_TEST_TMPDIR/back.db")" "$(user_rows "$ORCH_DB")"
	assert_equal "$(sqlite3 "$BATS_TEST_TMPDIR/back.db" "SELECT seq FROM sqlite_sequence WHERE name = 'stacks'")" 3
	back_bytes=$(sqlite3 "$BATS_TEST_TMPDIR/back.db" "SELECT hex(content) FROM artifacts WHERE version = 9")
	assert_equal "$back_bytes" 61FF00FE0A62
	# PostgreSQL's identities were moved past the copied ids, and past
	# the stack deleted before the copy.
	orch-stack --db "$pg" create gamma
	assert_equal "$(psql -X -A -t "$pg" -c "SELECT id FROM stacks WHERE name = 'gamma'")" 4
}

@test "copy: text PostgreSQL cannot hold is refused with 65 before anything is written" {
	[ -n "$TEST_PGDIR" ] || skip "no PostgreSQL cluster (ORCH_TEST_ENGINE=postgres)"
	local pg
	pg=$(second_pg_db)
	TEST_ENGINE=sqlite
	export ORCH_DB=$BATS_TEST_TMPDIR/orch.db
	orch-stack init
	orch-stack create alpha
	sql "INSERT INTO todos (stack_id, content, created_at) VALUES (1, CAST(X'6100ff' AS TEXT), 1)"
	run -65 --separate-stderr orch-stack copy --to "$pg"
	assert_equal "$stderr" "orch-stack: copying 'todos': todos.content: row 1 holds text PostgreSQL cannot (a NUL byte or ill-formed UTF-8)"
	assert_equal "$(orch-stack --db "$pg" names)" ""
}
