"""parse_exclusions and ExclusionCalendar.covers, with a real holiday calendar file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apflow.domain.errors import InvalidParams
from apflow.gateway.ical_import import MAX_BYTES, MAX_EVENTS, ExclusionCalendar, parse_exclusions

HOLIDAYS = Path(__file__).parent / "data" / "holidays.ics"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def holidays() -> ExclusionCalendar:
    return parse_exclusions(HOLIDAYS.read_bytes(), source=str(HOLIDAYS))


def calendar(*body: str, header: tuple[str, ...] = ()) -> bytes:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//t//EN", *header,
                        *body, "END:VCALENDAR", ""]).encode()


def event(*lines: str, uid: str = "e1") -> tuple[str, ...]:
    return ("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T000000Z", *lines, "END:VEVENT")


def test_the_holiday_file_parses_with_its_events_counted(holidays: ExclusionCalendar) -> None:
    assert holidays.event_count == 6
    assert holidays.source == str(HOLIDAYS)


def test_an_all_day_event_covers_the_whole_day_where_the_task_runs(
        holidays: ExclusionCalendar) -> None:
    berlin_christmas_start = utc(2024, 12, 24, 23, 30)  # 00:30 on the 25th in Berlin
    assert holidays.covers(berlin_christmas_start, "Europe/Berlin")
    assert not holidays.covers(berlin_christmas_start, "UTC")
    after_christmas = utc(2024, 12, 25, 23, 30)  # 00:30 on the 26th in Berlin
    assert not holidays.covers(after_christmas, "Europe/Berlin")
    assert holidays.covers(after_christmas, "UTC")


def test_without_a_task_zone_dates_are_read_in_utc(holidays: ExclusionCalendar) -> None:
    assert holidays.covers(utc(2024, 12, 25, 0, 0))
    assert not holidays.covers(utc(2024, 12, 24, 23, 59))


def test_a_yearly_holiday_recurs_years_later(holidays: ExclusionCalendar) -> None:
    assert holidays.covers(utc(2031, 5, 1, 12), "UTC")
    assert not holidays.covers(utc(2031, 5, 2, 12), "UTC")
    assert not holidays.covers(utc(2031, 4, 30, 12), "UTC")


def test_event_at_names_the_event_an_instant_falls_on(holidays: ExclusionCalendar) -> None:
    event = holidays.event_at(utc(2031, 5, 1, 12), "UTC")
    assert event is not None
    assert event.summary == "Labour Day"
    assert holidays.event_at(utc(2031, 5, 2, 12), "UTC") is None


def test_a_multi_day_event_ends_before_its_end_date(holidays: ExclusionCalendar) -> None:
    assert holidays.covers(utc(2024, 12, 29, 12), "UTC")
    assert holidays.covers(utc(2024, 12, 31, 23, 59), "UTC")
    assert not holidays.covers(utc(2025, 1, 1, 0, 0), "UTC")


def test_a_timed_event_covers_its_start_but_not_its_end(holidays: ExclusionCalendar) -> None:
    start, end = utc(2024, 11, 3, 21), utc(2024, 11, 4, 0)  # 22:00-01:00 Berlin (CET)
    assert holidays.covers(start)
    assert holidays.covers(end - timedelta(seconds=1))
    assert not holidays.covers(end)
    assert not holidays.covers(start - timedelta(seconds=1))


def test_a_weekly_event_recurs_except_on_its_exdate(holidays: ExclusionCalendar) -> None:
    assert holidays.covers(utc(2024, 11, 17, 21, 30))
    assert not holidays.covers(utc(2024, 11, 10, 21, 30))  # EXDATE
    assert holidays.covers(utc(2025, 6, 1, 20, 30))  # CEST: 22:30 local


def test_an_event_without_an_end_covers_its_instant_only(holidays: ExclusionCalendar) -> None:
    assert holidays.covers(utc(2024, 11, 20, 12))
    assert not holidays.covers(utc(2024, 11, 20, 12) + timedelta(seconds=1))


def test_a_floating_time_is_a_local_time_where_the_task_runs(
        holidays: ExclusionCalendar) -> None:
    assert holidays.covers(utc(2024, 11, 15, 7, 30), "Europe/Berlin")  # 08:30 Berlin
    assert not holidays.covers(utc(2024, 11, 15, 7, 30), "UTC")


def test_the_calendars_own_zone_reads_dates_when_no_task_zone_is_given() -> None:
    ics = calendar(*event("DTSTART;VALUE=DATE:20241225"),
                   header=("X-WR-TIMEZONE:Europe/Berlin",))
    parsed = parse_exclusions(ics, source="x.ics")
    assert parsed.timezone == "Europe/Berlin"
    assert parsed.covers(utc(2024, 12, 24, 23, 30))
    assert not parsed.covers(utc(2024, 12, 24, 23, 30), "UTC")


def test_covers_refuses_a_naive_instant_and_an_unknown_zone(
        holidays: ExclusionCalendar) -> None:
    with pytest.raises(InvalidParams, match=r"^instant: "):
        holidays.covers(datetime(2024, 12, 25))
    with pytest.raises(InvalidParams, match=r"^timezone: "):
        holidays.covers(utc(2024, 12, 25), "Mars/Olympus")


@pytest.mark.parametrize(("ics", "reason"), [
    (HOLIDAYS.read_bytes()[:300], "truncated"),
    (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "not a valid iCalendar file"),
    (b"", "not a valid iCalendar file"),
    (b'{"holidays": ["2024-12-25"]}', "not a valid iCalendar file"),
    (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n", "expected a VCALENDAR, found VCARD"),
    (calendar(*event("DTSTART:notadate")), "DTSTART: Wrong date format"),
    (calendar(*event("DTSTART:20240101T000000Z", "RRULE:FREQ=SOMETIMES")), "RRULE"),
    (calendar(*event("SUMMARY:no start")), "has no DTSTART"),
    (calendar(*event("DTSTART;TZID=Mars/Olympus:20240101T000000")),
     "unknown time zone 'Mars/Olympus'"),
    ("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".encode("utf-16"), "not a valid iCalendar file"),
    (calendar(*event("DTSTART;VALUE=DATE:20241225"), header=("X-WR-TIMEZONE:Mars/Base",)),
     "X-WR-TIMEZONE 'Mars/Base' is not a known time zone"),
])
def test_a_malformed_file_is_refused_with_a_reason(ics: bytes, reason: str) -> None:
    with pytest.raises(InvalidParams, match=r"^exclusion_calendar: bad.ics: ") as raised:
        parse_exclusions(ics, source="bad.ics")
    assert reason in raised.value.message


def test_a_file_over_the_size_cap_is_refused_before_parsing() -> None:
    huge = calendar(*event("DTSTART;VALUE=DATE:20241225", f"DESCRIPTION:{'x' * MAX_BYTES}"))
    with pytest.raises(InvalidParams, match="larger than 5 MiB"):
        parse_exclusions(huge, source="big.ics")


def test_a_file_with_too_many_events_is_refused() -> None:
    many = [line for index in range(MAX_EVENTS + 1)
            for line in event("DTSTART;VALUE=DATE:20241225", uid=f"e{index}")]
    with pytest.raises(InvalidParams, match=f"more than {MAX_EVENTS} events"):
        parse_exclusions(calendar(*many), source="many.ics")


def test_the_calendar_must_be_bytes() -> None:
    with pytest.raises(InvalidParams, match="must be bytes"):
        parse_exclusions("BEGIN:VCALENDAR", source="x.ics")  # type: ignore[arg-type]
