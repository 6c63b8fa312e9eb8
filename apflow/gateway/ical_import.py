"""Exclusion calendars: an .ics file whose events are times a task must not fire.

A timed event covers [start, end); one without an end or duration covers its start
instant only. An all-day event covers the whole local day, and a floating time (no zone)
is a local time: both are read in the task's time zone (the `timezone` given to
`covers`), else in the calendar's own X-WR-TIMEZONE, else in UTC. Recurring events
(RRULE, RDATE, EXDATE, overridden instances) are expanded with recurring-ical-events
around each instant asked about. Loading and caching sources: exclusion_cache.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar

from apflow.domain.errors import InvalidParams
from apflow.schedules import validate_timezone
from apflow.schedules.timezones import as_utc

FIELD = "exclusion_calendar"
MAX_BYTES = 5 * 1024 * 1024
MAX_EVENTS = 10_000
_REASON_CHARS = 160  # parser messages quote the input: keep them short
# The query runs over whole dates either side: no UTC offset reaches further than a day.
_REACH = timedelta(days=2)
_CACHED_DAYS = 512


@dataclass(frozen=True)
class Interval:
    """A covered stretch of time in UTC: [start, end), or the instant `start` if empty."""

    start: datetime
    end: datetime
    summary: str | None = None  # the event's SUMMARY, for the ledger

    def contains(self, at: datetime) -> bool:
        """True if `at` falls inside."""
        return self.start <= at < self.end or at == self.start == self.end


class ExclusionCalendar:
    """A parsed exclusion calendar: does an instant fall on one of its events?"""

    def __init__(self, source: str, calendar: Calendar, query: Any) -> None:
        self.source = source
        self.event_count = len(calendar.walk("VEVENT"))
        zone = calendar.get("X-WR-TIMEZONE")
        self.timezone: str | None = str(zone) if zone else None
        self._query = query
        self._days: dict[tuple[str, date], list[Interval]] = {}

    def covers(self, instant: datetime, timezone: str | None = None) -> bool:
        """True if `instant` falls on an event (see the module docstring for dates)."""
        return self.event_at(instant, timezone) is not None

    def event_at(self, instant: datetime, timezone: str | None = None) -> Interval | None:
        """The first event `instant` falls on, or None (dates read as in `covers`)."""
        at = as_utc(instant, "instant")
        zone = validate_timezone(timezone or self.timezone or "UTC")
        return next((i for i in self._near(at.date(), zone) if i.contains(at)), None)

    def _near(self, day: date, zone: ZoneInfo) -> list[Interval]:
        """The intervals of events within two days of a UTC date, cached per date."""
        key = (zone.key, day)
        if key not in self._days:
            if len(self._days) >= _CACHED_DAYS:
                self._days.clear()
            events = self._query.between(day - _REACH, day + _REACH)
            self._days[key] = [interval(event, zone) for event in events]
        return self._days[key]


def interval(event: Any, zone: ZoneInfo) -> Interval:
    """The stretch of time one expanded event covers."""
    start = event["DTSTART"].dt
    end = event["DTEND"].dt if "DTEND" in event else start
    if not isinstance(start, datetime) and end == start:
        end = start + timedelta(days=1)  # an all-day event without an end lasts one day
    summary = event.get("SUMMARY")
    return Interval(_instant(start, zone), _instant(end, zone),
                    str(summary) if summary is not None else None)


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def parse_exclusions(ics: bytes, *, source: str) -> ExclusionCalendar:
    """A checked exclusion calendar, or InvalidParams saying what is wrong with the file."""
    if not isinstance(ics, bytes | bytearray):
        raise InvalidParams("the calendar must be bytes", field=FIELD)
    if len(ics) > MAX_BYTES:
        raise InvalidParams(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB",
                            field=FIELD)
    too_many = InvalidParams(f"{source}: more than {MAX_EVENTS} events", field=FIELD)
    if ics.count(b"BEGIN:VEVENT") > MAX_EVENTS:  # before the parser spends time on them
        raise too_many
    calendar = _parse(bytes(ics), source)
    events = calendar.walk("VEVENT")
    if len(events) > MAX_EVENTS:
        raise too_many
    for event in events:
        _check_event(event, source)
    _check_calendar_zone(calendar, source)
    return ExclusionCalendar(source, calendar, _query(calendar, source))


def _parse(ics: bytes, source: str) -> Calendar:
    if b"BEGIN:VCALENDAR" in ics and b"END:VCALENDAR" not in ics:
        raise InvalidParams(f"{source}: not a valid iCalendar file: truncated (no "
                            "END:VCALENDAR)", field=FIELD)
    try:
        calendar = Calendar.from_ical(ics)
    # icalendar raises ValueError, KeyError, IndexError, UnicodeDecodeError ... for bad
    # input; to a caller every one of them means the same thing.
    except Exception as error:
        raise _invalid(source, error) from error
    if not isinstance(calendar, Calendar) or calendar.name != "VCALENDAR":
        found = getattr(calendar, "name", type(calendar).__name__)
        raise InvalidParams(f"{source}: not a valid iCalendar file: expected a VCALENDAR, "
                            f"found {found}", field=FIELD)
    return calendar


def _check_calendar_zone(calendar: Calendar, source: str) -> None:
    zone = calendar.get("X-WR-TIMEZONE")
    if zone is None:
        return
    try:
        validate_timezone(str(zone))
    except InvalidParams:
        raise InvalidParams(f"{source}: X-WR-TIMEZONE {str(zone)[:60]!r} is not a known "
                            "time zone", field=FIELD) from None


def _check_event(event: Any, source: str) -> None:
    where = f"{source}: event {str(event.get('UID', '(no UID)'))[:60]!r}"
    if event.errors:
        name, reason = event.errors[0]
        raise InvalidParams(f"{where}: {name}: {_short(str(reason))}", field=FIELD)
    start = event.get("DTSTART")
    if start is None:
        raise InvalidParams(f"{where}: has no DTSTART", field=FIELD)
    if "TZID" in start.params and getattr(start.dt, "tzinfo", None) is None:
        raise InvalidParams(f"{where}: unknown time zone {start.params['TZID']!r} in DTSTART",
                            field=FIELD)


def _query(calendar: Calendar, source: str) -> Any:
    """The recurrence query, with every rule compiled once so a bad one fails here."""
    try:
        query = recurring_ical_events.CalendarQuery(calendar)
        query.between(date(2000, 1, 1), date(2000, 1, 2))
    except Exception as error:  # bad RRULE, RDATE or EXDATE: a third-party error type
        raise _invalid(source, error) from error
    return query


def _invalid(source: str, error: Exception) -> InvalidParams:
    reason = _short(str(error)) or type(error).__name__
    return InvalidParams(f"{source}: not a valid iCalendar file: {reason}", field=FIELD)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 1] + "…"
