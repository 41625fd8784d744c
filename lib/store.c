#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "doc.h"
#include "orch.h"
#include "store.h"
#include "xalloc.h"
#include "banned.h"

/* How long a program waits for another one's write lock before giving up
 * with 75, unless ORCH_BUSY_TIMEOUT_MS says otherwise. */
#define BUSY_TIMEOUT_MS 30000
#define BUSY_TIMEOUT_MAX_MS 3600000

/* The busy timeout: ORCH_BUSY_TIMEOUT_MS when set, else the default. */
static int busy_timeout(int *ms, struct orch_error *err)
{
	const char *env = getenv("ORCH_BUSY_TIMEOUT_MS");
	char *end;
	long long v;

	*ms = BUSY_TIMEOUT_MS;
	if (!env || !*env)
		return 0;
	errno = 0;
	v = strtoll(env, &end, 10);
	if (*end || errno || v < 0 || v > BUSY_TIMEOUT_MAX_MS || !(*env >= '0' && *env <= '9'))
		return orch_error_set(err, ORCH_EX_USAGE,
				      "ORCH_BUSY_TIMEOUT_MS: '%s' is not a whole number from 0 to %d",
				      env, BUSY_TIMEOUT_MAX_MS);
	*ms = (int)v;
	return 0;
}

/*
 * The busy handler: SQLite's own sleeps (1 ms growing to 100 ms) up to
 * the busy timeout, or, once the program is stopping, up to its bound.
 * Returns 0 to give up (SQLITE_BUSY), 1 to try again.
 */
static int on_busy(void *arg, int count)
{
	static const int delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
	struct store *s = arg;
	int64_t now = orch_mono_ms(), limit;
	struct timespec ts;
	int d;

	if (count == 0)
		s->busy_since = now;
	limit = s->busy_since + s->busy_ms;
	if (s->stopping && s->stopping(s->stopping_arg)) {
		if (!s->stop_deadline)
			s->stop_deadline = now + STORE_STOP_WAIT_MS;
		if (s->stop_deadline < limit)
			limit = s->stop_deadline;
	}
	if (now >= limit)
		return 0;
	d = delays[count < 12 ? count : 11];
	if (d > limit - now)
		d = (int)(limit - now);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)d * 1000000L;
	/* A signal ends the sleep: the next call looks at it. */
	nanosleep(&ts, NULL);
	return 1;
}

/* Device and inode of PATH into *DEV, *INO: 0, or -1 when it is gone. */
static int file_id(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	*dev = sb.st_dev;
	*ino = sb.st_ino;
	return 0;
}

/* Whether PATH is still the file DEV, INO. */
static int same_file(const char *path, dev_t dev, ino_t ino)
{
	dev_t d;
	ino_t i;

	return file_id(path, &d, &i) == 0 && d == dev && i == ino;
}

/* SQLite's commit hook: nonzero turns the commit into a rollback. */
static int on_commit(void *arg)
{
	struct store *s = arg;

	if (!s->lost && (!same_file(s->path, s->dev, s->ino) ||
			 (s->wal_ino && !same_file(s->wal, s->wal_dev, s->wal_ino))))
		s->lost = 1;
	return s->lost;
}

/* Remember which files were opened (store.h: checked at each commit). */
static void remember_files(struct store *s)
{
	char *real;

	if (file_id(s->path, &s->dev, &s->ino) != 0)
		return;
	/* SQLite puts the -wal beside the file a symbolic link names. */
	real = realpath(s->path, NULL);
	s->wal = xasprintf("%s-wal", real ? real : s->path);
	free(real);
	if (file_id(s->wal, &s->wal_dev, &s->wal_ino) != 0)
		s->wal_ino = 0;
	sqlite3_commit_hook(s->db, on_commit, s);
}

void store_set_stop(struct store *s, int (*stopping)(void *), void *arg)
{
	s->stopping = stopping;
	s->stopping_arg = arg;
}

/* Migration 4's content triggers: replace TABLE's trigger for EVENT (ins,
 * upd, del) with one that bumps both versions of the stack at STACK. */
#define BUMP_TRIGGER(table, ev, event, stack)                               \
	"DROP TRIGGER " table "_" ev ";"                                    \
	"CREATE TRIGGER " table "_" ev " AFTER " event " ON " table " BEGIN" \
	"  UPDATE stacks SET state_version = state_version + 1,"             \
	"    content_version = content_version + 1 WHERE id = " stack "; END;"

/* What traces_fts indexes of a trace row R: its thinking, its actions (its
 * output whole when that is not JSON), its error, its stderr. */
#define TRACE_TEXT(r)                                                          \
	"CASE WHEN json_valid(" r ".output)"                                   \
	" THEN json_extract(" r ".output, '$.thinking') END,"                   \
	" CASE WHEN json_valid(" r ".output)"                                  \
	" THEN json_extract(" r ".output, '$.actions') ELSE " r ".output END,"  \
	" " r ".error, " r ".stderr"

/*
 * Migrations, one per schema version; user_version says how many have run.
 * Never edit a shipped one: add the next.
 */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE stacks ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  phase TEXT NOT NULL DEFAULT 'planning',"
	"  execution_state TEXT NOT NULL DEFAULT 'idle'"
	"    CHECK (execution_state IN ('idle','running','paused','stopped')),"
	"  created_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  paused_at INTEGER,"
	"  stopped_at INTEGER,"
	"  last_executed_at INTEGER,"
	"  next_run_at INTEGER NOT NULL DEFAULT 0,"
	"  total_cycles INTEGER NOT NULL DEFAULT 0,"
	"  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
	"  lease_owner TEXT,"           /* host:pid of the orch-exec running it */
	"  lease_pid INTEGER,"
	"  lease_host TEXT,"
	"  lease_expires_at INTEGER,"
	"  lease_execution_id INTEGER," /* the cycle the holder is running */
	"  state_version INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX stacks_due ON stacks(execution_state, next_run_at);"
	"CREATE TABLE projects ("
	"  stack_id INTEGER PRIMARY KEY REFERENCES stacks(id) ON DELETE CASCADE,"
	"  title TEXT NOT NULL,"
	"  description TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE TABLE todos ("
	"  id INTEGER PRIMARY KEY,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  content TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (status IN ('pending','in_progress','completed','cancelled')),"
	"  priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),"
	"  created_at INTEGER NOT NULL,"
	"  completed_at INTEGER"
	");"
	"CREATE INDEX todos_by_stack ON todos(stack_id, status, priority);"
	"CREATE TABLE user_messages ("
	"  id INTEGER PRIMARY KEY,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  sender TEXT NOT NULL,"
	"  content TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  processed INTEGER NOT NULL DEFAULT 0,"
	"  response TEXT,"              /* the communicator's answer */
	"  responded_at INTEGER"
	");"
	"CREATE INDEX user_messages_by_stack ON user_messages(stack_id, processed);"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  from_stack_id INTEGER REFERENCES stacks(id) ON DELETE SET NULL,"
	"  to_stack_id INTEGER REFERENCES stacks(id) ON DELETE CASCADE," /* NULL: broadcast */
	"  content TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE INDEX messages_to ON messages(to_stack_id);"
	"CREATE TABLE message_reads ("
	"  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  read_at INTEGER NOT NULL,"
	"  PRIMARY KEY (message_id, stack_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE artifacts ("
	"  id INTEGER PRIMARY KEY,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  version INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  content BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (stack_id, version)"
	");"
	"CREATE TABLE memory ("
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  agent TEXT NOT NULL,"
	"  data TEXT NOT NULL DEFAULT '{}'," /* a JSON object */
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (stack_id, agent)"
	") WITHOUT ROWID;"
	"CREATE TABLE executions ("
	"  id INTEGER PRIMARY KEY,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  cycle INTEGER NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'running'"
	"    CHECK (status IN ('running','completed','failed')),"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  owner TEXT,"                 /* lease owner that ran it */
	"  decision TEXT,"              /* continue, pause, stop */
	"  pause_ms INTEGER,"
	"  next_at INTEGER,"
	"  reason TEXT,"
	"  error TEXT,"
	"  summary TEXT"                /* JSON: the orch-exec summary */
	");"
	"CREATE INDEX executions_by_stack ON executions(stack_id, cycle);"
	"CREATE TABLE graphs ("
	"  execution_id INTEGER PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,"
	"  graph TEXT NOT NULL"         /* JSON: the executed graph */
	");"
	"CREATE TABLE traces ("
	"  id INTEGER PRIMARY KEY,"
	"  execution_id INTEGER REFERENCES executions(id) ON DELETE CASCADE,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  agent TEXT NOT NULL,"
	"  attempt INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"       /* completed, failed */
	"  exit_status INTEGER,"
	"  input TEXT,"                 /* the context document */
	"  output TEXT,"                /* what the agent printed */
	"  error TEXT,"
	"  usage TEXT"                  /* JSON: tokens, model, provider */
	");"
	"CREATE INDEX traces_by_stack ON traces(stack_id, agent, started_at);"
	"CREATE TABLE detect_cache ("
	"  stack_id INTEGER PRIMARY KEY REFERENCES stacks(id) ON DELETE CASCADE,"
	"  state_version INTEGER NOT NULL,"
	"  computed_at INTEGER NOT NULL,"
	"  status TEXT NOT NULL"        /* JSON: the work-status document */
	");"
	/* Anything detection reads bumps the stack's state_version. */
	"CREATE TRIGGER stacks_state AFTER UPDATE OF name, phase, execution_state"
	"  ON stacks BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.id;"
	"END;"
	"CREATE TRIGGER projects_ins AFTER INSERT ON projects BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER projects_upd AFTER UPDATE ON projects BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER projects_del AFTER DELETE ON projects BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TRIGGER todos_ins AFTER INSERT ON todos BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER todos_upd AFTER UPDATE ON todos BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER todos_del AFTER DELETE ON todos BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TRIGGER user_messages_ins AFTER INSERT ON user_messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER user_messages_upd AFTER UPDATE ON user_messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER user_messages_del AFTER DELETE ON user_messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1"
	"   WHERE id = NEW.to_stack_id"
	"      OR (NEW.to_stack_id IS NULL AND id IS NOT NEW.from_stack_id); END;"
	"CREATE TRIGGER messages_upd AFTER UPDATE ON messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1"
	"   WHERE id = NEW.to_stack_id OR id = OLD.to_stack_id"
	"      OR ((NEW.to_stack_id IS NULL OR OLD.to_stack_id IS NULL)"
	"          AND id IS NOT NEW.from_stack_id); END;"
	"CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1"
	"   WHERE id = OLD.to_stack_id"
	"      OR (OLD.to_stack_id IS NULL AND id IS NOT OLD.from_stack_id); END;"
	"CREATE TRIGGER message_reads_del AFTER DELETE ON message_reads BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TRIGGER artifacts_upd AFTER UPDATE ON artifacts BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER artifacts_del AFTER DELETE ON artifacts BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TRIGGER memory_del AFTER DELETE ON memory BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TRIGGER message_reads_ins AFTER INSERT ON message_reads BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER artifacts_ins AFTER INSERT ON artifacts BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER memory_ins AFTER INSERT ON memory BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER memory_upd AFTER UPDATE ON memory BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;",
	/* 2: indexes for set-based detection (detect_stacks): the todo counts
	 * read from the index alone, own broadcasts by sender, reads by reader
	 * (which the foreign keys' cascades use too). */
	"CREATE INDEX todos_detect ON todos(stack_id, status, priority, completed_at);"
	"DROP INDEX todos_by_stack;"
	"CREATE INDEX messages_from ON messages(from_stack_id);"
	"CREATE INDEX message_reads_by_stack ON message_reads(stack_id);",
	/* 3: the fingerprint of the rules a cached status was computed under
	 * (struct detect_rules, fingerprint), so a new configuration is not served
	 * statuses of the old one. Older entries have none: never served. */
	"ALTER TABLE detect_cache ADD COLUMN rules INTEGER;",
	/* 4: need-based running (README "Need-based running").
	 * content_version counts the changes to the work itself: the project,
	 * the todos, the artifacts, the phase; not the conversation (user and
	 * inter-stack messages reach their agents through rules of their
	 * own), not the agents' memory, and not orch's bookkeeping, which
	 * moves out of the agents' memory into agent_runs: each agent's last
	 * successful run, and the content_version it left as seen. wake_at is
	 * the last time a write (a message, a todo, a start) made the stack
	 * due at once. */
	"ALTER TABLE stacks ADD COLUMN content_version INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE stacks ADD COLUMN wake_at INTEGER;"
	"ALTER TABLE executions ADD COLUMN rule TEXT;"     /* the decision rule that fired */
	"CREATE TABLE agent_runs ("
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  agent TEXT NOT NULL,"
	"  cycle INTEGER,"                /* NULL for a run outside a cycle */
	"  started_at INTEGER NOT NULL,"  /* its context's time: it saw the state then */
	"  ended_at INTEGER NOT NULL,"
	"  seen_version INTEGER NOT NULL," /* content_version it saw and left; -1: none */
	"  PRIMARY KEY (stack_id, agent)"
	") WITHOUT ROWID;"
	"INSERT INTO agent_runs (stack_id, agent, started_at, ended_at, seen_version)"
	"  SELECT stack_id, agent, json_extract(data, '$.' || k), json_extract(data, '$.' || k), -1"
	"  FROM memory JOIN (SELECT 'planner' AS a, 'last_planning_time' AS k"
	"                    UNION ALL SELECT 'reviewer', 'last_review_time') ON agent = a"
	"  WHERE json_valid(data) AND json_type(data, '$.' || k) = 'integer'"
	"    AND json_extract(data, '$.' || k) > 0;"
	"UPDATE memory SET data = json_remove(data, '$.last_planning_time', '$.last_review_time')"
	"  WHERE json_valid(data) AND json_type(data) = 'object';"
	"CREATE INDEX executions_running ON executions(stack_id) WHERE status = 'running';"
	"CREATE INDEX user_messages_recent ON user_messages(stack_id, created_at);"
	"DROP TRIGGER stacks_state;"
	"CREATE TRIGGER stacks_state AFTER UPDATE OF execution_state ON stacks BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.id; END;"
	"CREATE TRIGGER stacks_content AFTER UPDATE OF name, phase ON stacks BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1,"
	"    content_version = content_version + 1 WHERE id = NEW.id; END;"
	BUMP_TRIGGER("projects", "ins", "INSERT", "NEW.stack_id")
	BUMP_TRIGGER("projects", "upd", "UPDATE", "NEW.stack_id")
	BUMP_TRIGGER("projects", "del", "DELETE", "OLD.stack_id")
	BUMP_TRIGGER("todos", "ins", "INSERT", "NEW.stack_id")
	BUMP_TRIGGER("todos", "upd", "UPDATE", "NEW.stack_id")
	BUMP_TRIGGER("todos", "del", "DELETE", "OLD.stack_id")
	BUMP_TRIGGER("artifacts", "ins", "INSERT", "NEW.stack_id")
	BUMP_TRIGGER("artifacts", "upd", "UPDATE", "NEW.stack_id")
	BUMP_TRIGGER("artifacts", "del", "DELETE", "OLD.stack_id")
	/* Bookkeeping: detection reads it (the cache must move), agents do
	 * not react to it. */
	"CREATE TRIGGER agent_runs_ins AFTER INSERT ON agent_runs BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER agent_runs_upd AFTER UPDATE ON agent_runs BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER agent_runs_del AFTER DELETE ON agent_runs BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;",
	/* 5 (issue 12): what orch-agent learned about a provider and model
	 * (lib/provider_caps.c): a capability it refused (llm_cap_name()), or
	 * its token limit, kept a day from learned_at. */
	"CREATE TABLE provider_caps ("
	"  base_url TEXT NOT NULL,"
	"  model TEXT NOT NULL,"
	"  capability TEXT NOT NULL,"
	"  value INTEGER NOT NULL,"     /* 1, or the limit in tokens */
	"  learned_at INTEGER NOT NULL,"
	"  PRIMARY KEY (base_url, model, capability)"
	");",
	/* 6 (issue 11): the cycle and the todo that produced each artifact
	 * version, for `orch-stack artifact list`; written by artifact_write()
	 * alone. Older versions have neither: unknown. */
	"ALTER TABLE artifacts ADD COLUMN execution_id INTEGER"
	"  REFERENCES executions(id) ON DELETE SET NULL;"
	"ALTER TABLE artifacts ADD COLUMN todo_id INTEGER"
	"  REFERENCES todos(id) ON DELETE SET NULL;",
	/* 7 (issue 11): each agent run's stderr (its last 64 KiB, and how many
	 * bytes before them were dropped), and traces_fts, a full-text index
	 * of the runs' thinking, actions (or the output, when it is not JSON),
	 * error and stderr, over the view traces_text; triggers keep it. A
	 * delete must give the index the values it was given: the triggers
	 * compute them from the row as the view does. */
	"ALTER TABLE traces ADD COLUMN stderr TEXT;"
	"ALTER TABLE traces ADD COLUMN stderr_dropped INTEGER NOT NULL DEFAULT 0;"
	"CREATE VIEW traces_text (id, thinking, actions, error, stderr) AS"
	"  SELECT id, " TRACE_TEXT("traces") " FROM traces;"
	"CREATE VIRTUAL TABLE traces_fts USING fts5(thinking, actions, error, stderr,"
	"  content = 'traces_text', content_rowid = 'id');"
	"INSERT INTO traces_fts (traces_fts) VALUES ('rebuild');"
	"CREATE TRIGGER traces_fts_ins AFTER INSERT ON traces BEGIN"
	"  INSERT INTO traces_fts (rowid, thinking, actions, error, stderr)"
	"  VALUES (NEW.id, " TRACE_TEXT("NEW") ");"
	"END;"
	"CREATE TRIGGER traces_fts_del AFTER DELETE ON traces BEGIN"
	"  INSERT INTO traces_fts (traces_fts, rowid, thinking, actions, error, stderr)"
	"  VALUES ('delete', OLD.id, " TRACE_TEXT("OLD") ");"
	"END;"
	"CREATE TRIGGER traces_fts_upd AFTER UPDATE ON traces BEGIN"
	"  INSERT INTO traces_fts (traces_fts, rowid, thinking, actions, error, stderr)"
	"  VALUES ('delete', OLD.id, " TRACE_TEXT("OLD") ");"
	"  INSERT INTO traces_fts (rowid, thinking, actions, error, stderr)"
	"  VALUES (NEW.id, " TRACE_TEXT("NEW") ");"
	"END;",
	/* 8 (issue 10): ids are never used twice (AUTOINCREMENT: a stack,
	 * todo or message created after the newest was deleted gets a new id,
	 * so a cycle, a decision or an agent's stale context cannot reach the
	 * wrong one), and work that keeps failing is parked: a todo's status
	 * may be 'parked', and todos and user messages count their failed
	 * attempts, with the last error (an inter-stack message's, per reader,
	 * in message_failures). SQLite changes a primary key only by
	 * rebuilding the table; migrate() runs this with foreign keys off and
	 * the legacy ALTER TABLE, then checks the keys (sqlite.org/lang_altertable.html,
	 * "Making Other Kinds Of Table Schema Changes"). */
	"CREATE TABLE stacks_new ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  phase TEXT NOT NULL DEFAULT 'planning',"
	"  execution_state TEXT NOT NULL DEFAULT 'idle'"
	"    CHECK (execution_state IN ('idle','running','paused','stopped')),"
	"  created_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  paused_at INTEGER,"
	"  stopped_at INTEGER,"
	"  last_executed_at INTEGER,"
	"  next_run_at INTEGER NOT NULL DEFAULT 0,"
	"  total_cycles INTEGER NOT NULL DEFAULT 0,"
	"  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
	"  lease_owner TEXT,"
	"  lease_pid INTEGER,"
	"  lease_host TEXT,"
	"  lease_expires_at INTEGER,"
	"  lease_execution_id INTEGER,"
	"  state_version INTEGER NOT NULL DEFAULT 0,"
	"  content_version INTEGER NOT NULL DEFAULT 0,"
	"  wake_at INTEGER"
	");"
	"INSERT INTO stacks_new SELECT * FROM stacks;"
	"DROP TABLE stacks;"
	"ALTER TABLE stacks_new RENAME TO stacks;"
	"CREATE INDEX stacks_due ON stacks(execution_state, next_run_at);"
	"CREATE TRIGGER stacks_state AFTER UPDATE OF execution_state ON stacks BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.id; END;"
	"CREATE TRIGGER stacks_content AFTER UPDATE OF name, phase ON stacks BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1,"
	"    content_version = content_version + 1 WHERE id = NEW.id; END;"
	"CREATE TABLE todos_new ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  content TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (status IN ('pending','in_progress','completed','cancelled','parked')),"
	"  priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),"
	"  created_at INTEGER NOT NULL,"
	"  completed_at INTEGER,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"  /* failed builder runs on it */
	"  last_error TEXT"                       /* the last one's error */
	");"
	"INSERT INTO todos_new (id, stack_id, content, status, priority, created_at, completed_at)"
	"  SELECT id, stack_id, content, status, priority, created_at, completed_at FROM todos;"
	"DROP TABLE todos;"
	"ALTER TABLE todos_new RENAME TO todos;"
	"CREATE INDEX todos_detect ON todos(stack_id, status, priority, completed_at);"
	"CREATE TRIGGER todos_ins AFTER INSERT ON todos BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1,"
	"    content_version = content_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER todos_upd AFTER UPDATE ON todos BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1,"
	"    content_version = content_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER todos_del AFTER DELETE ON todos BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1,"
	"    content_version = content_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TABLE user_messages_new ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  sender TEXT NOT NULL,"
	"  content TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  processed INTEGER NOT NULL DEFAULT 0,"
	"  response TEXT,"
	"  responded_at INTEGER,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"  /* failed communicator runs on it */
	"  last_error TEXT,"
	"  parked_at INTEGER"                     /* given up on: no longer work */
	");"
	"INSERT INTO user_messages_new (id, stack_id, sender, content, created_at, processed,"
	"  response, responded_at)"
	"  SELECT id, stack_id, sender, content, created_at, processed, response, responded_at"
	"  FROM user_messages;"
	"DROP TABLE user_messages;"
	"ALTER TABLE user_messages_new RENAME TO user_messages;"
	"CREATE INDEX user_messages_by_stack ON user_messages(stack_id, processed);"
	"CREATE INDEX user_messages_recent ON user_messages(stack_id, created_at);"
	"CREATE TRIGGER user_messages_ins AFTER INSERT ON user_messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER user_messages_upd AFTER UPDATE ON user_messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = NEW.stack_id; END;"
	"CREATE TRIGGER user_messages_del AFTER DELETE ON user_messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1 WHERE id = OLD.stack_id; END;"
	"CREATE TABLE messages_new ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  from_stack_id INTEGER REFERENCES stacks(id) ON DELETE SET NULL,"
	"  to_stack_id INTEGER REFERENCES stacks(id) ON DELETE CASCADE,"
	"  content TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"INSERT INTO messages_new SELECT * FROM messages;"
	"DROP TABLE messages;"
	"ALTER TABLE messages_new RENAME TO messages;"
	"CREATE INDEX messages_to ON messages(to_stack_id);"
	"CREATE INDEX messages_from ON messages(from_stack_id);"
	"CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1"
	"   WHERE id = NEW.to_stack_id"
	"      OR (NEW.to_stack_id IS NULL AND id IS NOT NEW.from_stack_id); END;"
	"CREATE TRIGGER messages_upd AFTER UPDATE ON messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1"
	"   WHERE id = NEW.to_stack_id OR id = OLD.to_stack_id"
	"      OR ((NEW.to_stack_id IS NULL OR OLD.to_stack_id IS NULL)"
	"          AND id IS NOT NEW.from_stack_id); END;"
	"CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN"
	"  UPDATE stacks SET state_version = state_version + 1"
	"   WHERE id = OLD.to_stack_id"
	"      OR (OLD.to_stack_id IS NULL AND id IS NOT OLD.from_stack_id); END;"
	"CREATE TABLE executions_new ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  cycle INTEGER NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'running'"
	"    CHECK (status IN ('running','completed','failed')),"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  owner TEXT,"
	"  decision TEXT,"
	"  pause_ms INTEGER,"
	"  next_at INTEGER,"
	"  reason TEXT,"
	"  error TEXT,"
	"  summary TEXT,"
	"  rule TEXT"
	");"
	"INSERT INTO executions_new SELECT * FROM executions;"
	"DROP TABLE executions;"
	"ALTER TABLE executions_new RENAME TO executions;"
	"CREATE INDEX executions_by_stack ON executions(stack_id, cycle);"
	"CREATE INDEX executions_running ON executions(stack_id) WHERE status = 'running';"
	/* An inter-stack message's failed communicator runs, per reader. */
	"CREATE TABLE message_failures ("
	"  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  attempts INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  PRIMARY KEY (message_id, stack_id)"
	") WITHOUT ROWID;",
	/* 9 (issue 10, retention): what lib/retention.c keeps of what it
	 * prunes, and the indexes that keep its pruning cheap. usage_days:
	 * the tokens of the agent runs pruned, per stack, agent and UTC day,
	 * which `orch-stack usage` adds to the runs still kept. The indexes
	 * serve the foreign keys a pruned cycle or a removed todo acts on:
	 * without them each delete reads the whole of traces or artifacts. */
	"CREATE TABLE usage_days ("
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  agent TEXT NOT NULL,"
	"  day TEXT NOT NULL,"            /* UTC: 2026-11-25 */
	"  calls INTEGER NOT NULL,"
	"  prompt_tokens INTEGER NOT NULL,"  /* the sum, stopping at 2^63 - 1 */
	"  completion_tokens INTEGER NOT NULL,"
	"  PRIMARY KEY (stack_id, agent, day)"
	") WITHOUT ROWID;"
	"CREATE INDEX traces_by_execution ON traces(execution_id);"
	"CREATE INDEX artifacts_by_execution ON artifacts(execution_id);"
	"CREATE INDEX artifacts_by_todo ON artifacts(todo_id);",
	/* 10 (issue 13, usage): llm_requests, every HTTP request
	 * orch-agent sent, answered or not, written by orch-agent itself
	 * (lib/usage.c) when the database exists, keyed to its run by the
	 * stack, the agent and run_at, the "now" of the orch.context it was
	 * given, which is its attempt's traces.started_at; run_ok says
	 * whether the turn ended with a valid document (the run's trace, when
	 * there is one, says whether orch took it). usage_days, rebuilt, keeps
	 * of what retention prunes the model too, the requests, and what the
	 * failed runs cost. */
	"CREATE TABLE llm_requests ("
	"  id INTEGER PRIMARY KEY,"
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  execution_id INTEGER REFERENCES executions(id) ON DELETE CASCADE,"
	"  cycle INTEGER,"
	"  agent TEXT NOT NULL,"
	"  run_at INTEGER NOT NULL,"
	"  run_ok INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"          /* its number in the run, from 1 */
	"  round INTEGER NOT NULL,"        /* 1: the corrective round */
	"  retry INTEGER NOT NULL,"        /* retries before it in its round */
	"  provider TEXT NOT NULL,"
	"  base_url TEXT NOT NULL,"
	"  model TEXT NOT NULL,"
	"  http_status INTEGER,"           /* NULL: no full response */
	"  outcome TEXT NOT NULL,"         /* reply, invalid, retry, adapt, shrink, failed */
	"  started_at INTEGER NOT NULL,"
	"  duration_ms INTEGER NOT NULL,"
	"  prompt_tokens INTEGER,"         /* NULL: the provider did not say */
	"  completion_tokens INTEGER,"
	"  cached_tokens INTEGER"
	");"
	"CREATE INDEX llm_requests_by_run ON llm_requests(stack_id, agent, run_at);"
	"CREATE INDEX llm_requests_by_execution ON llm_requests(execution_id);"
	"CREATE INDEX llm_requests_by_time ON llm_requests(started_at);"
	"CREATE TABLE usage_days_new ("
	"  stack_id INTEGER NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,"
	"  agent TEXT NOT NULL,"
	"  model TEXT NOT NULL,"          /* '' when the runs did not say */
	"  day TEXT NOT NULL,"
	"  runs INTEGER NOT NULL,"
	"  failed_runs INTEGER NOT NULL DEFAULT 0,"
	"  requests INTEGER NOT NULL DEFAULT 0,"
	"  prompt_tokens INTEGER NOT NULL,"
	"  completion_tokens INTEGER NOT NULL,"
	"  cached_tokens INTEGER NOT NULL DEFAULT 0,"
	"  failed_tokens INTEGER NOT NULL DEFAULT 0," /* spent in failed runs */
	"  PRIMARY KEY (stack_id, agent, model, day)"
	") WITHOUT ROWID;"
	"INSERT INTO usage_days_new (stack_id, agent, model, day, runs, prompt_tokens,"
	"  completion_tokens)"
	"  SELECT stack_id, agent, '', day, calls, prompt_tokens, completion_tokens"
	"  FROM usage_days;"
	"DROP TABLE usage_days;"
	"ALTER TABLE usage_days_new RENAME TO usage_days;",
	/* 11 (issue 13, budgets): a stack's own token budgets, set by
	 * `orch-stack budget` (lib/budget.h); a NULL limit follows the
	 * configuration's, 0 is none. */
	"CREATE TABLE stack_budgets ("
	"  stack_id INTEGER PRIMARY KEY REFERENCES stacks(id) ON DELETE CASCADE,"
	"  daily_tokens INTEGER CHECK (daily_tokens >= 0),"
	"  total_tokens INTEGER CHECK (total_tokens >= 0)"
	");",
	/* 12 (issue 13, one quota): a provider's rate limits as its last
	 * answers gave them, less what orch-agent processes reserved since
	 * (lib/quota.c), so that processes sharing a key take turns instead
	 * of being refused. A provider is its base URL and its key's
	 * identity, never the key: limits are per key. NULL is not known;
	 * times are wall-clock ms. */
	"CREATE TABLE provider_quota ("
	"  base_url TEXT NOT NULL,"
	"  key_id TEXT NOT NULL,"           /* SHA-256 of the key, 16 hex digits */
	"  requests_limit INTEGER,"         /* x-ratelimit-limit-requests */
	"  requests_left INTEGER,"          /* remaining, less reservations */
	"  requests_reset_at INTEGER,"      /* when requests_limit is back */
	"  tokens_limit INTEGER,"           /* x-ratelimit-limit-tokens */
	"  tokens_left INTEGER,"
	"  tokens_reset_at INTEGER,"
	"  not_before INTEGER NOT NULL DEFAULT 0," /* a 429's Retry-After */
	"  heard_at INTEGER,"               /* the server's last numbers */
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (base_url, key_id)"
	");",
};

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

char *store_default_path(const char *flag_value, struct orch_error *err)
{
	const char *env;

	if (flag_value)
		return xstrdup(flag_value);
	env = getenv("ORCH_DB");
	if (env && *env)
		return xstrdup(env);
	env = getenv("XDG_DATA_HOME");
	if (env && *env)
		return xasprintf("%s/orch/orch.db", env);
	env = getenv("HOME");
	if (env && *env)
		return xasprintf("%s/.local/share/orch/orch.db", env);
	orch_error_set(err, ORCH_EX_NOINPUT,
		       "no database path: set --db, ORCH_DB or HOME");
	return NULL;
}

/* mkdir -p the directory part of PATH, mode 0700 for what it creates. */
static int make_parent_dirs(const char *path, struct orch_error *err)
{
	char *dir = xstrdup(path);
	char *p;
	int rc = 0;

	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			rc = orch_error_set(err, ORCH_EX_NOINPUT,
					    "cannot create directory '%s': %s",
					    dir, strerror(errno));
			break;
		}
		*p = '/';
	}
	free(dir);
	return rc;
}

/* Create PATH 0600 if it does not exist, so SQLite never creates it 0644. */
static int create_private_file(const char *path, struct orch_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return orch_error_set(err, ORCH_EX_NOINPUT,
				      "cannot create database '%s': %s", path,
				      strerror(errno));
	close(fd);
	return 0;
}

int store_error(struct store *s, struct orch_error *err, const char *what)
{
	int code = s && s->db ? sqlite3_errcode(s->db) & 0xff : SQLITE_ERROR;
	const char *msg = s && s->db ? sqlite3_errmsg(s->db) : "no database";
	int status, sys = s && s->db ? sqlite3_system_errno(s->db) : 0;

	if (s && s->lost)
		return orch_error_set(err, ORCH_EX_NOINPUT, "%s%sthe database '%s' was deleted or"
				      " replaced while in use: nothing more is written to it",
				      what ? what : "", what ? ": " : "", s->path);
	switch (code) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
		status = ORCH_EX_TEMPFAIL;
		break;
	case SQLITE_IOERR:
		/* A write that found the disk or the quota full: try again. */
		status = sys == ENOSPC || sys == EDQUOT ? ORCH_EX_TEMPFAIL : ORCH_EX_SOFTWARE;
		break;
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		status = ORCH_EX_NOINPUT;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		status = ORCH_EX_DATAERR;
		break;
	default:
		status = ORCH_EX_SOFTWARE;
	}
	if (!what)
		return orch_error_set(err, status, "%s", msg);
	return orch_error_set(err, status, "%s: %s", what, msg);
}

sqlite3_stmt *store_prepare(struct store *s, const char *sql, struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	struct store_cached *c;
	int i;

	for (i = 0; i < s->ncached; i++) {
		c = &s->cache[i];
		if (!c->in_use && strcmp(c->sql, sql) == 0) {
			c->in_use = 1;
			return c->stmt;
		}
	}
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		store_error(s, err, NULL);
		sqlite3_finalize(st);
		return NULL;
	}
	if (s->ncached < STORE_CACHE_SIZE) {
		c = &s->cache[s->ncached++];
		c->sql = xstrdup(sql);
		c->stmt = st;
		c->in_use = 1;
	}
	return st;
}

void store_finish(struct store *s, sqlite3_stmt *st)
{
	int i;

	if (!st)
		return;
	for (i = 0; i < s->ncached; i++)
		if (s->cache[i].stmt == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			s->cache[i].in_use = 0;
			return;
		}
	sqlite3_finalize(st);
}

int store_step_done(struct store *s, sqlite3_stmt *st, const char *what,
		    struct orch_error *err)
{
	int rc = sqlite3_step(st);

	/* The error must be read before store_finish resets it. */
	if (rc != SQLITE_DONE)
		store_error(s, err, what);
	store_finish(s, st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_each(struct store *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *arg),
	       void *arg, const char *what, struct orch_error *err)
{
	int rc, stop = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stop = row(st, arg)) != 0)
			break;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_error(s, err, what);
	store_finish(s, st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : -1;
}

const char *store_column_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

int store_exec(struct store *s, const char *sql, struct orch_error *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_error(s, err, NULL);
	return 0;
}

int store_begin(struct store *s, struct orch_error *err)
{
	return store_exec(s, "BEGIN IMMEDIATE", err);
}

int store_commit(struct store *s, struct orch_error *err)
{
	if (store_exec(s, "COMMIT", err) != 0) {
		store_rollback(s);
		return -1;
	}
	return 0;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_pragma(struct store *s, const char *sql, int64_t *out, struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, sql, err);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	store_finish(s, st);
	if (rc != SQLITE_ROW)
		return store_error(s, err, NULL);
	return 0;
}

int store_query_int(struct store *s, sqlite3_stmt *st, int64_t *out, const char *what,
		    struct orch_error *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		store_error(s, err, what); /* before store_finish resets it */
	store_finish(s, st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int pragma_int(struct store *s, const char *sql, int *out, struct orch_error *err)
{
	int64_t v;

	if (store_pragma(s, sql, &v, err) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * Whether the foreign keys of the store all hold: PRAGMA foreign_key_check
 * gives no row. 0, or -1 with ERR (65).
 */
static int foreign_keys_hold(struct store *s, struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, "PRAGMA foreign_key_check", err);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	store_finish(s, st);
	if (rc == SQLITE_ROW)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "database '%s': a foreign key does not hold after the migration",
				      s->path);
	return rc == SQLITE_DONE ? 0 : store_error(s, err, NULL);
}

/* migrate()'s transaction, from the database's VERSION on. */
static int migrate_in(struct store *s, int version, struct orch_error *err)
{
	int v;
	char *sql;

	if (store_begin(s, err) != 0)
		return -1;
	/* Re-read inside the write lock: another process may have migrated. */
	if (pragma_int(s, "PRAGMA user_version", &version, err) != 0)
		goto fail;
	for (v = version; v < MIGRATION_COUNT; v++) {
		if (store_exec(s, migrations[v], err) != 0)
			goto fail;
		/* PRAGMA takes no parameters; v is an int we control. */
		sql = xasprintf("PRAGMA user_version = %d", v + 1);
		if (store_exec(s, sql, err) != 0) {
			free(sql);
			goto fail;
		}
		free(sql);
	}
	if (foreign_keys_hold(s, err) != 0)
		goto fail;
	return store_commit(s, err);
fail:
	store_rollback(s);
	return -1;
}

static int migrate(struct store *s, struct orch_error *err)
{
	int version, rc;

	if (pragma_int(s, "PRAGMA user_version", &version, err) != 0)
		return -1;
	if (version > MIGRATION_COUNT)
		return orch_error_set(err, ORCH_EX_DATAERR,
				      "database '%s' has schema version %d, newer than this orch supports (%d)",
				      s->path, version, MIGRATION_COUNT);
	if (version == MIGRATION_COUNT)
		return 0;
	/* Rebuilding a table (migration 8) must not cascade its drop, nor
	 * rewrite the triggers that name it: keys off, legacy ALTER TABLE on,
	 * outside the transaction (they cannot change inside one), and the
	 * keys checked before the commit. */
	if (store_exec(s, "PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON", err) != 0)
		return -1;
	rc = migrate_in(s, version, err);
	if (store_exec(s, "PRAGMA foreign_keys = ON; PRAGMA legacy_alter_table = OFF",
		       rc == 0 ? err : NULL) != 0 && rc == 0)
		rc = -1;
	return rc;
}

struct store *store_open(const char *path, unsigned flags, struct orch_error *err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	struct stat sb;
	int busy_ms;
	int rc;

	s->path = xstrdup(path);
	if (busy_timeout(&busy_ms, err) != 0)
		goto fail;
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT || !(flags & STORE_CREATE)) {
			orch_error_set(err, ORCH_EX_NOINPUT,
				       errno == ENOENT
				       ? "no database at '%s' (run 'orch-stack init')"
				       : "cannot open database '%s': %s",
				       path, strerror(errno));
			goto fail;
		}
		if (make_parent_dirs(path, err) != 0 ||
		    create_private_file(path, err) != 0)
			goto fail;
	} else if (S_ISDIR(sb.st_mode)) {
		orch_error_set(err, ORCH_EX_NOINPUT,
			       "cannot open database '%s': is a directory", path);
		goto fail;
	} else if (!S_ISREG(sb.st_mode)) {
		orch_error_set(err, ORCH_EX_NOINPUT,
			       "cannot open database '%s': not a regular file", path);
		goto fail;
	} else if ((flags & STORE_CREATE) && S_ISREG(sb.st_mode) && sb.st_size == 0 &&
		   (sb.st_mode & 077) && chmod(path, 0600) != 0) {
		/* An empty file (touch, mktemp) becomes the database here, and
		 * SQLite gives -wal and -shm its mode: make it private first. */
		orch_error_set(err, ORCH_EX_NOINPUT,
			       "cannot make database '%s' private: %s", path, strerror(errno));
		goto fail;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		store_error(s, err, "cannot open database");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 0);
	s->busy_ms = busy_ms;
	sqlite3_busy_handler(s->db, on_busy, s);
	if (store_exec(s, "PRAGMA foreign_keys = ON", err) != 0)
		goto fail_prefix;
	/* journal_mode answers with a row; a read-only file fails here too. */
	{
		sqlite3_stmt *st = store_prepare(s, "PRAGMA journal_mode = WAL", err);

		if (!st)
			goto fail_prefix;
		rc = sqlite3_step(st);
		store_finish(s, st);
		if (rc != SQLITE_ROW) {
			store_error(s, err, NULL);
			goto fail_prefix;
		}
	}
	if (store_exec(s, "PRAGMA synchronous = NORMAL", err) != 0)
		goto fail_prefix;
	if (migrate(s, err) != 0)
		goto fail_prefix;
	remember_files(s);
	return s;
fail_prefix:
	if (err && err->msg && !strstr(err->msg, path))
		orch_error_prefix(err, "'%s'", path);
fail:
	store_close(s);
	return NULL;
}

void store_close(struct store *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < s->ncached; i++) {
		sqlite3_finalize(s->cache[i].stmt);
		free(s->cache[i].sql);
	}
	sqlite3_close_v2(s->db);
	free(s->path);
	free(s->wal);
	free(s);
}

char *store_id_list(const int64_t *ids, size_t n)
{
	size_t cap = 3 + (n ? n : 1) * 22, len = 0, i;
	char *text = xmalloc(cap);
	int w;

	text[len++] = '[';
	for (i = 0; i < n; i++) {
		/* 20 digits and a sign at most, and the comma: cap holds it. */
		w = snprintf(text + len, cap - len, "%s%lld", i ? "," : "", (long long)ids[i]);
		if (w < 0 || (size_t)w >= cap - len)
			abort();
		len += (size_t)w;
	}
	text[len++] = ']';
	text[len] = '\0';
	return text;
}

char *store_column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return xstrdup(t ? (const char *)t : "");
}

#define STACK_COLUMNS                                                     \
	"id, name, phase, execution_state, created_at,"                    \
	" COALESCE(started_at, 0), COALESCE(paused_at, 0),"                \
	" COALESCE(stopped_at, 0), COALESCE(last_executed_at, 0),"         \
	" next_run_at, total_cycles, consecutive_failures, state_version,"  \
	" content_version, COALESCE(wake_at, 0)"

static int read_stack(struct store *s, sqlite3_stmt *st, struct stack_row *row,
		      struct orch_error *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_error(s, err, "reading stack");
	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->name = store_column_strdup(st, 1);
	row->phase = store_column_strdup(st, 2);
	row->execution_state = store_column_strdup(st, 3);
	row->created_at = sqlite3_column_int64(st, 4);
	row->started_at = sqlite3_column_int64(st, 5);
	row->paused_at = sqlite3_column_int64(st, 6);
	row->stopped_at = sqlite3_column_int64(st, 7);
	row->last_executed_at = sqlite3_column_int64(st, 8);
	row->next_run_at = sqlite3_column_int64(st, 9);
	row->total_cycles = sqlite3_column_int64(st, 10);
	row->consecutive_failures = sqlite3_column_int64(st, 11);
	row->state_version = sqlite3_column_int64(st, 12);
	row->content_version = sqlite3_column_int64(st, 13);
	row->wake_at = sqlite3_column_int64(st, 14);
	return 1;
}

int store_get_stack(struct store *s, int64_t id, struct stack_row *row,
		    struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT " STACK_COLUMNS
					 " FROM stacks WHERE id = ?", err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = read_stack(s, st, row, err);
	store_finish(s, st);
	return rc;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int store_find_stack(struct store *s, const char *ref, struct stack_row *row,
		     struct orch_error *err)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT " STACK_COLUMNS
					 " FROM stacks WHERE name = ?", err);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
	rc = read_stack(s, st, row, err);
	store_finish(s, st);
	if (rc != 0 || !all_digits(ref) || strlen(ref) > 18)
		return rc;
	return store_get_stack(s, strtoll(ref, NULL, 10), row, err);
}

void stack_row_release(struct stack_row *row)
{
	free(row->name);
	free(row->phase);
	free(row->execution_state);
	row->name = row->phase = row->execution_state = NULL;
}

json_t *stack_row_header(const struct stack_row *row)
{
	json_t *h = xjson(json_pack("{sI}", "id", (json_int_t)row->id));

	/* Lossy, never failing: a header must name the stack even when its
	 * row holds bytes that are not UTF-8 (orch never writes them). */
	doc_set_bytes(h, "name", row->name, strlen(row->name));
	doc_set_bytes(h, "phase", row->phase, strlen(row->phase));
	doc_set_bytes(h, "execution_state", row->execution_state,
		      strlen(row->execution_state));
	xjson_set(h, "created_at", xjson(json_integer(row->created_at)));
	return h;
}
