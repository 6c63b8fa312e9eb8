"""Small builders for store tests: a task, a run, a ledger row, a planner, at fixed instants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apflow.domain.enums import OccurrenceOutcome, RunState, ScheduleType, Trigger
from apflow.domain.models import Occurrence, Run, Task
from apflow.domain.plans import Plan, ScheduleAdvance, TaskLoad

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def a_task(task_id: str = "t1", **fields: Any) -> Task:
    values: dict[str, Any] = {"name": task_id, "created_at": T0, "updated_at": T0}
    values.update(fields)
    return Task(id=task_id, **values)


def a_schedule(task_id: str = "t1", next_run_at: datetime = T0, **fields: Any) -> Task:
    """An enabled interval schedule due at `next_run_at`."""
    values: dict[str, Any] = {"schedule_type": ScheduleType.INTERVAL,
                              "schedule_expression": "60", "schedule_enabled": True}
    values.update(fields)
    return a_task(task_id, next_run_at=next_run_at, **values)


def a_run(run_id: str, task_id: str = "t1", state: RunState = RunState.QUEUED,
          not_before: datetime = T0, **fields: Any) -> Run:
    values: dict[str, Any] = {"trigger": Trigger.MANUAL, "queued_at": not_before}
    values.update(fields)
    return Run(id=run_id, task_id=task_id, state=state, not_before=not_before, **values)


def a_slot(task_id: str, scheduled_for: datetime, run_id: str | None = None,
           outcome: OccurrenceOutcome = OccurrenceOutcome.FIRED, **fields: Any) -> Occurrence:
    return Occurrence(task_id=task_id, scheduled_for=scheduled_for, outcome=outcome,
                      recorded_at=fields.pop("recorded_at", scheduled_for), run_id=run_id,
                      **fields)


Planner = Callable[[Task, TaskLoad], Plan]


def fire_next_slot(now: datetime, *, advance: bool = True,
                   seen: list[tuple[str, TaskLoad]] | None = None) -> Planner:
    """A planner that fires the task's next_run_at as one queued run (and moves the schedule
    on a minute, unless `advance` is False: then the same slot is due again)."""
    def plan(task: Task, load: TaskLoad) -> Plan:
        if seen is not None:
            seen.append((task.id, load))
        assert task.next_run_at is not None
        slot = task.next_run_at
        run = a_run(f"{task.id}@{slot.isoformat()}", task.id, trigger=Trigger.SCHEDULE,
                    queued_at=now, not_before=slot, scheduled_for=slot)
        moved = ScheduleAdvance(next_run_at=slot + timedelta(minutes=1), schedule_enabled=True,
                                run_count=task.run_count + 1, last_run_at=slot)
        return Plan(task_id=task.id, advance=moved if advance else None,
                    occurrences=(a_slot(task.id, slot, run.id, recorded_at=now),),
                    runs=(run,))
    return plan
