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

CREATE INDEX runs_claim_idx ON runs (state, not_before);
-- Per-task counts of live runs, and each task's queue in order (claims).
CREATE INDEX runs_task_state_idx ON runs (task_id, state, not_before);
CREATE INDEX runs_node_state_idx ON runs (node, state);
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
