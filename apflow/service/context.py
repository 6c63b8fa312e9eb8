"""What every use case gets: the store, the clock, the engine (if this process runs one), the
executor registry, the exclusion calendar cache (if any source is allowed), and who is
calling; plus the ownership checks they all share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apflow.clock import Clock
from apflow.config import Config
from apflow.domain.errors import Forbidden, NotFound
from apflow.domain.models import Run, Task
from apflow.executors.registry import ExecutorRegistry
from apflow.service.principal import Principal
from apflow.store.base import Store

if TYPE_CHECKING:
    from apflow.engine.engine import Engine
    from apflow.gateway.exclusion_cache import ExclusionCache


@dataclass(frozen=True)
class Context:
    """One call's dependencies and caller."""

    store: Store
    clock: Clock
    engine: Engine | None
    registry: ExecutorRegistry
    config: Config
    principal: Principal
    calendars: ExclusionCache | None = None  # exclusion calendars, when any source is allowed

    async def task(self, task_id: str) -> Task:
        """The task if the caller may see it; NotFound alike for absent and someone else's."""
        try:
            task = await self.store.get_task(task_id)
        except NotFound:
            raise NotFound(f"task {task_id} not found") from None
        if not self.principal.owns(task.user_id):
            raise NotFound(f"task {task_id} not found")
        return task

    async def subtree(self, task_id: str) -> list[Task]:
        """The visible task and its descendants, parent before child."""
        await self.task(task_id)
        return await self.store.subtree(task_id)

    async def run(self, run_id: str) -> Run:
        """The run if the caller may see it (by the owner recorded on the run)."""
        try:
            run = await self.store.get_run(run_id)
        except NotFound:
            raise NotFound(f"run {run_id} not found") from None
        if not self.principal.owns(run.user_id):
            raise NotFound(f"run {run_id} not found")
        return run

    def owner_filter(self, requested: str | None) -> str | None:
        """The user_id a listing is limited to: the caller's own unless an admin asks."""
        if self.principal.is_admin:
            return requested
        return self.principal.user_id

    def owner_for_new_task(self, requested: str | None) -> str:
        """Who owns a task being created: the caller, or anyone when an admin says so."""
        if requested is None or requested == self.principal.user_id:
            return self.principal.user_id
        if not self.principal.is_admin:
            raise Forbidden("only an admin may create tasks for another user", field="user_id")
        return requested

    async def changed(self) -> None:
        """Wake this node's loops and tell the other nodes that schedules or runs changed."""
        if self.engine is not None:
            self.engine.wake()
        await self.store.notify_change()

    def visible(self, tasks: Sequence[Task]) -> list[Task]:
        """The tasks the caller may see."""
        return [task for task in tasks if self.principal.owns(task.user_id)]
