"""Calling change listeners: plain or async callbacks, one failure never stops the others.

SQLite has no LISTEN/NOTIFY, so its stores meet in a process-wide channel per database
file: a notify reaches every listener of the same file in this process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

ChangeCallback = Callable[[], Awaitable[None] | None]


class Listeners:
    """Callbacks to call on a change, and the async ones still running."""

    def __init__(self) -> None:
        self.callbacks: list[ChangeCallback] = []
        self._running: set[asyncio.Future[None]] = set()

    def add(self, callback: ChangeCallback) -> None:
        self.callbacks.append(callback)

    def deliver(self) -> None:
        """Call every callback; awaitables they return run as tasks."""
        for callback in list(self.callbacks):
            try:
                outcome = callback()
            except Exception as exc:  # a listener's bug must not break the notifier
                logger.error("change listener failed", exc_info=exc,
                             extra={"action": "change_listener_failed"})
                continue
            if inspect.isawaitable(outcome):
                future = asyncio.ensure_future(outcome)
                self._running.add(future)
                future.add_done_callback(self._finished)

    def _finished(self, future: asyncio.Future[None]) -> None:
        self._running.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.error("change listener failed", exc_info=future.exception(),
                         extra={"action": "change_listener_failed"})

    async def close(self) -> None:
        """Forget the callbacks and cancel those still running."""
        self.callbacks.clear()
        running = list(self._running)
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)


class LocalChannel:
    """Listeners of one database file within this process."""

    # Process-wide on purpose: two stores on one file in one process must hear each other.
    _channels: dict[str, set[Listeners]] = {}

    def __init__(self, key: str) -> None:
        self._key = key
        self.listeners = Listeners()
        self._channels.setdefault(key, set()).add(self.listeners)

    @classmethod
    def notify(cls, key: str) -> None:
        """Deliver to every listener of the file `key` in this process."""
        for listeners in list(cls._channels.get(key, ())):
            listeners.deliver()

    async def close(self) -> None:
        members = self._channels.get(self._key, set())
        members.discard(self.listeners)
        if not members:
            self._channels.pop(self._key, None)
        await self.listeners.close()
