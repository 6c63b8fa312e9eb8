"""Applying a planner's decisions inside the transaction that locked the tasks.

The ledger insert decides what really happens: a slot already recorded (another node fired
it, or it was skipped on request) is not inserted again, and the run linked to it is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from apflow.domain.enums import RunState
from apflow.domain.errors import NotFound
from apflow.domain.models import Occurrence, Run, Task
from apflow.domain.plans import Plan, ScheduleAdvance, TaskLoad
from apflow.store.base import Planner
from apflow.store.database import Tx
from apflow.store.rows import OCCURRENCE, RUN, params
from apflow.store.values import Values

logger = logging.getLogger(__name__)

IDLE = TaskLoad(queued=0, running=0)
SlotKey = tuple[str, datetime]
ADVANCE_WIDTH = 6  # columns of an advance_tasks row


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


@dataclass(frozen=True)
class PlanRequest:
    """One apply_to_task call waiting in a batch."""

    task_id: str
    now: datetime
    planner: Planner


def plan_in_order(requests: Sequence[PlanRequest], tasks: Mapping[str, Task],
                  loads: Mapping[str, TaskLoad]) -> list[Plan | Exception]:
    """The plan (or the error) of each leading request, as if they ran one after another.

    A later request sees the live runs planned by earlier ones (counted here, since runs
    linked to no ledger row are inserted as given). A plan with ledger rows or a schedule
    advance changes what only the database knows (which slots are new, the task row): the
    first request for such a task again ends the list, to be planned after a write."""
    outcomes: list[Plan | Exception] = []
    counted = dict(loads)
    written: set[str] = set()
    for request in requests:
        if request.task_id in written:
            break
        task = tasks.get(request.task_id)
        if task is None:
            outcomes.append(NotFound(f"task {request.task_id} not found"))
            continue
        try:
            plan = plan_one(task, counted, request.planner)
        except Exception as exc:  # that caller's error only
            outcomes.append(exc)
            continue
        outcomes.append(plan)
        if plan.occurrences or plan.advance is not None:
            written.add(plan.task_id)
        else:
            count_live_runs(counted, plan.runs)
    return outcomes


def count_live_runs(loads: dict[str, TaskLoad], runs: Iterable[Run]) -> None:
    """Add queued and running `runs` to the loads of their tasks."""
    for run in runs:
        if run.state in (RunState.QUEUED, RunState.RUNNING):
            load = loads.get(run.task_id, IDLE)
            loads[run.task_id] = TaskLoad(
                queued=load.queued + (run.state is RunState.QUEUED),
                running=load.running + (run.state is RunState.RUNNING))


async def apply_plans(tx: Tx, values: Values, plans: Sequence[Plan],
                      now: datetime | Sequence[datetime]) -> list[Plan]:
    """Write `plans`; return them as applied (slots already in the ledger and their runs
    removed). `now` is the instant of all plans, or one per plan (advanced tasks' updated_at)."""
    nows = [now] * len(plans) if isinstance(now, datetime) else list(now)
    occurrences = [o for p in plans for o in p.occurrences]
    new_slots = await insert_occurrences(tx, values, occurrences)
    # Every slot new (no other node fired any, none was skipped on request): as planned.
    applied = list(plans) if len(new_slots) == len(occurrences) \
        else [applied_part(plan, new_slots) for plan in plans]
    await insert_runs(tx, values, [run for plan in applied for run in plan.runs])
    await advance_tasks(tx, values, [(p.task_id, p.advance, at)
                                     for p, at in zip(applied, nows, strict=True) if p.advance])
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
                        advances: Sequence[tuple[str, ScheduleAdvance, datetime]]) -> None:
    """Write each task's new scheduling state, with updated_at = the instant given with it."""
    if not advances:
        return
    rows = [(task_id, values.time(advance.next_run_at, "next_run_at"),
             advance.schedule_enabled, advance.run_count,
             values.time(advance.last_run_at, "last_run_at"), values.time(now, "now"))
            for task_id, advance, now in advances]
    await tx.execute("advance_tasks", *values.rows(rows, ADVANCE_WIDTH))
