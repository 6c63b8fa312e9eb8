"""Task status written by the engine (pending → in_progress → completed/failed/cancelled)."""

from __future__ import annotations

import asyncio
import logging

from apflow.clock import Clock
from apflow.domain.enums import RunState, TaskStatus
from apflow.engine.waiting import wait_event
from apflow.store.base import Store, TaskOutcome

logger = logging.getLogger(__name__)

# A status write that fails (a cut connection, a failover) is tried again: the run is on
# record, but a task left "in_progress" forever would mislead everyone reading it.
WRITE_ATTEMPTS = 6
RETRY_PAUSE_SECONDS = 0.2  # times the attempt number: 0.2 s, 0.4 s, ... (3 s in all)
# How long a run's in_progress waits for the run's outcome before it is written anyway.
START_LINGER_SECONDS = 0.05

STATUS_OF_RUN_STATE = {
    RunState.SUCCEEDED: TaskStatus.COMPLETED,
    RunState.FAILED: TaskStatus.FAILED,
    RunState.TIMED_OUT: TaskStatus.FAILED,
    RunState.CRASHED: TaskStatus.FAILED,
    RunState.CANCELLED: TaskStatus.CANCELLED,
    RunState.SKIPPED: TaskStatus.CANCELLED,
    RunState.RUNNING: TaskStatus.IN_PROGRESS,
    RunState.QUEUED: TaskStatus.PENDING,
}


class StatusWriter:
    """Writes task outcomes in the background, in batches (group commit); a newer outcome of
    a task replaces an unwritten older one, so a burst of short runs writes each task once.

    A run's start (`started`) waits up to START_LINGER_SECONDS before it is written: a run
    that ends by then has only its outcome written (one task write per run instead of two,
    in a burst of short runs); a longer one shows in_progress that much later."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        # task id -> (outcome, its waiters, loop time from which it is written)
        self._pending: dict[str, tuple[TaskOutcome, list[asyncio.Future[None]], float]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._due_now = asyncio.Event()  # a pending outcome is due at once

    def post(self, outcome: TaskOutcome) -> asyncio.Future[None]:
        """Queue `outcome`, written at once; the future completes once it (or a newer one)
        is written."""
        return self._queue(outcome, 0.0)

    def started(self, task_id: str) -> asyncio.Future[None]:
        """Queue in_progress for a run that just started, written after the linger unless
        the run's outcome replaces it first."""
        return self._queue(TaskOutcome(task_id, TaskStatus.IN_PROGRESS, progress=0.0),
                           START_LINGER_SECONDS)

    def _queue(self, outcome: TaskOutcome, linger: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        _, waiting, _ = self._pending.pop(outcome.task_id, (outcome, [], 0.0))
        self._pending[outcome.task_id] = (outcome, [*waiting, future], loop.time() + linger)
        if not linger:
            self._due_now.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def drain(self) -> None:
        """Wait until everything posted so far is written (lingering starts at once)."""
        for task_id, (outcome, waiting, _) in list(self._pending.items()):
            self._pending[task_id] = (outcome, waiting, 0.0)
        self._due_now.set()
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                self._due_now.clear()
                now = loop.time()
                due = {task_id: entry for task_id, entry in self._pending.items()
                       if entry[2] <= now}
                if not due:
                    first = min(entry[2] for entry in self._pending.values())
                    await wait_event(self._due_now, first - now)
                    continue
                for task_id in due:
                    del self._pending[task_id]
                await self._write([(outcome, waiting) for outcome, waiting, _ in due.values()])
        finally:
            self._flusher = None

    async def _write(self, batch: list[tuple[TaskOutcome, list[asyncio.Future[None]]]]) -> None:
        outcomes = [outcome for outcome, _ in batch]
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                await self._store.set_task_outcomes(outcomes, self._clock.now())
                break
            except Exception as exc:  # the runs are already on record; keep trying a while
                if attempt == WRITE_ATTEMPTS:
                    logger.error("task status not written", extra={
                        "action": "task_status_failed", "tasks": len(batch),
                        "error": str(exc)})
                    break
                logger.warning("task status write failed, retrying", extra={
                    "action": "store_write_retry", "attempt": attempt, "error": str(exc)})
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
        for _, futures in batch:
            for future in futures:
                if not future.done():
                    future.set_result(None)
