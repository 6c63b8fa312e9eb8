"""The dispatcher loop: turns queued runs into executions on this node.

It claims what fits (scheduler.max_concurrent here, each task's max_concurrent in the
store), runs each claim as an asyncio task, records outcomes in batches, writes task
status, queues retries, and sleeps until the next queued run is due or it is woken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from apflow.clock import Clock
from apflow.domain.enums import RunState, Trigger
from apflow.domain.errors import StoreError
from apflow.domain.models import Run, Task
from apflow.domain.plans import Plan
from apflow.engine.attempt import (
    STOP_SLACK_SECONDS,
    AttemptRunner,
    describe,
    own_cancellation,
)
from apflow.engine.batching import BatchWriter
from apflow.engine.capacity import Capacity
from apflow.engine.known_tasks import KnownTasks
from apflow.engine.leases import LeaseClock
from apflow.engine.observer import NullObserver, Observer
from apflow.engine.retries import Retrier
from apflow.engine.runs import (
    STOP_CANCELLED,
    STOP_SHUTDOWN,
    STOP_TERMINATED,
    ActiveRun,
    Outcome,
    failed,
)
from apflow.engine.settings import EngineSettings
from apflow.engine.status import STATUS_OF_RUN_STATE, StatusWriter
from apflow.engine.trees import TreeDriver
from apflow.engine.waiting import FinishSignals, sleep_until, wait_event
from apflow.store.base import Claimed, FinishedRun, Store, TaskOutcome

logger = logging.getLogger(__name__)
# Reading the tasks of just-claimed runs is tried this often before the runs are failed.
TASK_READ_ATTEMPTS = 4
TASK_READ_PAUSE_SECONDS = 0.25  # times the attempt number

# Queued runs are due but none could be claimed: their tasks are at max_concurrent, most
# likely on another node (local finishes wake the loop at once). Look again this soon.
BLOCKED_RECHECK_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 1.0
# Runs due this soon are claimed now and started at their not_before, so the claim's round
# trips are not between the slot and the start (a wall clock only: a test's fake clock does
# not pass while the run waits). The scheduler fires slots 50 ms ahead, so they are queued.
CLAIM_AHEAD_SECONDS = 0.02
# A cancel of a run the store says runs here, not yet tracked, waits this long at most for
# the claim in flight to be read.
CLAIM_SETTLE_SECONDS = 1.0


def lateness_of(run: Run, started: datetime) -> float | None:
    """Seconds from a scheduled run's due time (slot plus jitter) to `started`."""
    if run.trigger not in (Trigger.SCHEDULE, Trigger.CATCH_UP):
        return None
    return (started - run.not_before).total_seconds()


class Dispatcher:
    """Claims queued runs and drives them to a recorded outcome."""

    def __init__(self, store: Store, clock: Clock, settings: EngineSettings, node_id: str,
                 attempts: AttemptRunner, signals: FinishSignals,
                 observer: Observer | None = None) -> None:
        self.store = store
        self.observer: Observer = observer or NullObserver()
        self.clock = clock
        self.settings = settings
        self.node_id = node_id
        self.attempts = attempts
        self.signals = signals
        self.leases = LeaseClock(clock, store)
        self.known = KnownTasks()  # tasks the scheduler read when it fired their slots
        self.active: dict[str, ActiveRun] = {}
        self.capacity = Capacity(settings.max_concurrent, self.wake)
        self.status = StatusWriter(store, clock)
        self.trees = TreeDriver(self)
        self.retries = Retrier(store, clock, self.status, self.wake)
        self.alive = False
        self._wake = asyncio.Event()
        self._claiming = False
        self._claim_settled = asyncio.Event()  # clear while a claim's answer is awaited
        self._claim_settled.set()
        self._ahead = CLAIM_AHEAD_SECONDS if clock.wall else 0.0
        # Whether claims bring their tasks whole: yes while most claimed tasks are not held
        # here (manual and webhook runs, retries), no while the firing's copies serve.
        self.bring_tasks = True
        self._runners: set[asyncio.Task[None]] = set()
        self._launching: set[asyncio.Task[None]] = set()
        self._finisher: BatchWriter[FinishedRun, Run] = BatchWriter(
            self._finish_runs, lambda item: item.run_id, lambda run: run.id)

    # loop ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for claimable runs now."""
        self._wake.set()

    async def run(self) -> None:
        """Claim, sleep, repeat until draining starts."""
        self._claiming = self.alive = True
        try:
            while self._claiming:
                self._wake.clear()
                delay = await self._turn()
                if self._claiming:
                    await wait_event(self._wake, delay)
        finally:
            self.alive = False

    async def _turn(self) -> float:
        try:
            free = self.capacity.free_for_claims()
            claimed_at = self.clock.now()
            if free and await self._claim(free, claimed_at) == free:
                return 0.0  # there may be more; the next turn sees the capacity left
            return await self.delay_after_claim(claimed_at)
        except Exception as exc:  # a store outage must not end the loop
            logger.error("dispatcher turn failed", extra={
                "action": "dispatcher_error", "error": describe(exc)})
            self.observer.loop_error("dispatcher", isinstance(exc, StoreError))
            return ERROR_PAUSE_SECONDS

    async def delay_after_claim(self, claimed_at: datetime) -> float:
        """How long to sleep after a claim at `claimed_at` that left capacity unused."""
        poll = self.settings.poll_interval
        if not self.capacity.free_for_claims():
            return poll  # a finishing run wakes the loop
        due = await self.store.next_queued_at(user_id=self.settings.user_id)
        if due is None:
            return poll
        claim_from = due - timedelta(seconds=self._ahead)  # claimed this much ahead
        if claim_from <= claimed_at:
            # It was claimable when we claimed and still is queued: its task is at
            # max_concurrent.
            return min(poll, BLOCKED_RECHECK_SECONDS)
        # Claimable after the claim's instant (perhaps already, while we asked): claim then.
        return min(poll, max((claim_from - self.clock.now()).total_seconds(), 0.0))

    async def _claim(self, limit: int, now: datetime) -> int:
        """Claim up to `limit` runs; they start in the background, so the loop is free to
        claim the next due run at once (one transaction per turn on the critical path)."""
        self._claim_settled.clear()
        try:
            claim = await self._claim_runs(limit, now)
            runs = claim.runs
            # Tracked at once, before their tasks are read: a cancel, a heartbeat or a drain
            # in between already finds them here.
            claimed = [ActiveRun(run=run, task=None, holds_slot=True) for run in runs]
            for active in claimed:
                self.register(active)
        finally:
            self._claim_settled.set()
        if claimed:
            self.capacity.take(len(claimed))
            launcher = asyncio.create_task(self._launch_claimed(claimed, claim),
                                           name="apflow-launch")
            self._launching.add(launcher)
            launcher.add_done_callback(self._launching.discard)
        return len(claimed)

    async def _launch_claimed(self, claimed: Sequence[ActiveRun], claim: Claimed) -> None:
        """Read the claimed runs' tasks (those neither held here already, by their heads,
        nor brought by the claim) and start each run (as a tree, if its task has one)."""
        try:
            found, trees = await self._read_tasks(claim)
        except Exception as exc:  # the runs are ours now: each must still end recorded
            logger.error("claimed runs' tasks not read", extra={
                "action": "dispatcher_error", "runs": len(claimed), "error": describe(exc)})
            error = failed(f"internal error: could not read the task: {describe(exc)}")
            for active in claimed:
                self._launch(active, preset=error)
            return
        tasks = {task.id: task for task in found}
        for active in claimed:
            active.task = tasks.get(active.run.task_id)
            active.tree = active.run.task_id in trees
            self._launch(active)

    async def _read_tasks(self, claim: Claimed) -> tuple[list[Task], set[str]]:
        """The claimed runs' tasks and which of them drive a tree (groups and parents), with
        a few tries: a connection cut right after the claim must not fail the runs."""
        for attempt in range(1, TASK_READ_ATTEMPTS):
            try:
                return await self._tasks_and_trees(claim)
            except Exception:
                await asyncio.sleep(TASK_READ_PAUSE_SECONDS * attempt)
        return await self._tasks_and_trees(claim)

    async def _tasks_and_trees(self, claim: Claimed) -> tuple[list[Task], set[str]]:
        """Copies this node holds whose row is unchanged since (known_tasks.py), else those
        the claim brought, else read; a task missing from the heads was deleted and stays
        missing. When most claimed tasks were not held here, the next claim brings them."""
        heads = claim.heads
        found = self.known.current(heads)
        unknown = [task_id for task_id in heads if task_id not in found]
        self.bring_tasks = len(unknown) * 2 > len(heads)
        found.update((task_id, claim.tasks[task_id]) for task_id in unknown
                     if task_id in claim.tasks)
        missing = sorted(task_id for task_id in unknown if task_id not in found)
        if missing:
            found.update((task.id, task) for task in await self.store.get_tasks(missing))
        trees = {task.id for task in found.values() if task.executor is None} \
            | {task_id for task_id, head in heads.items() if head.has_children}
        return list(found.values()), trees

    async def _claim_runs(self, limit: int, now: datetime) -> Claimed:
        return await self.store.claim_runs_with_heads(
            now, self.node_id, limit=limit,
            lease_seconds=self.settings.lease_seconds, user_id=self.settings.user_id,
            lease_from=self.leases.now(), ahead=self._ahead, with_tasks=self.bring_tasks)

    async def _finish_runs(self, outcomes: Sequence[FinishedRun]) -> list[Run]:
        finished = await self.store.finish_runs(outcomes)
        for run in finished:
            self.observer.run_finished(run)
        return finished

    # one run ------------------------------------------------------------------------------

    def _launch(self, active: ActiveRun, preset: Outcome | None = None) -> None:
        runner = asyncio.create_task(self._drive(active, preset), name=f"run-{active.run.id}")
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)

    async def _drive(self, active: ActiveRun, preset: Outcome | None = None) -> None:
        """Execute a claimed run (unless `preset` already says how it ends) and record it."""
        run = active.run
        if run.started_at is not None and self._ahead:  # claimed ahead: start at the slot
            await sleep_until(self.clock, run.started_at)  # never before it
        self.observer.run_started(run, lateness_of(run, self.clock.now()))
        if logger.isEnabledFor(logging.INFO):  # skip building the record: once per run
            logger.info("run started", extra={
                "action": "run_started", "run_id": run.id, "task_id": run.task_id,
                "trigger": run.trigger.value, "attempt": run.attempt, "node": self.node_id})
        if active.task is not None:
            self.status.started(run.task_id)
        try:
            outcome = preset or await self._perform(active)
        except asyncio.CancelledError:
            if own_cancellation():
                raise
            outcome = failed("internal error: cancelled inside the executor")
        except Exception as exc:  # recorded on the run below; the loop carries on
            logger.exception("run failed inside the engine", extra={
                "action": "run_internal_error", "run_id": run.id})
            outcome = failed(f"internal error: {describe(exc)}")
        finally:
            self.release_slot(active)
        await self.complete(active, outcome)

    async def _perform(self, active: ActiveRun) -> Outcome:
        if active.task is None:
            return failed("the task no longer exists")
        if active.tree:
            return await self.trees.drive(active)
        return await self.attempts.perform(active)

    def register(self, active: ActiveRun) -> None:
        """Track a run executing here (heartbeats, cancels, drain)."""
        self.active[active.run.id] = active

    def release_slot(self, active: ActiveRun) -> None:
        """Give back the execution slot `active` holds, if any."""
        if active.holds_slot:
            active.holds_slot = False
            self.capacity.release()

    async def record(self, active: ActiveRun, outcome: Outcome) -> Run | None:
        """Write the outcome; None if the run was no longer running (another node crashed it)."""
        return await self._finisher.submit(outcome.finished(active.run.id, self.clock.now()))

    async def complete(self, active: ActiveRun, outcome: Outcome) -> None:
        """Record a top-level run's outcome, then task status, retries and waiters."""
        try:
            run = await self.record(active, outcome)
            if run is not None:
                self._log_finished(run)
                await self._after_finish(active, run)
        except Exception as exc:  # the store keeps it running; recovery will crash it
            logger.error("run outcome not recorded", extra={
                "action": "run_record_failed", "run_id": active.run.id, "error": describe(exc)})
        finally:
            self.forget(active)
            self.wake()  # a run of the same task may now be claimable

    def forget(self, active: ActiveRun) -> None:
        """Stop tracking `active` and wake whoever waits for it."""
        self.active.pop(active.run.id, None)
        active.done.set()
        self.signals.finished(active.run.id)

    async def _after_finish(self, active: ActiveRun, run: Run) -> None:
        task = active.task or await self._task_or_none(run.task_id)
        if task is None:
            return
        succeeded = run.state is RunState.SUCCEEDED
        await self.status.post(TaskOutcome(
            task.id, STATUS_OF_RUN_STATE[run.state], result=run.result,
            error=None if succeeded else run.error, progress=1.0 if succeeded else None))
        if active.stop_reason not in (STOP_CANCELLED, STOP_TERMINATED):
            await self.retries.queue([(task, run)])

    async def _task_or_none(self, task_id: str) -> Task | None:
        """The task of a run that started without it (its read failed), if it can be read
        now: its status and retries still apply."""
        try:
            return await self.store.get_task(task_id)
        except Exception as exc:  # deleted, or the store is still away: nothing more to do
            logger.warning("task of a finished run not read", extra={
                "action": "dispatcher_error", "task_id": task_id, "error": describe(exc)})
            return None

    def _log_finished(self, run: Run) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info("run finished", extra={
            "action": "run_finished", "run_id": run.id, "task_id": run.task_id,
            "state": run.state.value, "end_reason": run.end_reason, "exit_code": run.exit_code})

    # requests from the engine -------------------------------------------------------------

    def on_plans(self, plans: Sequence[Plan]) -> None:
        """Runs were queued: stop local runs a terminate policy replaces, then claim."""
        for plan in plans:
            if plan.terminate_running:
                self.terminate_task(plan.task_id, {run.id for run in plan.runs})
        self.wake()

    def terminate_task(self, task_id: str, keep: set[str]) -> None:
        """Stop this node's runs of `task_id` (on_overlap=terminate), except those in `keep`."""
        for active in list(self.active.values()):
            if active.run.task_id == task_id and active.run.id not in keep \
                    and active.run.parent_run_id is None:
                active.request_stop(STOP_TERMINATED)

    def stop_requested(self, runs: Iterable[Run]) -> None:
        """Stop local runs the store says someone asked to stop (cancel or terminate)."""
        for run in runs:
            active = self.active.get(run.id)
            if active is not None:
                active.request_stop(run.cancel_requested or STOP_CANCELLED)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: a queued one at once, a running one stopped (here: immediately)."""
        run = await self.store.cancel_run(run_id, self.clock.now())
        if run.state.finished:
            self.signals.finished(run_id)
            return run
        active = self.active.get(run_id)
        if active is None and run.node == self.node_id:
            # Claimed here a moment ago, the claim's answer not read yet: wait for it.
            await wait_event(self._claim_settled, CLAIM_SETTLE_SECONDS)
            active = self.active.get(run_id)
        if active is None:
            return run  # running on another node: its heartbeat picks the request up
        active.request_stop(STOP_CANCELLED)
        grace = active.task.graceful_stop_seconds if active.task is not None else 0.0
        await wait_event(active.done, grace + 2 * STOP_SLACK_SECONDS)
        return await self.store.get_run(run_id)

    # stopping -------------------------------------------------------------------------------

    def stop_claiming(self) -> None:
        """Leave the claim loop at its next turn (the first step of draining)."""
        self._claiming = False
        self._wake.set()

    async def drain(self, graceful: bool) -> None:
        """Let running runs finish within their grace, then stop them (claiming has ended)."""
        if self._launching:  # runs claimed just before claiming ended: let them register
            await asyncio.gather(*list(self._launching), return_exceptions=True)
        tops = [a for a in self.active.values() if a.run.parent_run_id is None]
        if graceful:
            await asyncio.gather(*(self._drain_one(active) for active in tops))
        else:
            for active in tops:
                active.request_stop(STOP_SHUTDOWN)
        if self._runners:
            await asyncio.gather(*list(self._runners), return_exceptions=True)
        await self.status.drain()

    @staticmethod
    async def _drain_one(active: ActiveRun) -> None:
        grace = active.task.graceful_stop_seconds if active.task is not None else 0.0
        if not await wait_event(active.done, grace):
            active.request_stop(STOP_SHUTDOWN)
            await active.done.wait()

    def running_count(self) -> int:
        """Runs executing on this node (tree runs and their children included)."""
        return len(self.active)
