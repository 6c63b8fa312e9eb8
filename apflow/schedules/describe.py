"""A schedule in plain words: `every day at 09:00 (Europe/Berlin)`, `every 1h30m`."""

from __future__ import annotations

from datetime import datetime

from apflow.schedules.durations import format_duration
from apflow.schedules.fieldtext import plain_text, run_groups, star_text
from apflow.schedules.rules import DayMatch, IntervalRule, OnceRule, WallRule
from apflow.schedules.spec import ScheduleSpec

_DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTH_NAMES = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Listing at most this many times of day reads better than a minute/hour phrase.
_MAX_LISTED_TIMES = 4


def describe(spec: ScheduleSpec) -> str:
    """The schedule in one short line of plain words."""
    return _core(spec) + _limits(spec)


def _core(spec: ScheduleSpec) -> str:
    rule = spec.rule
    if isinstance(rule, OnceRule):
        return f"once at {_moment(rule.at, spec)} ({spec.timezone})"
    if isinstance(rule, IntervalRule):
        return f"every {format_duration(rule.seconds)}"
    return f"{describe_wall(rule)} ({spec.timezone})"


def _limits(spec: ScheduleSpec) -> str:
    parts = []
    if spec.start_at is not None:
        parts.append(f"after {_moment(spec.start_at, spec)}")
    if spec.end_at is not None:
        parts.append(f"until {_moment(spec.end_at, spec)}")
    if spec.max_runs is not None:
        parts.append(f"at most {spec.max_runs} run{'' if spec.max_runs == 1 else 's'}")
    return "".join(f", {part}" for part in parts)


def _moment(at: datetime, spec: ScheduleSpec) -> str:
    local = at.astimezone(spec.zone)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def describe_wall(rule: WallRule) -> str:
    """Words for a calendar rule: when in the day, on which days, in which months."""
    days = _days(rule, each_month=len(rule.months) == 12)
    months = "" if len(rule.months) == 12 else f" in {_names(rule.months, _MONTH_NAMES)}"
    times = _listed_times(rule)
    if times is None:
        return _joined(_minute_phrase(rule), days) + months
    if not days and not months:
        return f"every day at {times}"
    return _joined(f"at {times}", days) + months


def _joined(first: str, second: str) -> str:
    return f"{first} {second}" if second else first


def _listed_times(rule: WallRule) -> str | None:
    if rule.repeats or len(rule.hours) * len(rule.minutes) > _MAX_LISTED_TIMES:
        return None
    times = [f"{h:02d}:{m:02d}" for h in rule.hours for m in rule.minutes]
    return _and(times)


def _minute_phrase(rule: WallRule) -> str:
    minutes = _minutes(rule.minutes)
    periodic = minutes.startswith("every")
    if len(rule.hours) == 24:
        return minutes if periodic else f"every hour {minutes}"
    star = star_text(rule.hours, 0, 23)
    if star and star != "*":
        every = f"every {star[2:]} hours"
        return f"{minutes}, {every}" if periodic else f"{every} {minutes}"
    hours = f"hour{'s' if len(rule.hours) > 1 else ''} {plain_text(rule.hours)}"
    return f"{minutes} during {hours}" if periodic else f"{minutes} past {hours}"


def _minutes(minutes: tuple[int, ...]) -> str:
    star = star_text(minutes, 0, 59) if len(minutes) > 1 else None
    if star == "*":
        return "every minute"
    if star:
        return f"every {star[2:]} minutes"
    label = "minute" if len(minutes) == 1 else "minutes"
    return f"at {label} {plain_text(minutes)}"


def _days(rule: WallRule, *, each_month: bool) -> str:
    match rule.day_match:
        case DayMatch.ALL:
            return ""
        case DayMatch.DOM:
            return f"on {_ordinals(rule.days)}" + (" of each month" if each_month else "")
        case DayMatch.DOW:
            return f"on {_names(rule.weekdays, _DAY_NAMES)}"
        case DayMatch.EITHER:
            return f"on {_ordinals(rule.days)} or on {_names(rule.weekdays, _DAY_NAMES)}"
        case DayMatch.BOTH:
            return (f"on {_ordinals(rule.days)} when that is a "
                    f"{_names(rule.weekdays, _DAY_NAMES, joiner='or')}")


def _ordinals(days: tuple[int, ...]) -> str:
    if len(run_groups(days)) > _MAX_LISTED_TIMES:
        return f"days {plain_text(days)}"
    return "the " + _and([_ordinal(first) if first == last
                          else f"{_ordinal(first)}-{_ordinal(last)}"
                          for first, last in run_groups(days)])


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _names(values: tuple[int, ...], names: tuple[str, ...], joiner: str = "and") -> str:
    # Week starts on Monday in the words, as in ISO and the weekly schedule type.
    ordered = tuple(sorted(values, key=lambda v: (v == 0, v))) if names is _DAY_NAMES else values
    parts = [names[first] if first == last else f"{names[first]}-{names[last]}"
             for first, last in _name_runs(ordered, names)]
    return ", ".join(parts) if joiner == "and" else _and(parts, joiner)


def _name_runs(values: tuple[int, ...], names: tuple[str, ...]) -> list[tuple[int, int]]:
    size = len(names)
    groups: list[tuple[int, int]] = []
    for value in values:
        if groups and value == (groups[-1][1] + 1) % size:
            groups[-1] = (groups[-1][0], value)
        else:
            groups.append((value, value))
    # Two neighbours read better as a list than as a range ("Sat, Sun", not "Sat-Sun").
    return [pair for first, last in groups
            for pair in ([(first, first), (last, last)] if (last - first) % size == 1
                         else [(first, last)])]


def _and(parts: list[str], joiner: str = "and") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {joiner} {parts[-1]}"
