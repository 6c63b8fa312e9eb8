"""Applying a planner's decisions inside the transaction that locked the tasks.

The ledger insert decides what really happens: a slot already recorded (another node fired
it, or it was skipped on request) is not inserted again, and the run linked to it is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from apflow.domain.models import Occurrence, Run, Task
from apflow.domain.plans import Plan, ScheduleAdvance, TaskLoad
from apflow.store.base import Planner
from apflow.store.database import Tx
from apflow.store.rows import OCCURRENCE, RUN, params
from apflow.store.values import Values

logger = logging.getLogger(__name__)

IDLE = TaskLoad(queued=0, running=0)
SlotKey = tuple[str, datetime]


async def task_loads(tx: Tx, values: Values, task_ids: Sequence[str]) -> dict[str, TaskLoad]:
    """Queued and running counts of each task, read after the tasks were locked."""
    rows = await tx.fetch("task_loads", values.ids(task_ids))
    return {row["task_id"]: TaskLoad(queued=int(row["queued"]), running=int(row["running"]))
            for row in rows}


def plan_one(task: Task, loads: dict[str, TaskLoad], planner: Planner) -> Plan:
    """The planner's plan for `task`; its exceptions propagate."""
    return planner(task, loads.get(task.id, IDLE))


def plan_each(tasks: Sequence[Task], loads: dict[str, TaskLoad],
              planner: Planner) -> list[Plan]:
    """Plans of every task; a task whose planner call fails is logged and left alone."""
    plans = []
    for task in tasks:
        try:
            plans.append(plan_one(task, loads, planner))
        except Exception as exc:  # one broken task must not stop the others
            logger.error("planning a due task failed", exc_info=exc, extra={
                "action": "plan_failed", "task_id": task.id, "error": str(exc)})
    return plans


async def apply_plans(tx: Tx, values: Values, plans: Sequence[Plan],
                      now: datetime) -> list[Plan]:
    """Write `plans`; return them as applied (slots already in the ledger and their runs
    removed)."""
    new_slots = await insert_occurrences(tx, values, [o for p in plans for o in p.occurrences])
    applied = [applied_part(plan, new_slots) for plan in plans]
    await insert_runs(tx, values, [run for plan in applied for run in plan.runs])
    await advance_tasks(tx, values, [(p.task_id, p.advance) for p in applied if p.advance], now)
    terminate = [plan.task_id for plan in applied if plan.terminate_running]
    if terminate:
        await tx.execute("request_termination", values.ids(terminate))
    return applied


def slot_key(occurrence: Occurrence) -> SlotKey:
    return occurrence.task_id, occurrence.scheduled_for


async def insert_occurrences(tx: Tx, values: Values,
                             occurrences: Sequence[Occurrence]) -> set[SlotKey]:
    """Insert ledger rows, skipping recorded slots; return the keys of the new ones."""
    if not occurrences:
        return set()
    rows = [params(OCCURRENCE, occurrence, values) for occurrence in occurrences]
    inserted = await tx.fetch("insert_occurrences", *values.rows(rows, len(OCCURRENCE.names)))
    return {(row["task_id"], _instant(values, row["scheduled_for"])) for row in inserted}


def _instant(values: Values, raw: Any) -> datetime:
    instant = values.time_value(raw)
    assert instant is not None  # scheduled_for is NOT NULL
    return instant


def applied_part(plan: Plan, new_slots: set[SlotKey]) -> Plan:
    """`plan` without the slots that were already recorded and the runs linked to them."""
    occurrences = tuple(o for o in plan.occurrences if slot_key(o) in new_slots)
    linked: dict[str, list[SlotKey]] = {}
    for occurrence in plan.occurrences:
        if occurrence.run_id is not None:
            linked.setdefault(occurrence.run_id, []).append(slot_key(occurrence))
    runs = tuple(run for run in plan.runs if _keeps_run(run, linked, new_slots))
    if len(occurrences) == len(plan.occurrences) and len(runs) == len(plan.runs):
        return plan
    return replace(plan, occurrences=occurrences, runs=runs)


def _keeps_run(run: Run, linked: dict[str, list[SlotKey]], new_slots: set[SlotKey]) -> bool:
    slots = linked.get(run.id)
    return slots is None or any(slot in new_slots for slot in slots)


async def insert_runs(tx: Tx, values: Values, runs: Iterable[Run]) -> None:
    """Insert runs as given, in one statement."""
    rows = [params(RUN, run, values) for run in runs]
    if rows:
        await tx.execute("insert_runs", *values.rows(rows, len(RUN.names)))


async def advance_tasks(tx: Tx, values: Values,
                        advances: Sequence[tuple[str, ScheduleAdvance]], now: datetime) -> None:
    """Write each task's new scheduling state, with updated_at = now."""
    if not advances:
        return
    updated_at = values.time(now, "now")
    await tx.executemany("advance_task", [
        (task_id, values.time(advance.next_run_at, "next_run_at"), advance.schedule_enabled,
         advance.run_count, values.time(advance.last_run_at, "last_run_at"), updated_at)
        for task_id, advance in advances])
