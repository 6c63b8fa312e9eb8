"""preview(): the next slots with local time, a DST-shift flag and a note."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from apflow.domain.enums import ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules import PreviewItem, ScheduleSpec, preview

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_preview_gives_utc_and_local_time_of_each_slot() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "Europe/Berlin")
    assert preview(spec, utc(2024, 1, 1), 2) == [
        PreviewItem(utc(2024, 1, 1, 8), datetime(2024, 1, 1, 9, tzinfo=BERLIN), False, None),
        PreviewItem(utc(2024, 1, 2, 8), datetime(2024, 1, 2, 9, tzinfo=BERLIN), False, None)]


def test_preview_local_times_carry_the_schedule_zone() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", "Europe/Berlin")
    item = preview(spec, utc(2024, 1, 1), 1)[0]
    assert item.local.tzinfo == BERLIN and item.at.tzinfo is UTC


def test_a_slot_moved_by_the_spring_forward_gap_is_flagged_and_explained() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "02:30", "Europe/Berlin")
    shifted, normal = preview(spec, utc(2024, 3, 30, 12), 2)
    assert shifted.dst_shifted and not normal.dst_shifted
    assert shifted.local == datetime(2024, 3, 31, 3, 0, tzinfo=BERLIN)
    assert shifted.note == ("02:30 does not exist on 2024-03-31 in Europe/Berlin "
                            "(clocks go forward); fires at 03:00, when the gap ends")
    assert normal.note is None


def test_a_fixed_time_in_the_repeated_hour_is_noted_but_not_shifted() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "02:30", "Europe/Berlin")
    item = preview(spec, utc(2024, 10, 26, 12), 1)[0]
    assert not item.dst_shifted
    assert item.note == ("02:30 occurs twice on 2024-10-27 (clocks go back); "
                         "fires once, at the first")


def test_both_passes_of_a_wildcard_hour_cron_are_noted() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "30 * * * *", "Europe/Berlin")
    first, second = preview(spec, utc(2024, 10, 27, 0), 2)
    assert first.note is not None and first.note.startswith("the first 02:30 on 2024-10-27")
    assert second.note is not None and second.note.startswith("the second 02:30 on 2024-10-27")
    assert not first.dst_shifted and not second.dst_shifted


def test_interval_slots_carry_no_dst_notes() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "1800", "Europe/Berlin")
    items = preview(spec, utc(2024, 10, 27, 0), 4)
    assert [item.note for item in items] == [None] * 4
    assert not any(item.dst_shifted for item in items)


def test_preview_of_an_unanchored_interval_starts_n_seconds_after_from_time() -> None:
    spec = ScheduleSpec(ScheduleType.INTERVAL, "3600")
    assert [item.at for item in preview(spec, utc(2024, 1, 1, 10, 5), 2)] == [
        utc(2024, 1, 1, 11, 5), utc(2024, 1, 1, 12, 5)]


def test_preview_stops_early_when_the_schedule_runs_out() -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00", max_runs=3)
    assert len(preview(spec, utc(2024, 1, 1), 10, run_count=1)) == 2


def test_preview_of_a_past_once_is_empty() -> None:
    spec = ScheduleSpec(ScheduleType.ONCE, "2024-01-15T09:00:00Z")
    assert preview(spec, utc(2025, 1, 1), 5) == []


def test_preview_gives_up_to_a_thousand_slots() -> None:
    spec = ScheduleSpec(ScheduleType.CRON, "* * * * *")
    assert len(preview(spec, utc(2024, 1, 1), 1000)) == 1000


@pytest.mark.parametrize("count", [0, -1, 1001, True])
def test_preview_count_must_be_between_one_and_a_thousand(count: int) -> None:
    spec = ScheduleSpec(ScheduleType.DAILY, "09:00")
    with pytest.raises(InvalidParams) as caught:
        preview(spec, utc(2024, 1, 1), count)
    assert caught.value.field == "count"
