"""Where a wall-clock time falls on the real time line: once, never (a DST gap) or twice.

zoneinfo answers with PEP 495 `fold`: for a time that occurs twice, fold=0 is the first
occurrence and fold=1 the second; for a time that never occurs, the two folds disagree the
other way round. Comparing the offsets of both folds tells the three cases apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

_TICK = timedelta(microseconds=1)


class Placement(Enum):
    """How often a wall-clock time occurs on the real time line."""

    ONCE = "once"
    NEVER = "never"  # inside a spring-forward gap
    TWICE = "twice"  # inside a fall-back repeat


@dataclass(frozen=True)
class Resolved:
    """The real instant(s) of one wall-clock time, in UTC."""

    placement: Placement
    first: datetime  # the instant; the first occurrence; or, in a gap, the end of the gap
    second: datetime | None = None  # the second occurrence (TWICE only)


@dataclass(frozen=True)
class Repeat:
    """A fall-back repeat: wall times in [start, end) occur twice (naive local times)."""

    start: datetime
    end: datetime
    later_offset: timedelta  # the UTC offset during the second pass


def offsets(wall: datetime, zone: ZoneInfo) -> tuple[timedelta, timedelta]:
    """UTC offsets of a naive wall time read as its first (fold=0) and second (fold=1) pass."""
    first = zone.utcoffset(wall.replace(fold=0))
    second = zone.utcoffset(wall.replace(fold=1))
    assert first is not None and second is not None  # a ZoneInfo always has an offset
    return first, second


def instant(wall: datetime, offset: timedelta) -> datetime:
    """The UTC instant of a naive wall time at a given offset."""
    return (wall - offset).replace(tzinfo=UTC, fold=0)


def resolve(wall: datetime, zone: ZoneInfo) -> Resolved:
    """Map a naive wall-clock time to its instant(s); a gap maps to the gap's end."""
    before, after = offsets(wall, zone)
    if before == after:
        return Resolved(Placement.ONCE, instant(wall, before))
    if before > after:
        return Resolved(Placement.TWICE, instant(wall, before), instant(wall, after))
    # In a gap fold=0 reads the time with the offset from before the jump, which lands
    # after the jump: the transition lies between the two readings.
    end = transition_between(zone, instant(wall, after), instant(wall, before))
    return Resolved(Placement.NEVER, end)


def repeat_containing(wall: datetime, zone: ZoneInfo) -> Repeat | None:
    """The fall-back repeat that `wall` lies in, if it occurs twice."""
    before, after = offsets(wall, zone)
    if before <= after:
        return None
    switch = transition_between(zone, instant(wall, before), instant(wall, after))
    naive = switch.replace(tzinfo=None)
    return Repeat(start=naive + after, end=naive + before, later_offset=after)


def gap_ending_at(moment: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The skipped wall times [start, end) if a spring-forward gap ends exactly at `moment`."""
    before = offset_at(moment - _TICK, zone)
    after = offset_at(moment, zone)
    if before >= after:
        return None
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive + before, naive + after


def offset_at(moment: datetime, zone: ZoneInfo) -> timedelta:
    """The zone's UTC offset at an aware instant."""
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def transition_between(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first instant in (low, high] already at high's offset (UTC in, UTC out).

    tzdata changes offsets on whole seconds, so a bisection over seconds is exact; zoneinfo
    keeps its transition table private, hence the search.
    """
    target = offset_at(high, zone)
    low_s, high_s = math.floor(low.timestamp()), math.ceil(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if offset_at(datetime.fromtimestamp(middle, UTC), zone) == target:
            high_s = middle
        else:
            low_s = middle
    return datetime.fromtimestamp(high_s, UTC)
