-- Named queries of the PostgreSQL store, loaded once by apflow/store/queries.py.
-- Each query has the same name and the same positional parameters ($1, $2, ...) as its
-- SQLite twin, so the store logic is written once. A NULL filter parameter matches any row.
-- Lists of ids are text[] here (json text in SQLite); bulk rows are one array per column.

-- name: create_migrations_table
-- The ledger of applied migrations (schema.sql declares the same table).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL
);

-- name: lock_migrations
-- Serialise migrations across nodes that start at once (released at commit).
SELECT pg_advisory_xact_lock(1095780937, 0);

-- name: applied_migrations
-- Versions already applied.
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
-- Remember one applied migration.
INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3);

-- name: describe_columns
-- Every column of the current schema (for the migration test).
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema = current_schema()
ORDER BY table_name, column_name;

-- name: describe_indexes
-- Every index of the current schema, as CREATE INDEX text.
SELECT tablename AS table_name, indexname AS name, indexdef AS definition
FROM pg_indexes
WHERE schemaname = current_schema()
ORDER BY tablename, indexname;

-- name: describe_functions
-- Every function of the current schema, with its definition (for the migration test).
SELECT proc.proname AS name, pg_get_functiondef(proc.oid) AS definition
FROM pg_proc AS proc
JOIN pg_namespace AS ns ON ns.oid = proc.pronamespace
WHERE ns.nspname = current_schema()
ORDER BY proc.proname;

-- name: describe_constraints
-- Every constraint (keys, foreign keys, checks) of the current schema.
SELECT cls.relname AS table_name, con.conname AS name, pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint AS con
JOIN pg_class AS cls ON cls.oid = con.conrelid
JOIN pg_namespace AS ns ON ns.oid = cls.relnamespace
WHERE ns.nspname = current_schema()
ORDER BY cls.relname, con.conname;

-- name: ping
-- Is the connection alive?
SELECT 1;

-- name: database_time
-- The server's clock now (leases are compared on it, whatever the nodes' clocks say).
SELECT clock_timestamp();

-- name: notify_change
-- Wake every node's scheduler.
SELECT pg_notify('apflow_changes', '');

-- name: insert_task
-- One new task; parameters in the order of the Task dataclass fields.
INSERT INTO tasks (
    id, name, created_at, updated_at, description, user_id, parent_id, dependencies, status,
    executor, inputs, result, error, progress, schedule_type, schedule_expression, timezone,
    schedule_enabled, schedule_start_at, schedule_end_at, schedule_anchor_at, max_runs,
    run_count, last_run_at, next_run_at, catch_up, max_catch_up_runs, jitter_seconds,
    timeout_seconds, graceful_stop_seconds, retry_limit, retry_delay_seconds, retry_backoff,
    max_concurrent, on_overlap, queue_max, api_trigger, env, webhook_secret,
    exclusion_calendar, notify_on_failure, notify_on_success, source, keep_runs,
    keep_for_seconds
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
    $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36,
    $37, $38, $39, $40, $41, $42, $43, $44, $45
)
RETURNING *;

-- name: update_task
-- Replace every column of a task ($1 = id), if $46 is NULL or equals its updated_at.
UPDATE tasks SET
    name = $2, created_at = $3, updated_at = $4, description = $5, user_id = $6,
    parent_id = $7, dependencies = $8, status = $9, executor = $10, inputs = $11,
    result = $12, error = $13, progress = $14, schedule_type = $15,
    schedule_expression = $16, timezone = $17, schedule_enabled = $18,
    schedule_start_at = $19, schedule_end_at = $20, schedule_anchor_at = $21,
    max_runs = $22, run_count = $23, last_run_at = $24, next_run_at = $25, catch_up = $26,
    max_catch_up_runs = $27, jitter_seconds = $28, timeout_seconds = $29,
    graceful_stop_seconds = $30, retry_limit = $31, retry_delay_seconds = $32,
    retry_backoff = $33, max_concurrent = $34, on_overlap = $35, queue_max = $36,
    api_trigger = $37, env = $38, webhook_secret = $39, exclusion_calendar = $40,
    notify_on_failure = $41, notify_on_success = $42, source = $43, keep_runs = $44,
    keep_for_seconds = $45
WHERE id = $1 AND ($46::timestamptz IS NULL OR updated_at = $46)
RETURNING *;

-- name: get_task
-- One task by id.
SELECT * FROM tasks WHERE id = $1;

-- name: get_tasks
-- The tasks among a list of ids.
SELECT * FROM tasks WHERE id = ANY($1::text[]);

-- name: delete_future_occurrences
-- Ledger rows of the listed tasks for slots at or after their next_run_at (not yet fired).
DELETE FROM occurrences
WHERE task_id = ANY($1::text[])
  AND scheduled_for >= (SELECT next_run_at FROM tasks WHERE tasks.id = occurrences.task_id);

-- name: delete_tasks
-- Delete the listed tasks.
DELETE FROM tasks WHERE id = ANY($1::text[]);

-- name: list_tasks
-- Tasks matching a TaskFilter, oldest first.
SELECT * FROM tasks
WHERE ($1::text IS NULL OR user_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR schedule_type = $3)
  AND ($4::boolean IS NULL OR schedule_enabled = $4)
  AND (NOT $5::boolean OR schedule_type IS NOT NULL)
  AND ($6::text IS NULL OR parent_id = $6)
  AND (NOT $7::boolean OR parent_id IS NULL)
  AND ($8::text IS NULL OR name = $8)
  AND ($9::text IS NULL OR source = $9)
ORDER BY created_at, id
LIMIT $10 OFFSET $11;

-- name: count_tasks
-- How many tasks match a TaskFilter (same parameters as list_tasks).
SELECT count(*) FROM tasks
WHERE ($1::text IS NULL OR user_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR schedule_type = $3)
  AND ($4::boolean IS NULL OR schedule_enabled = $4)
  AND (NOT $5::boolean OR schedule_type IS NOT NULL)
  AND ($6::text IS NULL OR parent_id = $6)
  AND (NOT $7::boolean OR parent_id IS NULL)
  AND ($8::text IS NULL OR name = $8)
  AND ($9::text IS NULL OR source = $9);

-- name: set_task_outcome
-- The engine's write: status, result, error, progress (kept when $6 is NULL), updated_at.
UPDATE tasks SET status = $3, result = $4, error = $5, progress = coalesce($6, progress),
                 updated_at = $2
WHERE id = $1;

-- name: set_task_outcomes
-- set_task_outcome for many tasks (one array per column).
UPDATE tasks SET status = outcome.status, result = outcome.result, error = outcome.error,
                 progress = coalesce(outcome.progress, tasks.progress), updated_at = $6
FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::double precision[])
     AS outcome (task_id, status, result, error, progress)
WHERE tasks.id = outcome.task_id;

-- name: task_heads
-- Id, updated_at and whether it has a child, of each listed task.
SELECT id, updated_at,
       EXISTS (SELECT 1 FROM tasks AS child WHERE child.parent_id = tasks.id) AS has_children
FROM tasks WHERE id = ANY($1::text[]);

-- name: reset_tasks
-- Back to pending with result, error and progress cleared.
UPDATE tasks SET status = 'pending', result = NULL, error = NULL, progress = 0, updated_at = $2
WHERE id = ANY($1::text[]);

-- name: subtree
-- A task and its descendants, parent before child (depth bounded against cycles).
WITH RECURSIVE tree (id, depth) AS (
    SELECT id, 0 FROM tasks WHERE id = $1
    UNION ALL
    SELECT child.id, tree.depth + 1
    FROM tasks AS child JOIN tree ON child.parent_id = tree.id
    WHERE tree.depth < 1000
)
SELECT tasks.* FROM tasks
JOIN (SELECT id, min(depth) AS depth FROM tree GROUP BY id) AS levels ON levels.id = tasks.id
ORDER BY levels.depth, tasks.created_at, tasks.id;

-- name: due_tasks
-- Enabled schedules due at $1, earliest first (read-only).
SELECT * FROM tasks
WHERE schedule_enabled AND next_run_at <= $1 AND ($3::text IS NULL OR user_id = $3)
ORDER BY next_run_at, id
LIMIT $2;

-- name: next_due_at
-- The earliest next_run_at among enabled schedules.
SELECT min(next_run_at) FROM tasks WHERE schedule_enabled;

-- name: lock_due_tasks
-- Due schedules, earliest first, locked; rows another node holds are skipped.
SELECT * FROM tasks
WHERE schedule_enabled AND next_run_at <= $1
ORDER BY next_run_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: lock_task
-- One task, locked (waits for another holder).
SELECT * FROM tasks WHERE id = $1 FOR UPDATE;

-- name: lock_tasks
-- The tasks among a list of ids, locked in id order (two batches never deadlock).
SELECT * FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE;

-- name: task_loads
-- Queued and running counts of the listed tasks (tasks without live runs are absent).
SELECT task_id,
       count(*) FILTER (WHERE state = 'queued') AS queued,
       count(*) FILTER (WHERE state = 'running') AS running
FROM runs
WHERE task_id = ANY($1::text[]) AND state IN ('queued', 'running')
GROUP BY task_id;

-- name: insert_occurrences
-- Ledger rows, one array per column; returns the keys of the rows that were new.
INSERT INTO occurrences (task_id, scheduled_for, outcome, recorded_at, run_id, detail,
                         requested_by)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::timestamptz[],
                     $5::text[], $6::text[], $7::text[])
ON CONFLICT (task_id, scheduled_for) DO NOTHING
RETURNING task_id, scheduled_for;

-- name: insert_runs
-- Runs as given, one array per column in the order of the Run dataclass fields.
INSERT INTO runs (
    id, task_id, trigger, state, queued_at, not_before, attempt, scheduled_for, started_at,
    finished_at, end_reason, exit_code, error, node, triggered_by, user_id, variables,
    result, parent_run_id, retry_of, lease_expires_at, cancel_requested
)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
              $6::timestamptz[], $7::integer[], $8::timestamptz[], $9::timestamptz[],
              $10::timestamptz[], $11::text[], $12::integer[], $13::text[], $14::text[],
              $15::text[], $16::text[], $17::jsonb[], $18::jsonb[], $19::text[],
              $20::text[], $21::timestamptz[], $22::text[]);

-- name: advance_tasks
-- Tasks' scheduling state after their due slots were handled (one array per column).
UPDATE tasks SET next_run_at = advance.next_run_at,
                 schedule_enabled = advance.schedule_enabled, run_count = advance.run_count,
                 last_run_at = advance.last_run_at, updated_at = advance.updated_at
FROM unnest($1::text[], $2::timestamptz[], $3::boolean[], $4::integer[], $5::timestamptz[],
            $6::timestamptz[])
     AS advance (task_id, next_run_at, schedule_enabled, run_count, last_run_at, updated_at)
WHERE tasks.id = advance.task_id;

-- name: request_termination
-- Ask the running runs of the listed tasks to stop (on_overlap=terminate).
UPDATE runs SET cancel_requested = 'terminated'
WHERE task_id = ANY($1::text[]) AND state = 'running' AND cancel_requested IS NULL;

-- name: claim_runs
-- Claim up to $3 runs due by $1 in one statement (apflow_claim_runs, migration 0003), each
-- with its task's head (task_heads) as the claim left it. Scalar subqueries, so each head is
-- looked up by key: a join may hash the whole tasks table instead, on every claim.
SELECT claimed.*,
       (SELECT task.updated_at FROM tasks AS task WHERE task.id = claimed.task_id)
           AS task_updated_at,
       coalesce((SELECT true FROM tasks AS child WHERE child.parent_id = claimed.task_id
                 LIMIT 1), false) AS task_has_children
FROM apflow_claim_runs($1, $2, $3, $4, $5, $6) AS claimed;

-- name: claim_runs_with_tasks
-- claim_runs, each run also with its task's whole row after task_has_children (all NULL if
-- the task was deleted). The claim's few rows (ROWS 50) make this a lookup by key per run.
SELECT claimed.*,
       task.updated_at AS task_updated_at,
       coalesce((SELECT true FROM tasks AS child WHERE child.parent_id = claimed.task_id
                 LIMIT 1), false) AS task_has_children,
       task.*
FROM apflow_claim_runs($1, $2, $3, $4, $5, $6) AS claimed
LEFT JOIN tasks AS task ON task.id = claimed.task_id;

-- name: next_queued_at
-- The earliest not_before among queued runs.
SELECT min(not_before) FROM runs WHERE state = 'queued' AND ($1::text IS NULL OR user_id = $1);

-- name: finish_runs
-- Record outcomes (one array per column) of runs that are still running.
UPDATE runs SET state = outcome.state, finished_at = outcome.finished_at,
                exit_code = outcome.exit_code, error = outcome.error,
                end_reason = outcome.end_reason, result = outcome.result
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::integer[], $5::text[],
            $6::text[], $7::jsonb[])
     AS outcome (run_id, state, finished_at, exit_code, error, end_reason, result)
WHERE runs.id = outcome.run_id AND runs.state = 'running'
RETURNING runs.*;

-- name: cancel_run
-- A queued run becomes cancelled; a running one gets cancel_requested (first reason wins).
UPDATE runs SET
    state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
    finished_at = CASE WHEN state = 'queued' THEN $2 ELSE finished_at END,
    end_reason = CASE WHEN state = 'queued' THEN $3 ELSE end_reason END,
    cancel_requested = CASE WHEN state = 'running' THEN coalesce(cancel_requested, $3)
                            ELSE cancel_requested END
WHERE id = $1 AND state IN ('queued', 'running')
RETURNING *;

-- name: get_run
-- One run by id.
SELECT * FROM runs WHERE id = $1;

-- name: heartbeat_runs
-- Renew the leases of a node's running runs among the listed ids.
UPDATE runs SET lease_expires_at = $3
WHERE node = $1 AND state = 'running' AND id = ANY($2::text[])
RETURNING *;

-- name: crash_runs_of_node
-- Every running run of a lost node becomes crashed.
UPDATE runs SET state = 'crashed', finished_at = $2, end_reason = 'node_lost'
WHERE node = $1 AND state = 'running'
RETURNING *;

-- name: list_runs
-- Runs matching a RunFilter, newest first.
SELECT * FROM runs
WHERE ($1::text IS NULL OR task_id = $1)
  AND ($2::text IS NULL OR user_id = $2)
  AND ($3::text IS NULL OR state = $3)
  AND ($4::text IS NULL OR trigger = $4)
  AND ($5::text IS NULL OR parent_run_id = $5)
  AND ($6::text IS NULL OR node = $6)
ORDER BY queued_at DESC, id DESC
LIMIT $7 OFFSET $8;

-- name: count_runs_by_state
-- How many runs are in each state.
SELECT state, count(*) AS n FROM runs GROUP BY state;

-- name: insert_log
-- One (masked) log chunk.
INSERT INTO run_logs (run_id, seq, at, stream, text) VALUES ($1, $2, $3, $4, $5);

-- name: read_logs
-- A run's chunks after a sequence number, in order.
SELECT * FROM run_logs WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;

-- name: delete_logs_upto
-- Drop a run's chunks up to a sequence number.
DELETE FROM run_logs WHERE run_id = $1 AND seq <= $2;

-- name: list_occurrences
-- Ledger rows matching an OccurrenceFilter, newest slot first.
SELECT * FROM occurrences
WHERE ($1::text IS NULL OR task_id = $1)
  AND ($2::text IS NULL OR outcome = $2)
  AND ($3::timestamptz IS NULL OR scheduled_for >= $3)
  AND ($4::timestamptz IS NULL OR scheduled_for < $4)
ORDER BY scheduled_for DESC, task_id
LIMIT $5 OFFSET $6;

-- name: upsert_node
-- Register or refresh a node.
INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, state, running)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, state = excluded.state, running = excluded.running;

-- name: list_nodes
-- Every registered node.
SELECT * FROM nodes ORDER BY id;

-- name: purge_signatures
-- Forget webhook signatures whose replay window is over.
DELETE FROM webhook_signatures WHERE expires_at <= $1;

-- name: remember_signature
-- Remember a digest; returns it only if it was not known (or known but expired at $3).
INSERT INTO webhook_signatures (digest, expires_at) VALUES ($1, $2)
ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at
WHERE webhook_signatures.expires_at <= $3
RETURNING digest;

-- name: remember_signatures
-- Remember digests (distinct, with their expiry, one array each); returns those that were
-- not known (or known but expired at $3).
INSERT INTO webhook_signatures (digest, expires_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at
WHERE webhook_signatures.expires_at <= $3
RETURNING digest;

-- name: purge_rate_windows
-- Drop a key's windows older than the current one.
DELETE FROM rate_limits WHERE key = $1 AND window_start < $2;

-- name: rate_limit_hit
-- Count one request in a key's window; returns the window's count.
INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1)
ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + 1
RETURNING count;

-- name: save_feed_token
-- Set a user's calendar feed token digest, replacing (revoking) the previous one.
INSERT INTO feed_tokens (user_id, token_digest, created_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET token_digest = excluded.token_digest,
    created_at = excluded.created_at;

-- name: revoke_feed_token
-- Forget a user's calendar feed token.
DELETE FROM feed_tokens WHERE user_id = $1;

-- name: feed_token_user
-- Whose calendar feed token has this digest.
SELECT user_id FROM feed_tokens WHERE token_digest = $1;

-- name: retention_configured
-- Whether any task sets its own retention (else, without global settings, nothing to prune).
SELECT EXISTS (SELECT 1 FROM tasks WHERE keep_runs IS NOT NULL OR keep_for_seconds IS NOT NULL);

-- name: prunable_runs
-- Finished runs past retention ($1 now, $2 default keep_runs, $3 default keep_for seconds).
SELECT r.id FROM (
    SELECT id, task_id, finished_at,
           ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY queued_at DESC, id DESC) AS newest
    FROM runs WHERE state NOT IN ('queued', 'running')
) AS r LEFT JOIN tasks AS t ON t.id = r.task_id
WHERE (COALESCE(t.keep_runs, $2::integer) IS NOT NULL
       AND r.newest > COALESCE(t.keep_runs, $2::integer))
   OR (COALESCE(t.keep_for_seconds, $3::integer) IS NOT NULL
       AND r.finished_at < $1::timestamptz
           - make_interval(secs => COALESCE(t.keep_for_seconds, $3::integer)))
LIMIT $4;

-- name: delete_runs
-- Delete runs by id (their logs go with them: ON DELETE CASCADE).
DELETE FROM runs WHERE id = ANY($1::text[]);

-- name: prune_occurrences
-- Ledger rows recorded before now minus keep_for ($1 now, $2 default seconds, $3 batch).
DELETE FROM occurrences WHERE (task_id, scheduled_for) IN (
    SELECT o.task_id, o.scheduled_for FROM occurrences AS o
    LEFT JOIN tasks AS t ON t.id = o.task_id
    WHERE COALESCE(t.keep_for_seconds, $2::integer) IS NOT NULL
      AND o.recorded_at < $1::timestamptz
          - make_interval(secs => COALESCE(t.keep_for_seconds, $2::integer))
    LIMIT $3);

-- name: crash_expired_runs
-- Running runs whose lease ran out ($2: before this instant) become crashed: no live node
-- knows them (a claim whose answer was lost, or an owner that stopped renewing).
UPDATE runs SET state = 'crashed', finished_at = $1, end_reason = 'lease_expired'
WHERE state = 'running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $2
RETURNING *;
