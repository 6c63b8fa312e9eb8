"""This node's execution slots (scheduler.max_concurrent)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Capacity:
    """Counts executing runs; tree children waiting for a slot go before new claims."""

    def __init__(self, limit: int, on_release: Callable[[], None]) -> None:
        self.limit = max(limit, 1)
        self.used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_release = on_release

    def free_for_claims(self) -> int:
        """Slots the dispatcher may fill with newly claimed runs."""
        return max(0, self.limit - self.used - len(self._waiters))

    def take(self, count: int) -> None:
        """Occupy slots for runs just claimed (they were counted free a moment ago)."""
        self.used += count

    async def acquire(self) -> None:
        """Wait for a slot (tree children); slots are handed over in arrival order."""
        if self.used < self.limit and not self._waiters:
            self.used += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we gave up: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Free a slot: hand it to the first waiting child, else to the claim loop."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.used = max(0, self.used - 1)
        self._on_release()
