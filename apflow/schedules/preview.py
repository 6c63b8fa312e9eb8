"""The next slots of a schedule as a user sees them: UTC, local time and DST notes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from apflow.schedules.checks import whole_number
from apflow.schedules.rules import WallRule
from apflow.schedules.slots import Slot, SlotKind
from apflow.schedules.spec import ScheduleSpec
from apflow.schedules.timezones import as_utc
from apflow.schedules.window import iter_slots

MAX_PREVIEW_COUNT = 1000


@dataclass(frozen=True)
class PreviewItem:
    """One upcoming slot."""

    at: datetime  # UTC
    local: datetime  # the same instant in the schedule's time zone
    dst_shifted: bool  # its wall time fell in a DST gap, so it fires when the gap ends
    note: str | None = None


def preview(spec: ScheduleSpec, from_time: datetime, count: int,
            run_count: int = 0) -> list[PreviewItem]:
    """The next `count` (1..1000) slots strictly after `from_time`."""
    whole_number(count, "count", 1, MAX_PREVIEW_COUNT)
    start = as_utc(from_time, "from_time")
    slots = islice(iter_slots(spec, start, run_count), count)
    return [_item(spec, slot) for slot in slots]


def _item(spec: ScheduleSpec, slot: Slot) -> PreviewItem:
    local = slot.at.astimezone(spec.zone)
    return PreviewItem(at=slot.at, local=local, dst_shifted=slot.kind is SlotKind.SHIFTED,
                       note=_note(spec, slot, local))


def _note(spec: ScheduleSpec, slot: Slot, local: datetime) -> str | None:
    if slot.wall is None or slot.kind is SlotKind.REGULAR:
        return None
    wall, day = f"{slot.wall:%H:%M}", f"{slot.wall:%Y-%m-%d}"
    if slot.kind is SlotKind.SHIFTED:
        return (f"{wall} does not exist on {day} in {spec.timezone} (clocks go forward); "
                f"fires at {local:%H:%M}, when the gap ends")
    if slot.kind is SlotKind.SECOND_OF_TWO:
        return f"the second {wall} on {day} (clocks go back; a wildcard-hour cron fires in both)"
    if isinstance(spec.rule, WallRule) and spec.rule.repeats:
        return f"the first {wall} on {day} (clocks go back; it fires again in the second)"
    return f"{wall} occurs twice on {day} (clocks go back); fires once, at the first"
