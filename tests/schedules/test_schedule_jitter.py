"""jitter_offset(): a deterministic delay per (task, slot), within [0, jitter_seconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apflow.domain.errors import InvalidParams
from apflow.schedules import jitter_offset

SLOT = datetime(2024, 1, 1, 9, tzinfo=UTC)


def test_no_jitter_means_no_delay() -> None:
    assert jitter_offset("task-1", SLOT, 0) == timedelta(0)


def test_the_same_task_and_slot_always_get_the_same_delay() -> None:
    assert jitter_offset("task-1", SLOT, 300) == jitter_offset("task-1", SLOT, 300)


def test_the_same_instant_in_another_zone_gets_the_same_delay() -> None:
    berlin = SLOT.astimezone(ZoneInfo("Europe/Berlin"))
    assert jitter_offset("task-1", berlin, 300) == jitter_offset("task-1", SLOT, 300)


def test_delays_stay_within_zero_and_the_jitter() -> None:
    delays = [jitter_offset(f"task-{n}", SLOT + timedelta(minutes=n), 7) for n in range(2000)]
    assert all(timedelta(0) <= delay < timedelta(seconds=7) for delay in delays)


def test_delays_spread_across_the_whole_range() -> None:
    delays = [jitter_offset(f"task-{n}", SLOT, 10) for n in range(2000)]
    buckets = {int(delay.total_seconds()) for delay in delays}
    assert buckets == set(range(10))


def test_different_tasks_sharing_a_slot_get_different_delays() -> None:
    assert len({jitter_offset(f"task-{n}", SLOT, 3600) for n in range(50)}) > 45


def test_one_task_gets_a_different_delay_for_each_slot() -> None:
    delays = {jitter_offset("task-1", SLOT + timedelta(hours=n), 3600) for n in range(50)}
    assert len(delays) > 45


def test_a_one_second_jitter_still_spreads_below_a_second() -> None:
    delays = {jitter_offset(f"task-{n}", SLOT, 1) for n in range(50)}
    assert len(delays) > 40 and max(delays) < timedelta(seconds=1)


@pytest.mark.parametrize("jitter", [-1, 1.5, True])
def test_jitter_must_be_a_whole_number_of_zero_or_more(jitter: object) -> None:
    with pytest.raises(InvalidParams) as caught:
        jitter_offset("task-1", SLOT, jitter)  # type: ignore[arg-type]
    assert caught.value.field == "jitter_seconds"
