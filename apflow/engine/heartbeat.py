"""Liveness: this node's heartbeat, lease renewal, remote cancels, and lost nodes' runs."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import replace
from datetime import datetime

from apflow.clock import Clock
from apflow.domain.enums import RunState
from apflow.domain.errors import StoreError
from apflow.domain.models import Node
from apflow.engine.attempt import describe
from apflow.engine.dispatcher import Dispatcher
from apflow.engine.settings import EngineSettings
from apflow.engine.waiting import wait_event
from apflow.store.base import Store

logger = logging.getLogger(__name__)

LIVE_NODE_STATES = ("active", "draining")


class Heartbeat:
    """Every heartbeat_interval: renew leases, hear cancels, refresh the node row, and crash
    the runs of nodes whose heartbeat is older than lease_seconds. Heartbeats, leases and
    the cut-offs are on the database's clock (leases.py); runs are crashed at node time."""

    def __init__(self, store: Store, clock: Clock, settings: EngineSettings, node_id: str,
                 dispatcher: Dispatcher) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._node_id = node_id
        self._dispatcher = dispatcher
        self._stop = asyncio.Event()
        self.started_at = clock.now()
        self.state = "active"
        self.alive = False
        self.queued = 0  # queued runs in the store at the last beat (scheduler.status)

    def stop(self) -> None:
        """Leave the loop at its next turn."""
        self._stop.set()

    async def run(self) -> None:
        """Beat until stopped."""
        self.alive = True
        try:
            while not self._stop.is_set():
                await self.beat()
                await wait_event(self._stop, self._settings.heartbeat_interval)
        finally:
            self.alive = False

    async def beat(self) -> None:
        """One heartbeat; failures are logged and the next beat tries again."""
        try:
            await self._dispatcher.leases.sync()
            now = self._clock.now()
            await self._renew()
            await self.register()
            await self._reap(now)
            counts = await self._store.count_runs_by_state()
            self.queued = counts.get(RunState.QUEUED, 0)
            self._dispatcher.observer.heartbeat(self._node_id)
        except Exception as exc:  # the store may be briefly unreachable
            logger.error("heartbeat failed", extra={
                "action": "heartbeat_failed", "error": describe(exc)})
            self._dispatcher.observer.loop_error("heartbeat", isinstance(exc, StoreError))

    async def _renew(self) -> None:
        ids = list(self._dispatcher.active)
        if not ids:
            return
        leases = self._dispatcher.leases
        asked = await self._store.heartbeat_runs(
            self._node_id, ids, leases.now(), leases.until(self._settings.lease_seconds))
        self._dispatcher.stop_requested(asked)

    async def register(self) -> None:
        """Write this node's row (state, heartbeat on the database's clock, running count)."""
        await self._store.upsert_node(Node(
            id=self._node_id, host=socket.gethostname(), pid=os.getpid(),
            started_at=self.started_at, heartbeat_at=self._dispatcher.leases.now(),
            state=self.state,
            running=self._dispatcher.running_count()))

    async def _reap(self, now: datetime) -> None:
        stale_before = self._dispatcher.leases.until(-self._settings.lease_seconds)
        for node in await self._store.list_nodes():
            if node.id == self._node_id or node.state not in LIVE_NODE_STATES \
                    or node.heartbeat_at >= stale_before:
                continue
            crashed = await self._store.crash_runs_of_node(node.id, now)
            await self._store.upsert_node(replace(node, state="lost", running=0))
            logger.warning("node lost", extra={
                "action": "node_lost", "node": node.id, "runs": len(crashed),
                "last_heartbeat": node.heartbeat_at.isoformat()})
            await self._dispatcher.retries.crashed(crashed)
        await self._reap_expired(now, stale_before)

    async def _reap_expired(self, now: datetime, stale_before: datetime) -> None:
        """Runs whose lease ended a whole lease ago although their node lives: no node knows
        them (a claim committed whose answer was lost on a cut connection). This node's own
        runs were renewed just before, so they are never among them."""
        expired = await self._store.crash_expired_runs(now, stale_before)
        if expired:
            logger.warning("runs with expired leases crashed", extra={
                "action": "lease_expired", "runs": len(expired)})
            await self._dispatcher.retries.crashed(expired)
