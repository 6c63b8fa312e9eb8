"""describe() in plain words, and cron_line() for crontab / Kubernetes export."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apflow.domain.enums import ScheduleType
from apflow.schedules import ScheduleSpec, cron_line, describe


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("schedule_type", "expression", "zone", "words"), [
    ("daily", "09:00", "Europe/Berlin", "every day at 09:00 (Europe/Berlin)"),
    ("weekly", "1,3,5 09:00", "UTC", "at 09:00 on Mon, Wed, Fri (UTC)"),
    ("weekly", "1-5 08:30", "UTC", "at 08:30 on Mon-Fri (UTC)"),
    ("weekly", "6,7 10:00", "UTC", "at 10:00 on Sat, Sun (UTC)"),
    ("monthly", "1,15 09:00", "UTC", "at 09:00 on the 1st and 15th of each month (UTC)"),
    ("monthly", "31 23:59", "UTC", "at 23:59 on the 31st of each month (UTC)"),
    ("interval", "5400", "UTC", "every 1h30m"),
    ("interval", "45", "Europe/Berlin", "every 45s"),
    ("interval", "86400", "UTC", "every 1d"),
    ("cron", "@every 1h30m", "UTC", "every 1h30m"),
    ("cron", "0 9 * * 1-5", "UTC", "at 09:00 on Mon-Fri (UTC)"),
    ("cron", "0 9 * * *", "Asia/Tokyo", "every day at 09:00 (Asia/Tokyo)"),
    ("cron", "*/15 * * * *", "UTC", "every 15 minutes (UTC)"),
    ("cron", "* * * * *", "UTC", "every minute (UTC)"),
    ("cron", "@hourly", "UTC", "every hour at minute 0 (UTC)"),
    ("cron", "0 */2 * * *", "UTC", "every 2 hours at minute 0 (UTC)"),
    ("cron", "*/10 9-17 * * 1-5", "UTC", "every 10 minutes during hours 9-17 on Mon-Fri (UTC)"),
    ("cron", "0 0 1 * *", "UTC", "at 00:00 on the 1st of each month (UTC)"),
    ("cron", "0 12 13 * 5", "UTC", "at 12:00 on the 13th or on Fri (UTC)"),
    ("cron", "30 6 * jan,jul *", "UTC", "at 06:30 in Jan, Jul (UTC)"),
    ("once", "2024-01-15T09:00:00Z", "Europe/Berlin", "once at 2024-01-15 10:00 (Europe/Berlin)"),
])
def test_describe_in_plain_words(schedule_type: str, expression: str, zone: str,
                                 words: str) -> None:
    spec = ScheduleSpec(ScheduleType(schedule_type), expression, zone)
    assert describe(spec) == words


def test_describe_mentions_the_window_and_run_limit() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "UTC", start_at=utc(2024, 1, 1),
                        end_at=utc(2024, 12, 31), max_runs=10)
    assert describe(spec) == ("every day at 09:00 (UTC), after 2024-01-01 00:00, "
                              "until 2024-12-31 00:00, at most 10 runs")


@pytest.mark.parametrize(("schedule_type", "expression", "line"), [
    ("daily", "09:05", "5 9 * * *"),
    ("weekly", "1,3,5 09:00", "0 9 * * 1,3,5"),
    ("weekly", "7 09:00", "0 9 * * 0"),
    ("weekly", "1-5 09:00", "0 9 * * 1-5"),
    ("monthly", "1,15 09:00", "0 9 1,15 * *"),
    ("cron", "0 9 * * MON-FRI", "0 9 * * 1-5"),
    ("cron", "@daily", "0 0 * * *"),
    ("cron", "@hourly", "0 * * * *"),
    ("cron", "*/15 * * * *", "*/15 * * * *"),
    ("cron", "0 9 ? * 7", "0 9 * * 0"),
    ("cron", "10/20 * * * *", "10,30,50 * * * *"),
    ("cron", "0 0-23 * * *", "0 0-23 * * *"),  # no '*': keeps fixed-time DST semantics
    ("cron", "0 */2 * * *", "0 */2 * * *"),
    ("cron", "0 0 13 * 5", "0 0 13 * 5"),
])
def test_cron_line_of_calendar_schedules(schedule_type: str, expression: str, line: str) -> None:
    assert cron_line(ScheduleSpec(ScheduleType(schedule_type), expression)) == line


def test_cron_line_is_none_where_cron_dialects_disagree() -> None:
    # Vixie cron ANDs '*/2' with a weekday, Kubernetes ORs them.
    assert cron_line(ScheduleSpec(ScheduleType.CRON, "0 0 */2 * 1")) is None


def test_cron_line_is_none_for_once() -> None:
    assert cron_line(ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z")) is None


@pytest.mark.parametrize(("seconds", "anchor", "line"), [
    ("300", utc(2024, 1, 1, 10, 0), "*/5 * * * *"),
    ("60", utc(2024, 1, 1, 10, 7), "* * * * *"),
    ("300", utc(2024, 1, 1, 10, 2), "2-59/5 * * * *"),
    ("3600", utc(2024, 1, 1, 10, 0), "0 * * * *"),
    ("3600", utc(2024, 1, 1, 10, 45), "45 * * * *"),
    ("7200", utc(2024, 1, 1, 1, 30), "30 1-23/2 * * *"),
    ("86400", utc(2024, 1, 1, 6, 15), "15 6 * * *"),
])
def test_cron_line_of_an_interval_in_utc_when_the_grid_fits_whole_minutes(
        seconds: str, anchor: datetime, line: str) -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, seconds, anchor=anchor)
    assert cron_line(spec) == line


@pytest.mark.parametrize(("seconds", "anchor"), [
    ("90", utc(2024, 1, 1)),  # not whole minutes
    ("420", utc(2024, 1, 1)),  # 7 minutes do not divide an hour
    ("300", utc(2024, 1, 1, 0, 0, 30)),  # anchor between minutes
    ("5400", utc(2024, 1, 1)),  # 90 minutes
])
def test_cron_line_of_an_interval_is_none_when_cron_cannot_hit_its_grid(
        seconds: str, anchor: datetime) -> None:
    assert cron_line(ScheduleSpec(ScheduleType.INTERVAL, seconds, anchor=anchor)) is None


def test_cron_line_of_an_unanchored_interval_is_none() -> None:
    assert cron_line(ScheduleSpec(ScheduleType.INTERVAL, "300")) is None


def test_cron_line_of_a_five_minute_interval_survives_dst_when_aligned() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "300", "Europe/Berlin", anchor=utc(2024, 1, 1))
    assert cron_line(spec) == "*/5 * * * *"


def test_cron_line_of_an_interval_is_none_when_dst_would_bend_its_grid() -> None:
    off_phase = ScheduleSpec(ScheduleType.INTERVAL, "300", "Europe/Berlin",
                             anchor=utc(2024, 1, 1, 0, 2))
    two_hourly = ScheduleSpec(ScheduleType.INTERVAL, "7200", "Europe/Berlin",
                              anchor=utc(2024, 1, 1))
    hourly_lord_howe = ScheduleSpec(ScheduleType.INTERVAL, "3600", "Australia/Lord_Howe",
                                    anchor=utc(2024, 1, 1))
    assert cron_line(off_phase) is None
    assert cron_line(two_hourly) is None
    assert cron_line(hourly_lord_howe) is None  # its DST shift is 30 minutes


def test_cron_line_of_a_half_hourly_interval_on_lord_howe_survives_its_30_minute_shift() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "1800", "Australia/Lord_Howe",
                        anchor=utc(2024, 1, 1))
    assert cron_line(spec) == "*/30 * * * *"


def test_cron_line_of_an_hourly_interval_in_kolkata_uses_local_minutes() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "3600", "Asia/Kolkata", anchor=utc(2024, 1, 1))
    assert cron_line(spec) == "30 * * * *"


def test_cron_line_of_every_follows_the_interval_rules() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "@every 15m", anchor=utc(2024, 1, 1))
    assert cron_line(spec) == "*/15 * * * *"
