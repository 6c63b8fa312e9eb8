"""The six schedule types and their expressions, away from DST transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest

from apflow.domain.enums import ScheduleType
from apflow.schedules import ScheduleSpec, iter_fires, next_fire

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(spec: ScheduleSpec, after: datetime, count: int) -> list[datetime]:
    return list(islice(iter_fires(spec, after), count))


# once ---------------------------------------------------------------------------------------

def test_once_fires_at_its_instant() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 15, 9)


def test_once_in_the_past_never_fires() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z")
    assert next_fire(spec, utc(2024, 2, 1)) is None


def test_once_asked_at_its_own_instant_has_already_fired() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z")
    assert next_fire(spec, utc(2024, 1, 15, 9)) is None


def test_once_honours_the_offset_in_the_expression_not_the_timezone() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T10:00:00+01:00", "America/New_York")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 15, 9)


def test_once_yields_exactly_one_slot() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z")
    assert fires(spec, utc(2024, 1, 1), 5) == [utc(2024, 1, 15, 9)]


def test_results_are_utc_whatever_the_zone_of_the_question() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "Europe/Berlin")
    result = next_fire(spec, datetime(2024, 1, 10, 12, tzinfo=BERLIN))
    assert result == utc(2024, 1, 11, 8)
    assert result is not None and result.tzinfo is UTC


# interval -----------------------------------------------------------------------------------

def test_interval_without_anchor_first_fires_n_seconds_after_the_question() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "3600")
    assert next_fire(spec, utc(2024, 1, 1, 10, 17, 5)) == utc(2024, 1, 1, 11, 17, 5)


def test_interval_first_slot_is_n_seconds_after_the_anchor() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "600", anchor=utc(2024, 1, 1, 10, 0))
    assert next_fire(spec, utc(2024, 1, 1, 10, 0)) == utc(2024, 1, 1, 10, 10)


def test_interval_slots_stay_on_the_anchor_grid_whenever_asked() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "600", anchor=utc(2024, 1, 1, 10, 0))
    assert next_fire(spec, utc(2024, 1, 1, 10, 25, 59)) == utc(2024, 1, 1, 10, 30)
    assert next_fire(spec, utc(2024, 1, 1, 10, 30)) == utc(2024, 1, 1, 10, 40)


def test_interval_asked_before_its_anchor_fires_n_after_the_anchor() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "600", anchor=utc(2024, 1, 1, 10, 0))
    assert next_fire(spec, utc(2023, 12, 31)) == utc(2024, 1, 1, 10, 10)


def test_interval_start_at_is_the_anchor_even_when_an_anchor_is_given() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "600", start_at=utc(2024, 1, 1, 10, 3),
                        anchor=utc(2024, 1, 1, 9, 0))
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 1, 10, 13)


def test_interval_never_drifts_over_many_slots() -> None:
    anchor = utc(2024, 1, 1, 0, 0, 0)
    spec = ScheduleSpec(ScheduleType.INTERVAL, "7", anchor=anchor)
    slots = fires(spec, anchor, 100_000)
    assert slots[-1] == anchor + timedelta(seconds=7 * 100_000)
    assert all(b - a == timedelta(seconds=7) for a, b in pairwise(slots))


def test_interval_keeps_sub_second_anchors_exact() -> None:
    anchor = utc(2024, 1, 1, 0, 0, 0) + timedelta(microseconds=123_456)
    spec = ScheduleSpec(ScheduleType.INTERVAL, "1", anchor=anchor)
    assert next_fire(spec, anchor + timedelta(seconds=5)) == anchor + timedelta(seconds=6)


def test_every_is_an_interval_anchored_the_same_way() -> None:
    anchor = utc(2024, 1, 1, 10, 0)
    every = ScheduleSpec(ScheduleType.CRON, "@every 1h30m", anchor=anchor)
    interval = ScheduleSpec(ScheduleType.INTERVAL, "5400", anchor=anchor)
    assert fires(every, anchor, 5) == fires(interval, anchor, 5)
    assert fires(every, anchor, 1) == [utc(2024, 1, 1, 11, 30)]


@pytest.mark.parametrize(("expression", "seconds"), [
    ("@every 90s", 90), ("@every 15m", 900), ("@every 2h", 7200), ("@every 1d", 86400),
    ("@every 1d2h3m4s", 93784), ("@EVERY 5m", 300), ("@every 90m", 5400),
])
def test_every_durations(expression: str, seconds: int) -> None:
    anchor = utc(2024, 1, 1)
    spec = ScheduleSpec(ScheduleType.CRON, expression, anchor=anchor)
    assert next_fire(spec, anchor) == anchor + timedelta(seconds=seconds)


# cron ---------------------------------------------------------------------------------------

def test_cron_weekdays_at_nine_skip_the_weekend() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 9 * * 1-5")
    assert fires(spec, utc(2024, 1, 5, 9), 2) == [utc(2024, 1, 8, 9), utc(2024, 1, 9, 9)]


def test_cron_is_evaluated_in_its_timezone() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 9 * * *", "America/New_York")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 1, 14)


def test_cron_every_fifteen_minutes() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "*/15 * * * *")
    assert fires(spec, utc(2024, 1, 1, 10, 7, 30), 3) == [
        utc(2024, 1, 1, 10, 15), utc(2024, 1, 1, 10, 30), utc(2024, 1, 1, 10, 45)]


def test_cron_a_question_between_minutes_gets_the_next_whole_minute() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "* * * * *")
    assert next_fire(spec, utc(2024, 1, 1, 10, 0, 0) + timedelta(microseconds=1)) == \
        utc(2024, 1, 1, 10, 1)


@pytest.mark.parametrize(("macro", "after", "expected"), [
    ("@yearly", utc(2024, 3, 1), utc(2025, 1, 1)),
    ("@annually", utc(2024, 3, 1), utc(2025, 1, 1)),
    ("@monthly", utc(2024, 3, 1), utc(2024, 4, 1)),
    ("@weekly", utc(2024, 3, 1), utc(2024, 3, 3)),  # a Sunday
    ("@daily", utc(2024, 3, 1, 5), utc(2024, 3, 2)),
    ("@midnight", utc(2024, 3, 1, 5), utc(2024, 3, 2)),
    ("@hourly", utc(2024, 3, 1, 5, 1), utc(2024, 3, 1, 6)),
    ("@Daily", utc(2024, 3, 1, 5), utc(2024, 3, 2)),
])
def test_cron_macros(macro: str, after: datetime, expected: datetime) -> None:
    assert next_fire(ScheduleSpec(ScheduleType.CRON, macro), after) == expected


def test_cron_month_and_day_names_are_understood() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 12 * Feb-Mar SAT")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 2, 3, 12)


def test_cron_seven_is_sunday_too() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 12 * * 7")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 7, 12)


def test_cron_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 0 13 * 5")  # the 13th, or any Friday
    assert fires(spec, utc(2024, 9, 1), 4) == [
        utc(2024, 9, 6), utc(2024, 9, 13), utc(2024, 9, 20), utc(2024, 9, 27)]


def test_cron_a_starred_day_field_with_a_step_narrows_the_other_as_vixie_cron_does() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 0 */2 * 1")  # odd days that are Mondays
    assert fires(spec, utc(2024, 1, 1), 3) == [utc(2024, 1, 15), utc(2024, 1, 29),
                                               utc(2024, 2, 5)]


def test_cron_a_full_range_in_one_day_field_makes_every_day_match() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 0 1 * 0-6")  # Vixie: 1st OR any weekday
    assert fires(spec, utc(2024, 1, 10), 2) == [utc(2024, 1, 11), utc(2024, 1, 12)]


def test_cron_an_equal_range_is_that_one_value() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "5-5 * * * *")
    assert fires(spec, utc(2024, 1, 1), 2) == [utc(2024, 1, 1, 0, 5), utc(2024, 1, 1, 1, 5)]


def test_cron_start_with_step_runs_to_the_end_of_the_field() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "10/20 * * * *")
    assert fires(spec, utc(2024, 1, 1), 4) == [
        utc(2024, 1, 1, 0, 10), utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 0, 50),
        utc(2024, 1, 1, 1, 10)]


def test_cron_question_mark_means_any_day() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 9 ? * MON")
    assert next_fire(spec, utc(2024, 1, 1, 10)) == utc(2024, 1, 8, 9)


def test_cron_leap_day_fires_only_in_leap_years() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 0 29 2 *")
    assert fires(spec, utc(2024, 3, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_cron_a_rare_day_and_weekday_combination_is_found_decades_ahead() -> None:
    # 29 February that is also a Sunday ('*/7' starts with '*', so both fields must match).
    spec = ScheduleSpec(ScheduleType.CRON, "0 0 29 2 */7")
    assert fires(spec, utc(2024, 1, 1), 2) == [utc(2032, 2, 29), utc(2060, 2, 29)]


# daily, weekly, monthly ------------------------------------------------------------------------

def test_daily_fires_every_day_at_its_wall_clock_time() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "Europe/Berlin")
    assert fires(spec, utc(2024, 1, 1), 2) == [utc(2024, 1, 1, 8), utc(2024, 1, 2, 8)]


def test_daily_keeps_its_wall_clock_time_across_seasons() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "Europe/Berlin")
    assert next_fire(spec, utc(2024, 7, 1)) == utc(2024, 7, 1, 7)


def test_daily_in_a_half_hour_offset_zone() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "Asia/Kolkata")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 1, 3, 30)


def test_daily_accepts_a_one_digit_hour() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "9:05")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 1, 9, 5)


def test_weekly_uses_iso_weekdays_monday_wednesday_friday() -> None:
    spec = ScheduleSpec(ScheduleType.WEEKLY, "1,3,5 09:00")
    assert fires(spec, utc(2024, 1, 1, 10), 3) == [  # 2024-01-01 is a Monday
        utc(2024, 1, 3, 9), utc(2024, 1, 5, 9), utc(2024, 1, 8, 9)]


def test_weekly_seven_is_sunday() -> None:
    spec = ScheduleSpec(ScheduleType.WEEKLY, "7 18:30")
    assert next_fire(spec, utc(2024, 1, 1)) == utc(2024, 1, 7, 18, 30)


def test_weekly_accepts_ranges() -> None:
    spec = ScheduleSpec(ScheduleType.WEEKLY, "6-7 10:00")
    assert fires(spec, utc(2024, 1, 1), 2) == [utc(2024, 1, 6, 10), utc(2024, 1, 7, 10)]


def test_monthly_fires_on_the_listed_days() -> None:
    spec = ScheduleSpec(ScheduleType.MONTHLY, "1,15 09:00")
    assert fires(spec, utc(2024, 1, 1, 10), 3) == [
        utc(2024, 1, 15, 9), utc(2024, 2, 1, 9), utc(2024, 2, 15, 9)]


def test_monthly_day_31_is_skipped_in_shorter_months() -> None:
    spec = ScheduleSpec(ScheduleType.MONTHLY, "31 09:00")
    assert fires(spec, utc(2024, 1, 1), 4) == [
        utc(2024, 1, 31, 9), utc(2024, 3, 31, 9), utc(2024, 5, 31, 9), utc(2024, 7, 31, 9)]


def test_monthly_day_29_fires_in_february_only_in_leap_years() -> None:
    spec = ScheduleSpec(ScheduleType.MONTHLY, "29 09:00")
    assert fires(spec, utc(2023, 1, 30), 2) == [utc(2023, 3, 29, 9), utc(2023, 4, 29, 9)]
    assert fires(spec, utc(2024, 1, 30), 2) == [utc(2024, 2, 29, 9), utc(2024, 3, 29, 9)]


def test_monthly_end_of_month_days_skip_february_entirely() -> None:
    spec = ScheduleSpec(ScheduleType.MONTHLY, "30,31 09:00")
    assert fires(spec, utc(2023, 1, 31, 10), 2) == [utc(2023, 3, 30, 9), utc(2023, 3, 31, 9)]
