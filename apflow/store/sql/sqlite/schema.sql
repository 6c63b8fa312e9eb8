-- The whole expected schema of the SQLite store, kept by hand next to the migrations.
-- tests/store/test_migrations.py proves that applying every migration yields exactly this.

CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    user_id TEXT,
    parent_id TEXT REFERENCES tasks (id),
    dependencies TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    executor TEXT,
    inputs TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    progress REAL NOT NULL DEFAULT 0,
    schedule_type TEXT
        CHECK (schedule_type IN ('once', 'interval', 'cron', 'daily', 'weekly', 'monthly')),
    schedule_expression TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    schedule_enabled INTEGER NOT NULL DEFAULT 0 CHECK (schedule_enabled IN (0, 1)),
    schedule_start_at INTEGER,
    schedule_end_at INTEGER,
    schedule_anchor_at INTEGER,
    max_runs INTEGER,
    run_count INTEGER NOT NULL DEFAULT 0,
    last_run_at INTEGER,
    next_run_at INTEGER,
    catch_up TEXT NOT NULL CHECK (catch_up IN ('latest', 'all', 'skip')),
    max_catch_up_runs INTEGER NOT NULL,
    jitter_seconds INTEGER NOT NULL DEFAULT 0,
    timeout_seconds REAL,
    graceful_stop_seconds REAL NOT NULL,
    retry_limit INTEGER NOT NULL DEFAULT 0,
    retry_delay_seconds REAL NOT NULL,
    retry_backoff TEXT NOT NULL CHECK (retry_backoff IN ('constant', 'linear', 'exponential')),
    max_concurrent INTEGER NOT NULL DEFAULT 1,
    on_overlap TEXT NOT NULL CHECK (on_overlap IN ('queue', 'skip', 'terminate', 'forbid')),
    queue_max INTEGER NOT NULL,
    api_trigger INTEGER NOT NULL DEFAULT 1 CHECK (api_trigger IN (0, 1)),
    env TEXT NOT NULL DEFAULT '{}',
    webhook_secret TEXT,
    exclusion_calendar TEXT,
    notify_on_failure INTEGER NOT NULL DEFAULT 0 CHECK (notify_on_failure IN (0, 1)),
    notify_on_success INTEGER NOT NULL DEFAULT 0 CHECK (notify_on_success IN (0, 1)),
    source TEXT,
    keep_runs INTEGER,
    keep_for_seconds INTEGER
) STRICT;

-- The scheduler's wake-up time and its due scan only ever look at enabled schedules.
CREATE INDEX tasks_due_idx ON tasks (next_run_at) WHERE schedule_enabled;
CREATE INDEX tasks_user_idx ON tasks (user_id);
CREATE INDEX tasks_parent_idx ON tasks (parent_id);

-- The key (task_id, scheduled_for) is what makes a double fire impossible.
CREATE TABLE occurrences (
    task_id TEXT NOT NULL,
    scheduled_for INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('fired', 'skipped_overlap', 'queue_full',
                                             'coalesced', 'missed', 'excluded', 'paused',
                                             'skipped')),
    recorded_at INTEGER NOT NULL,
    run_id TEXT,
    detail TEXT,
    requested_by TEXT,
    PRIMARY KEY (task_id, scheduled_for)
) STRICT, WITHOUT ROWID;

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    trigger TEXT NOT NULL
        CHECK (trigger IN ('schedule', 'manual', 'webhook', 'retry', 'catch_up')),
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed',
                                         'timed_out', 'cancelled', 'crashed', 'skipped')),
    queued_at INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    scheduled_for INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    end_reason TEXT,
    exit_code INTEGER,
    error TEXT,
    node TEXT,
    triggered_by TEXT NOT NULL DEFAULT 'system',
    user_id TEXT,
    variables TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    parent_run_id TEXT,
    retry_of TEXT,
    lease_expires_at INTEGER,
    cancel_requested TEXT
) STRICT;

CREATE INDEX runs_claim_idx ON runs (state, not_before);
-- Per-task counts of live runs, and each task's queue in order (claims).
CREATE INDEX runs_task_state_idx ON runs (task_id, state, not_before);
CREATE INDEX runs_node_state_idx ON runs (node, state);
CREATE INDEX runs_queued_at_idx ON runs (queued_at);
CREATE INDEX runs_parent_run_idx ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE run_logs (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    running INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE webhook_signatures (
    digest TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_signatures_expiry_idx ON webhook_signatures (expires_at);

CREATE TABLE rate_limits (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) STRICT, WITHOUT ROWID;

CREATE TABLE feed_tokens (
    user_id TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
