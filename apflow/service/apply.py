"""tasks.apply: make the tasks of one declarative source match a list of definitions.

Tasks are matched by name among those an earlier apply of the same `source` created (their
`source` field records it). A definition without a match is created, one whose fields differ
is updated (fields left out of the file go back to their defaults), and a task of that
source no longer listed is deleted. Tasks made by hand are never touched: a definition
whose name is taken by one is refused. Applying an unchanged list changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from apflow.domain.errors import ApflowError, InvalidParams
from apflow.domain.models import Task
from apflow.service.context import Context
from apflow.service.params import Params, check_id, check_text
from apflow.service.scheduling import initialised
from apflow.service.taskfields import FIELD_RULES, read_fields
from apflow.service.tasks import (
    cancel_live_runs,
    check_definition,
    new_task_id,
    schedule_state,
    typed,
)
from apflow.store.base import TaskFilter

MAX_TASKS = 1000
NOT_IN_FILES = ("user_id", "parent_id", "dependencies")  # see docs/apply.md
COMPARED = tuple(name for name in FIELD_RULES if name not in NOT_IN_FILES)


def _default(name: str) -> Any:
    """A Task field's default value."""
    spec = next(f for f in fields(Task) if f.name == name)
    if spec.default is not MISSING:
        return spec.default
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    raise ValueError(f"task field {name} has no default")


DEFAULTS = {name: _default(name) for name in COMPARED if name != "name"}


@dataclass
class Plan:
    """What an apply does (or would do, under dry_run)."""

    create: list[Task] = field(default_factory=list)
    update: list[tuple[Task, Task]] = field(default_factory=list)  # (before, after)
    delete: list[Task] = field(default_factory=list)
    unchanged: list[Task] = field(default_factory=list)


def read_definitions(params: Params) -> list[dict[str, Any]]:
    """The checked fields of every listed definition; errors name `tasks[i].<field>`."""
    raw = params.raw("tasks")
    if not isinstance(raw, list):
        raise InvalidParams("must be an array of task definitions", field="tasks")
    if len(raw) > MAX_TASKS:
        raise InvalidParams(f"must list at most {MAX_TASKS} tasks", field="tasks")
    definitions: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        where = f"tasks[{index}]"
        try:
            definition = Params(item) if isinstance(item, dict) else None
            if definition is None:
                raise InvalidParams("must be an object")
            for name in NOT_IN_FILES:
                if definition.has(name):
                    raise InvalidParams("is not supported in an apply file", field=name)
            values = read_fields(definition)
            definition.done()
        except ApflowError as exc:
            raise InvalidParams(exc.message, field=where) from None
        if "name" not in values:
            raise InvalidParams("is required", field=f"{where}.name")
        if values["name"] in names:
            raise InvalidParams(f"{values['name']!r} is listed twice", field=f"{where}.name")
        names.add(values["name"])
        definitions.append(values)
    return definitions


def desired(values: dict[str, Any]) -> dict[str, Any]:
    """Every compared field: the definition's value, else the default."""
    return {name: values[name] if name in values else DEFAULTS[name] for name in COMPARED}


def differs(task: Task, wanted: dict[str, Any]) -> bool:
    """Does the stored task differ from the wanted fields?"""
    current = typed({name: getattr(task, name) for name in COMPARED})
    wanted = typed(wanted)
    return any(_plain(current[name]) != _plain(wanted[name]) for name in COMPARED)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


async def plan_apply(ctx: Context, source: str,
                     definitions: list[dict[str, Any]]) -> Plan:
    """Compare the definitions with the source's tasks (and refuse names taken by hand)."""
    owner = ctx.principal.user_id
    mine = await ctx.store.list_tasks(TaskFilter(user_id=owner, source=source),
                                      limit=MAX_TASKS * 2)
    by_name = {task.name: task for task in mine}
    plan = Plan()
    now = ctx.clock.now()
    for index, values in enumerate(definitions):
        wanted = desired(values)
        current = by_name.pop(values["name"], None)
        if current is None:
            taken = await ctx.store.list_tasks(
                TaskFilter(user_id=owner, name=values["name"]), limit=1)
            if taken:
                raise InvalidParams(f"a task named {values['name']!r} exists and was not "
                                    f"made by this source ({taken[0].id}); rename one of them",
                                    field=f"tasks[{index}].name")
            plan.create.append(Task(id=new_task_id(), created_at=now, updated_at=now,
                                    user_id=owner, source=source, **typed(wanted)))
        elif differs(current, wanted):
            plan.update.append((current, replace(current, **typed(wanted), updated_at=now)))
        else:
            plan.unchanged.append(current)
    plan.delete.extend(by_name.values())
    return plan


async def check_plan(ctx: Context, plan: Plan) -> None:
    """Every created or updated task must be valid, before anything is written."""
    checks = [(task, None) for task in plan.create] + [(after, before)
                                                       for before, after in plan.update]
    for task, before in checks:
        try:
            await check_definition(ctx, task, before)
        except ApflowError as exc:
            raise InvalidParams(f"task {task.name!r}: {exc.message}", field="tasks") from None


async def execute(ctx: Context, plan: Plan) -> None:
    """Write the plan: creates, updates, then deletes."""
    now = ctx.clock.now()
    for task in plan.create:
        await ctx.store.create_task(initialised(task, now))
    for before, after in plan.update:
        changed = initialised(after, now) if schedule_state(after) != schedule_state(before) \
            else after
        await ctx.store.update_task(changed, expected_updated_at=before.updated_at)
    for task in plan.delete:
        ids = [t.id for t in await ctx.store.subtree(task.id)]
        await cancel_live_runs(ctx, ids)
        await ctx.store.delete_tasks(ids)
    if plan.create or plan.update or plan.delete:
        await ctx.changed()


async def apply(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.apply: make the tasks of `source` match `tasks` (by name; hand-made tasks are
    never touched); `dry_run` only reports the plan (docs/apply.md)."""
    source = check_text(params.raw("source"), "source", max_length=200, allow_empty=False,
                        single_line=True)
    check_id(source, "source")
    definitions = read_definitions(params)
    dry_run = params.flag("dry_run", False)
    params.done()
    plan = await plan_apply(ctx, source, definitions)
    await check_plan(ctx, plan)
    if not dry_run:
        await execute(ctx, plan)
    return {
        "source": source,
        "dry_run": dry_run,
        "create": [task.name for task in plan.create],
        "update": [{"name": after.name, "fields": changed_fields(before, after)}
                   for before, after in plan.update],
        "delete": [task.name for task in plan.delete],
        "unchanged": [task.name for task in plan.unchanged],
    }


def changed_fields(before: Task, after: Task) -> list[str]:
    """Names of the compared fields that differ."""
    return [name for name in COMPARED
            if _plain(getattr(before, name)) != _plain(getattr(after, name))]

