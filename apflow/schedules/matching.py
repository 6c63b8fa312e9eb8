"""Is an instant a slot of a schedule? Decided directly, not by asking next_fire."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apflow.domain.errors import InvalidParams
from apflow.schedules.rules import IntervalRule, OnceRule, WallRule
from apflow.schedules.spec import ScheduleSpec
from apflow.schedules.timezones import as_utc
from apflow.schedules.wallclock import gap_ending_at
from apflow.schedules.wallsearch import contains, first_at_or_after

_MICROSECOND = timedelta(microseconds=1)


def matches(spec: ScheduleSpec, instant: datetime) -> bool:
    """True if `instant` is a slot of the schedule (inside start_at < slot <= end_at)."""
    at = as_utc(instant, "instant")
    if spec.start_at is not None and at <= spec.start_at:
        return False
    if spec.end_at is not None and at > spec.end_at:
        return False
    rule = spec.rule
    if isinstance(rule, OnceRule):
        return at == rule.at
    if isinstance(rule, IntervalRule):
        return _on_grid(rule, spec.start_at or spec.anchor, at)
    return matches_wall(rule, spec.zone, at)


def _on_grid(rule: IntervalRule, anchor: datetime | None, at: datetime) -> bool:
    if anchor is None:
        raise InvalidParams("an interval schedule without schedule_start_at or anchor has "
                            "no fixed slots", field="anchor")
    elapsed = (at - anchor) // _MICROSECOND
    return elapsed > 0 and elapsed % (rule.seconds * 1_000_000) == 0


def matches_wall(rule: WallRule, zone: ZoneInfo, at: datetime) -> bool:
    """True if `at` is a calendar slot under the DST rules (see docs/schedules.md)."""
    local = at.astimezone(zone)
    wall = local.replace(tzinfo=None, fold=0)
    # local.fold is 1 only in the second pass of a repeated hour: fixed-time rules skip it.
    if contains(rule, wall) and (rule.repeats or not local.fold):
        return True
    gap = gap_ending_at(at, zone)
    return gap is not None and _any_between(rule, *gap)


def _any_between(rule: WallRule, start: datetime, end: datetime) -> bool:
    whole = start.replace(second=0, microsecond=0)
    if whole < start:
        whole += timedelta(minutes=1)
    found = first_at_or_after(rule, whole)
    return found is not None and found < end
