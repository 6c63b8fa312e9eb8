"""Schedule engine: the median cost of one next_fire call, per schedule type.

Every call asks about a different instant (spread over three years, DST nights included),
so no answer comes from a cache. croniter's get_next is timed on the same questions for
scale: it is what the cron maths would cost had we kept it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from croniter import croniter

from apflow.domain.enums import ScheduleType
from apflow.schedules import ScheduleSpec, next_fire
from bench._report import Row, section

ROUNDS = 5
CALLS = 20_000
CRONITER_CALLS = 2_000  # ~10x slower per call; fewer calls keep the section under a minute
CRON_TARGET = "target ≤ 50 µs (cron)"
FIRST = datetime(2024, 1, 1, tzinfo=UTC)
# Not a multiple of any schedule's period, so successive questions land somewhere new.
STEP = timedelta(minutes=79, seconds=13)

CASES = (
    (ScheduleType.CRON, "0 9 * * 1-5", "Europe/Berlin"),
    (ScheduleType.CRON, "*/15 * * * *", "America/New_York"),
    (ScheduleType.CRON, "30 2 1,15 * *", "Australia/Lord_Howe"),
    (ScheduleType.CRON, "0 0 29 2 *", "UTC"),
    (ScheduleType.CRON, "@every 1h30m", "UTC"),
    (ScheduleType.DAILY, "02:30", "Europe/Berlin"),
    (ScheduleType.WEEKLY, "1,3,5 09:00", "America/New_York"),
    (ScheduleType.MONTHLY, "31 09:00", "Australia/Sydney"),
    (ScheduleType.INTERVAL, "3600", "UTC"),
    (ScheduleType.ONCE, "2026-01-15T09:00:00Z", "UTC"),
)
CRONITER_CASES = (("0 9 * * 1-5", "Europe/Berlin"), ("*/15 * * * *", "America/New_York"))


def questions(count: int) -> list[datetime]:
    """`count` distinct instants to ask about."""
    return [FIRST + index * STEP for index in range(count)]


def per_call_us(call: Callable[[datetime], object], afters: Sequence[datetime]) -> float:
    """Mean microseconds of `call` over one pass through `afters`."""
    started = time.perf_counter()
    for after in afters:
        call(after)
    return (time.perf_counter() - started) / len(afters) * 1e6


def rounds_us(call: Callable[[datetime], object], afters: Sequence[datetime]) -> list[float]:
    """Per-call microseconds of each of ROUNDS passes, after one warm-up call."""
    call(afters[0])
    return [per_call_us(call, afters) for _ in range(ROUNDS)]


def next_fire_row(schedule_type: ScheduleType, expression: str, zone: str,
                  afters: Sequence[datetime]) -> Row:
    """The next_fire timing of one schedule."""
    spec = ScheduleSpec(schedule_type, expression, zone, anchor=FIRST)
    target = CRON_TARGET if schedule_type is ScheduleType.CRON else "—"
    return Row(f"`{schedule_type.value}` `{expression}` ({zone})",
               rounds_us(lambda after: next_fire(spec, after), afters), "µs", target)


def croniter_row(expression: str, zone: str, afters: Sequence[datetime]) -> Row:
    """croniter's get_next on the same kind of question, for scale."""
    def call(after: datetime) -> object:
        return croniter(expression, after).get_next(datetime)
    local = [after.astimezone(ScheduleSpec(ScheduleType.CRON, expression, zone).zone)
             for after in afters]
    return Row(f"croniter(expr, after).get_next() `{expression}` ({zone})",
               rounds_us(call, local), "µs",
               "reference: the library we replaced")


def main() -> None:
    """Time every case and print the markdown section."""
    afters = questions(CALLS)
    rows = [next_fire_row(kind, expression, zone, afters) for kind, expression, zone in CASES]
    rows += [croniter_row(expression, zone, afters[:CRONITER_CALLS])
             for expression, zone in CRONITER_CASES]
    notes = (f"Median of {ROUNDS} rounds; a round is {CALLS:,} `next_fire` calls "
             f"({CRONITER_CALLS:,} for croniter), each asking about a different instant.")
    print(section("Schedule engine: next-fire computation", rows, notes))


if __name__ == "__main__":
    main()
