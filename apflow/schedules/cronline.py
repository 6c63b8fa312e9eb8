"""A standard 5-field cron line with the same slots, for crontab and Kubernetes export."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apflow.schedules.fieldtext import any_text, plain_text, star_text
from apflow.schedules.rules import DayMatch, IntervalRule, OnceRule, WallRule
from apflow.schedules.spec import ScheduleSpec

# How far ahead an interval's zone is probed for UTC offset changes, and how often: any DST
# period longer than a week shows up. The rules after that are not known today anyway.
_PROBE_STEP = timedelta(days=7)
_PROBE_COUNT = 2 * 53


def cron_line(spec: ScheduleSpec) -> str | None:
    """The equivalent `m h dom mon dow` line in the schedule's time zone, or None if inexact."""
    rule = spec.rule
    if isinstance(rule, OnceRule):
        return None  # cron has no year: a line would fire again every year
    if isinstance(rule, IntervalRule):
        return interval_line(rule.seconds, spec.start_at or spec.anchor, spec.zone)
    return wall_line(rule)


def wall_line(rule: WallRule) -> str | None:
    """The five fields of a calendar rule; None where cron dialects disagree on its meaning."""
    days = _day_fields(rule)
    # A wildcard hour is what makes the rule fire in both passes of a repeated hour, so the
    # line must keep the '*' exactly when the rule repeats.
    hour = star_text(rule.hours, 0, 23) if rule.repeats else plain_text(rule.hours)
    if days is None or hour is None:
        return None
    minute = any_text(rule.minutes, 0, 59)
    month = any_text(rule.months, 1, 12)
    return f"{minute} {hour} {days[0]} {month} {days[1]}"


def _day_fields(rule: WallRule) -> tuple[str, str] | None:
    match rule.day_match:
        case DayMatch.ALL:
            return "*", "*"
        case DayMatch.DOM:
            return plain_text(rule.days), "*"
        case DayMatch.DOW:
            return "*", plain_text(rule.weekdays)
        case DayMatch.EITHER:
            return plain_text(rule.days), plain_text(rule.weekdays)
        case DayMatch.BOTH:
            # Vixie cron ANDs '*/2' with a weekday, Kubernetes (robfig/cron) ORs them: no
            # single line means the same everywhere.
            return None


def interval_line(seconds: int, anchor: datetime | None, zone: ZoneInfo) -> str | None:
    """A cron line firing at the interval's slots, when whole minutes line up with its grid."""
    if anchor is None or anchor.second or anchor.microsecond or seconds % 60:
        return None
    minutes = seconds // 60
    local = anchor.astimezone(zone)
    shifts = _offset_shifts(zone, anchor)
    if 60 % minutes == 0:
        return _minute_grid_line(minutes, local.minute % minutes, shifts)
    if minutes % 60 == 0 and 1440 % minutes == 0 and not shifts:
        hours = minutes // 60
        return f"{local.minute} {_grid_field(local.hour % hours, hours, 24)} * * *"
    return None


def _minute_grid_line(step: int, phase: int, shifts: set[int]) -> str | None:
    # Across a DST change the grid survives only if the shift is a whole number of steps and
    # the gap ends on a slot (phase 0), so the gap rule adds no extra fire.
    if shifts and (phase or any(shift % step for shift in shifts)):
        return None
    return f"{_grid_field(phase, step, 60)} * * * *"


def _grid_field(phase: int, step: int, size: int) -> str:
    if step == 1:
        return "*"
    if step == size:
        return str(phase)
    return f"*/{step}" if phase == 0 else f"{phase}-{size - 1}/{step}"


def _offset_shifts(zone: ZoneInfo, start: datetime) -> set[int]:
    """Minutes by which the zone's UTC offset moves over the next two years (empty: fixed)."""
    seen = set()
    for index in range(_PROBE_COUNT):
        offset = (start + index * _PROBE_STEP).astimezone(zone).utcoffset()
        seen.add(offset)
    first = start.astimezone(zone).utcoffset()
    return {abs(int((offset - first).total_seconds()) // 60)
            for offset in seen if offset is not None and first is not None and offset != first}
