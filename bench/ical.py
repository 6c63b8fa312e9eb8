"""iCalendar export: the time to write the feed of 10,000 scheduled tasks of mixed types.

The mix has every schedule type in five zones, a seventh of them limited by max_runs or
end_at, and the export window starts a day before a spring-forward night, so the DST
corrections are part of the work. icalendar's own serializer is timed on the same events
(built as icalendar components) for scale: it is what writing them through it would cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import cycle, islice

from icalendar import Calendar, Event

from apflow.domain.enums import ScheduleType
from apflow.domain.models import Task
from apflow.gateway.ical_export import export_calendar
from bench._report import Row, section

ROUNDS = 5
TASKS = 10_000
ICALENDAR_TASKS = 1_000  # icalendar is ~10x slower per event; scaled up in the row
NOW = datetime(2024, 3, 30, 0, 0, tzinfo=UTC)  # Europe's spring-forward night follows
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata")


def _clock(index: int) -> str:
    return f"{index // 60 % 24:02d}:{index % 60:02d}"


def _cron_time(index: int) -> str:
    return f"{index % 60} {index // 60 % 24}"


# Each template gets the task's index, so nearly every task has a schedule of its own and
# the export's per-schedule memo does not flatter the figure.
SCHEDULES: tuple[tuple[ScheduleType, Callable[[int], str]], ...] = (
    (ScheduleType.CRON, lambda i: f"{i % 15}-59/15 * * * *"),
    (ScheduleType.CRON, lambda i: f"{_cron_time(i)} * * 1-5"),
    (ScheduleType.CRON, lambda i: f"{i % 60} * * * *"),
    (ScheduleType.CRON, lambda i: f"@every {1 + i % 5}h{i % 60}m"),
    (ScheduleType.CRON, lambda i: f"{_cron_time(i)} 1,15 * 1"),  # ORed days: listed
    (ScheduleType.DAILY, _clock),
    (ScheduleType.DAILY, lambda i: _clock(i + 150)),
    (ScheduleType.WEEKLY, lambda i: f"1,3,5 {_clock(i)}"),
    (ScheduleType.MONTHLY, lambda i: f"{1 + i % 31} {_clock(i)}"),
    (ScheduleType.INTERVAL, lambda i: str(600 * (1 + i % 12))),
    (ScheduleType.INTERVAL, lambda i: str(60 * (1 + i % 7))),
    (ScheduleType.ONCE, lambda i: (NOW + timedelta(minutes=17 * i)).isoformat()),
)


def tasks(count: int) -> list[Task]:
    """`count` enabled tasks cycling through the schedule templates and zones."""
    kinds = cycle((kind, make, zone) for kind, make in SCHEDULES for zone in ZONES)
    return [_task(index, kind, make(index), zone)
            for index, (kind, make, zone) in enumerate(islice(kinds, count))]


def _task(index: int, kind: ScheduleType, expression: str, zone: str) -> Task:
    limited = index % 7 == 0  # 7 is prime to the 60 template-zone pairs: every pair gets some
    return Task(id=f"task-{index:05d}", name=f"nightly job {index}",
                description="Exports the ledger; pages on failure.",
                created_at=NOW, updated_at=NOW, schedule_type=kind,
                schedule_expression=expression, timezone=zone, schedule_enabled=True,
                schedule_anchor_at=NOW - timedelta(seconds=index),
                max_runs=500 if limited and index % 2 else None,
                schedule_end_at=NOW + timedelta(days=20) if limited and not index % 2 else None)


def seconds(call: Callable[[], object]) -> list[float]:
    """Wall seconds of ROUNDS calls, after one warm-up call."""
    call()
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def icalendar_to_ical(count: int) -> Callable[[], object]:
    """Build `count` comparable VEVENTs as icalendar components and serialize them."""
    def run() -> object:
        calendar = Calendar()
        for index in range(count):
            event = Event()
            event.add("uid", f"task-{index}@apflow")
            event.add("dtstamp", NOW)
            event.add("summary", f"nightly job {index}")
            event.add("description", "Exports the ledger; pages on failure.")
            event.add("dtstart", NOW + timedelta(hours=index % 24))
            event.add("duration", timedelta(minutes=5))
            event.add("rrule", {"freq": "daily", "byhour": [9], "byminute": [0]})
            calendar.add_component(event)
        return calendar.to_ical()
    return run


def main() -> None:
    """Time the export and print the markdown section."""
    many = tasks(TASKS)
    feed = export_calendar(many, now=NOW)
    events = feed.count(b"BEGIN:VEVENT")
    export = Row(f"export_calendar, {TASKS:,} tasks ({events:,} events, "
                 f"{len(feed) / 1e6:.1f} MB)",
                 seconds(lambda: export_calendar(many, now=NOW)), "s", "target ≤ 1 s")
    scale = TASKS / ICALENDAR_TASKS
    reference = Row(f"icalendar: build and to_ical {TASKS:,} simple events "
                    f"(scaled from {ICALENDAR_TASKS:,})",
                    [t * scale for t in seconds(icalendar_to_ical(ICALENDAR_TASKS))], "s",
                    "reference: serializing through icalendar")
    distinct = len({(t.schedule_expression, t.timezone) for t in many})
    notes = (f"Median of {ROUNDS} rounds. Mix: {len(SCHEDULES)} schedule templates x "
             f"{len(ZONES)} zones ({distinct:,} distinct schedules), a seventh limited by "
             "max_runs or end_at; 30-day window opening the day before Europe's "
             "spring-forward night.")
    print(section("iCalendar export", [export, reference], notes))


if __name__ == "__main__":
    main()
