"""The retention loop: on a fixed cadence, prune finished runs (with their logs) and ledger
rows past `retention.keep_runs` / `retention.keep_for` (or a task's own keep_runs /
keep_for_seconds), a batch per transaction with a pause between batches, so no lock is held
for long and the other loops keep their turn. Live runs are never pruned.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from apflow.clock import Clock
from apflow.engine.settings import EngineSettings
from apflow.engine.waiting import wait_event
from apflow.store.base import Store

logger = logging.getLogger(__name__)

BATCH = 500
BATCH_PAUSE_SECONDS = 0.05
MAX_BATCHES_PER_PASS = 200  # a huge backlog is worked off over several passes


@dataclass(frozen=True)
class Pruned:
    """What one pass deleted."""

    runs: int = 0
    occurrences: int = 0


class Retention:
    """Prunes on a cadence until stopped."""

    def __init__(self, store: Store, clock: Clock, settings: EngineSettings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """End the loop after the batch in progress."""
        self._stop.set()

    async def run(self) -> None:
        """A pass now, then one every retention_interval seconds."""
        while not self._stop.is_set():
            try:
                await self.prune()
            except Exception as exc:  # a store outage must not end the loop
                logger.error("retention pass failed", extra={
                    "action": "retention_error", "error": str(exc)[:200]})
            await wait_event(self._stop, self._settings.retention_interval)

    async def prune(self) -> Pruned:
        """One pass: batches until nothing more is due (or the pass's cap)."""
        keep_runs, keep_for = self._settings.keep_runs, self._settings.keep_for
        if keep_runs is None and keep_for is None \
                and not await self._store.retention_configured():
            return Pruned()
        runs = occurrences = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            if self._stop.is_set():
                break
            now = self._clock.now()
            deleted_runs = await self._store.prune_runs(now, keep_runs=keep_runs,
                                                        keep_for_seconds=keep_for, limit=BATCH)
            deleted_rows = await self._store.prune_occurrences(now, keep_for_seconds=keep_for,
                                                               limit=BATCH)
            runs, occurrences = runs + deleted_runs, occurrences + deleted_rows
            if deleted_runs < BATCH and deleted_rows < BATCH:
                break
            await asyncio.sleep(BATCH_PAUSE_SECONDS)
        if runs or occurrences:
            logger.info("pruned", extra={"action": "retention_pruned", "runs": runs,
                                         "occurrences": occurrences})
        return Pruned(runs, occurrences)
