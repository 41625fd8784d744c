# PostgreSQL for the tests (sourced by test_helper.bash and setup_suite.bash):
# a throwaway cluster started by the tests themselves, never a system
# service, and a fresh database per test.
#
#   ORCH_TEST_ENGINE=postgres bats tests     the whole suite on PostgreSQL
#   ORCH_TEST_PG_BINDIR=DIR                  initdb, pg_ctl (default Debian's 15)
#   ORCH_TEST_PG_TEMPLATE=NAME               what each test's database copies
#                                            (default template0: empty, as a
#                                            missing SQLite file is)
#
# setup_suite exports ORCH_TEST_PGDIR (the cluster's directory, its socket
# there), ORCH_TEST_PGHOST (the socket's directory) and ORCH_TEST_PGUSER
# (the superuser); test_helper.bash keeps copies of them, since
# orch_test_env unsets every ORCH_* variable.

PG_BINDIR=${ORCH_TEST_PG_BINDIR:-/usr/lib/postgresql/15/bin}
# Every client call gives up instead of hanging on a server that is gone.
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

# pg_have_server: whether initdb, pg_ctl and postgres are there to run.
pg_have_server() {
	[ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/pg_ctl" ] && [ -x "$PG_BINDIR/postgres" ]
}

# pg_run_user: who runs the cluster. initdb refuses root, so as root it is
# the postgres system user (the postgresql package makes it), else nobody.
pg_run_user() {
	if [ "$(id -u)" != 0 ]; then
		id -un
	elif getent passwd postgres >/dev/null; then
		echo postgres
	else
		echo nobody
	fi
}

# pg_as USER COMMAND...: COMMAND as USER (as root: dropped to USER, its own
# groups), with no descriptor but 0-2 open: a server that kept bats's
# descriptor 3 would make bats wait for it.
pg_as() {
	local user=$1
	shift
	if [ "$(id -u)" = 0 ] && [ "$user" != root ]; then
		setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
	else
		"$@" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
	fi
}

# pg_cluster_start DIR: a new cluster in DIR (an empty directory), its data
# in DIR/data, its log in DIR/log, its socket in DIR and no TCP port,
# running and accepting connections. Tuned to be thrown away: nothing is
# synced. On failure one line on stderr, status 1.
pg_cluster_start() {
	local dir=$1 user why=
	user=$(pg_run_user)
	if ! pg_have_server; then
		echo "pg_cluster_start: no PostgreSQL server in $PG_BINDIR (install postgresql, or set ORCH_TEST_PG_BINDIR)" >&2
		return 1
	fi
	# The socket's path has room for 107 bytes (sun_path).
	if [ $((${#dir} + 15)) -gt 107 ]; then
		echo "pg_cluster_start: '$dir' is too long a path for a socket" >&2
		return 1
	fi
	if [ "$(id -u)" = 0 ]; then
		chown "$user:$(id -g "$user")" "$dir" || why="cannot give $dir to $user"
	fi
	# Others may reach the socket (a test may drop privileges); the data
	# directory itself stays 0700, as initdb wants it.
	chmod 755 "$dir" || why=${why:-"cannot chmod $dir"}
	if [ -z "$why" ] && ! pg_as "$user" test -w "$dir"; then
		why="$user cannot write in $dir (a parent directory closed to it?)"
	fi
	if [ -n "$why" ]; then
		echo "pg_cluster_start: $why" >&2
		return 1
	fi
	if ! pg_as "$user" "$PG_BINDIR/initdb" -D "$dir/data" -U "$user" -A trust \
		--no-sync -E UTF8 --locale=C </dev/null >"$dir/initdb.log" 2>&1; then
		echo "pg_cluster_start: initdb as $user failed: $(tail -n 1 "$dir/initdb.log") (log: $dir/initdb.log)" >&2
		return 1
	fi
	cat >>"$dir/data/postgresql.conf" <<-EOF || return 1
		# orch tests: a throwaway server.
		listen_addresses = ''
		unix_socket_directories = '$dir'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 200
		log_min_messages = warning
	EOF
	# Every role is trusted on the socket but orch_password, which must
	# give its password (scram-sha-256), as a deployment's role would.
	{ echo "local all orch_password scram-sha-256"; cat "$dir/data/pg_hba.conf"; } \
		>"$dir/pg_hba.conf.new" && pg_as "$user" cp "$dir/pg_hba.conf.new" "$dir/data/pg_hba.conf" ||
		{ echo "pg_cluster_start: cannot write $dir/data/pg_hba.conf" >&2; return 1; }
	rm -f "$dir/pg_hba.conf.new"
	# pg_ctl -w -t: bounded, never a hang; it returns when the server
	# accepts connections or has died.
	if ! pg_as "$user" "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start \
		</dev/null >"$dir/pg_ctl.log" 2>&1; then
		echo "pg_cluster_start: the server did not start as $user: $(tail -n 1 "$dir/log" 2>/dev/null) (log: $dir/log)" >&2
		pg_cluster_stop "$dir" 2>/dev/null
		return 1
	fi
	if ! pg_isready_bounded "$dir" "$user"; then
		echo "pg_cluster_start: the server in $dir does not answer on its socket (log: $dir/log)" >&2
		pg_cluster_stop "$dir" 2>/dev/null
		return 1
	fi
}

# pg_isready_bounded DIR USER: until the server answers, for at most 10 s.
pg_isready_bounded() {
	local i
	for ((i = 0; i < 100; i++)); do
		"$PG_BINDIR/pg_isready" -q -h "$1" -U "$2" -d postgres -t 2 && return 0
		sleep 0.1
	done
	return 1
}

# pg_cluster_stop DIR: the server in DIR stopped at once (-m immediate: no
# checkpoint, nothing is kept), or killed if it does not go within 10 s.
# Succeeds when no server of DIR is left, also if none was running.
pg_cluster_stop() {
	local dir=$1 pid i
	[ -f "$dir/data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
	pg_as "$(stat -c %U "$dir/data")" "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop \
		</dev/null >>"$dir/pg_ctl.log" 2>&1
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	for ((i = 0; i < 100; i++)); do
		pg_is_postmaster "$pid" "$dir" || return 0
		[ "$i" = 50 ] && kill -KILL "$pid" 2>/dev/null
		sleep 0.1
	done
	echo "pg_cluster_stop: the server in $dir (pid $pid) does not stop" >&2
	return 1
}

# pg_is_postmaster PID DIR: whether PID is still DIR's server (not a process
# that got its number since).
pg_is_postmaster() {
	[ -d "/proc/$1" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2/data"
}

# pg_watchdog DIR PID...: in the background, out of the test run's session
# and descriptors, stop the server in DIR and remove DIR once any PID has
# died, or leave when DIR is gone (teardown_suite did it). So a run that is
# killed without its teardown leaves no server behind.
pg_watchdog() {
	local dir=$1
	shift
	setsid bash -c '
		source "$1"
		dir=$2
		shift 2
		while [ -d "$dir" ]; do
			for p; do
				[ -d "/proc/$p" ] && continue
				pg_cluster_stop "$dir"
				rm -rf "$dir"
				exit
			done
			sleep 1
		done' pg-watchdog "${BASH_SOURCE[0]}" "$dir" "$@" \
		</dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
}

# pg_suite_start: for setup_suite. A cluster in a new temporary directory
# for the whole run, its coordinates exported, a watchdog on this process
# (bats-exec-suite) and its parent (bats).
pg_suite_start() {
	local dir base=${TMPDIR:-/tmp}
	# The cluster's user must reach the directory, and the socket's path
	# must be short: else /tmp.
	if [ "$(id -u)" = 0 ] || [ ${#base} -gt 60 ]; then
		base=/tmp
	fi
	dir=$(mktemp -d "$base/orch-pg.XXXXXX") || return 1
	if ! pg_cluster_start "$dir"; then
		rm -rf "$dir"
		return 1
	fi
	mkdir "$dir/dbs" || return 1
	export ORCH_TEST_PGDIR=$dir ORCH_TEST_PGHOST=$dir ORCH_TEST_PGUSER
	ORCH_TEST_PGUSER=$(stat -c %U "$dir/data")
	pg_watchdog "$dir" "$$" "$PPID"
	pg_test_template "$dir" "$ORCH_TEST_PGUSER" || return 1
	export ORCH_TEST_PG_TEMPLATE=${ORCH_TEST_PG_TEMPLATE:-orch_template}
}

# pg_test_template DIR USER: the database each test's copies, orch_template:
# empty of orch's schema, as a missing SQLite file is, with what the tests'
# own SQL takes from SQLite: group_concat (SELECT group_concat(id) FROM
# todos), and text assigned to a bytea column (UPDATE artifacts SET
# content = 'x') as its UTF-8 bytes. orch itself never relies on either.
pg_test_template() {
	psql -X -q -v ON_ERROR_STOP=1 "postgresql:///postgres?host=$1&user=$2" \
		-c "CREATE DATABASE orch_template TEMPLATE template0" >/dev/null || return 1
	psql -X -q -v ON_ERROR_STOP=1 "postgresql:///orch_template?host=$1&user=$2" >/dev/null <<-'SQL'
	CREATE FUNCTION orch_test_concat(acc text, v anyelement, sep text) RETURNS text
	  LANGUAGE sql IMMUTABLE AS $$
	  SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v::text
	    ELSE acc || sep || v::text END $$;
	CREATE FUNCTION orch_test_concat(acc text, v anyelement) RETURNS text
	  LANGUAGE sql IMMUTABLE AS $$ SELECT orch_test_concat(acc, v, ',') $$;
	CREATE AGGREGATE group_concat(anyelement, text) (SFUNC = orch_test_concat, STYPE = text);
	CREATE AGGREGATE group_concat(anyelement) (SFUNC = orch_test_concat, STYPE = text);
	CREATE FUNCTION orch_test_bytes(text) RETURNS bytea LANGUAGE sql IMMUTABLE AS
	  $$ SELECT convert_to($1, 'UTF8') $$;
	CREATE CAST (text AS bytea) WITH FUNCTION orch_test_bytes(text) AS ASSIGNMENT;
	SQL
}

# pg_suite_stop: for teardown_suite.
pg_suite_stop() {
	local dir=${ORCH_TEST_PGDIR-}
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	pg_cluster_stop "$dir" || return 1
	rm -rf "$dir"
}

# pg_uri DATABASE: the libpq URI of DATABASE in the suite's cluster.
pg_uri() {
	printf 'postgresql:///%s?host=%s&user=%s\n' "$1" "$TEST_PGHOST" "$TEST_PGUSER"
}

# pg_test_db: for orch_test_env. A new database for this test, named after
# its number and its process (bats-exec-test, whose life is the test's),
# as ORCH_DB. Databases of tests whose process is gone are dropped first,
# in the same client call: no test's own teardown() needs to know, and at
# most one per file (the last, dropped with the cluster) is left at a time.
pg_test_db() {
	local reg=$TEST_PGDIR/dbs name f pid
	local args=()
	# A count too, should a test call orch_test_env twice.
	PG_TEST_DB_SEQ=$((${PG_TEST_DB_SEQ:-0} + 1))
	name=orch_t${BATS_SUITE_TEST_NUMBER:-0}_${PG_TEST_DB_SEQ}_$$
	for f in "$reg"/orch_t*; do
		[ -e "$f" ] || continue
		pid=${f##*_}
		[[ $pid =~ ^[0-9]+$ ]] || continue
		[ -d "/proc/$pid" ] && continue
		# Whoever renames it drops it: tests in parallel do not race.
		mv "$f" "$f.drop.$$" 2>/dev/null || continue
		args+=(-c "DROP DATABASE IF EXISTS \"${f##*/}\" WITH (FORCE)")
	done
	: >"$reg/$name" || return 1
	args+=(-c "CREATE DATABASE \"$name\" TEMPLATE \"${TEST_PG_TEMPLATE:-template0}\" STRATEGY file_copy")
	if ! psql -X -q -v ON_ERROR_STOP=1 "$(pg_uri postgres)" "${args[@]}" >/dev/null; then
		echo "pg_test_db: cannot create database $name in $TEST_PGDIR" >&2
		return 1
	fi
	rm -f "$reg"/*.drop.$$
	export ORCH_DB
	ORCH_DB=$(pg_uri "$name")
}
