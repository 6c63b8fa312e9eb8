"""Group commit: run requests in batches, one batch in flight at a time.

A request that arrives while a batch is running waits in a pending list; when that batch is
done, the next one takes every pending request (up to a cap). Nothing waits on a timer: the
first request of an idle batcher starts at once, and a batch is whatever piled up while the
previous one ran. Under load that turns N transactions into a few, each serving many callers.

The batch function answers each request on its own (a value, or the exception meant for that
caller only). If it raises instead, the batch as a whole failed (a driver error, say): each of
its requests is then run alone, so one bad request cannot fail its neighbours.

Batches run in a task of their own, not in a caller's: a caller that is cancelled stops
waiting, but cannot cancel a transaction that also carries other callers' requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

MAX_BATCH = 256

Request = TypeVar("Request")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Pending(Generic[Request, Result]):
    request: Request
    future: asyncio.Future[Result]


class Batcher(Generic[Request, Result]):
    """Runs submitted requests in batches while one batch is in flight."""

    def __init__(self, run_batch: Callable[[Sequence[Request]],
                                           Awaitable[Sequence[Result | Exception]]],
                 run_one: Callable[[Request], Awaitable[Result]], *,
                 name: str, max_batch: int = MAX_BATCH) -> None:
        self._run_batch = run_batch
        self._run_one = run_one
        self._name = name
        self._max_batch = max_batch
        self._pending: list[Pending[Request, Result]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, request: Request) -> Result:
        """The result of `request`, run in the next batch; its own exception if it failed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(request, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name=f"{self._name} batches")
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = [item for item in self._pending[:self._max_batch]
                         if not item.future.done()]
                del self._pending[:self._max_batch]
                if batch:
                    await self._serve(batch)
        finally:
            self._drainer = None
            for item in self._pending:  # left only if this task was cancelled: none may hang
                item.future.cancel()
            self._pending.clear()

    async def _serve(self, batch: list[Pending[Request, Result]]) -> None:
        try:
            outcomes = await self._run_batch([item.request for item in batch])
        except asyncio.CancelledError:
            for item in batch:
                item.future.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc)
                return
            logger.warning("a batch failed; running its requests one by one", exc_info=exc,
                           extra={"action": "batch_failed", "batch": self._name,
                                  "size": len(batch), "error": str(exc)})
            for item in batch:
                await self._serve_alone(item)
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            _settle(item.future, outcome)

    async def _serve_alone(self, item: Pending[Request, Result]) -> None:
        if item.future.done():
            return
        try:
            outcome: Result | Exception = await self._run_one(item.request)
        except asyncio.CancelledError:
            item.future.cancel()
            raise
        except Exception as exc:
            outcome = exc
        _settle(item.future, outcome)


def _settle(future: asyncio.Future[Result], outcome: Result | Exception) -> None:
    if future.done():  # the caller stopped waiting
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
