"""Task use cases: create, read, change, delete, list, tree, pause and resume."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from apflow.domain.enums import RunState, TaskStatus
from apflow.domain.errors import Conflict, Forbidden, InvalidParams, NotFound
from apflow.domain.models import Task
from apflow.engine.trees import dependency_cycle
from apflow.service.context import Context
from apflow.service.params import Params
from apflow.service.scheduling import SCHEDULE_STATE_FIELDS, check_schedule, initialised, resumed
from apflow.service.taskfields import read_fields
from apflow.service.views import MASK, task_view
from apflow.store.base import RunFilter, TaskFilter

MAX_LIST = 1000
CALENDAR_FIELD = "exclusion_calendar"
MAX_SIBLINGS = 10_000


def new_task_id() -> str:
    """A fresh task id."""
    return str(uuid.uuid4())


def typed(fields: dict[str, Any]) -> dict[str, Any]:
    """Field values as the Task dataclass holds them."""
    values = dict(fields)
    if "dependencies" in values:
        values["dependencies"] = tuple(values["dependencies"])
    return values


async def create(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.create: a new task (schedule initialised when enabled)."""
    fields = read_fields(params)
    task_id = params.optional_id("id") or new_task_id()
    params.done()
    if "name" not in fields:
        raise InvalidParams("is required", field="name")
    owner = ctx.owner_for_new_task(fields.pop("user_id", None))
    now = ctx.clock.now()
    task = Task(id=task_id, created_at=now, updated_at=now, user_id=owner, **typed(fields))
    await check_definition(ctx, task, None)
    task = initialised(task, now)
    try:
        created = await ctx.store.create_task(task)
    except Conflict:
        raise Conflict(f"a task with id {task_id} already exists", field="id") from None
    if created.schedule_enabled:
        await ctx.changed()
    return task_view(created)


async def get(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.get: one task (someone else's answers -32004, like a missing one)."""
    task_id = params.id("task_id")
    params.done()
    return task_view(await ctx.task(task_id))


async def update(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.update: change the given fields; a schedule change recomputes next_run_at."""
    task_id = params.id("task_id")
    fields = read_fields(params)
    params.done()
    task = await ctx.task(task_id)
    owner = fields.pop("user_id", task.user_id)
    if owner != task.user_id and not ctx.principal.is_admin:
        raise Forbidden("only an admin may give a task to another user", field="user_id")
    if "env" in fields:
        fields["env"] = unmasked(fields["env"], task.env)
    now = ctx.clock.now()
    changed = replace(task, **typed(fields), user_id=owner, updated_at=now)
    await check_definition(ctx, changed, task)
    if schedule_state(changed) != schedule_state(task):
        changed = initialised(changed, now)
    saved = await ctx.store.update_task(changed, expected_updated_at=task.updated_at)
    await ctx.changed()
    return task_view(saved)


def unmasked(new: dict[str, str], old: Mapping[str, str]) -> dict[str, str]:
    """A read-back env sent again: a masked value means "keep the stored secret"."""
    return {key: old[key] if value == MASK and key in old else value
            for key, value in new.items()}


def schedule_state(task: Task) -> tuple[Any, ...]:
    """The fields whose change makes a schedule start over."""
    return tuple(getattr(task, name) for name in SCHEDULE_STATE_FIELDS)


async def delete(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.delete: the task, its subtree and their future slots; live runs are cancelled."""
    task_id = params.id("task_id")
    params.done()
    tasks = await ctx.subtree(task_id)
    ids = [task.id for task in tasks]
    cancelled = await cancel_live_runs(ctx, ids)
    deleted = await ctx.store.delete_tasks(ids)
    await ctx.changed()
    return {"task_id": task_id, "deleted": deleted, "deleted_ids": ids,
            "cancelled_runs": cancelled}


async def cancel_live_runs(ctx: Context, task_ids: list[str]) -> list[str]:
    """Cancel every queued or running run of these tasks; their ids."""
    cancelled: list[str] = []
    for task_id in task_ids:
        for state in (RunState.QUEUED, RunState.RUNNING):
            runs = await ctx.store.list_runs(RunFilter(task_id=task_id, state=state),
                                             limit=MAX_LIST)
            for run in runs:
                try:
                    if ctx.engine is not None:
                        await ctx.engine.cancel(run.id)
                    else:
                        await ctx.store.cancel_run(run.id, ctx.clock.now(),
                                                   reason="task_deleted")
                except (Conflict, NotFound):
                    continue  # it finished meanwhile
                cancelled.append(run.id)
    return cancelled


async def list_tasks(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.list: filters, limit and offset; oldest first."""
    status = params.enum("status", TaskStatus)
    flt = TaskFilter(
        user_id=ctx.owner_filter(params.optional_id("user_id")),
        status=status,
        parent_id=params.optional_id("parent_id"),
        roots_only=params.flag("roots_only", False),
        name=params.text("name", max_length=200),
    )
    limit = params.integer("limit", 100, 1, MAX_LIST)
    offset = params.integer("offset", 0, 0)
    params.done()
    if not ctx.principal.is_admin and params.given().get("user_id") not in (
            None, ctx.principal.user_id):
        return {"tasks": [], "total": 0, "limit": limit, "offset": offset}
    tasks = await ctx.store.list_tasks(flt, limit=limit, offset=offset)
    total = await ctx.store.count_tasks(flt)
    return {"tasks": [task_view(task) for task in tasks], "total": total, "limit": limit,
            "offset": offset}


async def tree(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.tree: the task with its descendants nested under `children`."""
    task_id = params.id("task_id")
    params.done()
    tasks = await ctx.subtree(task_id)
    nodes = {task.id: {**task_view(task), "children": []} for task in tasks}
    for task in tasks[1:]:
        if task.parent_id in nodes:
            nodes[task.parent_id]["children"].append(nodes[task.id])
    return nodes[task_id]


async def pause(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.pause: stop firing; history and the grid are kept for resume."""
    task_id = params.id("task_id")
    params.done()
    task = await ctx.task(task_id)
    if task.schedule_type is None:
        raise Conflict(f"task {task_id} has no schedule to pause")
    if not task.schedule_enabled:
        return task_view(task)
    saved = await ctx.store.update_task(
        replace(task, schedule_enabled=False, updated_at=ctx.clock.now()),
        expected_updated_at=task.updated_at)
    await ctx.changed()
    return task_view(saved)


async def resume(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.resume: fire again from the next slot; slots due while paused are ledgered."""
    task_id = params.id("task_id")
    params.done()
    task = await ctx.task(task_id)
    if task.schedule_type is None:
        raise Conflict(f"task {task_id} has no schedule to resume")
    if task.schedule_enabled:
        return task_view(task)
    now = ctx.clock.now()
    enabled, slept = resumed(task, now, ctx.principal.user_id)
    if slept:
        await ctx.store.record_occurrences(slept)
    saved = await ctx.store.update_task(replace(enabled, updated_at=now),
                                        expected_updated_at=task.updated_at)
    await ctx.changed()
    return task_view(saved)


# definition checks ------------------------------------------------------------------------


async def check_definition(ctx: Context, task: Task, before: Task | None) -> None:
    """Executor, schedule, exclusion calendar, parent and dependencies of a task to be saved."""
    if before is None or task.executor != before.executor:
        ctx.registry.validate(task.executor)
    check_schedule(task)
    if task.exclusion_calendar is not None and (
            before is None or task.exclusion_calendar != before.exclusion_calendar):
        await check_exclusion_calendar(ctx, task.exclusion_calendar)
    if before is None or task.parent_id != before.parent_id:
        await check_parent(ctx, task, before is not None)
    if before is None or task.dependencies != before.dependencies \
            or task.parent_id != before.parent_id:
        await check_dependencies(ctx, task)


async def check_exclusion_calendar(ctx: Context, source: str) -> None:
    """The source is allow-listed and holds a valid calendar (loaded now, within the cache's
    fetch timeout), so a typo or a broken file is refused here, not found out on a holiday."""
    if ctx.calendars is None:
        raise InvalidParams("exclusion calendars are not enabled: allow a directory with "
                            "calendars.allowed_dirs or a URL prefix with "
                            "calendars.allowed_urls in the config", field=CALENDAR_FIELD)
    try:
        ctx.calendars.check_allowed(source)
    except Forbidden as error:  # a bad value in the params, not a question of who is asking
        raise InvalidParams(f"{error.message}; allow it with calendars.allowed_dirs or "
                            "calendars.allowed_urls in the config",
                            field=CALENDAR_FIELD) from None
    await ctx.calendars.get(source, ctx.clock.now())


async def check_parent(ctx: Context, task: Task, existing: bool) -> None:
    """The parent exists, is visible, has the same owner, and is not inside the task."""
    if task.parent_id is None:
        return
    try:
        parent = await ctx.task(task.parent_id)
    except NotFound:
        raise InvalidParams(f"no task {task.parent_id}", field="parent_id") from None
    if parent.user_id != task.user_id:
        raise InvalidParams("the parent belongs to another user", field="parent_id")
    if existing:
        inside = {t.id for t in await ctx.store.subtree(task.id)}
        if parent.id in inside:
            raise InvalidParams("a task cannot be moved under itself or its descendants",
                                field="parent_id")


async def check_dependencies(ctx: Context, task: Task) -> None:
    """Dependencies name visible siblings (same parent) and make no cycle."""
    if not task.dependencies:
        return
    if task.id in task.dependencies:
        raise InvalidParams("a task cannot depend on itself", field="dependencies")
    found = {t.id: t for t in ctx.visible(await ctx.store.get_tasks(list(task.dependencies)))}
    for dep in task.dependencies:
        other = found.get(dep)
        if other is None:
            raise InvalidParams(f"no task {dep}", field="dependencies")
        if other.parent_id != task.parent_id:
            raise InvalidParams(f"task {dep} is not a sibling (dependencies name tasks with "
                                "the same parent)", field="dependencies")
    flt = TaskFilter(parent_id=task.parent_id, roots_only=task.parent_id is None)
    siblings = [t for t in await ctx.store.list_tasks(flt, limit=MAX_SIBLINGS) if t.id != task.id]
    cycle = dependency_cycle([*siblings, task])
    if cycle:
        raise InvalidParams(f"dependency cycle among tasks {', '.join(cycle)}",
                            field="dependencies")
