"""Find the wall-clock minutes a calendar rule matches, in naive local time.

The search walks the sorted field values (month, then day, then hour and minute) instead of
stepping minute by minute, so the next slot is a handful of lookups away however far it is.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import MAXYEAR, date, datetime, timedelta

from apflow.schedules.rules import DayMatch, WallRule

_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
# The Gregorian calendar repeats every 400 years: a rule with no date in that span has none.
HORIZON_MONTHS = 400 * 12 + 1
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def first_after(rule: WallRule, wall: datetime) -> datetime | None:
    """The first matching wall-clock minute strictly after `wall` (naive)."""
    try:
        start = wall.replace(second=0, microsecond=0) + _MINUTE
    except OverflowError:
        return None
    return first_at_or_after(rule, start)


def first_at_or_after(rule: WallRule, start: datetime) -> datetime | None:
    """The first matching wall-clock minute at or after `start` (naive, whole minute)."""
    today = start.date()
    day = first_day(rule, today)
    if day == today:
        time = _first_time(rule, start.hour, start.minute)
        if time is not None:
            return datetime(day.year, day.month, day.day, time[0], time[1])
        day = _next_day(rule, today)
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, rule.hours[0], rule.minutes[0])


def contains(rule: WallRule, wall: datetime) -> bool:
    """True if the naive wall-clock time `wall` is one of the rule's minutes."""
    return (wall.second == 0 and wall.microsecond == 0 and wall.minute in rule.minute_set
            and wall.hour in rule.hour_set and wall.month in rule.month_set
            and _day_matches(rule, wall.year, wall.month, wall.day))


def first_day(rule: WallRule, start: date) -> date | None:
    """The first date on or after `start` the rule fires on."""
    year, month, from_day = start.year, start.month, start.day
    for _ in range(HORIZON_MONTHS):
        if month in rule.month_set:
            day = _day_in_month(rule, year, month, from_day)
            if day is not None:
                return date(year, month, day)
        year, month = _next_month(rule, year, month)
        if year > MAXYEAR:
            return None
        from_day = 1
    return None


def _next_day(rule: WallRule, day: date) -> date | None:
    if day == date.max:
        return None
    return first_day(rule, day + _DAY)


def _next_month(rule: WallRule, year: int, month: int) -> tuple[int, int]:
    index = bisect_right(rule.months, month)
    if index < len(rule.months):
        return year, rule.months[index]
    return year + 1, rule.months[0]


def days_in_month(year: int, month: int) -> int:
    """28..31."""
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def cron_weekday(year: int, month: int, day: int) -> int:
    """0 = Sunday ... 6 = Saturday, as cron counts."""
    return (date(year, month, day).weekday() + 1) % 7


def _day_in_month(rule: WallRule, year: int, month: int, from_day: int) -> int | None:
    last = days_in_month(year, month)
    match rule.day_match:
        case DayMatch.ALL:
            return from_day
        case DayMatch.DOM:
            return _next_dom(rule, from_day, last)
        case DayMatch.DOW:
            return _next_dow(rule, year, month, from_day, last)
        case DayMatch.EITHER:
            found = [d for d in (_next_dom(rule, from_day, last),
                                 _next_dow(rule, year, month, from_day, last)) if d is not None]
            return min(found, default=None)
        case DayMatch.BOTH:
            return _next_both(rule, year, month, from_day, last)


def _next_dom(rule: WallRule, from_day: int, last: int) -> int | None:
    index = bisect_left(rule.days, from_day)
    if index < len(rule.days) and rule.days[index] <= last:
        return rule.days[index]
    return None


def _next_dow(rule: WallRule, year: int, month: int, from_day: int, last: int) -> int | None:
    day = from_day + rule.weekday_skip[cron_weekday(year, month, from_day)]
    return day if day <= last else None


def _next_both(rule: WallRule, year: int, month: int, from_day: int, last: int) -> int | None:
    weekday = cron_weekday(year, month, from_day)
    for day in range(from_day, last + 1):
        if day in rule.day_set and (weekday + day - from_day) % 7 in rule.weekday_set:
            return day
    return None


def _day_matches(rule: WallRule, year: int, month: int, day: int) -> bool:
    return _day_in_month(rule, year, month, day) == day


def _first_time(rule: WallRule, hour: int, minute: int) -> tuple[int, int] | None:
    """The first (hour, minute) of the rule at or after hour:minute on the same day."""
    hours = rule.hours
    index = bisect_left(hours, hour)
    if index < len(hours) and hours[index] == hour:
        at = bisect_left(rule.minutes, minute)
        if at < len(rule.minutes):
            return hour, rule.minutes[at]
        index += 1
    if index < len(hours):
        return hours[index], rule.minutes[0]
    return None
