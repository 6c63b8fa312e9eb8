"""What one schedule becomes in a calendar: an RRULE series, or slots listed one by one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Window:
    """The span an export describes exactly: slots after `now` up to `until`."""

    now: datetime
    until: datetime
    run_count: int = 0
    max_instances: int = 1000


@dataclass(frozen=True)
class Series:
    """An RRULE series and the instances written explicitly around offset changes."""

    start: datetime  # the first instance: a naive wall time, or a UTC instant if in_utc
    rule: str
    in_utc: bool
    count: int | None = None
    until: datetime | None = None
    exdates: tuple[datetime, ...] = ()  # UTC instants the RRULE gives that never fire
    rdates: tuple[datetime, ...] = ()  # UTC instants that fire where the RRULE has none


@dataclass(frozen=True)
class Listed:
    """Slots written one by one: a once schedule, or a schedule without an exact RRULE."""

    slots: tuple[datetime, ...]
    truncated: bool = False


Plan = Series | Listed
