"""export_calendar: the shape of the feed (UIDs, text, folding, zones, rules, limits)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar, Event

from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.gateway.ical_export import export_calendar

NOW = datetime(2024, 3, 28, 12, 0, tzinfo=UTC)
MakeTask = Callable[..., Task]


def events(ics: bytes) -> list[Event]:
    return list(Calendar.from_ical(ics).walk("VEVENT"))


def lines(ics: bytes) -> list[str]:
    """The unfolded content lines."""
    return ics.decode().replace("\r\n ", "").split("\r\n")


def only_event(ics: bytes) -> Event:
    (event,) = events(ics)
    return event


def test_a_task_keeps_its_uid_from_one_export_to_the_next(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", "Europe/Berlin", id="abc")
    first = only_event(export_calendar([item], now=NOW))
    later = only_event(export_calendar([item], now=NOW + timedelta(days=3)))
    assert first["UID"] == later["UID"] == "abc@apflow"


def test_listed_slots_get_uids_from_the_task_and_the_instant(task_factory: MakeTask) -> None:
    item = task_factory("interval", "90", id="abc", schedule_anchor_at=NOW)
    found = events(export_calendar([item], now=NOW, max_instances=3))
    assert [str(event["UID"]) for event in found] == [
        "abc-20240328T120130Z@apflow", "abc-20240328T120300Z@apflow",
        "abc-20240328T120430Z@apflow"]


def test_text_is_escaped_exactly_once(task_factory: MakeTask) -> None:
    name = r"backup; db, files \ logs"
    item = task_factory("daily", "09:00", name=name, description="line one\nline two")
    ics = export_calendar([item], now=NOW)
    assert r"SUMMARY:backup\; db\, files \\ logs" in lines(ics)
    event = only_event(ics)
    assert str(event["SUMMARY"]) == name
    assert str(event["DESCRIPTION"]).startswith("line one\nline two\n\nSchedule: ")


def test_a_long_unicode_name_is_folded_at_75_octets(task_factory: MakeTask) -> None:
    name = "Nächtlicher Überweisungsabgleich für das Rechnungswesen ✓ — 夜間バッチ処理 " * 4
    ics = export_calendar([task_factory("daily", "09:00", name=name)], now=NOW)
    physical = ics.split(b"\r\n")
    assert max(len(line) for line in physical) <= 75
    assert all(line.decode("utf-8") for line in physical if line)  # no split code point
    assert str(only_event(ics)["SUMMARY"]) == name


def test_control_characters_are_dropped_from_text(task_factory: MakeTask) -> None:
    ics = export_calendar([task_factory("daily", "09:00", name="bell\x07 and nul\x00")],
                          now=NOW)
    assert str(only_event(ics)["SUMMARY"]) == "bell and nul"


def test_each_zone_used_gets_one_vtimezone(task_factory: MakeTask) -> None:
    tasks = [task_factory("daily", "09:00", "Europe/Berlin", id="a"),
             task_factory("daily", "10:00", "Europe/Berlin", id="b"),
             task_factory("weekly", "1 09:00", "America/New_York", id="c"),
             task_factory("daily", "09:00", "UTC", id="d")]
    calendar = Calendar.from_ical(export_calendar(tasks, now=NOW))
    assert sorted(str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")) == [
        "America/New_York", "Europe/Berlin"]


@pytest.mark.parametrize(("kind", "expression", "zone", "start", "rule"), [
    ("daily", "09:00", "Europe/Berlin", "DTSTART;TZID=Europe/Berlin:20240329T090000",
     "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
    ("weekly", "1,3,5 09:00", "America/New_York",
     "DTSTART;TZID=America/New_York:20240329T090000",
     "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0"),
    ("monthly", "31 09:00", "UTC", "DTSTART:20240331T090000Z",
     "RRULE:FREQ=MONTHLY;BYMONTHDAY=31;BYHOUR=9;BYMINUTE=0"),
    ("cron", "@hourly", "Europe/Berlin", "DTSTART;TZID=Europe/Berlin:20240328T140000",
     "RRULE:FREQ=HOURLY;BYMINUTE=0"),
    ("cron", "0 9 * * 1-5", "Europe/Berlin", "DTSTART;TZID=Europe/Berlin:20240329T090000",
     "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0"),
    ("cron", "0 0 1 1 *", "UTC", "DTSTART:20250101T000000Z",
     "RRULE:FREQ=MONTHLY;BYMONTH=1;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0"),
    ("interval", "900", "Europe/Berlin", "DTSTART:20240328T121500Z",
     "RRULE:FREQ=MINUTELY;INTERVAL=15"),
    ("interval", "5400", "UTC", "DTSTART:20240328T133000Z", "RRULE:FREQ=MINUTELY;INTERVAL=90"),
    ("interval", "7200", "UTC", "DTSTART:20240328T140000Z", "RRULE:FREQ=HOURLY;INTERVAL=2"),
    ("interval", "86400", "UTC", "DTSTART:20240329T120000Z", "RRULE:FREQ=DAILY"),
    ("cron", "@every 1h30m", "UTC", "DTSTART:20240328T133000Z",
     "RRULE:FREQ=MINUTELY;INTERVAL=90"),
])
def test_each_exact_schedule_becomes_one_rrule(
        task_factory: MakeTask, kind: str, expression: str, zone: str, start: str,
        rule: str) -> None:
    item = task_factory(kind, expression, zone, schedule_anchor_at=NOW)
    found = lines(export_calendar([item], now=NOW))
    assert start in found and rule in found
    assert sum(line.startswith("BEGIN:VEVENT") for line in found) == 1


def test_a_once_schedule_is_a_single_event_in_its_zone(task_factory: MakeTask) -> None:
    item = task_factory("once", "2024-04-02T07:00:00Z", "Europe/Berlin", id="x")
    ics = export_calendar([item], now=NOW)
    assert "DTSTART;TZID=Europe/Berlin:20240402T090000" in lines(ics)
    assert "RRULE" not in ics.decode()
    assert only_event(ics)["UID"] == "x@apflow"


def test_max_runs_left_becomes_count(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", max_runs=10, run_count=4)
    assert "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;COUNT=6" in lines(
        export_calendar([item], now=NOW, horizon_days=1))


def test_end_at_becomes_until_in_utc(task_factory: MakeTask) -> None:
    end = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
    item = task_factory("daily", "09:00", "Europe/Berlin", schedule_end_at=end)
    assert "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20240601T090000Z" in lines(
        export_calendar([item], now=NOW))


def test_a_run_limit_reached_inside_the_window_becomes_until_at_the_last_run(
        task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", "UTC", max_runs=3)
    assert "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20240331T090000Z" in lines(
        export_calendar([item], now=NOW))


def test_a_time_in_the_spring_forward_gap_is_written_where_it_really_fires(
        task_factory: MakeTask) -> None:
    item = task_factory("daily", "02:30", "Europe/Berlin")
    found = lines(export_calendar([item], now=NOW))
    # RFC 5545 reads 02:30 on 31 March as 03:30 CEST (01:30Z); apflow fires at 03:00.
    assert "EXDATE:20240331T013000Z" in found
    assert "RDATE;TZID=Europe/Berlin:20240331T030000" in found


def test_the_second_pass_of_a_repeated_hour_is_written_in_utc(task_factory: MakeTask) -> None:
    item = task_factory("cron", "30 * * * *", "Europe/Berlin")
    found = lines(export_calendar([item], now=datetime(2024, 10, 26, tzinfo=UTC)))
    assert "RDATE:20241027T013000Z" in found  # 02:30 CET: a local time would mean CEST


def test_a_fixed_time_in_a_repeated_hour_needs_no_correction(task_factory: MakeTask) -> None:
    item = task_factory("daily", "01:30", "America/New_York")
    event = only_event(export_calendar([item], now=datetime(2024, 11, 1, tzinfo=UTC)))
    assert "EXDATE" not in event and "RDATE" not in event


def test_paused_schedules_are_left_out_by_default(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", schedule_enabled=False)
    assert events(export_calendar([item], now=NOW)) == []


def test_paused_schedules_can_be_shown_as_tentative(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", schedule_enabled=False)
    event = only_event(export_calendar([item], now=NOW, enabled_only=False))
    assert event["STATUS"] == "TENTATIVE"
    assert "Paused" in str(event["DESCRIPTION"])


@pytest.mark.parametrize("fields", [
    {"schedule_type": "once", "schedule_expression": "2024-01-01T00:00:00Z"},
    {"max_runs": 5, "run_count": 5},
    {"schedule_end_at": NOW - timedelta(days=1)},
])
def test_a_schedule_with_no_run_left_is_left_out(task_factory: MakeTask,
                                                 fields: dict[str, object]) -> None:
    values = {"schedule_type": "daily", "schedule_expression": "09:00", **fields}
    kind, expression = values.pop("schedule_type"), values.pop("schedule_expression")
    item = task_factory(kind, expression, **values)
    assert events(export_calendar([item], now=NOW)) == []


def test_a_task_without_a_schedule_is_left_out(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00")
    plain = Task(id="p", name="group", created_at=NOW, updated_at=NOW)
    assert len(events(export_calendar([item, plain], now=NOW))) == 1


def test_a_stored_schedule_that_no_longer_validates_is_left_out_and_logged(
        task_factory: MakeTask, caplog: pytest.LogCaptureFixture) -> None:
    broken = task_factory("daily", "09:00", "Mars/Olympus", id="broken")
    good = task_factory("daily", "09:00", id="good")
    with caplog.at_level(logging.WARNING):
        found = events(export_calendar([broken, good], now=NOW))
    assert [str(event["UID"]) for event in found] == ["good@apflow"]
    assert any(getattr(record, "action", None) == "ical_task_skipped"
               for record in caplog.records)


def test_a_listing_cut_at_max_instances_says_so(task_factory: MakeTask) -> None:
    item = task_factory("interval", "90", schedule_anchor_at=NOW)
    found = events(export_calendar([item], now=NOW, max_instances=5))
    assert len(found) == 5
    assert "Shows the next 5 runs; more follow." in str(found[0]["DESCRIPTION"])


def test_cron_days_ored_are_listed_up_to_the_horizon(task_factory: MakeTask) -> None:
    item = task_factory("cron", "0 9 1,15 * 1")  # the 1st, the 15th and every Monday
    found = events(export_calendar([item], now=NOW, horizon_days=30))
    starts = sorted(event["DTSTART"].dt for event in found)
    assert [f"{at:%m-%d %H:%M}" for at in starts] == [
        "04-01 09:00", "04-08 09:00", "04-15 09:00", "04-22 09:00"]


def test_a_sub_second_grid_is_written_to_the_whole_second(task_factory: MakeTask) -> None:
    item = task_factory("interval", "60", schedule_anchor_at=NOW + timedelta(microseconds=700))
    assert "DTSTART:20240328T120100Z" in lines(export_calendar([item], now=NOW))


def test_events_carry_summary_description_duration_and_stamp(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", "Europe/Berlin", name="report",
                        description="Sends the report.")
    event = only_event(export_calendar([item], now=NOW, default_duration_minutes=15))
    assert event["SUMMARY"] == "report"
    assert str(event["DESCRIPTION"]) == ("Sends the report.\n\nSchedule: every day at 09:00 "
                                         "(Europe/Berlin)")
    assert event["DURATION"].dt == timedelta(minutes=15)
    assert event["DTSTAMP"].dt == NOW
    assert event["TRANSP"] == "TRANSPARENT"


def test_the_calendar_names_itself_and_asks_to_be_refreshed(task_factory: MakeTask) -> None:
    found = lines(export_calendar([], now=NOW, calendar_name="Ops, nightly"))
    assert found[:3] == ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//apflow//apflow scheduler//EN"]
    assert "X-WR-CALNAME:Ops\\, nightly" in found and "NAME:Ops\\, nightly" in found
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in found


@pytest.mark.parametrize(("name", "value"), [
    ("horizon_days", 0), ("horizon_days", 10_000), ("default_duration_minutes", 0),
    ("max_instances", 0), ("horizon_days", True)])
def test_out_of_range_options_are_refused_naming_the_option(name: str, value: int) -> None:
    with pytest.raises(InvalidParams, match=f"^{name}: "):
        export_calendar([], now=NOW, **{name: value})  # type: ignore[arg-type]


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(InvalidParams, match=r"^now: "):
        export_calendar([], now=datetime(2024, 1, 1))
