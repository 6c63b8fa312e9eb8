"""The scheduler loop: turns time into runs.

It fires every due schedule through the store (one transaction per batch, planned by
`planning.plan_due`), hands the result to the dispatcher in-process, then sleeps until the
earliest next_run_at or until woken (a change made through the service layer, or another
node's NOTIFY). poll_interval only bounds the sleep. With exclusion calendars configured, each
batch first loads the due tasks' calendars (exclusions.py), outside the transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apflow.clock import Clock
from apflow.domain.enums import OccurrenceOutcome, RunState
from apflow.domain.errors import StoreError
from apflow.domain.models import Occurrence, Task
from apflow.domain.plans import Plan, ScheduleAdvance, TaskLoad
from apflow.engine.exclusions import ExclusionCalendars, ExclusionLookup
from apflow.engine.ids import new_run_id
from apflow.engine.known_tasks import KnownTasks
from apflow.engine.observer import NullObserver, Observer
from apflow.engine.planning import plan_due
from apflow.engine.settings import EngineSettings
from apflow.engine.waiting import wait_event
from apflow.store.base import Planner, Store

logger = logging.getLogger(__name__)

# After an unexpected error the loop pauses this long instead of spinning on it.
ERROR_PAUSE_SECONDS = 1.0
# Slots are fired this long before they are due, as runs that may not start before their
# slot: the firing transaction is then off the critical path, and the dispatcher, already
# holding the queued run, claims it the moment the slot arrives. 50 ms covers a firing
# transaction on a busy PostgreSQL server; the ledger and next_run_at are the same either way.
LOOKAHEAD = timedelta(milliseconds=50)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
# Something is due but this node fired nothing: another node holds those rows (PostgreSQL
# SKIP LOCKED) and is firing them right now. Look again this soon rather than spin.
CONTENDED_PAUSE_SECONDS = 0.005


def safe_planner(now: datetime, horizon: datetime,
                 new_id: Callable[[], str] = new_run_id,
                 excluded: ExclusionLookup | None = None) -> Planner:
    """plan_due for slots up to `horizon`; a task whose schedule cannot be planned is disabled,
    not retried forever (one broken row must not stop every other schedule)."""
    def plan(task: Task, load: TaskLoad) -> Plan:
        try:
            return plan_due(task, load, now, new_id, horizon=horizon, excluded=excluded)
        except Exception as exc:
            return disable_broken(task, now, exc)
    return plan


def disable_broken(task: Task, now: datetime, exc: Exception) -> Plan:
    """Disable a schedule that cannot be planned, ledgering the slot it was due for."""
    logger.error("schedule disabled: cannot plan it", extra={
        "action": "schedule_broken", "task_id": task.id, "error": str(exc)})
    rows: tuple[Occurrence, ...] = ()
    if task.next_run_at is not None:
        rows = (Occurrence(task_id=task.id, scheduled_for=task.next_run_at,
                           outcome=OccurrenceOutcome.MISSED, recorded_at=now,
                           detail=f"schedule error: {exc}"[:200]),)
    advance = ScheduleAdvance(next_run_at=None, schedule_enabled=False,
                              run_count=task.run_count, last_run_at=task.last_run_at)
    return Plan(task_id=task.id, advance=advance, occurrences=rows)


class Scheduler:
    """Fires due slots and sleeps until the next one."""

    def __init__(self, store: Store, clock: Clock, settings: EngineSettings,
                 on_fired: Callable[[Sequence[Plan]], None],
                 exclusions: ExclusionCalendars | None = None,
                 observer: Observer | None = None, known: KnownTasks | None = None) -> None:
        self._store = store
        self._known = known
        self._observer: Observer = observer or NullObserver()
        self._exclusions = exclusions
        self._clock = clock
        self._settings = settings
        self._on_fired = on_fired
        self._wake = asyncio.Event()
        self._stopping = False
        self.alive = False
        self.fired_runs = 0

    def wake(self) -> None:
        """Re-read the schedules now (something changed)."""
        self._wake.set()

    def stop(self) -> None:
        """Leave the loop at its next turn."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Fire, sleep, repeat until stopped."""
        self.alive = True
        try:
            while not self._stopping:
                self._wake.clear()
                delay = await self._turn()
                await wait_event(self._wake, delay)
        finally:
            self.alive = False
            if self._exclusions is not None:
                self._exclusions.cancel_loads()

    async def _turn(self) -> float:
        try:
            fired = await self.tick(self._clock.now())
            delay = await self.delay_until_due()
            return CONTENDED_PAUSE_SECONDS if delay <= 0 and not fired else delay
        except Exception as exc:  # a store outage must not end the loop
            logger.error("scheduler turn failed", extra={
                "action": "scheduler_error", "error": str(exc)})
            self._observer.loop_error("scheduler", isinstance(exc, StoreError))
            return ERROR_PAUSE_SECONDS

    async def tick(self, now: datetime) -> list[Plan]:
        """Fire everything due at `now`, batch after batch; return the applied plans."""
        applied: list[Plan] = []
        while not self._stopping:
            plans = await self._fire(now)
            if plans:
                applied.extend(plans)
                self._report(plans)
                self._on_fired(plans)
            if len(plans) < self._settings.fire_batch:
                break
        return applied

    async def _fire(self, now: datetime) -> list[Plan]:
        horizon = now + LOOKAHEAD
        user = self._settings.user_id
        due: list[Task] = []
        if user is not None or self._exclusions is not None:
            due = await self._store.due_tasks(horizon, limit=self._settings.fire_batch,
                                              user_id=user)
        plan_task = safe_planner(now, horizon, excluded=await self._exclusions_for(due, now))
        planned: list[Task] = []

        def planner(task: Task, load: TaskLoad) -> Plan:
            planned.append(task)
            return plan_task(task, load)

        if user is None:
            plans = await self._store.fire_due(horizon, planner, limit=self._settings.fire_batch)
            self._remember(plans, planned, horizon)  # fire_due writes updated_at = horizon
            return plans
        # The store's fire_due has no owner filter: lock this user's due tasks one by one.
        plans = [await self._store.apply_to_task(task.id, now, planner) for task in due]
        self._remember(plans, planned, now)
        return plans

    def _remember(self, plans: Sequence[Plan], planned: Sequence[Task],
                  written_at: datetime) -> None:
        """Hand the dispatcher the tasks it will start runs of (known_tasks.py)."""
        if self._known is None:
            return
        queued = {plan.task_id for plan in plans if plan.advance is not None
                  and any(run.state is RunState.QUEUED for run in plan.runs)}
        if queued:
            self._known.remember((task for task in planned if task.id in queued), written_at)

    async def _exclusions_for(self, due: Sequence[Task], now: datetime) -> ExclusionLookup | None:
        """Load the calendars of the tasks about to fire, outside the firing transaction."""
        if self._exclusions is None:
            return None
        sources = {task.exclusion_calendar for task in due if task.exclusion_calendar}
        if sources:
            await self._exclusions.prepare(sources, now)
        return self._exclusions.lookup

    async def delay_until_due(self) -> float:
        """Seconds until the earliest next_run_at, at most poll_interval."""
        due_at = await self._next_due_at()
        if due_at is None:
            return self._settings.poll_interval
        seconds = (due_at - LOOKAHEAD - self._clock.now()).total_seconds()
        return min(max(seconds, 0.0), self._settings.poll_interval)

    async def _next_due_at(self) -> datetime | None:
        user = self._settings.user_id
        if user is None:
            return await self._store.next_due_at()
        earliest = await self._store.due_tasks(FAR_FUTURE, limit=1, user_id=user)
        return earliest[0].next_run_at if earliest else None

    def _report(self, plans: Sequence[Plan]) -> None:
        logging_slots = logger.isEnabledFor(logging.INFO)
        for plan in plans:
            for row in plan.occurrences if logging_slots else ():
                logger.info("slot handled", extra={
                    "action": f"slot_{row.outcome.value}", "task_id": row.task_id,
                    "scheduled_for": row.scheduled_for.isoformat(), "run_id": row.run_id})
            self.fired_runs += sum(1 for r in plan.occurrences
                                   if r.outcome is OccurrenceOutcome.FIRED)
