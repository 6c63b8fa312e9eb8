"""Small waiting helpers shared by the loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime

from apflow.clock import Clock

# uvloop keeps timers in whole milliseconds and may wake a sleeper up to one early; a wait
# for an instant sleeps again for what is left, never less than this.
TIMER_GRANULARITY_SECONDS = 0.001
MAX_SLEEPS_UNTIL = 5  # each sleeps what is left: one or two are enough on any loop


async def sleep_until(clock: Clock, instant: datetime) -> None:
    """Return once `clock` reads `instant` or later (at most a millisecond after it, or
    as soon as MAX_SLEEPS_UNTIL sleeps have passed, whichever comes first)."""
    for _ in range(MAX_SLEEPS_UNTIL):
        left = (instant - clock.now()).total_seconds()
        if left <= 0:
            return
        await asyncio.sleep(max(left, TIMER_GRANULARITY_SECONDS))


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it was set."""
    if event.is_set():
        return True
    if seconds <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


class FinishSignals:
    """One event per watched run, set once that run's outcome is recorded on this node."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, int] = {}

    @contextlib.contextmanager
    def watch(self, run_id: str) -> Iterator[asyncio.Event]:
        """The event of `run_id`, kept while the caller waits on it."""
        event = self._events.setdefault(run_id, asyncio.Event())
        self._watchers[run_id] = self._watchers.get(run_id, 0) + 1
        try:
            yield event
        finally:
            self._watchers[run_id] -= 1
            if not self._watchers[run_id]:
                del self._watchers[run_id]
                del self._events[run_id]

    def finished(self, run_id: str) -> None:
        """Wake everyone waiting for `run_id`."""
        event = self._events.get(run_id)
        if event is not None:
            event.set()
