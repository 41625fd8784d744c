#!/usr/bin/env bats
# The PostgreSQL test harness itself (tests/pg.bash, tests/setup_suite.bash):
# the cluster, the database each test gets, sql. Only with
# ORCH_TEST_ENGINE=postgres.

load test_helper

setup() {
	[ "$TEST_ENGINE" = postgres ] || skip "ORCH_TEST_ENGINE is not postgres"
	orch_test_env
}

# The name of this test's database, from ORCH_DB.
db_name() {
	local n=${ORCH_DB#postgresql:///}
	echo "${n%%\?*}"
}

@test "each test has a database of its own in the suite's cluster, empty" {
	[[ $ORCH_DB == "postgresql:///orch_t"*"?host=$TEST_PGHOST&user=$TEST_PGUSER" ]] || fail "ORCH_DB is '$ORCH_DB'"
	run -0 psql -X -A -t "$ORCH_DB" -c 'SELECT current_database()'
	assert_output "$(db_name)"
	run -0 sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
	assert_output 0
	# A mark for the next test.
	sql "CREATE TABLE mark (x integer)"
	echo "$(db_name)" >"$BATS_FILE_TMPDIR/first"
}

@test "the next test's database is another, and the last one's is dropped" {
	[ -s "$BATS_FILE_TMPDIR/first" ] || skip "run with the test before"
	first=$(cat "$BATS_FILE_TMPDIR/first")
	[ "$first" != "$(db_name)" ] || fail "the same database twice: $first"
	run -0 sql "SELECT count(*) FROM pg_tables WHERE tablename = 'mark'"
	assert_output 0
	run -0 sql "SELECT datname FROM pg_database WHERE datname = '$first'"
	assert_output ''
	[ ! -e "$TEST_PGDIR/dbs/$first" ]
}

@test "sql prints what sqlite3 -batch -bail prints" {
	local stmts=("CREATE TABLE t (id integer PRIMARY KEY, name text, n integer)"
		"INSERT INTO t VALUES (1, 'one', 10), (2, NULL, NULL), (3, 'a|b', -3)"
		"SELECT id, name, n FROM t ORDER BY id"
		"SELECT count(*) FROM t WHERE name IS NULL; SELECT 'x', NULL, 'y'"
		"SELECT name FROM t WHERE id = 42")
	run -0 sqlite3 -batch -bail "$BATS_TEST_TMPDIR/same.db" "${stmts[@]}"
	want=$output
	run -0 sql "${stmts[@]}"
	assert_output "$want"
	assert_output "1|one|10
2||
3|a|b|-3
1
x||y"
	# Standard input, as `sql <<EOF` gives it.
	run -0 sql <<<"SELECT n FROM t ORDER BY id DESC;"
	assert_output "-3

10"
}

@test "an error in sql fails it, stops there and keeps what came before" {
	sql "CREATE TABLE t (id integer PRIMARY KEY)"
	run --separate-stderr sql "INSERT INTO t VALUES (1)" "INSERT INTO t VALUES (1)" "INSERT INTO t VALUES (2)"
	[ "$status" != 0 ] || fail "status 0"
	[[ $stderr == *"duplicate key value"* ]] || fail "$stderr"
	run -0 sql "SELECT id FROM t"
	assert_output 1
	run --separate-stderr sql "SELECT nonsense FROM nowhere"
	[ "$status" != 0 ] || fail "status 0"
	run --separate-stderr sql "SELECT 1; SELECT nonsense FROM nowhere; SELECT 2"
	[ "$status" != 0 ] || fail "status 0"
	assert_output 1
}

@test "sql .dump is pg_dump: equal for equal contents, unequal after a change" {
	sql "CREATE TABLE t (v text)" "INSERT INTO t VALUES ('secret-key')"
	before=$(sql .dump)
	[[ $before == *secret-key* ]] || fail "$before"
	assert_equal "$(sql .dump)" "$before"
	sql "INSERT INTO t VALUES ('x')"
	[ "$(sql .dump)" != "$before" ] || fail "the same dump after an insert"
}

@test "the cluster runs as the user the harness says, never root" {
	pid=$(head -n 1 "$TEST_PGDIR/data/postmaster.pid")
	run -0 ps -o user= -p "$pid"
	assert_output "$TEST_PGUSER"
	if [ "$(id -u)" = 0 ]; then
		[ "$TEST_PGUSER" != root ] || fail "the server runs as root"
	else
		assert_equal "$TEST_PGUSER" "$(id -un)"
	fi
	# Its socket alone: no TCP port.
	run -0 sql "SHOW listen_addresses"
	assert_output ''
	run -0 sql "SHOW fsync"
	assert_output off
}

@test "engine_is_sqlite says no, skip_unless_sqlite skips" {
	run -1 engine_is_sqlite
	# This test's own skip, to see what it is given.
	skip() { echo "skip: $*"; }
	run -0 skip_unless_sqlite "its -wal file"
	assert_output "skip: SQLite only: its -wal file"
}
