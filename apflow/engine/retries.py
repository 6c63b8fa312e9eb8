"""Retries: the next attempt of a finished run, and the runs a lost node left behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from apflow.clock import Clock
from apflow.domain.enums import TaskStatus
from apflow.domain.models import Run, Task
from apflow.engine.ids import new_run_id
from apflow.engine.planning import plan_retry
from apflow.engine.runs import STOP_CANCELLED
from apflow.engine.status import StatusWriter
from apflow.store.base import Store, TaskOutcome

logger = logging.getLogger(__name__)


class Retrier:
    """Queues retries by each task's policy; a run whose cancel was requested is never retried."""

    def __init__(self, store: Store, clock: Clock, status: StatusWriter,
                 on_queued: Callable[[], None]) -> None:
        self._store = store
        self._clock = clock
        self._status = status
        self._on_queued = on_queued

    async def queue(self, finished: Iterable[tuple[Task, Run]]) -> list[Run]:
        """Queue the next attempt of each finished run its task's policy retries."""
        now = self._clock.now()
        retries = [retry for task, run in finished
                   if run.cancel_requested != STOP_CANCELLED
                   and (retry := plan_retry(task, run, now, new_run_id())) is not None]
        if retries:
            await self._store.insert_runs(retries)
            for retry in retries:
                logger.info("retry queued", extra={
                    "action": "retry_queued", "run_id": retry.id, "retry_of": retry.retry_of,
                    "task_id": retry.task_id, "attempt": retry.attempt,
                    "not_before": retry.not_before.isoformat()})
            self._on_queued()
        return retries

    async def crashed(self, runs: Sequence[Run]) -> list[Run]:
        """Runs another node (or this one, before a restart) left behind: status and retries.
        Tree children are not retried on their own: the root's retry re-runs the tree."""
        tops = [run for run in runs if run.parent_run_id is None]
        if not tops:
            return []
        tasks = {task.id: task for task in await self._store.get_tasks(
            sorted({run.task_id for run in tops}))}
        for run in tops:
            logger.warning("run crashed with its node", extra={
                "action": "run_crashed", "run_id": run.id, "task_id": run.task_id,
                "node": run.node, "end_reason": run.end_reason})
            if run.task_id in tasks:
                self._status.post(TaskOutcome(run.task_id, TaskStatus.FAILED,
                                              error=run.error or "the node running it was lost"))
        return await self.queue((tasks[run.task_id], run) for run in tops
                                if run.task_id in tasks)
