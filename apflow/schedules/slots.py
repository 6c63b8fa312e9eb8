"""The next slot of a compiled rule after an instant, with how DST placed it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from apflow.schedules.rules import IntervalRule, OnceRule, Rule, WallRule
from apflow.schedules.wallclock import Placement, Repeat, instant, repeat_containing, resolve
from apflow.schedules.wallsearch import first_after, first_at_or_after

_MICROSECOND = timedelta(microseconds=1)


class SlotKind(Enum):
    """What DST did to a calendar slot."""

    REGULAR = "regular"
    SHIFTED = "shifted"  # its wall time fell in a spring-forward gap: fires as the gap ends
    FIRST_OF_TWO = "first_of_two"  # its wall time occurs twice; this is the first
    SECOND_OF_TWO = "second_of_two"  # the second of the two (cron with a wildcard hour)


@dataclass(frozen=True)
class Slot:
    """One fire time: the instant (UTC) and, for calendar rules, the wall time it stands for."""

    at: datetime
    wall: datetime | None = None
    kind: SlotKind = SlotKind.REGULAR


def next_slot(rule: Rule, zone: ZoneInfo, after: datetime,
              anchor: datetime | None) -> Slot | None:
    """The rule's first slot strictly after `after` (UTC); intervals count from `anchor`."""
    if isinstance(rule, OnceRule):
        return Slot(rule.at) if rule.at > after else None
    if isinstance(rule, IntervalRule):
        return next_interval_slot(rule, anchor or after, after)
    try:
        return next_wall_slot(rule, zone, after)
    except OverflowError:  # the calendar ran past year 9999
        return None


def next_interval_slot(rule: IntervalRule, anchor: datetime, after: datetime) -> Slot | None:
    """anchor + k*N for the smallest k >= 1 past `after`: whole multiples, so no drift."""
    step = rule.seconds * 1_000_000
    elapsed = (after - anchor) // _MICROSECOND
    count = max(elapsed // step + 1, 1)
    try:
        return Slot((anchor + count * step * _MICROSECOND).astimezone(UTC))
    except OverflowError:  # past year 9999
        return None


def next_wall_slot(rule: WallRule, zone: ZoneInfo, after: datetime) -> Slot | None:
    """The first calendar slot after `after`, placed on the real time line by the DST rules."""
    local = after.astimezone(zone)
    wall = local.replace(tzinfo=None, fold=0)
    repeat = repeat_containing(wall, zone)
    if repeat is None:
        return _first_pass(zone, first_after(rule, wall))
    if local.fold:
        return _after_second_pass(rule, zone, wall, repeat)
    return _during_first_pass(rule, zone, wall, repeat)


def _during_first_pass(rule: WallRule, zone: ZoneInfo, wall: datetime,
                       repeat: Repeat) -> Slot | None:
    upcoming = first_after(rule, wall)
    # Past the last slot of the first pass, a repeating rule comes round again in the second.
    if rule.repeats and (upcoming is None or upcoming >= repeat.end):
        again = first_at_or_after(rule, repeat.start)
        if again is not None and again < repeat.end:
            return _second_pass(again, repeat)
    return _first_pass(zone, upcoming)


def _after_second_pass(rule: WallRule, zone: ZoneInfo, wall: datetime,
                       repeat: Repeat) -> Slot | None:
    upcoming = first_after(rule, wall)
    if upcoming is not None and upcoming < repeat.end:
        if rule.repeats:
            return _second_pass(upcoming, repeat)
        # Fixed-time slots of the repeated hour already fired in the first pass.
        upcoming = first_at_or_after(rule, repeat.end)
    return _first_pass(zone, upcoming)


def _first_pass(zone: ZoneInfo, wall: datetime | None) -> Slot | None:
    if wall is None:
        return None
    resolved = resolve(wall, zone)
    return Slot(resolved.first, wall, _KINDS[resolved.placement])


def _second_pass(wall: datetime, repeat: Repeat) -> Slot:
    return Slot(instant(wall, repeat.later_offset), wall, SlotKind.SECOND_OF_TWO)


_KINDS = {
    Placement.ONCE: SlotKind.REGULAR,
    Placement.NEVER: SlotKind.SHIFTED,
    Placement.TWICE: SlotKind.FIRST_OF_TWO,
}
