"""The engine facade: what the service layer and the CLI start, stop and ask.

One Engine per process: a scheduler loop (time → runs), a dispatcher loop (runs →
executions) and a heartbeat loop (leases, remote cancels, lost nodes), sharing the
event loop with the API server.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any

from apflow.clock import Clock
from apflow.domain.enums import RunState, Trigger
from apflow.domain.models import LogChunk, Run, Task
from apflow.domain.plans import Plan, TaskLoad
from apflow.engine.attempt import AttemptRunner, describe
from apflow.engine.dispatcher import Dispatcher
from apflow.engine.exclusions import ExclusionCalendars
from apflow.engine.heartbeat import Heartbeat
from apflow.engine.ids import new_run_id
from apflow.engine.logs import LogFactory
from apflow.engine.observer import NullObserver, Observer
from apflow.engine.planning import plan_manual
from apflow.engine.retention import Retention
from apflow.engine.scheduler import Scheduler
from apflow.engine.settings import EngineSettings
from apflow.engine.waiting import FinishSignals, wait_event
from apflow.executors.registry import ExecutorRegistry
from apflow.store.base import Store

logger = logging.getLogger(__name__)

# How often a waiter re-reads a run or its logs that another node is executing; runs
# executing here wake their waiters at once.
REMOTE_POLL_SECONDS = 0.25


class Engine:
    """Scheduler, dispatcher and heartbeat of one node."""

    def __init__(self, store: Store, clock: Clock, registry: ExecutorRegistry,
                 settings: EngineSettings | None = None, node_id: str | None = None,
                 exclusions: ExclusionCalendars | None = None,
                 observer: Observer | None = None) -> None:
        self.store = store
        self.observer: Observer = observer or NullObserver()
        self.clock = clock
        self.settings = settings or EngineSettings()
        self.node_id = node_id or socket.gethostname()
        self.signals = FinishSignals()
        self.logs = LogFactory(store, clock, self.settings, self.signals)
        attempts = AttemptRunner(registry, self.logs, self.settings.default_timeout)
        self.dispatcher = Dispatcher(store, clock, self.settings, self.node_id, attempts,
                                     self.signals, self.observer)
        self.scheduler = Scheduler(store, clock, self.settings, self._fired, exclusions,
                                   self.observer, self.dispatcher.known)
        self.heartbeat = Heartbeat(store, clock, self.settings, self.node_id, self.dispatcher)
        self.retention = Retention(store, clock, self.settings)
        self.started_at: datetime | None = None
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover this node's abandoned runs, register the node, start the loops."""
        if self._loops:
            return
        now = self.clock.now()
        self.started_at = self.heartbeat.started_at = now
        await self.dispatcher.leases.sync()
        crashed = await self.store.crash_runs_of_node(self.node_id, now)
        await self.heartbeat.register()
        await self.dispatcher.retries.crashed(crashed)
        await self.store.listen_changes(self._changed)
        self._loops = {
            "scheduler": asyncio.create_task(self.scheduler.run(), name="apflow-scheduler"),
            "dispatcher": asyncio.create_task(self.dispatcher.run(), name="apflow-dispatcher"),
            "heartbeat": asyncio.create_task(self.heartbeat.run(), name="apflow-heartbeat"),
            "retention": asyncio.create_task(self.retention.run(), name="apflow-retention"),
        }
        logger.info("engine started", extra={
            "action": "engine_started", "node": self.node_id, "recovered": len(crashed),
            "max_concurrent": self.settings.max_concurrent})

    async def stop(self, drain: bool = True) -> None:
        """Stop firing and claiming; drain running runs (grace, then stop); deregister."""
        if not self._loops:
            return
        logger.info("engine stopping", extra={"action": "engine_draining", "drain": drain})
        self.scheduler.stop()
        self.dispatcher.stop_claiming()
        self.heartbeat.state = "draining"
        await self._await_loops("scheduler", "dispatcher")
        await self.heartbeat.register()
        await self.dispatcher.drain(graceful=drain)
        self.heartbeat.stop()
        self.retention.stop()
        await self._await_loops("heartbeat", "retention")
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        self.heartbeat.state = "stopped"
        await self.heartbeat.register()
        self._loops = {}
        logger.info("engine stopped", extra={"action": "engine_stopped", "node": self.node_id})

    async def _await_loops(self, *names: str) -> None:
        for name in names:
            loop = self._loops.get(name)
            if loop is not None:
                await asyncio.gather(loop, return_exceptions=True)

    def wake(self) -> None:
        """Schedules or runs changed through the service layer: look again now."""
        self.scheduler.wake()
        self.dispatcher.wake()

    def _changed(self) -> None:
        self.wake()

    def _fired(self, plans: Sequence[Plan]) -> None:
        self.dispatcher.on_plans(plans)
        queued = sum(1 for plan in plans for run in plan.runs if run.state is RunState.QUEUED)
        if queued > self.dispatcher.capacity.free_for_claims():
            self._spawn(self.store.notify_change())  # let other nodes take the overflow

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            logger.error("background engine work failed", extra={
                "action": "engine_background_error", "error": describe(error)})

    # requests ----------------------------------------------------------------------------------

    async def trigger(self, task_id: str, trigger: Trigger, *,
                      variables: Mapping[str, str] | None = None,
                      triggered_by: str = "system") -> Run:
        """Queue a run now (manual or webhook), under the task's overlap policy."""
        now = self.clock.now()
        run_id = new_run_id()

        def planner(task: Task, load: TaskLoad) -> Plan:
            return plan_manual(task, load, now, trigger, variables, triggered_by, run_id)

        plan = await self.store.apply_to_task(task_id, now, planner)
        self._fired([plan])
        run = next(r for r in plan.runs if r.id == run_id)
        logger.info("run requested", extra={
            "action": "run_requested" if run.state is RunState.QUEUED else "run_skipped",
            "run_id": run.id, "task_id": task_id, "trigger": trigger.value,
            "triggered_by": triggered_by, "end_reason": run.end_reason})
        return run

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run (queued: at once; running: stopped, here immediately); no retries."""
        run = await self.dispatcher.cancel(run_id)
        logger.info("run cancel requested", extra={
            "action": "run_cancelled", "run_id": run_id, "state": run.state.value})
        return run

    async def wait_run(self, run_id: str, timeout: float) -> Run:  # noqa: ASYNC109 - contract
        """The run once finished, or as it stands when `timeout` seconds have passed."""
        deadline = asyncio.get_running_loop().time() + max(timeout, 0.0)
        with self.signals.watch(run_id) as finished:
            while True:
                run = await self.store.get_run(run_id)
                remaining = deadline - asyncio.get_running_loop().time()
                if run.state.finished or remaining <= 0:
                    return run
                await wait_event(finished, min(remaining, REMOTE_POLL_SECONDS))

    async def follow_logs(self, run_id: str, after_seq: int,
                          timeout: float) -> list[LogChunk]:  # noqa: ASYNC109 - contract
        """Chunks after `after_seq` as soon as there are any; [] on timeout or when the run
        has finished with nothing more to read."""
        deadline = asyncio.get_running_loop().time() + max(timeout, 0.0)
        while True:
            chunks = await self.store.read_logs(run_id, after_seq=after_seq)
            if chunks:
                return chunks
            run = await self.store.get_run(run_id)
            if run.state.finished:
                # Logs are flushed before a run is recorded finished: read once more.
                return await self.store.read_logs(run_id, after_seq=after_seq)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            await self.logs.wait_for_output(run_id, after_seq,
                                            min(remaining, REMOTE_POLL_SECONDS))

    def status(self) -> dict[str, Any]:
        """What scheduler.status reports about this node."""
        return {
            "node_id": self.node_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "state": self.heartbeat.state if self._loops else "stopped",
            "running": self.dispatcher.running_count(),
            "max_concurrent": self.settings.max_concurrent,
            "queued": self.heartbeat.queued,
            "loops": {name: not loop.done() for name, loop in self._loops.items()},
            "fired_runs": self.scheduler.fired_runs,
            "poll_interval": self.settings.poll_interval,
            "user_id": self.settings.user_id,
        }
