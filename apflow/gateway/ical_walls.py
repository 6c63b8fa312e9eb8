"""Calendar rules read the RFC 5545 way: matching wall times, their instants, zone transitions.

An RFC 5545 expander turns each matching wall time into an instant with the offset in force
before any change (PEP 495 fold=0): a time inside a spring-forward gap lands after the gap
by the gap's length (02:30 becomes 03:30), a repeated time means its first pass. apflow's
own placement differs only near an offset change, which is what the exporter corrects.
Wall times here are naive datetimes; a day's times are counted by bisection, not walked.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apflow.schedules.rules import DayMatch, WallRule

_ONE_DAY = timedelta(days=1)
_PROBE = timedelta(hours=1)  # offsets never change twice within an hour in tzdata
# Far enough to reach the next 29 February that falls on a given weekday.
MAX_SEARCH_DAYS = 366 * 30


@dataclass(frozen=True)
class Transition:
    """A change of a zone's UTC offset at an instant (UTC)."""

    at: datetime
    before: timedelta
    after: timedelta

    @property
    def size(self) -> timedelta:
        """How far local time jumps, forward or back."""
        return abs(self.after - self.before)


def rfc_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Where an RFC 5545 expander places a naive wall time (UTC)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall time of an instant in a zone."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def day_matches(rule: WallRule, day: date) -> bool:
    """True if the rule fires on this date (its day fields ANDed, as an RRULE does)."""
    if day.month not in rule.month_set:
        return False
    match rule.day_match:
        case DayMatch.ALL:
            return True
        case DayMatch.DOM:
            return day.day in rule.day_set
        case DayMatch.DOW:
            return day.isoweekday() % 7 in rule.weekday_set
        case DayMatch.BOTH:
            return day.day in rule.day_set and day.isoweekday() % 7 in rule.weekday_set
        case DayMatch.EITHER:
            return day.day in rule.day_set or day.isoweekday() % 7 in rule.weekday_set


@lru_cache(maxsize=4096)
def day_seconds(rule: WallRule) -> tuple[int, ...]:
    """The rule's times of day as sorted seconds since midnight."""
    return tuple(sorted(hour * 3600 + minute * 60
                        for hour in rule.hours for minute in rule.minutes))


def _seconds(wall: datetime) -> int:
    # Wall times are whole minutes, so "later than" a fractional second is "later than" it.
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _at(day: date, second: int) -> datetime:
    return datetime.combine(day, time(second // 3600, second // 60 % 60))


def _day_slice(times: tuple[int, ...], day: date, low: datetime,
               high: datetime) -> tuple[int, int]:
    """Indices into a day's sorted times of the walls in (low, high]."""
    first = bisect_right(times, _seconds(low)) if day == low.date() else 0
    last = bisect_right(times, _seconds(high)) if day == high.date() else len(times)
    return first, last


def walls_between(rule: WallRule, low: datetime, high: datetime) -> Iterator[datetime]:
    """Matching wall times in (low, high], in order."""
    times = day_seconds(rule)
    day = low.date()
    while day <= high.date():
        if day_matches(rule, day):
            first, last = _day_slice(times, day, low, high)
            for second in times[first:last]:
                yield _at(day, second)
        day += _ONE_DAY


def count_walls(rule: WallRule, low: datetime, high: datetime) -> int:
    """How many matching wall times lie in (low, high]."""
    times = day_seconds(rule)
    total = 0
    day = low.date()
    while day <= high.date():
        if day_matches(rule, day):
            first, last = _day_slice(times, day, low, high)
            total += max(last - first, 0)
        day += _ONE_DAY
    return total


def nth_wall(rule: WallRule, low: datetime, index: int) -> datetime | None:
    """The index-th (from 1) matching wall time later than `low`."""
    times = day_seconds(rule)
    day = low.date()
    for _ in range(MAX_SEARCH_DAYS):
        if day_matches(rule, day):
            first = bisect_right(times, _seconds(low)) if day == low.date() else 0
            if index <= len(times) - first:
                return _at(day, times[first + index - 1])
            index -= len(times) - first
        day += _ONE_DAY
    return None


def first_wall(rule: WallRule, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first matching wall time later than `after` whose RFC instant is later too."""
    low = local_wall(after, zone)
    for index in range(1, 4 * len(day_seconds(rule)) + 2):
        wall = nth_wall(rule, low, index)
        # Past the first candidate only in a repeated hour, whose first pass is over.
        if wall is None or rfc_instant(wall, zone) > after:
            return wall
    return None


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[Transition]:
    """The zone's offset changes in (start, end], found by hourly probes and bisection."""
    hour = 3600
    return list(_transitions(zone, int(start.timestamp()) // hour * hour,
                             -(-int(end.timestamp()) // hour) * hour))


@lru_cache(maxsize=1024)
def _transitions(zone: ZoneInfo, start: int, end: int) -> tuple[Transition, ...]:
    found = []
    low = datetime.fromtimestamp(start, UTC)
    offset = _offset(zone, low)
    while low.timestamp() < end:
        high = low + _PROBE
        new = _offset(zone, high)
        if new != offset:
            found.append(Transition(_bisect(zone, low, high), offset, new))
            offset = new
        low = high
    return tuple(found)


def _bisect(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first whole second in (low, high] already at high's offset."""
    target = _offset(zone, high)
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == target:
            high_s = middle
        else:
            low_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset
