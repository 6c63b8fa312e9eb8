"""Schedule expressions, one grammar per schedule type, compiled into rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from apflow.domain.enums import ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules.cron import parse_cron
from apflow.schedules.durations import check_interval
from apflow.schedules.rules import (
    DAYS_OF_MONTH,
    IntervalRule,
    OnceRule,
    Rule,
    WallRule,
    daily_rule,
)
from apflow.schedules.wallsearch import first_at_or_after

FIELD = "schedule_expression"
MAX_EXPRESSION_LENGTH = 256
_TYPE_VALUES = frozenset(t.value for t in ScheduleType)
_TYPES = ", ".join(t.value for t in ScheduleType)
_SECONDS = re.compile(r"^\d+$", re.ASCII)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$", re.ASCII)
_DAY_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$", re.ASCII)
# Any instant works as the start of the "does it ever fire" probe: the calendar repeats.
_PROBE_START = datetime(2000, 1, 1)


def parse_schedule_type(value: object) -> ScheduleType:
    """The ScheduleType named by `value`, or InvalidParams(field="schedule_type")."""
    if isinstance(value, str) and value in _TYPE_VALUES:
        return ScheduleType(value)
    raise InvalidParams(f"must be one of {_TYPES}", field="schedule_type")


def parse_rule(schedule_type: ScheduleType, expression: str) -> Rule:
    """The compiled rule of a (type, expression) pair; InvalidParams naming the field."""
    return _parse_rule(schedule_type, check_expression(expression))


def check_expression(expression: object) -> str:
    """`expression` stripped, if it is a plausible expression at all."""
    if not isinstance(expression, str):
        raise InvalidParams("must be a string", field=FIELD)
    if "\x00" in expression:
        raise InvalidParams("contains a NUL byte", field=FIELD)
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise InvalidParams(f"longer than {MAX_EXPRESSION_LENGTH} characters", field=FIELD)
    text = expression.strip()
    if not text:
        raise InvalidParams("must not be empty", field=FIELD)
    if not text.isascii() or not text.replace("\t", " ").isprintable():
        raise InvalidParams("may contain only printable ASCII characters", field=FIELD)
    return text


@lru_cache(maxsize=4096)
def _parse_rule(schedule_type: ScheduleType, text: str) -> Rule:
    rule = _PARSERS[schedule_type](text)
    if isinstance(rule, WallRule) and first_at_or_after(rule, _PROBE_START) is None:
        raise InvalidParams("never fires: no date matches its day-of-month, month and "
                            "day-of-week fields (e.g. 30 February)", field=FIELD)
    return rule


def parse_once(text: str) -> OnceRule:
    """`2024-01-15T09:00:00Z`: ISO 8601 with an offset."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParams(f"{text!r} is not an ISO 8601 date-time such as "
                            "2024-01-15T09:00:00Z", field=FIELD) from None
    if at.tzinfo is None:
        raise InvalidParams("a once schedule needs a UTC offset, e.g. 2024-01-15T09:00:00Z "
                            "or 2024-01-15T10:00:00+01:00", field=FIELD)
    return OnceRule(at.astimezone(UTC))


def parse_interval(text: str) -> IntervalRule:
    """`3600`: whole seconds."""
    if not _SECONDS.match(text):
        raise InvalidParams(f"an interval is whole seconds, e.g. 3600; got {text!r} "
                            "(for 1h30m-style durations use cron '@every 1h30m')", field=FIELD)
    return IntervalRule(check_interval(int(text)))


def parse_daily(text: str) -> WallRule:
    """`09:00`: every day at that wall-clock time."""
    hour, minute = parse_clock(text)
    return daily_rule(hour, minute)


def parse_weekly(text: str) -> WallRule:
    """`1,3,5 09:00`: ISO weekdays (1 = Monday ... 7 = Sunday) and a time."""
    days, clock = _split_days_and_clock(text, "weekly", "'1,3,5 09:00' (1=Mon ... 7=Sun)")
    hour, minute = parse_clock(clock)
    weekdays = tuple(sorted({iso % 7 for iso in parse_day_list(days, "weekday", 1, 7)}))
    return daily_rule(hour, minute, weekdays=weekdays)


def parse_monthly(text: str) -> WallRule:
    """`1,15 09:00`: days of the month and a time; a day a month lacks is skipped."""
    days, clock = _split_days_and_clock(text, "monthly", "'1,15 09:00'")
    hour, minute = parse_clock(clock)
    month_days = tuple(sorted(set(parse_day_list(days, "day", 1, 31))))
    if month_days == DAYS_OF_MONTH:
        return daily_rule(hour, minute)
    return daily_rule(hour, minute, days=month_days)


def _split_days_and_clock(text: str, kind: str, example: str) -> tuple[str, str]:
    parts = text.split()
    if len(parts) != 2:
        raise InvalidParams(f"a {kind} schedule is days and a time, e.g. {example}",
                            field=FIELD)
    return parts[0], parts[1]


def parse_clock(text: str) -> tuple[int, int]:
    """`HH:MM` on a 24-hour clock as (hour, minute)."""
    match = _CLOCK.match(text)
    if match is None:
        raise InvalidParams(f"expected a time as HH:MM (24-hour clock), got {text!r}",
                            field=FIELD)
    hour, minute = int(match[1]), int(match[2])
    if hour > 23:
        raise InvalidParams(f"hour {hour} is out of range 0-23", field=FIELD)
    if minute > 59:
        raise InvalidParams(f"minute {minute} is out of range 0-59", field=FIELD)
    return hour, minute


def parse_day_list(text: str, what: str, low: int, high: int) -> list[int]:
    """`1,3-5` as [1, 3, 4, 5], each within low..high."""
    values: list[int] = []
    for item in text.split(","):
        match = _DAY_ITEM.match(item)
        if match is None:
            raise InvalidParams(f"expected {what}s as numbers {low}-{high} separated by "
                                f"commas (ranges like 1-5 allowed), got {text!r}", field=FIELD)
        first = _in_range(int(match[1]), what, low, high)
        last = _in_range(int(match[2]), what, low, high) if match[2] else first
        if first > last:
            raise InvalidParams(f"{what} range {item} is reversed", field=FIELD)
        values.extend(range(first, last + 1))
    return values


def _in_range(value: int, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidParams(f"{what} {value} is out of range {low}-{high}", field=FIELD)
    return value


_PARSERS: dict[ScheduleType, Callable[[str], Rule]] = {
    ScheduleType.ONCE: parse_once,
    ScheduleType.INTERVAL: parse_interval,
    ScheduleType.CRON: parse_cron,
    ScheduleType.DAILY: parse_daily,
    ScheduleType.WEEKLY: parse_weekly,
    ScheduleType.MONTHLY: parse_monthly,
}
