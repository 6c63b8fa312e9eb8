"""The RRULE that repeats a schedule exactly, where one exists.

Calendar rules (daily, weekly, monthly, cron) repeat in wall-clock time, so their RRULE runs
in the schedule's zone; an interval counts real seconds, so its RRULE runs in UTC, where
no offset ever changes. A cron rule whose day fields are ORed (`0 9 1,15 * 1`) and an
interval that is not whole minutes have no RRULE: the exporter lists their instances.
"""

from __future__ import annotations

from functools import lru_cache

from apflow.schedules.rules import HOURS, MONTHS, DayMatch, WallRule

_ICAL_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # cron weekday numbering
_FREQ_BY_DAY_MATCH = {
    DayMatch.ALL: "DAILY",
    DayMatch.DOW: "WEEKLY",
    DayMatch.DOM: "MONTHLY",
    DayMatch.BOTH: "MONTHLY",  # BYMONTHDAY and BYDAY together: both must match (RFC 5545)
}
_UNITS = ((86400, "DAILY"), (3600, "HOURLY"), (60, "MINUTELY"))


def interval_rrule(seconds: int) -> str | None:
    """`FREQ=MINUTELY;INTERVAL=15` for 900 s (to run in UTC); None unless whole minutes."""
    for size, freq in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"FREQ={freq}" if count == 1 else f"FREQ={freq};INTERVAL={count}"
    return None


@lru_cache(maxsize=4096)
def wall_rrule(rule: WallRule) -> str | None:
    """The RRULE of a calendar rule; None when its day fields are ORed (cron's rule)."""
    if rule.day_match is DayMatch.EITHER:
        return None
    hourly = rule.day_match is DayMatch.ALL and rule.hours == HOURS
    parts = [f"FREQ={'HOURLY' if hourly else _FREQ_BY_DAY_MATCH[rule.day_match]}"]
    if rule.months != MONTHS:
        parts.append(f"BYMONTH={_numbers(rule.months)}")
    if rule.day_match in (DayMatch.DOM, DayMatch.BOTH):
        parts.append(f"BYMONTHDAY={_numbers(rule.days)}")
    if rule.day_match in (DayMatch.DOW, DayMatch.BOTH):
        parts.append("BYDAY=" + ",".join(_ICAL_DAYS[day] for day in rule.weekdays))
    if not hourly:
        parts.append(f"BYHOUR={_numbers(rule.hours)}")
    parts.append(f"BYMINUTE={_numbers(rule.minutes)}")
    return ";".join(parts)


def _numbers(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))
