"""The Store protocol: everything apflow keeps, behind one interface, two backends.

Every method takes `now` where time matters (one injected clock drives both backends).
Errors raised: NotFound (no such row), Conflict (unique key or optimistic check failed),
InvalidParams (a value the schema refuses), StoreUnavailable (cannot connect), StoreError
(anything else from the driver, cause kept as __cause__). Nothing else leaks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from apflow.domain.enums import OccurrenceOutcome, RunState, ScheduleType, TaskStatus, Trigger
from apflow.domain.models import LogChunk, Node, Occurrence, Run, Task
from apflow.domain.plans import Plan, TaskLoad

Planner = Callable[[Task, TaskLoad], Plan]


@dataclass(frozen=True)
class TaskFilter:
    """Filters of tasks.list and scheduler list; None means any."""

    user_id: str | None = None
    status: TaskStatus | None = None
    schedule_type: ScheduleType | None = None
    schedule_enabled: bool | None = None
    scheduled_only: bool = False  # schedule_type is set
    parent_id: str | None = None
    roots_only: bool = False  # parent_id is null
    name: str | None = None  # exact name
    source: str | None = None  # apply provenance


@dataclass(frozen=True)
class RunFilter:
    task_id: str | None = None
    user_id: str | None = None
    state: RunState | None = None
    trigger: Trigger | None = None
    parent_run_id: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class OccurrenceFilter:
    task_id: str | None = None
    outcome: OccurrenceOutcome | None = None
    since: datetime | None = None  # scheduled_for >= since
    until: datetime | None = None  # scheduled_for < until


@dataclass(frozen=True)
class FinishedRun:
    """The outcome the dispatcher records for a running run."""

    run_id: str
    state: RunState
    finished_at: datetime
    exit_code: int | None = None
    error: str | None = None
    end_reason: str | None = None
    result: object = None


@dataclass(frozen=True)
class TaskOutcome:
    """Status/result/error/progress the engine records on a task (set_task_outcomes)."""

    task_id: str
    status: TaskStatus
    result: object = None
    error: str | None = None
    progress: float | None = None


@dataclass(frozen=True)
class TaskHead:
    """What the dispatcher checks of a claimed run's task before using a copy it holds."""

    id: str
    updated_at: datetime
    has_children: bool  # the task drives a tree


@dataclass(frozen=True)
class Claimed:
    """Runs just claimed, with the heads of their tasks read in the same round trip."""

    runs: list[Run]
    heads: dict[str, TaskHead]  # of the claimed runs' tasks that still exist
    tasks: dict[str, Task] = field(default_factory=dict)  # those tasks, when asked for


class Store(Protocol):
    """Persistence for tasks, the occurrence ledger, runs, logs and nodes."""

    dialect: str  # "sqlite" | "postgresql"

    # lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and apply pending migrations. StoreUnavailable if unreachable."""

    async def close(self) -> None:
        """Release connections; idempotent."""

    # tasks -------------------------------------------------------------------------------
    async def create_task(self, task: Task) -> Task:
        """Insert a task. Conflict if the id exists."""

    async def get_task(self, task_id: str) -> Task:
        """Return a task. NotFound if absent."""

    async def get_tasks(self, task_ids: Sequence[str]) -> list[Task]:
        """Return the tasks that exist among `task_ids` (any order)."""

    async def update_task(self, task: Task, *, expected_updated_at: datetime | None = None) -> Task:
        """Replace a task row. NotFound if absent; Conflict if `expected_updated_at` differs."""

    async def delete_tasks(self, task_ids: Sequence[str]) -> int:
        """Delete task rows and their future (not yet fired) ledger entries; runs are kept."""

    async def list_tasks(self, flt: TaskFilter, *, limit: int = 100, offset: int = 0) -> list[Task]:
        """Tasks matching `flt`, oldest first (created_at, id)."""

    async def count_tasks(self, flt: TaskFilter) -> int:
        """Number of tasks matching `flt`."""

    async def set_task_outcome(self, task_id: str, now: datetime, *, status: TaskStatus,
                               result: object = None, error: str | None = None,
                               progress: float | None = None) -> None:
        """Update only status/result/error/progress/updated_at of a task (the engine's write;
        never clobbers a concurrent definition change). A missing task is ignored."""

    async def set_task_outcomes(self, outcomes: Sequence[TaskOutcome], now: datetime) -> None:
        """set_task_outcome for each of `outcomes`, in order, in one transaction (the
        dispatcher's batched write); missing tasks are ignored."""

    async def task_heads(self, task_ids: Sequence[str]) -> dict[str, TaskHead]:
        """Id, updated_at and whether it has children, of each existing task among
        `task_ids` (one light query per batch of claimed runs)."""

    async def reset_tasks(self, task_ids: Sequence[str], now: datetime) -> None:
        """Set tasks back to pending with result, error and progress cleared (tree re-run)."""

    async def subtree(self, task_id: str) -> list[Task]:
        """The task and all its descendants (parent before child). NotFound if absent."""

    async def due_tasks(self, now: datetime, *, limit: int = 100,
                        user_id: str | None = None) -> list[Task]:
        """Enabled schedules with next_run_at <= now, earliest first (read-only)."""

    async def next_due_at(self) -> datetime | None:
        """Earliest next_run_at among enabled schedules (the scheduler's wake-up time)."""

    # firing: due slots become ledger rows and queued runs --------------------------------
    async def fire_due(self, now: datetime, planner: Planner, *, limit: int = 500) -> list[Plan]:
        """Lock up to `limit` due schedules (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one
        write transaction), call `planner(task, load)` for each and apply its Plan atomically.
        Returns the applied plans, with runs whose slot was already in the ledger removed."""

    async def apply_to_task(self, task_id: str, now: datetime, planner: Planner) -> Plan:
        """Lock one task row, call `planner(task, load)` and apply the Plan atomically
        (manual and webhook triggers, skips). NotFound if absent; the planner may raise."""

    # runs --------------------------------------------------------------------------------
    async def claim_runs(self, now: datetime, node: str, *, limit: int,
                         lease_seconds: float, user_id: str | None = None,
                         lease_from: datetime | None = None, ahead: float = 0.0) -> list[Run]:
        """Move up to `limit` queued runs with not_before <= now + `ahead` to running, owned
        by `node`; started_at is each run's not_before, or `now` if that has passed (the
        dispatcher starts a run claimed ahead at its not_before). Oldest not_before first,
        never letting a task's running count pass its max_concurrent, even with several
        nodes claiming at once (PostgreSQL: SKIP LOCKED).
        `user_id` (scheduler.user_id): only runs whose user_id is that user. The lease ends
        `lease_seconds` after `lease_from` (the database's clock, engine/leases.py), else
        after `now`."""

    async def claim_runs_with_heads(self, now: datetime, node: str, *, limit: int,
                                    lease_seconds: float, user_id: str | None = None,
                                    lease_from: datetime | None = None,
                                    ahead: float = 0.0, with_tasks: bool = False) -> Claimed:
        """claim_runs, plus the task_heads of the claimed runs' tasks as they were when
        claimed, and with `with_tasks` those tasks whole (the dispatcher's claim: one round
        trip instead of two or three)."""

    async def next_queued_at(self, *, user_id: str | None = None) -> datetime | None:
        """Earliest not_before among queued runs (the dispatcher's wake-up time); `user_id`
        as in claim_runs."""

    async def finish_runs(self, outcomes: Sequence[FinishedRun]) -> list[Run]:
        """Record outcomes of running runs; a run no longer running is left as it is and
        not returned."""

    async def cancel_run(self, run_id: str, now: datetime, *, reason: str = "cancelled") -> Run:
        """A queued run becomes cancelled at once; a running one gets cancel_requested set
        (its dispatcher stops it). NotFound if absent; Conflict if already finished."""

    async def heartbeat_runs(self, node: str, run_ids: Sequence[str], now: datetime,
                             lease_until: datetime) -> list[Run]:
        """Renew the leases of `node`'s running runs; return those with cancel_requested."""

    async def crash_runs_of_node(self, node: str, now: datetime) -> list[Run]:
        """Mark every running run owned by `node` crashed (end_reason node_lost)."""

    async def crash_expired_runs(self, now: datetime, expired_before: datetime) -> list[Run]:
        """Mark every running run whose lease ended before `expired_before` crashed
        (end_reason lease_expired): no live node renews it."""

    async def get_run(self, run_id: str) -> Run:
        """Return a run. NotFound if absent."""

    async def list_runs(self, flt: RunFilter, *, limit: int = 100, offset: int = 0) -> list[Run]:
        """Runs matching `flt`, newest first (queued_at, id)."""

    async def count_runs_by_state(self) -> dict[RunState, int]:
        """How many runs are in each state."""

    async def insert_runs(self, runs: Sequence[Run]) -> None:
        """Insert runs as given (retries, tree children)."""

    # logs --------------------------------------------------------------------------------
    async def append_logs(self, chunks: Sequence[LogChunk]) -> None:
        """Store (already masked) log chunks."""

    async def read_logs(self, run_id: str, *, after_seq: int = -1,
                        limit: int = 1000) -> list[LogChunk]:
        """A run's chunks with seq > after_seq, in order."""

    async def delete_logs_upto(self, run_id: str, seq: int) -> None:
        """Drop a run's chunks with seq <= `seq` (log cap, drop_old)."""

    # ledger ------------------------------------------------------------------------------
    async def record_occurrences(self, occurrences: Sequence[Occurrence]) -> int:
        """Insert ledger rows, ignoring slots already recorded; returns how many were new."""

    async def list_occurrences(self, flt: OccurrenceFilter, *, limit: int = 100,
                               offset: int = 0) -> list[Occurrence]:
        """Ledger rows, newest slot first."""

    # nodes -------------------------------------------------------------------------------
    async def upsert_node(self, node: Node) -> None:
        """Register or refresh a node."""

    async def list_nodes(self) -> list[Node]:
        """Every registered node."""

    # webhook replay and rate limits (shared across nodes) ---------------------------------
    async def remember_signature(self, digest: str, now: datetime, expires_at: datetime) -> bool:
        """True if `digest` was not seen before (and is now remembered until expires_at)."""

    async def rate_limit_hit(self, key: str, window_start: datetime, now: datetime) -> int:
        """Count one request for `key` in the window starting at window_start; return the
        window's count including this one."""

    # calendar feed tokens ----------------------------------------------------------------
    async def save_feed_token(self, user_id: str, token_digest: str, now: datetime) -> None:
        """Set `user_id`'s feed token digest; the previous token stops working."""

    async def revoke_feed_token(self, user_id: str) -> bool:
        """Forget `user_id`'s feed token; False if there was none."""

    async def feed_token_user(self, token_digest: str) -> str | None:
        """The user whose feed token has this digest, or None."""

    # retention ---------------------------------------------------------------------------
    async def retention_configured(self) -> bool:
        """Does any task set its own keep_runs or keep_for_seconds?"""

    async def prune_runs(self, now: datetime, *, keep_runs: int | None,
                         keep_for_seconds: int | None, limit: int) -> int:
        """Delete up to `limit` finished runs (and their logs) past retention: beyond their
        task's newest keep_runs, or finished more than keep_for_seconds ago (a task's own
        values, else these defaults; None = keep). Returns how many were deleted."""

    async def prune_occurrences(self, now: datetime, *, keep_for_seconds: int | None,
                                limit: int) -> int:
        """Delete up to `limit` ledger rows recorded more than keep_for_seconds ago (a
        task's own value, else this default; None = keep). Returns how many."""

    async def database_time(self) -> datetime | None:
        """The database server's clock now (PostgreSQL's clock_timestamp()); None where the
        database has no clock of its own (SQLite lives in this process)."""

    # change notification (scheduler wake-up across nodes) --------------------------------
    async def notify_change(self) -> None:
        """Tell every node's scheduler that schedules changed (PostgreSQL NOTIFY)."""

    async def listen_changes(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Call `callback` whenever a node calls notify_change (SQLite: a store on the same
        file in this process)."""
