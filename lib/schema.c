/*
 * schema.c - the store's schema, for both engines, in one place.
 *
 * SQLite's migrations run one by one, PRAGMA user_version saying how many
 * have; PostgreSQL was first supported at version 12, so its first text
 * makes that whole schema at once (lib/schema_pg.c) and orch_meta holds
 * its version. A new migration adds its text for both engines here.
 */
#include <stddef.h>

#include "store_int.h"
#include "banned.h"

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
const char *const schema_sqlite[] = {
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

const int schema_sqlite_count = (int)(sizeof(schema_sqlite) / sizeof(schema_sqlite[0]));

/* PostgreSQL after version 12: none yet. */
const char *const schema_pg[] = { NULL };
const int schema_pg_count = 0;
