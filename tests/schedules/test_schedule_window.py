"""start_at (exclusive), end_at (inclusive), max_runs, and walking the slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from apflow.domain.enums import ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules import ScheduleSpec, iter_fires, next_fire, slots_between


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def daily(**window: object) -> ScheduleSpec:
    return ScheduleSpec(ScheduleType.DAILY, "09:00", **window)  # type: ignore[arg-type]


def test_start_at_is_exclusive_a_task_starting_at_nine_first_fires_the_next_day() -> None:
    spec = daily(start_at=utc(2024, 1, 1, 9))
    assert next_fire(spec, utc(2023, 12, 1)) == utc(2024, 1, 2, 9)


def test_start_at_a_moment_before_the_slot_lets_that_slot_fire() -> None:
    spec = daily(start_at=utc(2024, 1, 1, 8, 59, 59))
    assert next_fire(spec, utc(2023, 12, 1)) == utc(2024, 1, 1, 9)


def test_a_question_later_than_start_at_is_answered_from_the_question() -> None:
    spec = daily(start_at=utc(2024, 1, 1))
    assert next_fire(spec, utc(2024, 3, 1, 10)) == utc(2024, 3, 2, 9)


def test_a_slot_equal_to_end_at_still_fires() -> None:
    spec = daily(end_at=utc(2024, 1, 2, 9))
    assert next_fire(spec, utc(2024, 1, 1, 10)) == utc(2024, 1, 2, 9)


def test_no_slot_after_end_at_fires() -> None:
    spec = daily(end_at=utc(2024, 1, 2, 8, 59))
    assert next_fire(spec, utc(2024, 1, 1, 10)) is None


def test_asked_after_end_at_the_schedule_is_exhausted() -> None:
    assert next_fire(daily(end_at=utc(2024, 1, 2)), utc(2024, 6, 1)) is None


def test_max_runs_reached_means_no_next_slot() -> None:
    spec = daily(max_runs=3)
    assert next_fire(spec, utc(2024, 1, 1), run_count=2) == utc(2024, 1, 1, 9)
    assert next_fire(spec, utc(2024, 1, 1), run_count=3) is None


def test_max_runs_zero_never_fires() -> None:
    assert next_fire(daily(max_runs=0), utc(2024, 1, 1)) is None


def test_iter_fires_stops_after_max_runs_counting_from_run_count() -> None:
    spec = daily(max_runs=5)
    assert list(iter_fires(spec, utc(2024, 1, 1), run_count=3)) == [
        utc(2024, 1, 1, 9), utc(2024, 1, 2, 9)]


def test_iter_fires_stops_at_end_at() -> None:
    spec = daily(end_at=utc(2024, 1, 3, 9))
    assert list(iter_fires(spec, utc(2024, 1, 1))) == [
        utc(2024, 1, 1, 9), utc(2024, 1, 2, 9), utc(2024, 1, 3, 9)]


def test_iter_fires_of_an_unanchored_interval_keeps_the_first_question_as_anchor() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "60")
    start = utc(2024, 1, 1, 0, 0, 30)
    assert list(islice(iter_fires(spec, start), 3)) == [
        start + timedelta(seconds=60), start + timedelta(seconds=120),
        start + timedelta(seconds=180)]


def test_slots_between_lists_every_slot_in_the_half_open_range() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *")
    assert slots_between(spec, utc(2024, 1, 1, 9), utc(2024, 1, 1, 12)) == [
        utc(2024, 1, 1, 10), utc(2024, 1, 1, 11), utc(2024, 1, 1, 12)]


def test_slots_between_an_empty_range_is_empty() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *")
    assert slots_between(spec, utc(2024, 1, 1, 9), utc(2024, 1, 1, 9, 59)) == []


def test_slots_between_with_a_limit_returns_the_oldest_slots() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *")
    assert slots_between(spec, utc(2024, 1, 1), utc(2024, 12, 31), limit=2) == [
        utc(2024, 1, 1, 1), utc(2024, 1, 1, 2)]


def test_slots_between_with_a_zero_limit_is_empty() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *")
    assert slots_between(spec, utc(2024, 1, 1), utc(2024, 12, 31), limit=0) == []


def test_slots_between_honours_max_runs_from_run_count() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *", max_runs=10)
    assert slots_between(spec, utc(2024, 1, 1), utc(2024, 1, 2), run_count=8) == [
        utc(2024, 1, 1, 1), utc(2024, 1, 1, 2)]


def test_slots_between_honours_end_at() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *", end_at=utc(2024, 1, 1, 2, 30))
    assert slots_between(spec, utc(2024, 1, 1), utc(2024, 1, 2)) == [
        utc(2024, 1, 1, 1), utc(2024, 1, 1, 2)]


def test_slots_between_refuses_a_negative_limit() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "0 * * * *")
    with pytest.raises(InvalidParams) as caught:
        slots_between(spec, utc(2024, 1, 1), utc(2024, 1, 2), limit=-1)
    assert caught.value.field == "limit"


def test_slots_between_for_catch_up_after_a_long_outage_stays_bounded_by_the_limit() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "* * * * *")
    slots = slots_between(spec, utc(2000, 1, 1), utc(2024, 1, 1), limit=1000)
    assert len(slots) == 1000 and slots[-1] == utc(2000, 1, 1, 16, 40)


def test_a_once_schedule_honours_its_window_like_the_others() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z", end_at=utc(2024, 1, 10))
    assert next_fire(spec, utc(2024, 1, 1)) is None
