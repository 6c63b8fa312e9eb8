"""Enumerations of the public contract (DESIGN.md sections 3 and 4)."""

from __future__ import annotations

from enum import StrEnum


class ScheduleType(StrEnum):
    ONCE = "once"
    INTERVAL = "interval"
    CRON = "cron"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CatchUp(StrEnum):
    LATEST = "latest"
    ALL = "all"
    SKIP = "skip"


class RetryBackoff(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class OnOverlap(StrEnum):
    QUEUE = "queue"
    SKIP = "skip"
    TERMINATE = "terminate"
    FORBID = "forbid"


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    WEBHOOK = "webhook"
    RETRY = "retry"
    CATCH_UP = "catch_up"


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    CRASHED = "crashed"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


class OccurrenceOutcome(StrEnum):
    """What became of a due slot, as recorded in the ledger."""

    FIRED = "fired"
    SKIPPED_OVERLAP = "skipped_overlap"
    QUEUE_FULL = "queue_full"
    COALESCED = "coalesced"
    MISSED = "missed"
    EXCLUDED = "excluded"
    PAUSED = "paused"
    SKIPPED = "skipped"  # skipped on request (tasks.skip)
