# Once per bats run (bats picks this file up beside the .bats files): with
# ORCH_TEST_ENGINE=postgres, one PostgreSQL cluster for the whole run
# (tests/pg.bash), stopped and removed at the end, also when a test fails;
# a watchdog stops it if the run is killed. SQLite, the default: nothing.

ORCH_SUITE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

setup_suite() {
	case ${ORCH_TEST_ENGINE:-sqlite} in
	sqlite) ;;
	postgres)
		source "$ORCH_SUITE_DIR/pg.bash"
		pg_suite_start
		;;
	*)
		echo "setup_suite: ORCH_TEST_ENGINE is '$ORCH_TEST_ENGINE', not sqlite or postgres" >&2
		return 1
		;;
	esac
}

teardown_suite() {
	if [ "${ORCH_TEST_ENGINE:-sqlite}" = postgres ]; then
		source "$ORCH_SUITE_DIR/pg.bash"
		pg_suite_stop
	fi
}
