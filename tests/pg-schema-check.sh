#!/bin/bash
#
# pg-schema-check.sh - lib/schema_pg.c's PostgreSQL schema against the SQLite
# schema orch-stack init makes, on a throwaway PostgreSQL cluster it starts
# and stops itself: the same tables, columns (order, type, NOT NULL,
# default, key), indexes, unique and foreign keys, views and triggers; then
# the same statements on both, which must leave the same stacks versions
# and rows, refuse the same bad rows, and find the same traces by full text
# (SQLite's MATCH beside orch_search_query()), with the log search's query
# (traces.c's traces_list) in each dialect giving the same rows.
#
# Not part of `make check` (it needs a PostgreSQL server). Run it from the
# top of the tree, after make, as root (the server runs as postgres) or as
# a user who may run initdb:
#
#   ORCH_BUILD=$PWD/build tests/pg-schema-check.sh
#
# PG_BINDIR names the server's programs (/usr/lib/postgresql/15/bin).
# Exit status 0 when everything agrees, 1 on any difference (shown as a
# diff), 2 when it cannot run.

set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${ORCH_BUILD:-$top/build}
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
fail=0
started=

for f in "$build/bin/orch-stack" "$bindir/initdb" "$bindir/pg_ctl"; do
	[ -x "$f" ] || { echo "pg-schema-check: no '$f' (make first?)" >&2; exit 2; }
done
command -v psql >/dev/null && command -v sqlite3 >/dev/null ||
	{ echo "pg-schema-check: psql and sqlite3 are needed" >&2; exit 2; }

tmp=$(mktemp -d /tmp/pg-schema-check.XXXXXX) || exit 2
chmod 755 "$tmp"
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
cleanup() {
	if [ -n "$started" ]; then
		as_pg "$bindir/pg_ctl" -D "$tmp/data" -m fast -w stop >/dev/null 2>&1 ||
			as_pg "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

# The server, on a socket in $tmp alone.
mkdir "$tmp/data" "$tmp/sock" && touch "$tmp/log" || exit 2
[ "$(id -u)" = 0 ] && chown postgres "$tmp/data" "$tmp/sock" "$tmp/log"
as_pg "$bindir/initdb" -D "$tmp/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
	>"$tmp/initdb.out" 2>&1 || { cat "$tmp/initdb.out" >&2; exit 2; }
started=1
as_pg "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w \
	-o "-k $tmp/sock -c listen_addresses=''" start >/dev/null ||
	{ cat "$tmp/log" >&2; exit 2; }
pg() { psql -X -q -h "$tmp/sock" -U postgres -d postgres "$@"; }

# The schema as the engine sends it: the C string, one query (PQexec).
cat >"$tmp/print.c" <<'EOF'
#include <stdio.h>
#include "schema_pg.h"
int main(void) { return fputs(schema_pg_v12, stdout) == EOF; }
EOF
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -I"$top/lib" -o "$tmp/print" \
	"$tmp/print.c" "$top/lib/schema_pg.c" || exit 2
"$tmp/print" >"$tmp/schema.sql" || exit 2
pg -v ON_ERROR_STOP=1 -c "$(cat "$tmp/schema.sql")" || { echo "pg-schema-check: the schema did not load" >&2; exit 1; }

db=$tmp/orch.db
ORCH_DB=$db "$build/bin/orch-stack" init >/dev/null || exit 2
lite() { sqlite3 -batch "$db" "$@"; }

# Compare what NAME printed by SQLite ($1) and PostgreSQL ($2).
same() {
	if ! diff -u --label "sqlite: $3" --label "postgresql: $3" "$1" "$2"; then
		fail=1
	else
		echo "ok: $3"
	fi
}

# 1. The structure.
lite "SELECT version FROM (SELECT user_version AS version FROM pragma_user_version)" >"$tmp/l.version"
pg -At -c "SELECT value FROM orch_meta WHERE key = 'schema_version'" >"$tmp/p.version"
same "$tmp/l.version" "$tmp/p.version" "schema version"

# Tables: SQLite's own, FTS5's and its shadows are not the store's.
lite_tables="m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE 'traces_fts%'"
pg_tables="c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
	AND c.relname NOT IN ('orch_meta', 'traces_fts')"

lite "SELECT m.name, p.cid, p.name,
	  CASE p.type WHEN 'INTEGER' THEN 'bigint' WHEN 'TEXT' THEN 'text'
	              WHEN 'BLOB' THEN 'bytea' ELSE p.type END,
	  p.\"notnull\" OR p.pk > 0, p.dflt_value, p.pk
	FROM sqlite_schema m, pragma_table_info(m.name) p WHERE $lite_tables
	ORDER BY m.name, p.cid" >"$tmp/l.columns"
pg -At -F '|' -c "SELECT c.relname, a.attnum - 1, a.attname, format_type(a.atttypid, a.atttypmod),
	  a.attnotnull::int, regexp_replace(pg_get_expr(d.adbin, d.adrelid), '::text$', ''),
	  COALESCE(array_position(k.conkey, a.attnum), 0)
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
	LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
	LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
	WHERE $pg_tables ORDER BY c.relname COLLATE \"C\", a.attnum" >"$tmp/p.columns"
same "$tmp/l.columns" "$tmp/p.columns" "tables and columns"

# Every integer key SQLite numbers itself is an identity.
lite "SELECT m.name FROM sqlite_schema m, pragma_table_info(m.name) p
	WHERE $lite_tables AND p.pk = 1 AND p.type = 'INTEGER'
	  AND (SELECT count(*) FROM pragma_table_info(m.name) WHERE pk > 0) = 1
	  AND NOT EXISTS (SELECT 1 FROM pragma_foreign_key_list(m.name) f WHERE f.\"from\" = p.name)
	ORDER BY 1" >"$tmp/l.identity"
pg -At -c "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	WHERE $pg_tables AND a.attidentity = 'd' ORDER BY c.relname COLLATE \"C\"" >"$tmp/p.identity"
same "$tmp/l.identity" "$tmp/p.identity" "identities"

lite "SELECT m.name, i.name, i.\"unique\", i.partial,
	  (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(i.name) ORDER BY seqno))
	FROM sqlite_schema m, pragma_index_list(m.name) i
	WHERE $lite_tables AND i.origin = 'c' ORDER BY i.name" >"$tmp/l.indexes"
pg -At -F '|' -c "SELECT c.relname, ic.relname, x.indisunique::int, (x.indpred IS NOT NULL)::int,
	  (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
	   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
	FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class ic ON ic.oid = x.indexrelid
	WHERE $pg_tables AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
	ORDER BY ic.relname COLLATE \"C\"" >"$tmp/p.indexes"
same "$tmp/l.indexes" "$tmp/p.indexes" "indexes"

lite "SELECT m.name, (SELECT group_concat(name, ',') FROM
	  (SELECT name FROM pragma_index_info(i.name) ORDER BY seqno))
	FROM sqlite_schema m, pragma_index_list(m.name) i
	WHERE $lite_tables AND i.origin = 'u' ORDER BY 1, 2" >"$tmp/l.unique"
pg -At -F '|' -c "SELECT c.relname, (SELECT string_agg(a.attname, ',' ORDER BY k.n)
	  FROM unnest(u.conkey) WITH ORDINALITY k(attnum, n)
	  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
	FROM pg_constraint u JOIN pg_class c ON c.oid = u.conrelid
	WHERE $pg_tables AND u.contype = 'u' ORDER BY c.relname COLLATE \"C\", 2" >"$tmp/p.unique"
same "$tmp/l.unique" "$tmp/p.unique" "unique constraints"

lite "SELECT m.name, f.\"from\", f.\"table\", f.\"to\", f.on_delete
	FROM sqlite_schema m, pragma_foreign_key_list(m.name) f
	WHERE $lite_tables ORDER BY 1, 2" >"$tmp/l.fkeys"
pg -At -F '|' -c "SELECT c.relname, a.attname, r.relname, ra.attname,
	  CASE f.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
	    WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END
	FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid
	JOIN pg_class r ON r.oid = f.confrelid
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = f.conkey[1]
	JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = f.confkey[1]
	WHERE $pg_tables AND f.contype = 'f' ORDER BY c.relname COLLATE \"C\", a.attname COLLATE \"C\"" >"$tmp/p.fkeys"
same "$tmp/l.fkeys" "$tmp/p.fkeys" "foreign keys"

# Triggers, by table. traces_fts_del has no counterpart: traces_fts's key
# deletes a trace's row with it.
lite "SELECT tbl_name, name FROM sqlite_schema WHERE type = 'trigger'
	AND name <> 'traces_fts_del' ORDER BY 2" >"$tmp/l.triggers"
pg -At -F '|' -c "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	WHERE NOT t.tgisinternal ORDER BY t.tgname COLLATE \"C\"" >"$tmp/p.triggers"
same "$tmp/l.triggers" "$tmp/p.triggers" "triggers"

lite "SELECT m.name, group_concat(p.name, ',') FROM sqlite_schema m, pragma_table_info(m.name) p
	WHERE m.type = 'view' GROUP BY m.name ORDER BY 1" >"$tmp/l.views"
pg -At -F '|' -c "SELECT c.relname, string_agg(a.attname, ',' ORDER BY a.attnum)
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
	WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
	GROUP BY c.relname ORDER BY 1" >"$tmp/p.views"
same "$tmp/l.views" "$tmp/p.views" "views"

# 2. The same statements on both. Each line is one statement, after which
# both print every stack's versions; the dialects differ in a blob's
# literal (BLOB'hex') and its hex (HEX(column)), and the search: SEARCH
# words prints the ids of the traces traces_fts finds for them.
cat >"$tmp/steps" <<'EOF'
INSERT INTO stacks (name, created_at) VALUES ('a', 1);
INSERT INTO stacks (name, created_at) VALUES ('b', 1);
INSERT INTO stacks (name, created_at) VALUES ('c', 1);
UPDATE stacks SET execution_state = 'running' WHERE id = 1;
UPDATE stacks SET execution_state = 'running' WHERE id = 1;
UPDATE stacks SET phase = 'building' WHERE id = 1;
UPDATE stacks SET name = 'a2', phase = 'review', execution_state = 'paused' WHERE id = 1;
UPDATE stacks SET state_version = state_version + 10, content_version = 7 WHERE id = 2;
UPDATE stacks SET next_run_at = 5, total_cycles = total_cycles + 1, wake_at = 3;
UPDATE stacks SET execution_state = 'idle';
UPDATE stacks SET name = name WHERE id = 3;
INSERT INTO projects (stack_id, title, description, created_at, updated_at) VALUES (1, 't', 'd', 1, 1);
INSERT INTO projects (stack_id, title, description, created_at, updated_at) VALUES (1, 't2', 'd', 1, 2) ON CONFLICT (stack_id) DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at;
UPDATE projects SET description = 'd2';
DELETE FROM projects WHERE stack_id = 1;
INSERT INTO todos (stack_id, content, created_at) VALUES (1, 'x', 1), (1, 'y', 1), (2, 'z', 1);
UPDATE todos SET status = 'in_progress' WHERE stack_id = 1;
UPDATE todos SET status = 'parked', attempts = 3, last_error = 'e' WHERE id = 3;
DELETE FROM todos WHERE id = 2;
INSERT INTO user_messages (stack_id, sender, content, created_at) VALUES (2, 'u', 'hi', 1);
UPDATE user_messages SET processed = 1, response = 'ok', responded_at = 2 WHERE id = 1;
UPDATE user_messages SET attempts = attempts + 1, parked_at = 3;
DELETE FROM user_messages WHERE id = 1;
INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, 2, 'm', 1);
INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, NULL, 'broadcast', 1);
INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (NULL, NULL, 'anonymous', 1);
INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (2, 2, 'to itself', 1);
INSERT INTO message_reads (message_id, stack_id, read_at) VALUES (2, 2, 1);
INSERT INTO message_reads (message_id, stack_id, read_at) VALUES (2, 2, 5) ON CONFLICT DO NOTHING;
INSERT INTO message_reads (message_id, stack_id, read_at) VALUES (2, 3, 1), (3, 1, 1);
UPDATE messages SET to_stack_id = 3 WHERE id = 1;
UPDATE messages SET to_stack_id = NULL WHERE id = 1;
UPDATE messages SET content = 'again' WHERE id = 2;
UPDATE messages SET to_stack_id = 1 WHERE id = 3;
INSERT INTO message_failures (message_id, stack_id, attempts, last_error) VALUES (2, 3, 1, 'no');
UPDATE message_failures SET attempts = 2;
DELETE FROM message_reads WHERE message_id = 2;
DELETE FROM messages WHERE id = 1;
DELETE FROM messages WHERE id = 3;
INSERT INTO executions (stack_id, cycle, started_at) VALUES (1, 1, 1);
INSERT INTO executions (stack_id, cycle, started_at) VALUES (2, 1, 1);
UPDATE executions SET status = 'completed', ended_at = 2, decision = 'continue', rule = 'r' WHERE id = 2;
INSERT INTO graphs (execution_id, graph) VALUES (1, '{}');
INSERT INTO artifacts (stack_id, version, type, content, created_at, execution_id, todo_id) VALUES (1, 1, 'text', BLOB'00ff0a', 1, 1, 1);
INSERT INTO artifacts (stack_id, version, type, content, created_at) VALUES (2, 1, 'text', BLOB'', 1);
UPDATE artifacts SET type = 'md' WHERE id = 1;
DELETE FROM todos WHERE id = 1;
DELETE FROM artifacts WHERE id = 2;
INSERT INTO memory (stack_id, agent, data, updated_at) VALUES (1, 'planner', '{}', 1);
INSERT INTO memory (stack_id, agent, data, updated_at) VALUES (1, 'planner', '{"a":1}', 2) ON CONFLICT (stack_id, agent) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at;
INSERT INTO memory (stack_id, agent, updated_at) VALUES (2, 'builder', 1);
DELETE FROM memory WHERE stack_id = 1;
INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version) VALUES (1, 'planner', 1, 1, 2, -1);
INSERT INTO agent_runs (stack_id, agent, cycle, started_at, ended_at, seen_version) VALUES (1, 'planner', 2, 3, 4, 9) ON CONFLICT (stack_id, agent) DO UPDATE SET cycle = excluded.cycle, seen_version = excluded.seen_version;
INSERT INTO agent_runs (stack_id, agent, started_at, ended_at, seen_version) VALUES (3, 'reviewer', 1, 1, 0);
DELETE FROM agent_runs WHERE stack_id = 3;
INSERT INTO detect_cache (stack_id, state_version, computed_at, status, rules) VALUES (1, 3, 1, '{}', -5);
INSERT INTO provider_caps (base_url, model, capability, value, learned_at) VALUES ('u', 'm', 'tools', 1, 1);
INSERT INTO provider_quota (base_url, key_id, updated_at) VALUES ('u', 'k', 1);
INSERT INTO stack_budgets (stack_id, daily_tokens, total_tokens) VALUES (1, 0, NULL);
INSERT INTO llm_requests (stack_id, execution_id, cycle, agent, run_at, run_ok, seq, round, retry, provider, base_url, model, http_status, outcome, started_at, duration_ms, prompt_tokens) VALUES (1, 1, 1, 'planner', 1, 1, 1, 0, 0, 'p', 'u', 'm', 200, 'reply', 1, 5, 9223372036854775807);
INSERT INTO usage_days (stack_id, agent, model, day, runs, prompt_tokens, completion_tokens) VALUES (1, 'planner', '', '2026-01-01', 1, 2, 3);
INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status, input, output, error, usage, stderr) VALUES (1, 1, 'planner', 1, 10, 11, 'completed', 'inputonly', '{"thinking":"Zebrathink about /src/lib/main.c","actions":[{"type":"todo_add","content":"giraffeact"},{"type":"note"}]}', NULL, '{"prompt_tokens":5,"completion_tokens":7}', NULL);
INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status, output, error, stderr) VALUES (1, 1, 'builder', 1, 12, 13, 'failed', 'plainword and {not json', 'errword', 'stdword foo-bar v1.2.3 user@example.com');
INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status, output, usage) VALUES (NULL, 1, 'reviewer', 2, 14, 15, 'completed', '{"thinking":"broken', '{"prompt_tokens":"5","completion_tokens":1.5}');
INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status, output, usage) VALUES (2, 2, 'planner', 1, 16, 17, 'completed', '{"actions":{"b":{"type":"second"},"a":{"type":"first"}},"thinking":42}', '{"prompt_tokens":2000000000000,"completion_tokens":-1}');
INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at, ended_at, status, output) VALUES (2, 2, 'planner', 2, 18, 19, 'completed', 'null');
SEARCH zebrathink
SEARCH ZebraThink giraffeact
SEARCH giraffeact plainword
SEARCH main.c
SEARCH lib/main
SEARCH src
SEARCH todo_add
SEARCH type
SEARCH thinking
SEARCH plainword
SEARCH json
SEARCH errword
SEARCH stdword
SEARCH foo-bar
SEARCH bar
SEARCH bar-foo
SEARCH 1.2.3
SEARCH example
SEARCH broken
SEARCH inputonly
SEARCH prompt_tokens
SEARCH first second
SEARCH 42
SEARCH zebrathink !!!
SEARCH !!!
LIST 1|0|NULL|0|0|NULL|100
LIST 1|0|NULL|1|0|NULL|100
LIST 1|1|'planner'|0|0|NULL|100
LIST 1|0|NULL|0|12|NULL|100
LIST 1|0|NULL|0|0|NULL|1
LIST 1|0|NULL|0|0|'zebrathink'|100
LIST 1|0|NULL|0|0|'foo-bar stdword'|100
LIST 1|0|NULL|0|0|'!!!'|100
LIST 2|0|NULL|0|0|NULL|100
UPDATE traces SET output = 'newword' WHERE id = 2;
UPDATE traces SET usage = '{}' WHERE id = 1;
UPDATE traces SET id = 20 WHERE id = 3;
SEARCH plainword
SEARCH newword
SEARCH errword
SEARCH broken
DELETE FROM traces WHERE id = 20;
SEARCH broken
DELETE FROM executions WHERE id = 1;
SEARCH zebrathink
INSERT INTO stacks (name, created_at) VALUES ('d', 1);
DELETE FROM stacks WHERE id = 4;
INSERT INTO messages (from_stack_id, to_stack_id, content, created_at) VALUES (1, NULL, 'late broadcast', 1);
DELETE FROM stacks WHERE id = 1;
INSERT INTO stacks (name, created_at) VALUES ('e', 1);
UPDATE stacks SET execution_state = 'stopped', phase = 'done', name = 'e2' WHERE id = 5;
EOF

# The log search of traces.c (traces_list) in each dialect: its columns,
# LIST giving its parameters 1 to 7 in order.
lite_list="SELECT t.id, COALESCE(t.execution_id, 0), COALESCE(e.cycle, 0), s.name, t.agent,
 t.attempt, t.status, t.started_at, t.ended_at, t.exit_status,
 (CASE WHEN json_valid(t.usage) AND json_type(t.usage, '\$.prompt_tokens') = 'integer'
  AND json_extract(t.usage, '\$.prompt_tokens') BETWEEN 0 AND 1000000000000
  THEN json_extract(t.usage, '\$.prompt_tokens') ELSE 0 END),
 (CASE WHEN json_valid(t.usage) AND json_type(t.usage, '\$.completion_tokens') = 'integer'
  AND json_extract(t.usage, '\$.completion_tokens') BETWEEN 0 AND 1000000000000
  THEN json_extract(t.usage, '\$.completion_tokens') ELSE 0 END),
 CASE WHEN json_valid(t.output) THEN (SELECT group_concat(a.type, ' ')
  FROM (SELECT json_extract(value, '\$.type') AS type
        FROM json_each(t.output, '\$.actions') ORDER BY key) a) END,
 t.error
 FROM traces t JOIN stacks s ON s.id = t.stack_id LEFT JOIN executions e ON e.id = t.execution_id
 WHERE t.stack_id = ?1 AND (?2 = 0 OR e.cycle = ?2)
 AND (?3 IS NULL OR t.agent = ?3) AND (?4 = 0 OR t.status = 'failed')
 AND t.started_at >= ?5
 AND (?6 IS NULL OR t.id IN (SELECT rowid FROM traces_fts WHERE traces_fts MATCH ?6))
 ORDER BY t.started_at DESC, t.id DESC LIMIT ?7"
pg_list=$(cat <<'EOF'
SELECT t.id, COALESCE(t.execution_id, 0), COALESCE(e.cycle, 0), s.name, t.agent,
 t.attempt, t.status, t.started_at, t.ended_at, t.exit_status,
 CASE WHEN jsonb_typeof(j.usage -> 'prompt_tokens') = 'number'
  AND (j.usage ->> 'prompt_tokens') ~ '^-?[0-9]+$'
  AND (j.usage ->> 'prompt_tokens')::numeric BETWEEN 0 AND 1000000000000
  THEN (j.usage ->> 'prompt_tokens')::bigint ELSE 0 END,
 CASE WHEN jsonb_typeof(j.usage -> 'completion_tokens') = 'number'
  AND (j.usage ->> 'completion_tokens') ~ '^-?[0-9]+$'
  AND (j.usage ->> 'completion_tokens')::numeric BETWEEN 0 AND 1000000000000
  THEN (j.usage ->> 'completion_tokens')::bigint ELSE 0 END,
 CASE jsonb_typeof(j.output -> 'actions')
  WHEN 'array' THEN (SELECT string_agg(a.v ->> 'type', ' ' ORDER BY a.k)
   FROM jsonb_array_elements(j.output -> 'actions') WITH ORDINALITY a(v, k))
  WHEN 'object' THEN (SELECT string_agg(a.v ->> 'type', ' ' ORDER BY a.k COLLATE "C")
   FROM jsonb_each(j.output -> 'actions') a(k, v))
  END,
 t.error
 FROM traces t JOIN stacks s ON s.id = t.stack_id LEFT JOIN executions e ON e.id = t.execution_id
 CROSS JOIN LATERAL (SELECT orch_json_or_null(t.usage) AS usage,
                            orch_json_or_null(t.output) AS output) j
 WHERE t.stack_id = $1 AND ($2 = 0 OR e.cycle = $2)
 AND (CAST($3 AS TEXT) IS NULL OR t.agent = $3) AND ($4 = 0 OR t.status = 'failed')
 AND t.started_at >= $5
 AND (CAST($6 AS TEXT) IS NULL OR t.id IN (SELECT id FROM traces_fts
                                           WHERE doc @@ orch_search_query($6)))
 ORDER BY t.started_at DESC, t.id DESC LIMIT $7
EOF
)

# SQLite's side of a step: fts_query()'s quoting of SEARCH's words.
fts_query() {
	local w q=
	for w in $1; do
		q="$q${q:+ }\"${w//\"/\"\"}\""
	done
	printf '%s' "${q:-\"\"}"
}
versions="SELECT 'versions', id, state_version, content_version FROM stacks ORDER BY id;"
n=0
: >"$tmp/l.sql"
: >"$tmp/p.sql"
echo "PREPARE list (bigint, bigint, unknown, bigint, bigint, unknown, bigint) AS $pg_list;" >>"$tmp/p.sql"
while IFS= read -r line; do
	n=$((n + 1))
	case $line in
	"SEARCH "*)
		words=${line#SEARCH }
		q=$(fts_query "$words")
		echo "SELECT 'search ${words//\'/\'\'}', (SELECT group_concat(id, ',') FROM (SELECT rowid AS id FROM traces_fts WHERE traces_fts MATCH '${q//\'/\'\'}' ORDER BY rowid));" >>"$tmp/l.sql"
		echo "SELECT 'search ${words//\'/\'\'}', (SELECT string_agg(id::text, ',' ORDER BY id) FROM traces_fts WHERE doc @@ orch_search_query('${words//\'/\'\'}'));" >>"$tmp/p.sql"
		;;
	"LIST "*)
		IFS='|' read -r -a a <<<"${line#LIST }"
		set -- "${a[@]}"
		args="$*"
		args=${args//\'/\'\'}
		p6=$6
		if [ "$6" != NULL ]; then
			w=${6#\'}
			w=${w%\'}
			w=$(fts_query "$w")
			p6="'${w//\'/\'\'}'"
		fi
		{
			echo "SELECT 'list $args';"
			# Literals, not .parameter set, which takes "x" for x.
			echo ".parameter init"
			echo "INSERT INTO temp.sqlite_parameters (key, value) VALUES" \
				"('?1', $1), ('?2', $2), ('?3', $3), ('?4', $4), ('?5', $5)," \
				"('?6', $p6), ('?7', $7);"
			echo "$lite_list;"
			echo ".parameter clear"
		} >>"$tmp/l.sql"
		{
			echo "SELECT 'list $args';"
			echo "EXECUTE list($1, $2, $3, $4, $5, $6, $7);"
		} >>"$tmp/p.sql"
		;;
	*)
		echo "SELECT 'step $n: ${line//\'/\'\'}';" | tee -a "$tmp/l.sql" >>"$tmp/p.sql"
		l=$(sed -E "s/BLOB'([0-9a-f]*)'/X'\\1'/g" <<<"$line")
		p=$(sed -E "s/BLOB'([0-9a-f]*)'/'\\\\x\\1'::bytea/g" <<<"$line")
		echo "$l" >>"$tmp/l.sql"
		echo "$p" >>"$tmp/p.sql"
		echo "$versions" | tee -a "$tmp/l.sql" >>"$tmp/p.sql"
		;;
	esac
done <"$tmp/steps"

# What is left, table by table (the blob in hex; of the view's actions,
# when JSON, the length without spaces: jsonb writes '": "' where SQLite
# writes '":"', and an object's keys in its own order; the searches above
# read what they hold).
for t in stacks projects todos user_messages messages message_reads message_failures \
	executions graphs memory agent_runs detect_cache provider_caps provider_quota \
	stack_budgets llm_requests usage_days; do
	echo "SELECT '$t'; SELECT * FROM $t ORDER BY 1, 2;" | tee -a "$tmp/l.sql" >>"$tmp/p.sql"
done
echo "SELECT 'artifacts'; SELECT id, stack_id, version, type, HEX(content), created_at, execution_id, todo_id FROM artifacts ORDER BY id;" >>"$tmp/l.sql"
echo "SELECT 'artifacts'; SELECT id, stack_id, version, type, upper(encode(content, 'hex')), created_at, execution_id, todo_id FROM artifacts ORDER BY id;" >>"$tmp/p.sql"
echo "SELECT 'traces'; SELECT id, execution_id, stack_id, agent, attempt, started_at, ended_at, status, exit_status, input, output, error, usage, stderr, stderr_dropped FROM traces ORDER BY id;" | tee -a "$tmp/l.sql" >>"$tmp/p.sql"
echo "SELECT 'traces_text'; SELECT id, thinking, length(replace(actions, ' ', '')), error, stderr FROM traces_text ORDER BY id;" | tee -a "$tmp/l.sql" >>"$tmp/p.sql"

lite -bail -cmd "PRAGMA foreign_keys = ON" <"$tmp/l.sql" >"$tmp/l.out" 2>"$tmp/l.err"
[ -s "$tmp/l.err" ] && { echo "pg-schema-check: sqlite3:" >&2; cat "$tmp/l.err" >&2; fail=1; }
pg -At -F '|' -v ON_ERROR_STOP=1 -v VERBOSITY=terse -c 'SET client_min_messages = warning' \
	-f "$tmp/p.sql" >"$tmp/p.out" 2>"$tmp/p.err"
[ -s "$tmp/p.err" ] && { echo "pg-schema-check: psql:" >&2; cat "$tmp/p.err" >&2; fail=1; }
same "$tmp/l.out" "$tmp/p.out" "$n steps: versions, rows, searches and listings"

# 3. What both must refuse: each statement alone, the rows unchanged.
while IFS= read -r bad; do
	l=$(lite -cmd "PRAGMA foreign_keys = ON" "$bad" 2>&1) && { echo "sqlite3 took: $bad" >&2; fail=1; }
	p=$(pg -c "$bad" 2>&1) && { echo "postgresql took: $bad" >&2; fail=1; }
done <<'EOF'
INSERT INTO stacks (id, name, created_at) VALUES (100, 'b', 1);
INSERT INTO stacks (id, name, created_at, execution_state) VALUES (100, 'z', 1, 'sleeping');
INSERT INTO stacks (id, name) VALUES (100, 'z');
INSERT INTO todos (id, stack_id, content, created_at, status) VALUES (100, 2, 'x', 1, 'done');
INSERT INTO todos (id, stack_id, content, created_at, priority) VALUES (100, 2, 'x', 1, 6);
INSERT INTO todos (id, stack_id, content, created_at, priority) VALUES (100, 2, 'x', 1, 0);
INSERT INTO todos (id, stack_id, content, created_at) VALUES (100, 99, 'x', 1);
INSERT INTO executions (id, stack_id, cycle, started_at, status) VALUES (100, 2, 1, 1, 'paused');
INSERT INTO artifacts (id, stack_id, version, type, content, created_at) VALUES (100, 2, 1, 't', '', 1), (101, 2, 1, 't', '', 1);
INSERT INTO stack_budgets (stack_id, daily_tokens) VALUES (2, -1);
INSERT INTO stack_budgets (stack_id, total_tokens) VALUES (3, -1);
INSERT INTO message_reads (message_id, stack_id, read_at) VALUES (99, 2, 1);
INSERT INTO agent_runs (stack_id, agent, started_at, ended_at, seen_version) VALUES (2, 'a', 1, 1, NULL);
INSERT INTO provider_quota (base_url, key_id, updated_at) VALUES ('u', 'k', 2);
INSERT INTO usage_days (stack_id, agent, model, day, runs, prompt_tokens, completion_tokens) VALUES (2, 'planner', '', '2026-01-01', 1, 2, NULL);
EOF
lite "$versions" >"$tmp/l.after"
pg -At -F '|' -c "$versions" >"$tmp/p.after"
same "$tmp/l.after" "$tmp/p.after" "refused statements leave the versions alone"

# 4. An UPDATE OF execution_state trigger is not fired by the UPDATE that
# only sets state_version (PostgreSQL's UPDATE OF is the SET list's, as
# SQLite's): one bump, not a loop. And an output past a tsvector's 1 MB
# is kept, its start searchable.
pg -c "UPDATE stacks SET execution_state = 'running' WHERE id = 2" &&
	pg -At -c "SELECT state_version FROM stacks WHERE id = 2" >"$tmp/p.recursion"
lite "UPDATE stacks SET execution_state = 'running' WHERE id = 2; SELECT state_version FROM stacks WHERE id = 2" >"$tmp/l.recursion"
same "$tmp/l.recursion" "$tmp/p.recursion" "stacks_state fires once"
pg -At -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "INSERT INTO traces (stack_id, agent, attempt, started_at, ended_at, status, output)
	SELECT 2, 'big', 1, 1, 1, 'completed', 'firstbigword ' || string_agg(md5(i::text), ' ')
	FROM generate_series(1, 250000) i" \
	-c "SELECT count(*) FROM traces t JOIN traces_fts f USING (id) WHERE t.agent = 'big' AND f.doc @@ orch_search_query('firstbigword')" \
	>"$tmp/p.big" 2>&1
echo 1 >"$tmp/l.big"
same "$tmp/l.big" "$tmp/p.big" "an 8 MB output is kept and its start found"

# A copy inserts the ids it reads and moves the identity past them.
pg -At -v ON_ERROR_STOP=1 \
	-c "INSERT INTO stacks (id, name, created_at) VALUES (40, 'copied', 1)" \
	-c "SELECT setval(pg_get_serial_sequence('stacks', 'id'), 60)" \
	-c "INSERT INTO stacks (name, created_at) VALUES ('after the copy', 1) RETURNING id" \
	>"$tmp/p.copy" 2>&1
printf '60\n61\n' >"$tmp/l.copy"
same "$tmp/l.copy" "$tmp/p.copy" "explicit ids, then the identity moved past them"

if [ "$fail" != 0 ]; then
	echo "pg-schema-check: FAILED (the files are kept in $tmp.kept)" >&2
	cp -r "$tmp" "$tmp.kept" 2>/dev/null
	rm -rf "$tmp.kept/data"
	exit 1
fi
echo "pg-schema-check: the PostgreSQL schema agrees with SQLite's"
