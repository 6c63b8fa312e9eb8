"""A schedule's slots within its window: after start_at, up to end_at, at most max_runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from itertools import islice, takewhile

from apflow.schedules.checks import whole_number
from apflow.schedules.rules import IntervalRule
from apflow.schedules.slots import Slot, next_slot
from apflow.schedules.spec import ScheduleSpec
from apflow.schedules.timezones import as_utc


def next_fire(spec: ScheduleSpec, after: datetime, run_count: int = 0) -> datetime | None:
    """The first slot strictly after `after` (and start_at), up to end_at; None when exhausted."""
    slot = next_slot_in_window(spec, as_utc(after, "after"), run_count)
    return None if slot is None else slot.at


def iter_fires(spec: ScheduleSpec, after: datetime, run_count: int = 0) -> Iterator[datetime]:
    """Successive slots after `after`, stopping after max_runs counted from `run_count`."""
    return (slot.at for slot in iter_slots(spec, after, run_count))


def slots_between(spec: ScheduleSpec, after: datetime, until: datetime, run_count: int = 0,
                  limit: int | None = None) -> list[datetime]:
    """Every slot in (after, until], oldest first; the first `limit` of them if given."""
    end = as_utc(until, "until")
    if limit is not None:
        whole_number(limit, "limit")
    due = takewhile(lambda at: at <= end, iter_fires(spec, after, run_count))
    return list(due if limit is None else islice(due, limit))


def iter_slots(spec: ScheduleSpec, after: datetime, run_count: int = 0) -> Iterator[Slot]:
    """Like iter_fires, with how DST placed each slot."""
    start = as_utc(after, "after")
    whole_number(run_count, "run_count")
    return _walk(anchored(spec, start), start, run_count)


def _walk(spec: ScheduleSpec, after: datetime, run_count: int) -> Iterator[Slot]:
    while (slot := next_slot_in_window(spec, after, run_count)) is not None:
        yield slot
        after, run_count = slot.at, run_count + 1


def anchored(spec: ScheduleSpec, after: datetime) -> ScheduleSpec:
    """An unanchored interval schedule anchored at `after`, so a walk keeps one grid."""
    if isinstance(spec.rule, IntervalRule) and spec.start_at is None and spec.anchor is None:
        return dataclasses.replace(spec, anchor=after)
    return spec


def next_slot_in_window(spec: ScheduleSpec, after: datetime, run_count: int) -> Slot | None:
    """The next slot after `after` (UTC) that the window and max_runs still allow."""
    whole_number(run_count, "run_count")
    if spec.max_runs is not None and run_count >= spec.max_runs:
        return None
    floor = after if spec.start_at is None else max(after, spec.start_at)
    slot = next_slot(spec.rule, spec.zone, floor, spec.start_at or spec.anchor)
    if slot is None or (spec.end_at is not None and slot.at > spec.end_at):
        return None
    return slot

