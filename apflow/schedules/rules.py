"""The compiled forms of a schedule expression: what the slot maths works from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

MINUTES = tuple(range(60))
HOURS = tuple(range(24))
DAYS_OF_MONTH = tuple(range(1, 32))
MONTHS = tuple(range(1, 13))
WEEKDAYS = tuple(range(7))  # cron numbering: 0 = Sunday ... 6 = Saturday


@dataclass(frozen=True)
class OnceRule:
    """One slot at a fixed instant (UTC)."""

    at: datetime


@dataclass(frozen=True)
class IntervalRule:
    """Slots every `seconds` of real elapsed time from an anchor."""

    seconds: int


class DayMatch(Enum):
    """How day-of-month and day-of-week combine into 'this date fires'."""

    ALL = "all"  # every date
    DOM = "dom"  # day-of-month decides
    DOW = "dow"  # day-of-week decides
    EITHER = "either"  # cron's OR rule: both fields restricted, either may match
    BOTH = "both"  # a '*'-prefixed field with a step (Vixie: '*/2') narrows the other


@dataclass(frozen=True)
class WallRule:
    """Wall-clock minutes a calendar schedule fires at, as sorted field values."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    day_match: DayMatch
    # Cron with a wildcard hour fires in both passes of a repeated hour (as Vixie cron does);
    # every other calendar schedule fires once, at the first pass.
    repeats: bool = False
    minute_set: frozenset[int] = field(init=False, repr=False, compare=False)
    hour_set: frozenset[int] = field(init=False, repr=False, compare=False)
    day_set: frozenset[int] = field(init=False, repr=False, compare=False)
    month_set: frozenset[int] = field(init=False, repr=False, compare=False)
    weekday_set: frozenset[int] = field(init=False, repr=False, compare=False)
    # Days from a given cron weekday to the next matching one: one lookup, no loop.
    weekday_skip: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, values in (("minute_set", self.minutes), ("hour_set", self.hours),
                             ("day_set", self.days), ("month_set", self.months),
                             ("weekday_set", self.weekdays)):
            object.__setattr__(self, name, frozenset(values))
        object.__setattr__(self, "weekday_skip", _weekday_skips(self.weekday_set))


def _weekday_skips(weekdays: frozenset[int]) -> tuple[int, ...]:
    if not weekdays:
        return (7,) * 7
    return tuple(min((w - start) % 7 for w in weekdays) for start in WEEKDAYS)


def day_match(days: tuple[int, ...], weekdays: tuple[int, ...], *, either: bool) -> DayMatch:
    """Combine the day fields; `either` is cron's OR rule (neither field written with '*')."""
    dom_all = days == DAYS_OF_MONTH
    dow_all = weekdays == WEEKDAYS
    if either:
        return DayMatch.ALL if dom_all or dow_all else DayMatch.EITHER
    if dom_all and dow_all:
        return DayMatch.ALL
    if dow_all:
        return DayMatch.DOM
    if dom_all:
        return DayMatch.DOW
    return DayMatch.BOTH


def daily_rule(hour: int, minute: int, *, days: tuple[int, ...] = DAYS_OF_MONTH,
               weekdays: tuple[int, ...] = WEEKDAYS) -> WallRule:
    """A fixed wall-clock time on the given days (daily, weekly and monthly schedules)."""
    return WallRule(minutes=(minute,), hours=(hour,), days=days, months=MONTHS,
                    weekdays=weekdays, day_match=day_match(days, weekdays, either=False))


Rule = OnceRule | IntervalRule | WallRule
