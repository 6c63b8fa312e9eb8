"""What the engine decides for one task under its row lock, applied by the store atomically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from apflow.domain.models import Occurrence, Run


@dataclass(frozen=True)
class TaskLoad:
    """Live runs of one task, counted while the task row is locked."""

    queued: int
    running: int

    @property
    def active(self) -> int:
        return self.queued + self.running


@dataclass(frozen=True)
class ScheduleAdvance:
    """New scheduling state of a task after its due slots were handled."""

    next_run_at: datetime | None
    schedule_enabled: bool
    run_count: int
    last_run_at: datetime | None


@dataclass(frozen=True)
class Plan:
    """Everything to write for one task in one transaction.

    Occurrences are inserted first; a slot already in the ledger (unique on task and
    instant) makes the store drop the run linked to it, so a slot can never fire twice.
    """

    task_id: str
    advance: ScheduleAdvance | None = None
    occurrences: tuple[Occurrence, ...] = ()
    runs: tuple[Run, ...] = ()
    terminate_running: bool = False  # on_overlap=terminate: ask running runs to stop
