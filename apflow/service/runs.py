"""Run use cases: tasks.run and tasks.runs.* (list, get, logs with follow, cancel)."""

from __future__ import annotations

from typing import Any

from apflow.domain.enums import RunState, Trigger
from apflow.domain.errors import Conflict, Forbidden
from apflow.domain.models import LogChunk, Run, Task
from apflow.domain.plans import Plan, TaskLoad
from apflow.engine.ids import new_run_id
from apflow.engine.planning import plan_manual
from apflow.service.context import Context
from apflow.service.params import Params, check_number
from apflow.service.views import chunk_view, run_view
from apflow.store.base import RunFilter

MAX_LIST = 1000
MAX_LOG_CHUNKS = 5000
MAX_FOLLOW_SECONDS = 60.0


async def run_now(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.run: queue a manual run under the task's overlap policy."""
    task_id = params.id("task_id")
    variables = params.string_map("variables") or {}
    params.done()
    return run_view(await trigger(ctx, task_id, Trigger.MANUAL, variables))


async def trigger(ctx: Context, task_id: str, kind: Trigger,
                  variables: dict[str, str]) -> Run:
    """Queue a run of a visible task that allows API triggers (manual or webhook)."""
    task = await ctx.task(task_id)
    if not task.api_trigger:
        raise Forbidden(f"task {task_id} has api_trigger false: only its schedule starts it")
    return await queue_run(ctx, task_id, kind, variables)


async def queue_run(ctx: Context, task_id: str, kind: Trigger,
                    variables: dict[str, str]) -> Run:
    """Queue a run of a task the caller was checked for (visible, api_trigger), as the
    caller: through this process's engine, else in the store for any running node."""
    who = ctx.principal.user_id
    if ctx.engine is not None:
        return await ctx.engine.trigger(task_id, kind, variables=variables, triggered_by=who)
    now = ctx.clock.now()
    run_id = new_run_id()

    def planner(locked: Task, load: TaskLoad) -> Plan:
        return plan_manual(locked, load, now, kind, variables, who, run_id)

    plan = await ctx.store.apply_to_task(task_id, now, planner)
    await ctx.store.notify_change()  # a running node picks it up
    return next(run for run in plan.runs if run.id == run_id)


async def runs_list(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.runs.list: newest first, filtered by task, state, trigger."""
    task_id = params.optional_id("task_id")
    flt = RunFilter(task_id=task_id, user_id=ctx.owner_filter(params.optional_id("user_id")),
                    state=params.enum("state", RunState),
                    trigger=params.enum("trigger", Trigger),
                    parent_run_id=params.optional_id("parent_run_id"))
    limit = params.integer("limit", 100, 1, MAX_LIST)
    offset = params.integer("offset", 0, 0)
    params.done()
    runs = await ctx.store.list_runs(flt, limit=limit, offset=offset)
    return {"runs": [run_view(run) for run in runs], "limit": limit, "offset": offset}


async def runs_get(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.runs.get: one run with every field of DESIGN.md section 4."""
    run_id = params.id("run_id")
    params.done()
    return run_view(await ctx.run(run_id))


async def runs_logs(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.runs.logs: chunks after `after_seq`; `follow` waits up to `timeout` seconds for
    new output while the run is live."""
    run_id = params.id("run_id")
    after_seq = params.integer("after_seq", -1, -1)
    limit = params.integer("limit", 1000, 1, MAX_LOG_CHUNKS)
    follow = params.flag("follow", False)
    timeout = params.raw("timeout", None)
    params.done()
    wait = 30.0 if timeout is None else _timeout(timeout)
    run = await ctx.run(run_id)
    chunks = await ctx.store.read_logs(run_id, after_seq=after_seq, limit=limit)
    if not chunks and follow and not run.state.finished and ctx.engine is not None:
        chunks = (await ctx.engine.follow_logs(run_id, after_seq, wait))[:limit]
        run = await ctx.store.get_run(run_id)
    return logs_page(run, chunks, after_seq)


def _timeout(value: object) -> float:
    return check_number(value, "timeout", 0, MAX_FOLLOW_SECONDS)


def logs_page(run: Run, chunks: list[LogChunk], after_seq: int) -> dict[str, Any]:
    """One page of a run's log."""
    next_seq = chunks[-1].seq if chunks else after_seq
    return {"run_id": run.id, "state": run.state.value, "finished": run.state.finished,
            "chunks": [chunk_view(chunk) for chunk in chunks], "next_seq": next_seq,
            "text": "".join(chunk.text for chunk in chunks)}


async def runs_cancel(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.runs.cancel: a queued run ends at once, a running one is stopped; no retries."""
    run_id = params.id("run_id")
    params.done()
    run = await ctx.run(run_id)
    if run.state.finished:
        raise Conflict(f"run {run_id} has already finished ({run.state.value})")
    if ctx.engine is not None:
        cancelled = await ctx.engine.cancel(run_id)
    else:
        cancelled = await ctx.store.cancel_run(run_id, ctx.clock.now())
        await ctx.store.notify_change()
    return run_view(cancelled)
