"""Frozen dataclasses of the public contract (DESIGN.md sections 3 and 4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apflow.domain.enums import (
    CatchUp,
    OccurrenceOutcome,
    OnOverlap,
    RetryBackoff,
    RunState,
    ScheduleType,
    TaskStatus,
    Trigger,
)
from apflow.domain.errors import InvalidParams

JSON = Any
Executor = Mapping[str, JSON]


def require_aware(value: datetime | None, field_name: str) -> datetime | None:
    """Return `value` unchanged, or raise InvalidParams if it is a naive datetime."""
    if value is None or value.tzinfo is UTC:  # what the stores read back: the common case
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidParams("a timezone offset is required (naive datetime)", field=field_name)
    return value


@dataclass(frozen=True)
class Task:
    """A task definition with its schedule and execution policy."""

    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    user_id: str | None = None
    parent_id: str | None = None
    dependencies: tuple[str, ...] = ()
    status: TaskStatus = TaskStatus.PENDING
    executor: Executor | None = None
    inputs: Mapping[str, JSON] = field(default_factory=dict)
    result: JSON = None
    error: str | None = None
    progress: float = 0.0
    # scheduling
    schedule_type: ScheduleType | None = None
    schedule_expression: str | None = None
    timezone: str = "UTC"
    schedule_enabled: bool = False
    schedule_start_at: datetime | None = None
    schedule_end_at: datetime | None = None
    schedule_anchor_at: datetime | None = None  # interval anchor; internal, not in the contract
    max_runs: int | None = None
    run_count: int = 0
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    catch_up: CatchUp = CatchUp.LATEST
    max_catch_up_runs: int = 100
    jitter_seconds: int = 0
    # execution
    timeout_seconds: float | None = None
    graceful_stop_seconds: float = 5.0
    retry_limit: int = 0
    retry_delay_seconds: float = 5.0
    retry_backoff: RetryBackoff = RetryBackoff.CONSTANT
    max_concurrent: int = 1
    on_overlap: OnOverlap = OnOverlap.QUEUE
    queue_max: int = 100
    api_trigger: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    # gateway and operations
    webhook_secret: str | None = None
    exclusion_calendar: str | None = None
    notify_on_failure: bool = False
    notify_on_success: bool = False
    source: str | None = None  # provenance of `apflow apply`
    keep_runs: int | None = None
    keep_for_seconds: int | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "updated_at", "schedule_start_at", "schedule_end_at",
                     "schedule_anchor_at", "last_run_at", "next_run_at"):
            require_aware(getattr(self, name), name)


@dataclass(frozen=True)
class Run:
    """One execution attempt of a task."""

    id: str
    task_id: str
    trigger: Trigger
    state: RunState
    queued_at: datetime
    not_before: datetime  # earliest start: the slot plus jitter, or the retry delay
    attempt: int = 1
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    end_reason: str | None = None
    exit_code: int | None = None
    error: str | None = None
    node: str | None = None
    triggered_by: str = "system"
    user_id: str | None = None  # the task owner when queued; the history outlives the task
    variables: Mapping[str, str] = field(default_factory=dict)
    result: JSON = None
    parent_run_id: str | None = None  # the tree run this child run belongs to
    retry_of: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: str | None = None  # end_reason asked for: "cancelled", "terminated"

    def __post_init__(self) -> None:
        for name in ("queued_at", "not_before", "scheduled_for", "started_at", "finished_at",
                     "lease_expires_at"):
            require_aware(getattr(self, name), name)


@dataclass(frozen=True)
class Occurrence:
    """A ledger row: one due slot of a task and what became of it."""

    task_id: str
    scheduled_for: datetime
    outcome: OccurrenceOutcome
    recorded_at: datetime
    run_id: str | None = None
    detail: str | None = None  # why, and who asked (for skips on request)
    requested_by: str | None = None


@dataclass(frozen=True)
class LogChunk:
    """A piece of a run's (masked) output."""

    run_id: str
    seq: int
    at: datetime
    stream: str  # "stdout" | "stderr" | "system"
    text: str


@dataclass(frozen=True)
class Node:
    """A scheduler/dispatcher process registered in the database."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    state: str  # "active" | "draining" | "stopped" | "lost"
    running: int = 0
