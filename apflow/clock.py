"""The one injected clock: core code reads time only from here."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    # True for a clock that reads real time: lease instants are then aligned with the
    # database server's clock (engine/leases.py). A test clock keeps its own time.
    wall: bool

    def now(self) -> datetime:
        """Return the current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    wall = True

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time(), UTC)


class FakeClock:
    """A clock that moves only when told to; for tests."""

    wall = False

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = instant

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now
