"""PostgreSQL LISTEN on one dedicated connection that comes back after it drops.

A lost connection is noticed by asyncpg's termination callback, or by a ping that fails;
reconnecting backs off from 0.5 s to 30 s. After a reconnect every listener is called once,
because notifications sent while we were away are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from apflow.store.changes import ChangeCallback, Listeners

logger = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[Any]]  # returns an asyncpg.Connection
PING_SECONDS = 30.0
PING_TIMEOUT = 10.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


class ChangeListener:
    """Calls the listeners on every notification of `channel`."""

    def __init__(self, connect: Connect, channel: str, ping_sql: str) -> None:
        self._connect = connect
        self._channel = channel
        self._ping_sql = ping_sql
        self.listeners = Listeners()
        self._conn: Any = None
        self._lost = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self.reconnects = 0

    async def add(self, callback: ChangeCallback) -> None:
        """Add a listener; the first one opens the connection (errors propagate)."""
        if self._watch is None:
            await self._listen()
            self._watch = asyncio.create_task(self._keep_listening())
        self.listeners.add(callback)

    async def _listen(self) -> None:
        conn = await self._connect()
        self._lost.clear()
        conn.add_termination_listener(self._on_terminated)
        await conn.add_listener(self._channel, self._on_notification)
        self._conn = conn

    def _on_notification(self, *_: object) -> None:
        self.listeners.deliver()

    def _on_terminated(self, *_: object) -> None:
        self._lost.set()

    async def _keep_listening(self) -> None:
        while True:
            await self._until_lost()
            logger.warning("change listener lost its connection",
                           extra={"action": "listener_lost", "channel": self._channel})
            await self._reconnect()
            self.reconnects += 1
            self.listeners.deliver()

    async def _until_lost(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), PING_SECONDS)
                return
            except TimeoutError:
                if not await self._alive():
                    return

    async def _alive(self) -> bool:
        try:
            await asyncio.wait_for(self._conn.fetchval(self._ping_sql), PING_TIMEOUT)
        except Exception:  # any failure means: reconnect
            return False
        return True

    async def _reconnect(self) -> None:
        await self._drop_connection()
        delay = FIRST_BACKOFF
        while True:
            try:
                await self._listen()
                return
            except Exception as exc:  # keep trying: the database may come back
                logger.warning("change listener cannot reconnect", extra={
                    "action": "listener_reconnect_failed", "error": str(exc),
                    "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.remove_termination_listener(self._on_terminated)  # its end is no news now
        if not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        """Stop listening and close the connection; idempotent."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_terminated)
            try:
                await asyncio.wait_for(conn.close(), PING_TIMEOUT)
            except Exception:  # closing is best effort; the server drops it either way
                conn.terminate()
        await self.listeners.close()
