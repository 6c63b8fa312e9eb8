"""The iCalendar feed of scheduled tasks: one event series per task, real fire times.

What each schedule becomes, and how DST is handled, is in docs/calendar.md.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone

from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.gateway.ical_plan import Listed, Plan, Series, Window
from apflow.gateway.ical_series import plan
from apflow.gateway.ical_text import (
    escape_text,
    fold,
    instant_line,
    is_utc,
    utc_stamp,
    wall_line,
)
from apflow.schedules import ScheduleSpec, describe
from apflow.schedules.timezones import as_utc

logger = logging.getLogger(__name__)

PRODID = "-//apflow//apflow scheduler//EN"
UID_DOMAIN = "apflow"
MAX_HORIZON_DAYS = 3660
_CONFIRMED = b"STATUS:CONFIRMED\r\n"
_TENTATIVE = b"STATUS:TENTATIVE\r\n"  # a paused schedule: fires only once resumed
# VTIMEZONEs list transitions for this long: RRULE series run past the export window.
_ZONE_YEARS = 5


@dataclass
class Feed:
    """What every event of one export shares, and what its tasks have in common.

    Tasks often share a schedule ("0 0 * * *"), so plans and descriptions are made once
    per distinct schedule.
    """

    fixed: bytes  # DTSTAMP, DURATION, TRANSP: the same on every event
    window: Window
    zones: dict[str, ZoneInfo] = field(default_factory=dict)
    plans: dict[tuple[ScheduleSpec, int], Plan | None] = field(default_factory=dict)
    words: dict[ScheduleSpec, str] = field(default_factory=dict)

    def plan(self, spec: ScheduleSpec, run_count: int) -> Plan | None:
        """The schedule's plan; run_count matters only under max_runs."""
        key = (spec, run_count if spec.max_runs is not None else 0)
        if key in self.plans:
            return self.plans[key]
        window = self.window if not key[1] else dataclasses.replace(self.window,
                                                                     run_count=key[1])
        made = self.plans[key] = plan(spec, window)
        return made

    def describe(self, spec: ScheduleSpec) -> str:
        """The schedule in words."""
        words = self.words.get(spec)
        if words is None:
            words = self.words[spec] = describe(spec)
        return words


def export_calendar(tasks: Sequence[Task], *, now: datetime, calendar_name: str = "apflow",
                    horizon_days: int = 30, default_duration_minutes: int = 5,
                    enabled_only: bool = True, max_instances: int = 1000) -> bytes:
    """The tasks' upcoming slots as an iCalendar (RFC 5545) file."""
    start = as_utc(now, "now")
    _check_whole(horizon_days, "horizon_days", 1, MAX_HORIZON_DAYS)
    _check_whole(default_duration_minutes, "default_duration_minutes", 1, 24 * 60)
    _check_whole(max_instances, "max_instances", 1, 100_000)
    fixed = (f"DTSTAMP:{utc_stamp(start)}\r\nDURATION:PT{default_duration_minutes}M\r\n"
             "TRANSP:TRANSPARENT\r\n")  # a scheduled task does not make anyone busy
    feed = Feed(fixed.encode(), Window(start, start + timedelta(days=horizon_days), 0,
                                       max_instances))
    events: list[bytes] = []
    for task in tasks:
        if task.schedule_enabled or not enabled_only:
            events.extend(_task_events(task, feed))
    return b"".join([*_header(calendar_name), *_timezones(feed.zones.values(), feed.window),
                     *events, b"END:VCALENDAR\r\n"])


def _check_whole(value: int, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParams(f"must be a whole number from {low} to {high}", field=name)


def _header(name: str) -> list[bytes]:
    text = escape_text(name)
    return [fold(line) for line in (
        "BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH", f"NAME:{text}", f"X-WR-CALNAME:{text}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H", "X-PUBLISHED-TTL:PT1H")]


def _task_events(task: Task, feed: Feed) -> list[bytes]:
    spec = task_spec(task)
    if spec is None:
        return []
    shape = feed.plan(spec, task.run_count)
    if shape is None:
        return []
    if not is_utc(spec.zone):
        feed.zones[spec.zone.key] = spec.zone
    return render(task, spec, shape, feed)


def task_spec(task: Task) -> ScheduleSpec | None:
    """The task's schedule, or None (logged) if it has none or it no longer validates."""
    if task.schedule_type is None or task.schedule_expression is None:
        return None
    try:
        return ScheduleSpec(task.schedule_type, task.schedule_expression, task.timezone,
                            start_at=task.schedule_start_at, end_at=task.schedule_end_at,
                            max_runs=task.max_runs, anchor=task.schedule_anchor_at)
    except InvalidParams as error:
        logger.warning("task left out of the calendar: %s", error.message,
                       extra={"action": "ical_task_skipped", "task_id": task.id})
        return None


def render(task: Task, spec: ScheduleSpec, shape: Plan, feed: Feed) -> list[bytes]:
    """The VEVENTs of one task."""
    details = _details(task, spec, shape, feed)
    if isinstance(shape, Series):
        return [_event(f"{task.id}@{UID_DOMAIN}", _series_lines(spec, shape), details)]
    if len(shape.slots) == 1 and not shape.truncated:
        uids = [f"{task.id}@{UID_DOMAIN}"]
    else:
        uids = [f"{task.id}-{utc_stamp(at)}@{UID_DOMAIN}" for at in shape.slots]
    return [_event(uid, [instant_line("DTSTART", at, spec.zone)], details)
            for uid, at in zip(uids, shape.slots, strict=True)]


def _series_lines(spec: ScheduleSpec, series: Series) -> list[str]:
    if series.in_utc:
        lines = [f"DTSTART:{utc_stamp(series.start)}"]
    else:
        lines = [wall_line("DTSTART", series.start, spec.zone)]
    lines.append(f"RRULE:{series.rule}{_rule_end(series)}")
    # In UTC: a local time would also name the first pass of a repeated hour, and some
    # expanders match an EXDATE's local time against other instances.
    lines.extend(f"EXDATE:{utc_stamp(at)}" for at in series.exdates)
    lines.extend(instant_line("RDATE", at, spec.zone) for at in series.rdates)
    return lines


def _rule_end(series: Series) -> str:
    if series.count is not None:
        return f";COUNT={series.count}"
    if series.until is not None:
        return f";UNTIL={utc_stamp(series.until)}"
    return ""


def _event(uid: str, timing: list[str], details: bytes) -> bytes:
    return b"".join([b"BEGIN:VEVENT\r\n", fold(f"UID:{escape_text(uid)}"),
                     *map(fold, timing), details, b"END:VEVENT\r\n"])


def _details(task: Task, spec: ScheduleSpec, shape: Plan, feed: Feed) -> bytes:
    """The lines every event of the task shares, folded once."""
    note = None
    if isinstance(shape, Listed) and shape.truncated:
        note = f"Shows the next {len(shape.slots)} runs; more follow."
    text = _description(task, feed.describe(spec), note)
    return b"".join([fold(f"SUMMARY:{escape_text(task.name)}"),
                     fold(f"DESCRIPTION:{escape_text(text)}"),
                     f"LAST-MODIFIED:{utc_stamp(task.updated_at)}\r\n".encode(),
                     _CONFIRMED if task.schedule_enabled else _TENTATIVE, feed.fixed])


def _description(task: Task, words: str, note: str | None) -> str:
    parts = [task.description.strip(), f"Schedule: {words}"]
    if not task.schedule_enabled:
        parts.append("Paused: it fires only once resumed.")
    if note:
        parts.append(note)
    return "\n\n".join(part for part in parts if part)


def _timezones(zones: Iterable[ZoneInfo], window: Window) -> list[bytes]:
    first = window.now.date() - timedelta(days=7)
    last = date(window.until.year + _ZONE_YEARS, 12, 31)
    return [vtimezone(zone.key, first, last) for zone in sorted(zones, key=lambda z: z.key)]


@lru_cache(maxsize=512)
def vtimezone(key: str, first: date, last: date) -> bytes:
    """The VTIMEZONE of an IANA zone with its transitions from `first` to `last`."""
    component = Timezone.from_tzinfo(ZoneInfo(key), tzid=key, first_date=first, last_date=last)
    return bytes(component.to_ical())

