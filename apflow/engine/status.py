"""Task status written by the engine (pending → in_progress → completed/failed/cancelled)."""

from __future__ import annotations

import asyncio
import logging

from apflow.clock import Clock
from apflow.domain.enums import RunState, TaskStatus
from apflow.store.base import Store, TaskOutcome

logger = logging.getLogger(__name__)

# A status write that fails (a cut connection, a failover) is tried again: the run is on
# record, but a task left "in_progress" forever would mislead everyone reading it.
WRITE_ATTEMPTS = 6
RETRY_PAUSE_SECONDS = 0.2  # times the attempt number: 0.2 s, 0.4 s, ... (3 s in all)

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
    a task replaces an unwritten older one, so a burst of short runs writes each task once."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: dict[str, tuple[TaskOutcome, list[asyncio.Future[None]]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def post(self, outcome: TaskOutcome) -> asyncio.Future[None]:
        """Queue `outcome`; the future completes once it (or a newer one) is written."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _, waiting = self._pending.pop(outcome.task_id, (outcome, []))
        self._pending[outcome.task_id] = (outcome, [*waiting, future])
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def drain(self) -> None:
        """Wait until everything posted so far is written."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                await self._write(list(batch.values()))
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
