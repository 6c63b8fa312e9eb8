"""DST: a skipped wall time fires when the gap ends; a repeated one fires once (fixed-time)
or in both passes (cron with a wildcard hour); intervals count real elapsed time.

Transitions used (2024):
- Europe/Berlin      gap 02:00-03:00 on 31 Mar (01:00Z); repeat 02:00-03:00 on 27 Oct (01:00Z)
- America/New_York   gap 02:00-03:00 on 10 Mar (07:00Z); repeat 01:00-02:00 on 3 Nov (06:00Z)
- Australia/Sydney   repeat 02:00-03:00 on 7 Apr (6 Apr 16:00Z); gap 02:00-03:00 on 6 Oct
                     (5 Oct 16:00Z)
- Australia/Lord_Howe (30-minute shift) repeat 01:30-02:00 on 7 Apr (6 Apr 15:00Z);
                     gap 02:00-02:30 on 6 Oct (5 Oct 15:30Z)
- Australia/Adelaide (half-hour offsets) repeat 02:00-03:00 on 7 Apr (6 Apr 16:30Z);
                     gap 02:00-03:00 on 6 Oct (5 Oct 16:30Z)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

import pytest

from apflow.domain.enums import ScheduleType
from apflow.schedules import ScheduleSpec, iter_fires, matches, next_fire, slots_between


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(spec: ScheduleSpec, after: datetime, count: int) -> list[datetime]:
    return list(islice(iter_fires(spec, after), count))


def daily(clock: str, zone: str) -> ScheduleSpec:
    return ScheduleSpec(ScheduleType.DAILY, clock, zone)


def cron(expression: str, zone: str) -> ScheduleSpec:
    return ScheduleSpec(ScheduleType.CRON, expression, zone)


# spring forward: a wall time that does not exist fires when the gap ends ---------------------

@pytest.mark.parametrize(("zone", "clock", "after", "expected"), [
    ("Europe/Berlin", "02:30", utc(2024, 3, 30, 12), utc(2024, 3, 31, 1)),
    ("Europe/Berlin", "02:00", utc(2024, 3, 30, 12), utc(2024, 3, 31, 1)),
    ("America/New_York", "02:30", utc(2024, 3, 9, 12), utc(2024, 3, 10, 7)),
    ("Australia/Sydney", "02:30", utc(2024, 10, 5, 0), utc(2024, 10, 5, 16)),
    ("Australia/Lord_Howe", "02:15", utc(2024, 10, 5, 0), utc(2024, 10, 5, 15, 30)),
    ("Australia/Adelaide", "02:30", utc(2024, 10, 5, 0), utc(2024, 10, 5, 16, 30)),
])
def test_a_daily_time_inside_the_spring_forward_gap_fires_when_the_gap_ends(
        zone: str, clock: str, after: datetime, expected: datetime) -> None:
    assert next_fire(daily(clock, zone), after) == expected


def test_the_day_after_the_gap_the_wall_time_is_back_to_normal() -> None:
    assert fires(daily("02:30", "Europe/Berlin"), utc(2024, 3, 30, 12), 2) == [
        utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)]


def test_a_time_just_before_the_gap_is_untouched() -> None:
    assert next_fire(daily("01:59", "Europe/Berlin"), utc(2024, 3, 30, 12)) == \
        utc(2024, 3, 31, 0, 59)


def test_the_time_the_gap_ends_at_fires_once_even_when_gap_slots_map_onto_it() -> None:
    spec = cron("0,30 2,3 * * *", "Europe/Berlin")  # 02:00 and 02:30 fall into the gap
    assert fires(spec, utc(2024, 3, 30, 12), 2) == [utc(2024, 3, 31, 1),
                                                    utc(2024, 3, 31, 1, 30)]


def test_weekly_and_monthly_follow_the_gap_rule_too() -> None:
    sunday = ScheduleSpec(ScheduleType.WEEKLY, "7 02:30", "Europe/Berlin")
    day_31 = ScheduleSpec(ScheduleType.MONTHLY, "31 02:30", "Europe/Berlin")
    assert next_fire(sunday, utc(2024, 3, 30)) == utc(2024, 3, 31, 1)
    assert next_fire(day_31, utc(2024, 3, 30)) == utc(2024, 3, 31, 1)


def test_wildcard_minutes_inside_the_gap_collapse_into_its_end() -> None:
    spec = cron("*/15 * * * *", "Europe/Berlin")
    assert fires(spec, utc(2024, 3, 31, 0, 30), 3) == [
        utc(2024, 3, 31, 0, 45), utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 15)]


def test_a_thirty_minute_gap_on_lord_howe_collapses_quarter_hours_into_its_end() -> None:
    spec = cron("*/15 * * * *", "Australia/Lord_Howe")
    assert fires(spec, utc(2024, 10, 5, 15, 0), 3) == [
        utc(2024, 10, 5, 15, 15), utc(2024, 10, 5, 15, 30), utc(2024, 10, 5, 15, 45)]


def test_a_wildcard_hour_cron_whose_minute_falls_in_the_gap_fires_when_it_ends() -> None:
    # The design's gap rule holds for every calendar schedule; Vixie cron would skip 02:30.
    assert fires(cron("30 * * * *", "Europe/Berlin"), utc(2024, 3, 31, 0), 3) == [
        utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 30)]


def test_the_shifted_slot_is_a_match_and_the_skipped_wall_time_is_not_needed() -> None:
    spec = daily("02:30", "Europe/Berlin")
    assert matches(spec, utc(2024, 3, 31, 1))
    assert not matches(spec, utc(2024, 3, 31, 1, 30))  # 03:30 CEST


# fall back: a fixed time that occurs twice fires once, at the first occurrence -----------------

@pytest.mark.parametrize(("zone", "clock", "after", "first", "next_day"), [
    ("Europe/Berlin", "02:30", utc(2024, 10, 26, 12), utc(2024, 10, 27, 0, 30),
     utc(2024, 10, 28, 1, 30)),
    ("America/New_York", "01:30", utc(2024, 11, 2, 12), utc(2024, 11, 3, 5, 30),
     utc(2024, 11, 4, 6, 30)),
    ("Australia/Sydney", "02:30", utc(2024, 4, 6, 0), utc(2024, 4, 6, 15, 30),
     utc(2024, 4, 7, 16, 30)),
    ("Australia/Lord_Howe", "01:45", utc(2024, 4, 6, 0), utc(2024, 4, 6, 14, 45),
     utc(2024, 4, 7, 15, 15)),
    ("Australia/Adelaide", "02:30", utc(2024, 4, 6, 0), utc(2024, 4, 6, 16, 0),
     utc(2024, 4, 7, 17, 0)),
])
def test_a_daily_time_in_the_repeated_hour_fires_once_at_the_first_occurrence(
        zone: str, clock: str, after: datetime, first: datetime, next_day: datetime) -> None:
    assert fires(daily(clock, zone), after, 2) == [first, next_day]


def test_a_fixed_hour_cron_in_the_repeated_hour_fires_once() -> None:
    assert fires(cron("30 1 * * *", "America/New_York"), utc(2024, 11, 2, 12), 2) == [
        utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]


def test_asked_during_the_second_pass_a_fixed_time_waits_for_the_next_day() -> None:
    after = utc(2024, 11, 3, 6, 15)  # 01:15 EST, the second 01:15 of the night
    assert next_fire(daily("01:30", "America/New_York"), after) == utc(2024, 11, 4, 6, 30)


def test_asked_during_the_second_pass_a_later_fixed_time_still_fires_that_night() -> None:
    after = utc(2024, 11, 3, 6, 15)  # 01:15 EST
    assert next_fire(daily("02:00", "America/New_York"), after) == utc(2024, 11, 3, 7)


def test_the_second_occurrence_of_a_fixed_time_is_not_a_match() -> None:
    spec = daily("01:30", "America/New_York")
    assert matches(spec, utc(2024, 11, 3, 5, 30))
    assert not matches(spec, utc(2024, 11, 3, 6, 30))


# fall back: cron with a wildcard hour fires in both passes (Vixie cron) -------------------------

def test_a_wildcard_hour_cron_fires_in_both_passes_of_the_repeated_hour() -> None:
    spec = cron("*/30 * * * *", "Europe/Berlin")
    assert fires(spec, utc(2024, 10, 26, 23, 45), 6) == [
        utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 0, 30),  # 02:00, 02:30 CEST
        utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 1, 30),  # 02:00, 02:30 CET
        utc(2024, 10, 27, 2, 0), utc(2024, 10, 27, 2, 30)]  # 03:00, 03:30 CET


def test_asked_late_in_the_first_pass_a_wildcard_cron_goes_on_to_the_second() -> None:
    after = utc(2024, 11, 3, 5, 45)  # 01:45 EDT
    assert next_fire(cron("0,30 * * * *", "America/New_York"), after) == utc(2024, 11, 3, 6)


def test_asked_during_the_second_pass_a_wildcard_cron_continues_in_it() -> None:
    after = utc(2024, 11, 3, 6, 10)  # 01:10 EST
    assert next_fire(cron("0,30 * * * *", "America/New_York"), after) == \
        utc(2024, 11, 3, 6, 30)


def test_an_hourly_cron_fires_every_real_hour_through_the_night_clocks_go_back() -> None:
    slots = fires(cron("@hourly", "Australia/Sydney"), utc(2024, 4, 6, 13, 30), 5)
    assert [b - a for a, b in pairwise(slots)] == [timedelta(hours=1)] * 4


def test_quarter_hours_on_lord_howe_run_every_real_quarter_hour_through_the_repeat() -> None:
    spec = cron("*/15 * * * *", "Australia/Lord_Howe")
    assert fires(spec, utc(2024, 4, 6, 14, 15), 5) == [
        utc(2024, 4, 6, 14, 30), utc(2024, 4, 6, 14, 45), utc(2024, 4, 6, 15, 0),
        utc(2024, 4, 6, 15, 15), utc(2024, 4, 6, 15, 30)]


def test_a_wildcard_hour_cron_matches_both_passes() -> None:
    spec = cron("30 * * * *", "America/New_York")
    assert matches(spec, utc(2024, 11, 3, 5, 30))
    assert matches(spec, utc(2024, 11, 3, 6, 30))


def test_a_starred_hour_with_a_step_counts_as_a_wildcard_hour() -> None:
    spec = cron("0 */2 * * *", "Europe/Berlin")  # 02:00 occurs twice on 27 Oct
    assert fires(spec, utc(2024, 10, 26, 23), 3) == [
        utc(2024, 10, 27, 0), utc(2024, 10, 27, 1), utc(2024, 10, 27, 3)]


# intervals count real elapsed time --------------------------------------------------------------

def test_an_interval_keeps_real_hours_through_the_night_clocks_go_back() -> None:
    anchor = utc(2024, 10, 26, 22)  # midnight in Berlin
    spec = ScheduleSpec(ScheduleType.INTERVAL, "3600", "Europe/Berlin", anchor=anchor)
    day = slots_between(spec, anchor, utc(2024, 10, 27, 23))  # the 25-hour local day
    assert len(day) == 25
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(day))


def test_an_interval_keeps_real_hours_through_the_night_clocks_go_forward() -> None:
    anchor = utc(2024, 3, 30, 23)  # midnight in Berlin
    spec = ScheduleSpec(ScheduleType.INTERVAL, "3600", "Europe/Berlin", anchor=anchor)
    assert len(slots_between(spec, anchor, utc(2024, 3, 31, 22))) == 23


def test_every_keeps_real_time_across_a_gap() -> None:
    anchor = utc(2024, 3, 31, 0, 30)  # 01:30 CET
    spec = ScheduleSpec(ScheduleType.CRON, "@every 1h", "Europe/Berlin", anchor=anchor)
    assert next_fire(spec, anchor) == utc(2024, 3, 31, 1, 30)  # 03:30 CEST
