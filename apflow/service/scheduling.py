"""Schedule state of a task: checking the fields together and computing next_run_at.

An interval schedule without schedule_start_at is anchored at the moment it is initialised
or enabled (DESIGN.md section 3); `schedule_anchor_at` keeps that anchor so every later slot
stays on one grid, across restarts and pauses.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from apflow.domain.enums import OccurrenceOutcome
from apflow.domain.errors import InvalidParams
from apflow.domain.models import Occurrence, Task
from apflow.schedules import ScheduleSpec, next_fire, slots_between

# Changing any of these starts the schedule over from now (new anchor, new next_run_at).
SCHEDULE_STATE_FIELDS = ("schedule_type", "schedule_expression", "timezone", "schedule_enabled",
                         "schedule_start_at", "schedule_end_at", "max_runs")
MAX_PAUSED_SLOTS = 1000  # ledger rows written for slots that fell due while paused


def spec_of(task: Task, *, anchor: datetime | None = None) -> ScheduleSpec | None:
    """The task's schedule (with max_runs), or None when it has none; InvalidParams if bad."""
    if task.schedule_type is None and task.schedule_expression is None:
        return None
    if task.schedule_type is None:
        raise InvalidParams("is required with schedule_expression", field="schedule_type")
    if task.schedule_expression is None:
        raise InvalidParams("is required with schedule_type", field="schedule_expression")
    return ScheduleSpec(schedule_type=task.schedule_type, expression=task.schedule_expression,
                        timezone=task.timezone, start_at=task.schedule_start_at,
                        end_at=task.schedule_end_at, max_runs=task.max_runs,
                        anchor=anchor or task.schedule_anchor_at)


def check_schedule(task: Task) -> None:
    """Refuse a task whose schedule fields do not make one schedule."""
    spec = spec_of(task)
    if spec is None and task.schedule_enabled:
        raise InvalidParams("a schedule needs schedule_type and schedule_expression",
                            field="schedule_enabled")


def initialised(task: Task, from_time: datetime) -> Task:
    """The task with a fresh anchor at `from_time` and next_run_at = the first slot after it.

    A schedule with no slot left (a past `once`, end_at passed, max_runs reached) is
    disabled, as the scheduler does when a schedule runs out."""
    spec = spec_of(task, anchor=from_time)
    if spec is None or not task.schedule_enabled:
        return replace(task, next_run_at=None, schedule_anchor_at=from_time if spec else None)
    following = next_fire(spec, from_time, task.run_count)
    return replace(task, schedule_anchor_at=from_time, next_run_at=following,
                   schedule_enabled=following is not None)


def resumed(task: Task, now: datetime, requested_by: str) -> tuple[Task, list[Occurrence]]:
    """The task enabled again on its old grid, and ledger rows for the slots it slept through."""
    enabled = replace(task, schedule_enabled=True)
    spec = spec_of(enabled)
    if spec is None:
        raise InvalidParams("the task has no schedule to resume", field="task_id")
    if enabled.schedule_anchor_at is None and enabled.next_run_at is None:
        return initialised(enabled, now), []
    slept: list[datetime] = []
    first = enabled.next_run_at
    if first is not None and first <= now:
        slept = [first, *slots_between(spec, first, now, enabled.run_count,
                                       limit=MAX_PAUSED_SLOTS - 1)]
    following = next_fire(spec, now, enabled.run_count)
    occurrences = [
        Occurrence(task_id=task.id, scheduled_for=slot, outcome=OccurrenceOutcome.PAUSED,
                   recorded_at=now, detail="due while the schedule was paused",
                   requested_by=requested_by)
        for slot in slept
    ]
    return replace(enabled, next_run_at=following,
                   schedule_enabled=following is not None), occurrences


def completed(task: Task, now: datetime) -> tuple[Task, datetime | None]:
    """The task after an external scheduler ran its due slot: counted, advanced past now.

    Returns the task and the slot that was completed (the due next_run_at, if any)."""
    spec = spec_of(task)
    if spec is None:
        raise InvalidParams("the task has no schedule", field="task_id")
    slot = task.next_run_at if task.next_run_at is not None and task.next_run_at <= now \
        else None
    run_count = task.run_count + 1
    after = max(now, task.next_run_at) if task.next_run_at is not None else now
    following = next_fire(spec, after, run_count) if task.schedule_enabled else None
    return replace(task, run_count=run_count, last_run_at=now, next_run_at=following,
                   schedule_enabled=task.schedule_enabled and following is not None), slot
