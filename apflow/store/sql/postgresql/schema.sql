-- The whole expected schema of the PostgreSQL store, kept by hand next to the migrations.
-- tests/store/test_migrations.py proves that applying every migration yields exactly this.

CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL
);

CREATE TABLE tasks (
    id text PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    description text NOT NULL DEFAULT '',
    user_id text,
    parent_id text REFERENCES tasks (id),
    dependencies jsonb NOT NULL DEFAULT '[]',
    status text NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    executor jsonb,
    inputs jsonb NOT NULL DEFAULT '{}',
    result jsonb,
    error text,
    progress double precision NOT NULL DEFAULT 0,
    schedule_type text
        CHECK (schedule_type IN ('once', 'interval', 'cron', 'daily', 'weekly', 'monthly')),
    schedule_expression text,
    timezone text NOT NULL DEFAULT 'UTC',
    schedule_enabled boolean NOT NULL DEFAULT false,
    schedule_start_at timestamptz,
    schedule_end_at timestamptz,
    schedule_anchor_at timestamptz,
    max_runs integer,
    run_count integer NOT NULL DEFAULT 0,
    last_run_at timestamptz,
    next_run_at timestamptz,
    catch_up text NOT NULL CHECK (catch_up IN ('latest', 'all', 'skip')),
    max_catch_up_runs integer NOT NULL,
    jitter_seconds integer NOT NULL DEFAULT 0,
    timeout_seconds double precision,
    graceful_stop_seconds double precision NOT NULL,
    retry_limit integer NOT NULL DEFAULT 0,
    retry_delay_seconds double precision NOT NULL,
    retry_backoff text NOT NULL CHECK (retry_backoff IN ('constant', 'linear', 'exponential')),
    max_concurrent integer NOT NULL DEFAULT 1,
    on_overlap text NOT NULL CHECK (on_overlap IN ('queue', 'skip', 'terminate', 'forbid')),
    queue_max integer NOT NULL,
    api_trigger boolean NOT NULL DEFAULT true,
    env jsonb NOT NULL DEFAULT '{}',
    webhook_secret text,
    exclusion_calendar text,
    notify_on_failure boolean NOT NULL DEFAULT false,
    notify_on_success boolean NOT NULL DEFAULT false,
    source text,
    keep_runs integer,
    keep_for_seconds integer
);

-- The scheduler's wake-up time and its due scan only ever look at enabled schedules.
CREATE INDEX tasks_due_idx ON tasks (next_run_at) WHERE schedule_enabled;
CREATE INDEX tasks_user_idx ON tasks (user_id);
CREATE INDEX tasks_parent_idx ON tasks (parent_id);

-- The key (task_id, scheduled_for) is what makes a double fire impossible.
CREATE TABLE occurrences (
    task_id text NOT NULL,
    scheduled_for timestamptz NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('fired', 'skipped_overlap', 'queue_full',
                                             'coalesced', 'missed', 'excluded', 'paused',
                                             'skipped')),
    recorded_at timestamptz NOT NULL,
    run_id text,
    detail text,
    requested_by text,
    PRIMARY KEY (task_id, scheduled_for)
);

CREATE TABLE runs (
    id text PRIMARY KEY,
    task_id text NOT NULL,
    trigger text NOT NULL
        CHECK (trigger IN ('schedule', 'manual', 'webhook', 'retry', 'catch_up')),
    state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed',
                                         'timed_out', 'cancelled', 'crashed', 'skipped')),
    queued_at timestamptz NOT NULL,
    not_before timestamptz NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    scheduled_for timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    end_reason text,
    exit_code integer,
    error text,
    node text,
    triggered_by text NOT NULL DEFAULT 'system',
    user_id text,
    variables jsonb NOT NULL DEFAULT '{}',
    result jsonb,
    parent_run_id text,
    retry_of text,
    lease_expires_at timestamptz,
    cancel_requested text
);

-- Queued runs in due order (claims); running runs by node (heartbeats, crash checks).
CREATE INDEX runs_queued_idx ON runs (not_before) WHERE state = 'queued';
-- Per-task counts of live runs, and each task's queue in order (claims).
CREATE INDEX runs_task_state_idx ON runs (task_id, state, not_before);
CREATE INDEX runs_running_idx ON runs (node) WHERE state = 'running';
CREATE INDEX runs_queued_at_idx ON runs (queued_at);
CREATE INDEX runs_parent_run_idx ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE run_logs (
    run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    at timestamptz NOT NULL,
    stream text NOT NULL,
    text text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE nodes (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    state text NOT NULL,
    running integer NOT NULL DEFAULT 0
);

CREATE TABLE webhook_signatures (
    digest text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX webhook_signatures_expiry_idx ON webhook_signatures (expires_at);

CREATE TABLE rate_limits (
    key text NOT NULL,
    window_start timestamptz NOT NULL,
    count integer NOT NULL,
    PRIMARY KEY (key, window_start)
);

CREATE TABLE feed_tokens (
    user_id text PRIMARY KEY,
    token_digest text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

-- Claims in one round trip (migrations 0003 and 0005): lock up to p_limit tasks with due
-- queued runs and a free slot, then start their oldest due runs within the free slots. A
-- volatile function runs each statement with a fresh snapshot, so the recount after the
-- locks sees every claim that committed while this one waited: max_concurrent holds across
-- nodes.
CREATE FUNCTION apflow_claim_runs(p_due_by timestamptz, p_user text, p_limit integer,
                                  p_node text, p_lease_until timestamptz, p_now timestamptz)
RETURNS SETOF runs
LANGUAGE plpgsql VOLATILE
ROWS 50  -- about the claim's limit, not the default 1,000
-- Index paths are the right ones for every statement here, whatever the statistics say (the
-- runs table swings from empty to thousands of queued rows faster than they follow).
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    window_size integer := p_limit * 4 + 64;
    scanned integer;
    locked text[];
BEGIN
    -- The tasks to claim for, locked: those of the earliest window_size queued due runs
    -- (runs_queued_idx, in order: a task's first row there is its earliest queued run), in
    -- that order, that have a free slot (fewer running runs than max_concurrent; a deleted
    -- task has one), the first p_limit of them, each try-locked (held to commit) so that
    -- concurrent claimers split the tasks. Only when the window is full and still short of
    -- p_limit tasks (many runs per task, or tasks at their limit) is the statement run again
    -- over all queued due runs (LIMIT NULL: no limit). Either way a claim costs about what
    -- it takes. A task locked the first time is locked again, harmlessly.
    LOOP
        SELECT array_agg(ready.task_id) INTO locked
        FROM (
            SELECT ordered.task_id
            FROM (
                SELECT earliest.task_id, min(earliest.not_before) AS first_at
                FROM (SELECT runs.task_id, runs.not_before
                      FROM runs
                      WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
                        AND (p_user IS NULL OR runs.user_id = p_user)
                      ORDER BY runs.not_before
                      LIMIT window_size) AS earliest
                GROUP BY earliest.task_id
                ORDER BY first_at, earliest.task_id
                OFFSET 0  -- sorted here: the slot check below stops once p_limit tasks pass
            ) AS ordered
            WHERE (SELECT count(*) FROM runs AS live
                   WHERE live.task_id = ordered.task_id AND live.state = 'running')
                  < coalesce((SELECT task.max_concurrent FROM tasks AS task
                              WHERE task.id = ordered.task_id), 1)
            LIMIT p_limit
        ) AS ready
        WHERE pg_try_advisory_xact_lock(1095780936, hashtext(ready.task_id));
        EXIT WHEN window_size IS NULL OR coalesce(cardinality(locked), 0) >= p_limit;
        SELECT count(*) INTO scanned
        FROM (SELECT 1 FROM runs
              WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
                AND (p_user IS NULL OR runs.user_id = p_user)
              LIMIT window_size) AS probe;
        EXIT WHEN scanned < window_size;  -- the window held every queued due run
        window_size := NULL;
    END LOOP;
    IF locked IS NULL THEN
        RETURN;
    END IF;
    -- Free slots counted now, after the locks, with a fresh snapshot (a volatile function):
    -- every claim that committed meanwhile is seen, so max_concurrent holds across nodes.
    -- Each task's oldest due runs by index, the claimed rows by primary key; each run
    -- starts at its not_before, or now if that has passed.
    RETURN QUERY
    WITH slots AS (
        SELECT locked_task.task_id,
               least(p_limit, coalesce(tasks.max_concurrent, 1)
                              - (SELECT count(*) FROM runs AS live
                                 WHERE live.task_id = locked_task.task_id
                                   AND live.state = 'running')) AS free
        FROM unnest(locked) AS locked_task (task_id)
        LEFT JOIN tasks ON tasks.id = locked_task.task_id
    ), picks AS (
        SELECT pick.id, pick.not_before, pick.queued_at
        FROM slots
        CROSS JOIN LATERAL (
            SELECT runs.id, runs.not_before, runs.queued_at
            FROM runs
            WHERE runs.task_id = slots.task_id AND runs.state = 'queued'
              AND runs.not_before <= p_due_by AND (p_user IS NULL OR runs.user_id = p_user)
            ORDER BY runs.not_before, runs.queued_at, runs.id
            LIMIT greatest(slots.free, 0)
        ) AS pick
    ), claimable AS (
        SELECT runs.id
        FROM runs
        WHERE runs.id = ANY (ARRAY(SELECT picks.id FROM picks
                                   ORDER BY picks.not_before, picks.queued_at, picks.id
                                   LIMIT p_limit))
          AND (runs.state = 'queued') IS TRUE  -- not an index condition: found by id
        FOR UPDATE SKIP LOCKED
    )
    UPDATE runs SET state = 'running', started_at = greatest(runs.not_before, p_now),
                    node = p_node, lease_expires_at = p_lease_until
    WHERE runs.id = ANY (ARRAY(SELECT claimable.id FROM claimable))
    RETURNING runs.*;
END
$$;
