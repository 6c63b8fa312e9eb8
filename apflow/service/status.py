"""scheduler.status: this node's loops, every registered node, and the queue at a glance."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from apflow.domain.enums import RunState
from apflow.domain.models import Run
from apflow.service.context import Context
from apflow.service.params import Params
from apflow.service.views import iso, node_view
from apflow.store.base import RunFilter, TaskFilter

MAX_RUNNING_CHECKED = 200
HISTORY = 20  # past successful runs of a task that set its expected duration
DEGRADED_FACTOR = 2.0


async def scheduler_status(ctx: Context, params: Params) -> dict[str, Any]:
    """scheduler.status: this node's loops, runs by state, due schedules; the node list for
    admins only (counts are global: they name no task)."""
    params.done()
    now = ctx.clock.now()
    runs = await ctx.store.count_runs_by_state()
    owner = ctx.owner_filter(None)
    enabled = await ctx.store.count_tasks(TaskFilter(user_id=owner, scheduled_only=True,
                                                     schedule_enabled=True))
    due = await ctx.store.due_tasks(now, limit=1000, user_id=owner)
    status: dict[str, Any] = {
        "now": iso(now),
        "node": ctx.engine.status() if ctx.engine is not None else None,
        "scheduled_tasks": enabled,
        "due_tasks": len(due),
        "next_due_at": iso(await ctx.store.next_due_at()) if ctx.principal.is_admin
        else iso(min((task.next_run_at for task in due if task.next_run_at), default=None)),
        "runs": {state.value: runs.get(state, 0) for state in RunState},
    }
    status["degraded_runs"] = await degraded_runs(ctx, now, owner)
    if ctx.principal.is_admin:
        status["nodes"] = [node_view(node) for node in await ctx.store.list_nodes()]
    return status


async def degraded_runs(ctx: Context, now: datetime, owner: str | None) -> list[dict[str, Any]]:
    """Running runs going for more than twice their task's usual duration (the median of its
    last successful runs): likely stuck, worth a look."""
    running = await ctx.store.list_runs(RunFilter(state=RunState.RUNNING, user_id=owner),
                                        limit=MAX_RUNNING_CHECKED)
    expected: dict[str, float | None] = {}
    flagged = []
    for run in running:
        if run.started_at is None:
            continue
        if run.task_id not in expected:
            expected[run.task_id] = await usual_duration(ctx, run.task_id)
        usual = expected[run.task_id]
        going = (now - run.started_at).total_seconds()
        if usual is not None and going > DEGRADED_FACTOR * max(usual, 1.0):
            flagged.append({"run_id": run.id, "task_id": run.task_id, "node": run.node,
                            "running_seconds": round(going, 3),
                            "usual_seconds": round(usual, 3)})
    return flagged


async def usual_duration(ctx: Context, task_id: str) -> float | None:
    """Median duration of the task's last successful runs, or None without history."""
    done = await ctx.store.list_runs(RunFilter(task_id=task_id, state=RunState.SUCCEEDED),
                                     limit=HISTORY)
    durations = [duration(run) for run in done]
    known = [d for d in durations if d is not None]
    return statistics.median(known) if known else None


def duration(run: Run) -> float | None:
    """Seconds from start to finish."""
    if run.started_at is None or run.finished_at is None:
        return None
    return (run.finished_at - run.started_at).total_seconds()
