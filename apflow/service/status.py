"""scheduler.status: this node's loops, every registered node, and the queue at a glance."""

from __future__ import annotations

from typing import Any

from apflow.domain.enums import RunState
from apflow.service.context import Context
from apflow.service.params import Params
from apflow.service.views import iso, node_view
from apflow.store.base import TaskFilter


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
    if ctx.principal.is_admin:
        status["nodes"] = [node_view(node) for node in await ctx.store.list_nodes()]
    return status
