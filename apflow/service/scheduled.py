"""Schedule use cases: tasks.scheduled.*, tasks.skip and the occurrence ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from apflow.domain.enums import OccurrenceOutcome, ScheduleType, TaskStatus
from apflow.domain.errors import Conflict, InvalidParams
from apflow.domain.models import Occurrence, Task
from apflow.domain.plans import Plan, ScheduleAdvance, TaskLoad
from apflow.schedules import MAX_PREVIEW_COUNT, ScheduleSpec, iter_fires, preview
from apflow.service.context import Context
from apflow.service.params import Params, check_json, check_text
from apflow.service.scheduling import completed, initialised, spec_of
from apflow.service.views import occurrence_view, preview_view, task_view
from apflow.store.base import OccurrenceFilter, TaskFilter

MAX_LIST = 1000
MAX_SKIP = 1000


async def scheduled_list(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.list: tasks with a schedule (enabled only unless enabled_only is false)."""
    include_disabled = not params.flag("enabled_only", True)
    flt = TaskFilter(
        user_id=ctx.owner_filter(params.optional_id("user_id")),
        status=params.enum("status", TaskStatus),
        schedule_type=params.enum("schedule_type", ScheduleType),
        schedule_enabled=None if include_disabled else True,
        scheduled_only=True,
    )
    limit = params.integer("limit", 100, 1, MAX_LIST)
    offset = params.integer("offset", 0, 0)
    params.done()
    tasks = await ctx.store.list_tasks(flt, limit=limit, offset=offset)
    total = await ctx.store.count_tasks(flt)
    return {"tasks": [task_view(task) for task in tasks], "total": total, "limit": limit,
            "offset": offset}


async def scheduled_due(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.due: enabled schedules whose next_run_at has come, earliest first."""
    limit = params.integer("limit", 100, 1, MAX_LIST)
    user_id = ctx.owner_filter(params.optional_id("user_id"))
    params.done()
    tasks = await ctx.store.due_tasks(ctx.clock.now(), limit=limit, user_id=user_id)
    return {"tasks": [task_view(task) for task in tasks], "total": len(tasks)}


async def scheduled_init(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.init: next_run_at = the first slot strictly after from_time (default
    now); an interval schedule is anchored at from_time."""
    task_id = params.id("task_id")
    from_time = params.instant("from_time")
    params.done()
    task = await ctx.task(task_id)
    if spec_of(task) is None:
        raise InvalidParams("the task has no schedule to initialise", field="task_id")
    now = ctx.clock.now()
    ready = initialised(replace(task, updated_at=now), from_time or now)
    saved = await ctx.store.update_task(ready, expected_updated_at=task.updated_at)
    await ctx.changed()
    return task_view(saved)


async def scheduled_complete(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.complete: an external scheduler ran the due slot; count it, record the
    outcome on the task and in the ledger, and move next_run_at to the following slot."""
    task_id = params.id("task_id")
    success = params.flag("success", True)
    result = check_json(params.raw("result", None), "result")
    error = params.text("error", max_length=2000)
    params.done()
    task = await ctx.task(task_id)
    now = ctx.clock.now()
    advanced, slot = completed(task, now)
    status = TaskStatus.COMPLETED if success else TaskStatus.FAILED
    advanced = replace(advanced, status=status, result=result,
                       error=None if success else (error or "failed"),
                       progress=1.0 if success else task.progress, updated_at=now)
    if slot is not None:
        await ctx.store.record_occurrences([Occurrence(
            task_id=task.id, scheduled_for=slot, outcome=OccurrenceOutcome.FIRED,
            recorded_at=now, detail="completed by an external scheduler",
            requested_by=ctx.principal.user_id)])
    saved = await ctx.store.update_task(advanced, expected_updated_at=task.updated_at)
    await ctx.changed()
    return task_view(saved)


async def scheduled_preview(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.preview: the next `count` instants of any schedule, DST moves flagged."""
    schedule_type = params.enum("schedule_type", ScheduleType)
    if schedule_type is None:
        raise InvalidParams("is required", field="schedule_type")
    expression = check_text(params.raw("schedule_expression"), "schedule_expression",
                            max_length=512, allow_empty=False, single_line=True)
    timezone = params.text("timezone", "UTC", max_length=64) or "UTC"
    count = params.integer("count", 10, 1, MAX_PREVIEW_COUNT)
    from_time = params.instant("from_time") or ctx.clock.now()
    spec = ScheduleSpec(schedule_type=schedule_type, expression=expression.strip(),
                        timezone=timezone, start_at=params.instant("schedule_start_at"),
                        end_at=params.instant("schedule_end_at"),
                        max_runs=params.optional_integer("max_runs", 1))
    params.done()
    items = preview(spec, from_time, count)
    return {"schedule_type": schedule_type.value, "schedule_expression": spec.expression,
            "timezone": timezone, "from_time": from_time.isoformat(),
            "occurrences": [preview_view(item) for item in items]}


async def skip(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.skip: skip the next `count` slots, ledgered with who asked and why."""
    task_id = params.id("task_id")
    count = params.integer("count", 1, 1, MAX_SKIP)
    reason = params.text("reason", max_length=500)
    params.done()
    await ctx.task(task_id)
    who = ctx.principal.user_id
    skipped: list[datetime] = []

    def planner(task: Task, load: TaskLoad) -> Plan:
        spec = spec_of(task)
        if spec is None or not task.schedule_enabled or task.next_run_at is None:
            raise Conflict(f"task {task.id} has no enabled schedule with a next slot")
        now = ctx.clock.now()
        rest = iter_fires(spec, task.next_run_at, task.run_count)
        slots = [task.next_run_at]
        while len(slots) < count and (slot := next(rest, None)) is not None:
            slots.append(slot)
        following = next(rest, None)
        skipped.extend(slots)
        detail = f"skipped on request: {reason}" if reason else "skipped on request"
        occurrences = tuple(Occurrence(task_id=task.id, scheduled_for=slot,
                                       outcome=OccurrenceOutcome.SKIPPED, recorded_at=now,
                                       detail=detail, requested_by=who) for slot in slots)
        advance = ScheduleAdvance(next_run_at=following, schedule_enabled=following is not None,
                                  run_count=task.run_count, last_run_at=task.last_run_at)
        return Plan(task_id=task.id, advance=advance, occurrences=occurrences)

    await ctx.store.apply_to_task(task_id, ctx.clock.now(), planner)
    await ctx.changed()
    task = await ctx.task(task_id)
    return {**task_view(task), "skipped": [slot.isoformat() for slot in skipped]}


async def occurrences(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.occurrences.list: the ledger of a task, newest slot first."""
    task_id = params.id("task_id")
    flt = OccurrenceFilter(task_id=task_id,
                           outcome=params.enum("outcome", OccurrenceOutcome),
                           since=params.instant("since"), until=params.instant("until"))
    limit = params.integer("limit", 100, 1, MAX_LIST)
    offset = params.integer("offset", 0, 0)
    params.done()
    await visible_history(ctx, task_id)
    rows = await ctx.store.list_occurrences(flt, limit=limit, offset=offset)
    return {"task_id": task_id, "occurrences": [occurrence_view(row) for row in rows],
            "limit": limit, "offset": offset}


async def visible_history(ctx: Context, task_id: str) -> None:
    """A task's history is readable by its owner, and by admins after the task is deleted."""
    if ctx.principal.is_admin:
        return
    await ctx.task(task_id)
