-- detect-raw.sql: the counts orch-detect's rules read, for every running
-- stack, in one query: the anchor orch-detect --all is compared with.
-- Run as: sqlite3 DB < detect-raw.sql (prints one row per stack).
WITH due AS (
  SELECT id, created_at FROM stacks WHERE execution_state = 'running'),
mem AS (
  SELECT d.id,
         coalesce(json_array_length(mp.data, '$.reviewer_recommendations'), 0) AS recs,
         coalesce(json_extract(mp.data, '$.last_planning_time'), 0) AS lpt,
         coalesce(json_extract(mr.data, '$.last_review_time'), 0) AS lrt
    FROM due d
    LEFT JOIN memory mp ON mp.stack_id = d.id AND mp.agent = 'planner'
    LEFT JOIN memory mr ON mr.stack_id = d.id AND mr.agent = 'reviewer'),
td AS (
  SELECT t.stack_id AS id,
         sum(t.status = 'pending') AS pending,
         sum(t.status = 'pending' AND t.priority > 0) AS positive,
         sum(t.status = 'pending' AND t.priority >= 3) AS high,
         sum(t.status = 'completed' AND t.completed_at > m.lrt) AS done
    FROM todos t JOIN mem m ON m.id = t.stack_id
   GROUP BY t.stack_id),
um AS (
  SELECT stack_id AS id, count(*) AS open,
         sum(content LIKE '%feature%' OR content LIKE '%add%'
             OR content LIKE '%change project%' OR content LIKE '%different%'
             OR content LIKE '%instead%' OR content LIKE '%modify%'
             OR length(content) > 100) AS strategic
    FROM user_messages WHERE processed = 0 GROUP BY stack_id),
direct AS (
  SELECT m.to_stack_id AS id, count(*) AS n FROM messages m
   WHERE m.to_stack_id IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM message_reads r
                      WHERE r.message_id = m.id AND r.stack_id = m.to_stack_id)
   GROUP BY m.to_stack_id),
bc AS (
  SELECT d.id, count(*) AS n FROM due d JOIN messages m
      ON m.to_stack_id IS NULL AND m.from_stack_id IS NOT d.id
   WHERE NOT EXISTS (SELECT 1 FROM message_reads r
                      WHERE r.message_id = m.id AND r.stack_id = d.id)
   GROUP BY d.id)
SELECT d.id,
       EXISTS (SELECT 1 FROM projects p WHERE p.stack_id = d.id) AS project,
       coalesce(td.pending, 0), coalesce(td.positive, 0), coalesce(td.high, 0),
       coalesce(td.done, 0), m.recs, m.lpt, m.lrt,
       coalesce(um.open, 0), coalesce(um.strategic, 0),
       coalesce(direct.n, 0) + coalesce(bc.n, 0) AS unread,
       (SELECT created_at FROM artifacts a WHERE a.stack_id = d.id
         ORDER BY version DESC LIMIT 1) AS artifact_at
  FROM due d JOIN mem m ON m.id = d.id
  LEFT JOIN td ON td.id = d.id LEFT JOIN um ON um.id = d.id
  LEFT JOIN direct ON direct.id = d.id LEFT JOIN bc ON bc.id = d.id
 ORDER BY d.id;
