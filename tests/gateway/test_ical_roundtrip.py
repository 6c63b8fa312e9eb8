"""The proof: a subscriber expanding the exported calendar sees exactly apflow's slots.

Each case exports one task at the start of a window, expands the .ics with
recurring-ical-events (an RFC 5545 expander, as a calendar client would) and compares the
event starts with the schedule engine's slots over the same window. Windows open a day
before a DST change (2024):

- Europe/Berlin      gap 02:00-03:00 on 31 Mar; repeat 02:00-03:00 on 27 Oct
- America/New_York   gap 02:00-03:00 on 10 Mar; repeat 01:00-02:00 on 3 Nov
- Australia/Sydney   repeat 02:00-03:00 on 7 Apr; gap 02:00-03:00 on 6 Oct
- Australia/Lord_Howe (30-minute shift) repeat 01:30-02:00 on 7 Apr; gap 02:00-02:30 on 6 Oct
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import recurring_ical_events
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.gateway.ical_export import export_calendar, task_spec
from apflow.schedules import slots_between, validate

WINDOW = timedelta(days=3)
# A 90-second interval is listed slot by slot, and thousands of events would make the
# expander, not the export, the slow part: its window is the two hours around the change.
SHORT_REACH = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# (zone, window start, the DST change inside the window)
WINDOWS = [
    ("UTC", utc(2024, 3, 30), utc(2024, 3, 31, 1)),
    ("Europe/Berlin", utc(2024, 3, 30), utc(2024, 3, 31, 1)),
    ("Europe/Berlin", utc(2024, 10, 26), utc(2024, 10, 27, 1)),
    ("America/New_York", utc(2024, 3, 9), utc(2024, 3, 10, 7)),
    ("America/New_York", utc(2024, 11, 2), utc(2024, 11, 3, 6)),
    ("Australia/Sydney", utc(2024, 4, 5, 12), utc(2024, 4, 6, 16)),
    ("Australia/Sydney", utc(2024, 10, 4, 12), utc(2024, 10, 5, 16)),
    ("Australia/Lord_Howe", utc(2024, 4, 5, 12), utc(2024, 4, 6, 15)),
    ("Australia/Lord_Howe", utc(2024, 10, 4, 12), utc(2024, 10, 5, 15, 30)),
]

SCHEDULES = [
    ("interval", "90"),  # not whole minutes: listed slot by slot
    ("interval", "900"),
    ("interval", "5400"),
    ("interval", "86400"),
    ("cron", "*/15 * * * *"),
    ("cron", "0 9 * * 1-5"),
    ("cron", "@hourly"),
    ("cron", "@every 1h30m"),
    ("cron", "30 2 * * *"),  # in the gap
    ("cron", "15,45 1-3 * * *"),  # fixed hours through the gap and the repeat
    ("cron", "30 1,2 * * *"),  # Berlin: the gap's EXDATE (01:30Z) reads as a 01:30 slot
    ("cron", "*/7 0-5 * * *"),  # many times in the gap: UNTIL there must not stop the RRULE
    ("cron", "*/20 * * * 0"),  # wildcard hour: both passes of a repeat, on the DST Sunday
    ("cron", "0 9 1,15 * 1"),  # day fields ORed: listed slot by slot
    ("cron", "30 2 31 * *"),
    ("daily", "02:30"),  # spring forward: fires at 03:00
    ("daily", "01:30"),  # fall back (New York): fires once, at the first 01:30
    ("daily", "09:00"),
    ("weekly", "7 02:30"),
    ("weekly", "1,3,5 09:00"),
    ("monthly", "31 02:30"),
    ("monthly", "1,6,7 02:15"),
]

# Limits, given the window start and the DST change: extra task fields.
LIMITS: dict[str, Callable[[datetime, datetime], dict[str, Any]]] = {
    "unlimited": lambda start, change: {},
    "max_runs ends in window": lambda start, change: {"max_runs": 7, "run_count": 2},
    "max_runs beyond window": lambda start, change: {"max_runs": 100_000, "run_count": 3},
    "end_at near the change": lambda start, change: {
        "schedule_end_at": change + timedelta(minutes=37)},
    # RFC instants are out of order around a gap (02:14 in a 30-minute gap reads as 02:44,
    # after 02:35): an UNTIL there must not stop an expander early.
    "end_at just after the change": lambda start, change: {
        "schedule_end_at": change + timedelta(minutes=12)},
    "start_at and end_at": lambda start, change: {
        "schedule_start_at": change - timedelta(hours=2, minutes=30),
        "schedule_end_at": start + timedelta(days=2, minutes=7)},
}


def task(kind: str, expression: str, zone: str, start: datetime, **limits: Any) -> Task:
    anchor = start - timedelta(seconds=1234)  # intervals: a grid not on whole minutes
    return Task(id="t-1", name="job", created_at=start, updated_at=start,
                schedule_type=kind, schedule_expression=expression,  # type: ignore[arg-type]
                timezone=zone, schedule_enabled=True, schedule_anchor_at=anchor, **limits)


def expanded_starts(ics: bytes, after: datetime, until: datetime) -> list[datetime]:
    """Every event start an RFC 5545 expander finds near the window, in UTC."""
    calendar = Calendar.from_ical(ics)
    events = recurring_ical_events.of(calendar).between(after - timedelta(days=1),
                                                         until + timedelta(days=1))
    return sorted(event["DTSTART"].dt.astimezone(UTC) for event in events)


def assert_subscriber_sees_the_slots(item: Task, start: datetime, end: datetime) -> None:
    spec = task_spec(item)
    assert spec is not None
    expected = slots_between(spec, start, end, item.run_count)
    # Listed schedules: enough events to cover the window, not the whole horizon.
    ics = export_calendar([item], now=start, horizon_days=(end - start).days + 1,
                          max_instances=len(expected) + 10)
    seen = expanded_starts(ics, start, end)
    assert all(at > start for at in seen), "the calendar shows a start before the export"
    assert {at for at in seen if at <= end} == set(expected)


@pytest.mark.parametrize("limit", list(LIMITS))
@pytest.mark.parametrize(("zone", "start", "change"), WINDOWS,
                         ids=[f"{zone}-{start:%b}" for zone, start, _ in WINDOWS])
@pytest.mark.parametrize(("kind", "expression"), SCHEDULES,
                         ids=[f"{kind} {expr}" for kind, expr in SCHEDULES])
def test_a_subscriber_sees_exactly_the_slots_apflow_fires(
        kind: str, expression: str, zone: str, start: datetime, change: datetime,
        limit: str) -> None:
    if expression == "90":
        start = change - SHORT_REACH
    end = change + SHORT_REACH if expression == "90" else start + WINDOW
    item = task(kind, expression, zone, start, **LIMITS[limit](start, change))
    assert_subscriber_sees_the_slots(item, start, end)


@pytest.mark.parametrize(("zone", "start", "change"), WINDOWS,
                         ids=[f"{zone}-{start:%b}" for zone, start, _ in WINDOWS])
@pytest.mark.parametrize("offset", [timedelta(minutes=-90), timedelta(minutes=-30),
                                    timedelta(minutes=15), timedelta(minutes=45)])
def test_a_once_schedule_around_a_dst_change_is_one_event_at_its_instant(
        zone: str, start: datetime, change: datetime, offset: timedelta) -> None:
    item = task("once", (change + offset).isoformat(), zone, start)
    assert_subscriber_sees_the_slots(item, start, start + WINDOW)


@pytest.mark.parametrize("expression", ["31 09:00", "29,30,31 02:30", "31 00:00"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_a_monthly_day_31_skips_short_months_in_the_calendar_too(zone: str,
                                                                  expression: str) -> None:
    start = utc(2024, 1, 15)
    item = task("monthly", expression, zone, start)
    ics = export_calendar([item], now=start, horizon_days=200)
    spec = task_spec(item)
    assert spec is not None
    end = start + timedelta(days=190)
    assert {at for at in expanded_starts(ics, start, end) if at <= end} == set(
        slots_between(spec, start, end))


@pytest.mark.parametrize("second", [0, 1])
def test_exporting_during_the_second_pass_of_a_repeated_hour(second: int) -> None:
    # The export starts inside the repeat: the RRULE's first-pass instances there are past.
    start = utc(2024, 10, 27, 1, 10) + timedelta(seconds=second)  # 02:10 CET, second pass
    for kind, expression in (("cron", "15 * * * *"), ("daily", "02:15"), ("cron", "*/5 2 * * *")):
        assert_subscriber_sees_the_slots(task(kind, expression, "Europe/Berlin", start),
                                         start, start + WINDOW)


_FIELDS = st.tuples(
    st.sampled_from(["0", "30", "*/15", "5-10", "*/7", "0,45", "*"]),
    st.sampled_from(["*", "2", "1,2", "0-5", "*/2", "23", "9"]),
    st.sampled_from(["*", "1", "31", "1,15", "*/2"]),
    st.sampled_from(["*", "3,10", "*/3", "4"]),
    st.sampled_from(["*", "0", "1-5", "6,0"]))
_ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                          "Europe/London", "America/Sao_Paulo", "Antarctica/Troll",
                          "Pacific/Chatham"])


@settings(max_examples=40, deadline=None)
@given(fields=_FIELDS, zone=_ZONES, hours=st.integers(min_value=-60, max_value=2),
       change=st.sampled_from(WINDOWS))
def test_any_cron_line_near_any_dst_change_round_trips(
        fields: tuple[str, ...], zone: str, hours: int,
        change: tuple[str, datetime, datetime]) -> None:
    expression = " ".join(fields)
    try:
        validate("cron", expression, zone)
    except InvalidParams:  # e.g. "31 4 *": no date ever matches
        assume(False)
    start = change[2] + timedelta(hours=hours)
    assert_subscriber_sees_the_slots(task("cron", expression, zone, start),
                                     start, start + timedelta(days=2))
