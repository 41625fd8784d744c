# Loaded by every tests/*.bats: the built programs first on PATH, a private
# HOME and database per test, no ORCH_* or provider variables from outside.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

ORCH_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
# Saved outside ORCH_* so orch_test_env's unset loop keeps it.
TEST_BUILD=${ORCH_BUILD:-$ORCH_ROOT/build}
FIXTURES=$BATS_TEST_DIRNAME/fixtures

# Programs every suite may loop over.
ORCH_PROGRAMS="orch orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent"

orch_test_env() {
	local v
	for v in $(compgen -e | grep -E '^(ORCH_|GROQ_)'); do
		unset "$v"
	done
	unset XDG_DATA_HOME XDG_CONFIG_HOME NO_COLOR
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
	export ORCH_DB=$BATS_TEST_TMPDIR/orch.db
	export PATH="$TEST_BUILD/bin:$ORCH_ROOT/examples/agents:$PATH"
	# Sanitizer builds: fail loudly on any finding.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=86}
}

setup() {
	orch_test_env
}

# sql STATEMENT...: run SQL against the test database.
sql() {
	sqlite3 -batch -bail "$ORCH_DB" "$@"
}

# A stack in a known state: name, execution state.
make_stack() {
	local name=$1 state=${2:-running}
	sql "INSERT INTO stacks (name, execution_state, created_at, next_run_at)
	     VALUES ('$name', '$state', 1000000, 0)"
	sql "SELECT id FROM stacks WHERE name = '$name'"
}
