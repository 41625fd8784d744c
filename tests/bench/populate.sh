# populate.sh - build benchmark databases with set-based SQL in the sqlite3
# shell (one INSERT ... SELECT per table over a recursive counter), never a
# row at a time. Sourced by run.sh; needs orch-stack on PATH.

# notrig DB SQL: run SQL with the schema's triggers set aside (each would
# bump a stack's state_version once per inserted row: 50 s instead of 5 s
# at 10,000 stacks), then put them back word for word. Fresh data has no
# cache entry to invalidate.
notrig() {
	local db=$1 sql=$2 triggers drops
	triggers=$(sqlite3 -batch -bail "$db" "SELECT sql || ';' FROM sqlite_master WHERE type = 'trigger'")
	drops=$(sqlite3 -batch -bail "$db" "SELECT 'DROP TRIGGER ' || name || ';' FROM sqlite_master WHERE type = 'trigger'")
	sqlite3 -batch -bail "$db" "PRAGMA synchronous = OFF; BEGIN; $drops $sql $triggers COMMIT;"
}

# populate_cycle DB N: N running stacks where all four agents have work:
# a project and two pending todos (planner: never planned, 4; builder: 8),
# one plain unprocessed user message (communicator: 10), never reviewed
# (reviewer: 4). The graph of each is planner -> builder -> reviewer, and
# communicator on its own.
populate_cycle() {
	local db=$1 n=$2
	rm -f "$db" "$db-wal" "$db-shm"
	orch-stack --db "$db" init >/dev/null
	notrig "$db" "$(cat <<-SQL
	WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $n)
	INSERT INTO stacks (id, name, execution_state, created_at, started_at, next_run_at)
	SELECT i, 's' || i, 'running', 1000000, 1000000, 0 FROM c;
	INSERT INTO projects (stack_id, title, description, created_at, updated_at)
	SELECT id, name, 'a benchmark project', 1000000, 1000000 FROM stacks;
	WITH k(j) AS (VALUES (1), (2))
	INSERT INTO todos (stack_id, content, priority, created_at)
	SELECT id, 'todo ' || j, 3, 1000000 + j FROM stacks, k ORDER BY id, j;
	INSERT INTO user_messages (stack_id, sender, content, created_at)
	SELECT id, 'user', 'hello', 1000000 FROM stacks;
	SQL
	)"
}

# populate_detect DB N: N running stacks with 100 todos and 20 messages
# each, the shape of issue 6's detection benchmark. Per stack: a project, an
# artifact, planner and reviewer memory on every other stack; todos 50
# pending (priorities 1..5), 40 completed (half after the last review), 10
# cancelled; 10 user messages (5 processed; of the 5 open ones, one holds a
# keyword on every third stack); 10 inter-stack messages sent to it by the
# next stack (4 of them read). Ten broadcasts in all.
populate_detect() {
	local db=$1 n=$2
	rm -f "$db" "$db-wal" "$db-shm"
	orch-stack --db "$db" init >/dev/null
	notrig "$db" "$(cat <<-SQL
	WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $n)
	INSERT INTO stacks (id, name, execution_state, created_at, started_at, next_run_at)
	SELECT i, 's' || i, 'running', 1000000, 1000000, 0 FROM c;
	INSERT INTO projects (stack_id, title, description, created_at, updated_at)
	SELECT id, name, 'a benchmark project', 1000000, 1000000 FROM stacks;
	INSERT INTO artifacts (stack_id, version, type, content, created_at)
	SELECT id, 1, 'html', '<!doctype html><p>' || name || '</p>', 1500000 FROM stacks;
	INSERT INTO memory (stack_id, agent, data, updated_at)
	SELECT id, 'planner', '{"reviewer_recommendations":[],"last_planning_time":1600000}', 1
	  FROM stacks WHERE id % 2 = 0;
	INSERT INTO memory (stack_id, agent, data, updated_at)
	SELECT id, 'reviewer', '{"last_review_time":1600000}', 1 FROM stacks WHERE id % 2 = 0;
	WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 99)
	INSERT INTO todos (stack_id, content, status, priority, created_at, completed_at)
	SELECT id, 'todo ' || j || ' of stack ' || id,
	       CASE WHEN j < 50 THEN 'pending' WHEN j < 90 THEN 'completed' ELSE 'cancelled' END,
	       1 + j % 5, 1000000 + j,
	       CASE WHEN j >= 50 AND j < 90 THEN 1500000 + 5000 * (j - 50) END
	  FROM stacks, k ORDER BY id, j;
	WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 9)
	INSERT INTO user_messages (stack_id, sender, content, created_at, processed)
	SELECT id, 'user',
	       CASE WHEN j = 9 AND id % 3 = 0 THEN 'please add a dark mode'
	            ELSE 'message ' || j || ' to stack ' || id END,
	       1000000 + j, j < 5
	  FROM stacks, k ORDER BY id, j;
	WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 9)
	INSERT INTO messages (from_stack_id, to_stack_id, content, created_at)
	SELECT id % $n + 1, id, 'note ' || j || ' from stack ' || (id % $n + 1), 1000000 + j
	  FROM stacks, k ORDER BY id, j;
	INSERT INTO messages (from_stack_id, to_stack_id, content, created_at)
	SELECT id, NULL, 'broadcast from ' || id, 1000000 FROM stacks WHERE id <= 10;
	INSERT INTO message_reads (message_id, stack_id, read_at)
	SELECT id, to_stack_id, 1 FROM messages
	 WHERE to_stack_id IS NOT NULL AND (id - 1) % 10 < 4;
	SQL
	)"
}
