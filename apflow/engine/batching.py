"""Group commit: concurrent callers share one store round trip.

Under load, runs finish faster than a database accepts single writes; whoever arrives
while a write is in flight joins the next batch, so an idle node still writes at once
and a busy one writes hundreds of rows per statement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from apflow.domain.errors import StoreError

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# Transient store failures are retried this often before the callers get the error.
WRITE_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.2


class BatchWriter(Generic[Item, Result]):
    """Collects items, writes them in batches, and answers each caller with its own result."""

    def __init__(self, write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
                 key_of_item: Callable[[Item], Hashable],
                 key_of_result: Callable[[Result], Hashable]) -> None:
        self._write = write
        self._key_of_item = key_of_item
        self._key_of_result = key_of_result
        self._pending: list[tuple[Item, asyncio.Future[Result | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result | None:
        """Write `item` with whatever else is pending; None if the store returned nothing for it."""
        future: asyncio.Future[Result | None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write_batch(batch)
        finally:
            self._flusher = None

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result | None]]]) -> None:
        try:
            results = await self._write_with_retries([item for item, _ in batch])
        except Exception as exc:  # every caller must hear about it, whatever it is
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        by_key = {self._key_of_result(result): result for result in results}
        for item, future in batch:
            if not future.done():
                future.set_result(by_key.get(self._key_of_item(item)))

    async def _write_with_retries(self, items: Sequence[Item]) -> Sequence[Result]:
        attempt = 1
        while True:
            try:
                return await self._write(items)
            except StoreError as exc:
                if attempt >= WRITE_ATTEMPTS:
                    raise
                logger.warning("store write failed, retrying", extra={
                    "action": "store_write_retry", "attempt": attempt, "error": str(exc)})
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
                attempt += 1
