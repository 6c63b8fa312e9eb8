"""Exclusion calendars as the scheduler uses them: loaded before a firing pass, read inside it.

The planner runs inside the store's transaction, so it must not wait for a file or a URL.
The work is split: `prepare` (async, before fire_due) makes sure the calendars of the tasks
about to fall due are loaded and fresh; `lookup` (in memory, no I/O) answers for one slot.
Loading is done by a `CalendarLoader`: the gateway's ExclusionCache satisfies that protocol
and the composition root passes it in, so the engine never imports the gateway.

A calendar that cannot be loaded must not stop the loop, and must not silently drop a
task's runs either: its slots fire as if it had no calendar, and each is logged with
action `exclusions_unavailable`. After a failed first load the source is not tried again
for `retry_after`, so an unreachable URL costs the loop one wait, not one per turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from apflow.domain.models import Task

logger = logging.getLogger(__name__)

# A calendar never loaded yet is waited for this long; a slower first load goes on in the
# background while the slots of this pass fire as if it had no calendar (logged). Every
# due task of the pass waits with it, so this bounds the lateness a slow calendar URL can
# cause to all schedules; definition-time checks load (and cache) calendars beforehand.
FIRST_LOAD_WAIT_SECONDS = 2.0
# A refresh of a calendar already in memory is waited for this long; a slower one finishes
# in the background and the slots meanwhile use the copy in memory.
REFRESH_WAIT_SECONDS = 1.0
RETRY_AFTER = timedelta(minutes=5)
MAX_DETAIL = 200

# Given a task and one of its due slots: the ledger detail if an exclusion event covers it.
ExclusionLookup = Callable[[Task, datetime], str | None]


class CoveringEvent(Protocol):
    """The event a slot falls on."""

    @property
    def summary(self) -> str | None:
        """The event's SUMMARY, if it has one."""


class LoadedCalendar(Protocol):
    """A parsed exclusion calendar (gateway.ical_import.ExclusionCalendar)."""

    def event_at(self, instant: datetime, timezone: str | None = None) -> CoveringEvent | None:
        """The event covering `instant` (dates read in `timezone`), or None."""


class CalendarLoader(Protocol):
    """Loads and caches calendars by source (gateway.exclusion_cache.ExclusionCache)."""

    async def get(self, source: str, now: datetime) -> LoadedCalendar:
        """The calendar, refreshed if due; an ApflowError when it cannot be had at all."""


@dataclass
class _Source:
    calendar: LoadedCalendar | None = None
    loading: asyncio.Task[None] | None = None
    failed_until: datetime | None = None


class ExclusionCalendars:
    """The exclusion calendars of due tasks, as the scheduler's planner needs them."""

    def __init__(self, loader: CalendarLoader, *, retry_after: timedelta = RETRY_AFTER,
                 first_wait: float = FIRST_LOAD_WAIT_SECONDS,
                 refresh_wait: float = REFRESH_WAIT_SECONDS) -> None:
        self._loader = loader
        self._retry = retry_after
        self._first_wait, self._refresh_wait = first_wait, refresh_wait
        self._sources: dict[str, _Source] = {}

    async def prepare(self, sources: Collection[str], now: datetime) -> None:
        """Load or refresh these calendars, waiting a bounded time; never raises."""
        for source in sources:
            state = self._sources.setdefault(source, _Source())
            waiting_out_failure = state.failed_until is not None and now < state.failed_until
            if state.loading is None and not waiting_out_failure:
                state.loading = asyncio.create_task(self._load(source, state, now),
                                                    name="apflow-exclusions-load")
        states = [self._sources[source] for source in sources]
        await _wait([s.loading for s in states if s.calendar is None], self._first_wait)
        await _wait([s.loading for s in states if s.calendar is not None], self._refresh_wait)

    async def _load(self, source: str, state: _Source, now: datetime) -> None:
        try:
            state.calendar = await self._loader.get(source, now)
            state.failed_until = None
        except Exception as error:  # whatever a source does, the loop goes on
            state.failed_until = now + self._retry
            logger.warning("exclusion calendar cannot be loaded; its tasks fire as if they had "
                           "none", extra={"action": "exclusions_unavailable",
                                          "source": shown(source), "error": str(error)})
        finally:
            state.loading = None

    def lookup(self, task: Task, slot: datetime) -> str | None:
        """The ledger detail if an event of the task's calendar covers `slot`, else None.
        Pure (memory only): it runs inside the firing transaction."""
        source = task.exclusion_calendar
        if not source:
            return None
        state = self._sources.get(source)
        calendar = state.calendar if state is not None else None
        if calendar is None:
            self._unavailable(task, slot, "not loaded")
            return None
        try:
            event = calendar.event_at(slot, task.timezone)
        except Exception as error:  # a bad zone or recurrence must not disable the schedule
            self._unavailable(task, slot, str(error))
            return None
        if event is None:
            return None
        what = f"{event.summary!r}" if event.summary else "an event"
        return f"excluded by {what} in {shown(source)}"[:MAX_DETAIL]

    @staticmethod
    def _unavailable(task: Task, slot: datetime, why: str) -> None:
        logger.warning("slot fired without its exclusion calendar", extra={
            "action": "exclusions_unavailable", "task_id": task.id,
            "source": shown(task.exclusion_calendar or ""),
            "scheduled_for": slot.isoformat(), "error": why})

    def cancel_loads(self) -> None:
        """Stop loads still under way (the scheduler is stopping)."""
        for state in self._sources.values():
            if state.loading is not None:
                state.loading.cancel()


async def _wait(loads: list[asyncio.Task[None] | None], seconds: float) -> None:
    pending = [load for load in loads if load is not None]
    if pending:
        # asyncio.wait never cancels: a load that outlasts the wait finishes in the background.
        await asyncio.wait(pending, timeout=seconds)


def shown(source: str) -> str:
    """The source for logs and the ledger: no credentials, query or fragment."""
    parts = urlsplit(source)
    if parts.scheme.lower() not in ("http", "https"):
        return source
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
