"""Plan a schedule's calendar entry: a once event, an RRULE series, or listed slots.

Within the export window a subscriber sees exactly the slots apflow fires. Beyond it an
RRULE series goes on as RFC 5545 reads it: a DST night past the window shows the RFC
placement, and a series limited by both max_runs and end_at stops at end_at only. The feed
is meant to be fetched again (REFRESH-INTERVAL), which moves the window on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apflow.gateway.ical_plan import Listed, Plan, Series, Window
from apflow.gateway.ical_rrule import interval_rrule
from apflow.gateway.ical_wall_series import wall_plan
from apflow.schedules import ScheduleSpec, next_fire, slots_between
from apflow.schedules.rules import OnceRule, WallRule


def plan(spec: ScheduleSpec, window: Window) -> Plan | None:
    """How the schedule appears in the calendar; None when it has no slot after `now`."""
    rule = spec.rule
    if isinstance(rule, WallRule):
        return wall_plan(spec, rule, window)
    first = next_fire(spec, window.now, window.run_count)
    if first is None:
        return None
    if isinstance(rule, OnceRule):
        return Listed((first,))
    text = interval_rrule(rule.seconds)
    if text is None:
        return listed(spec, window)
    return interval_series(spec, rule.seconds, window, first, text)


def listed(spec: ScheduleSpec, window: Window) -> Listed:
    """The slots up to the window's end, at most max_instances of them."""
    slots = slots_between(spec, window.now, window.until, window.run_count,
                          limit=window.max_instances + 1)
    return Listed(tuple(slots[:window.max_instances]), len(slots) > window.max_instances)


def interval_series(spec: ScheduleSpec, seconds: int, window: Window, first: datetime,
                    rule: str) -> Series:
    """A UTC series: it counts real elapsed time, so no correction is ever needed."""
    remaining = None if spec.max_runs is None else spec.max_runs - window.run_count
    if remaining is None:
        return Series(first, rule, True, until=spec.end_at)
    step = timedelta(seconds=seconds)
    if spec.end_at is None or remaining <= (spec.end_at - first) // step + 1:
        return Series(first, rule, True, count=remaining)
    return Series(first, rule, True, until=spec.end_at)
