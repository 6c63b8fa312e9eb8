"""Properties that hold for every schedule, zone and question, DST transitions included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import islice
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from apflow.domain.enums import ScheduleType
from apflow.schedules import ScheduleSpec, iter_fires, matches, next_fire, slots_between

# DST zones of every shape: 1 h, 30 min (Lord_Howe), 2 h (Troll), negative DST (Dublin),
# transitions at midnight (Havana), a skipped calendar day (Apia 2011), half- and
# quarter-hour offsets (Kolkata, Adelaide, Chatham, Kathmandu, St_Johns), Ramadan breaks.
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
         "Asia/Kolkata", "Australia/Adelaide", "Antarctica/Troll", "Europe/Dublin",
         "America/Havana", "Pacific/Apia", "Pacific/Chatham", "Asia/Kathmandu",
         "America/St_Johns", "Africa/Casablanca", "America/Santiago"]
MINUTE = timedelta(minutes=1)
TICK = timedelta(microseconds=1)
SETTINGS = settings(max_examples=200, deadline=None)


@cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """UTC instants in `year` at which the zone's offset changes (to the hour)."""
    zone = ZoneInfo(zone_name)
    start = datetime(year, 1, 1, tzinfo=UTC)
    days = [start + timedelta(days=n) for n in range(367)]
    offsets = [day.astimezone(zone).utcoffset() for day in days]
    return tuple(_first_hour_with(zone, day, offsets[n + 1])
                 for n, day in enumerate(days[:-1]) if offsets[n] != offsets[n + 1])


def _first_hour_with(zone: ZoneInfo, day: datetime, offset: timedelta | None) -> datetime:
    return next(day + timedelta(hours=h) for h in range(1, 25)
                if (day + timedelta(hours=h)).astimezone(zone).utcoffset() == offset)


@st.composite
def questions(draw: st.DrawFn, zone: str) -> tuple[datetime, datetime | None]:
    """An instant to ask about and, half the time, a wall time around one of the zone's DST
    changes (skipped, repeated or next to them) that the schedule is then built on."""
    near = transitions(zone, draw(YEARS))
    if not near or draw(st.booleans()):
        return draw(DATETIMES).replace(tzinfo=UTC), None
    switch = draw(st.sampled_from(near))
    after = switch + timedelta(seconds=draw(JIGGLE))
    # Reading the switch with the offset from before or after it reaches the skipped walls
    # of a gap and both passes of a repeat alike.
    side = draw(st.sampled_from([-TICK, timedelta(0)]))
    offset = (switch + side).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    wall = switch.replace(tzinfo=None) + offset + timedelta(minutes=draw(WALL_SHIFT))
    return after, wall.replace(second=0, microsecond=0)


@st.composite
def calendars(draw: st.DrawFn, wall: datetime | None) -> tuple[ScheduleType, str]:
    """A calendar schedule; built on `wall` when given, so DST edge cases come up often."""
    if wall is None:
        return draw(CALENDAR)
    hhmm = f"{wall:%H:%M}"
    return draw(st.sampled_from([
        (ScheduleType.DAILY, hhmm),
        (ScheduleType.WEEKLY, f"{wall.isoweekday()} {hhmm}"),
        (ScheduleType.MONTHLY, f"{wall.day} {hhmm}"),
        (ScheduleType.CRON, f"{wall.minute} {wall.hour} * * *"),
        (ScheduleType.CRON, f"{wall.minute} * * * *"),
        (ScheduleType.CRON, f"*/{draw(st.sampled_from([5, 15, 30]))} * * * *"),
        (ScheduleType.CRON, f"{wall.minute} {wall.hour} {wall.day} * *"),
    ]))


def number_list(low: int, high: int) -> st.SearchStrategy[str]:
    return st.lists(st.integers(low, high), min_size=1, max_size=4, unique=True).map(
        lambda values: ",".join(map(str, values)))


def cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), st.integers(2, 20).map(lambda step: f"*/{step}"),
                     number_list(low, high),
                     st.tuples(st.integers(low, high), st.integers(low, high)).map(
                         lambda p: f"{min(p)}-{max(p)}"))


# Built once: constructing strategies costs more than drawing from them.
CLOCK = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02}:{t[1]:02}")
CRON = st.tuples(cron_field(0, 59), cron_field(0, 23),
                 st.one_of(st.just("*"), number_list(1, 28)),
                 st.one_of(st.just("*"), number_list(1, 12)),
                 st.one_of(st.just("*"), number_list(0, 7))).map(" ".join)
CALENDAR = st.one_of(
    CLOCK.map(lambda c: (ScheduleType.DAILY, c)),
    st.tuples(number_list(1, 7), CLOCK).map(lambda p: (ScheduleType.WEEKLY, f"{p[0]} {p[1]}")),
    st.tuples(number_list(1, 31), CLOCK).map(lambda p: (ScheduleType.MONTHLY, f"{p[0]} {p[1]}")),
    CRON.map(lambda e: (ScheduleType.CRON, e)),
)
YEARS = st.integers(2005, 2035)
DATETIMES = st.datetimes(datetime(1995, 1, 1), datetime(2045, 1, 1))
# Often within the hour either side of a switch, where the passes and the gap are.
JIGGLE = st.one_of(st.integers(-6 * 3600, 6 * 3600), st.integers(-3600, 0),
                   st.integers(0, 3600))
WALL_SHIFT = st.integers(-90, 150)
INTERVALS = st.sampled_from([1, 59, 60, 300, 3600, 5400, 86400, 90061])
ANCHOR_SHIFT = st.integers(-10**6, 10**7)


@st.composite
def interval_cases(draw: st.DrawFn) -> tuple[ScheduleSpec, datetime]:
    """An anchored interval schedule in any zone, and a question to ask it."""
    zone = draw(st.sampled_from(ZONES))
    after, _ = draw(questions(zone))
    anchor = after - timedelta(seconds=draw(ANCHOR_SHIFT))
    return ScheduleSpec(ScheduleType.INTERVAL, str(draw(INTERVALS)), zone, anchor=anchor), after


@st.composite
def cases(draw: st.DrawFn) -> tuple[ScheduleSpec, datetime]:
    """A schedule of any type in any zone, and a question to ask it."""
    if draw(st.integers(0, 4)) == 0:
        return draw(interval_cases())
    zone = draw(st.sampled_from(ZONES))
    after, wall = draw(questions(zone))
    schedule_type, expression = draw(calendars(wall))
    return ScheduleSpec(schedule_type, expression, zone), after


@SETTINGS
@given(cases())
def test_the_next_slot_is_strictly_after_the_question(case: tuple[ScheduleSpec, datetime]) -> None:
    spec, after = case
    slot = next_fire(spec, after)
    assert slot is not None and slot > after and slot.tzinfo is UTC


@SETTINGS
@given(cases())
def test_the_next_slot_matches_the_schedule(case: tuple[ScheduleSpec, datetime]) -> None:
    spec, after = case
    slot = next_fire(spec, after)
    assert slot is not None and matches(spec, slot)


@SETTINGS
@given(cases())
def test_iterating_never_repeats_or_goes_back(case: tuple[ScheduleSpec, datetime]) -> None:
    spec, after = case
    slots = list(islice(iter_fires(spec, after), 30))
    assert all(a < b for a, b in zip([after, *slots], slots, strict=False))


@SETTINGS
@given(cases())
def test_no_slot_is_skipped_between_the_question_and_the_answer(
        case: tuple[ScheduleSpec, datetime]) -> None:
    spec, after = case
    slot = next_fire(spec, after)
    assert slot is not None
    if spec.schedule_type is ScheduleType.INTERVAL:
        return  # interval slots are not on minute boundaries; the grid test covers them
    minute = after.replace(second=0, microsecond=0) + MINUTE
    while minute < min(slot, after + timedelta(hours=3)):
        assert not matches(spec, minute), minute
        minute += MINUTE


@SETTINGS
@given(cases())
def test_asking_just_before_a_slot_gives_that_slot(case: tuple[ScheduleSpec, datetime]) -> None:
    spec, after = case
    slot = next_fire(spec, after)
    assert slot is not None and next_fire(spec, slot - TICK) == slot


@st.composite
def fixed_time_cases(draw: st.DrawFn) -> tuple[ScheduleSpec, datetime, str]:
    """A daily, weekly or monthly schedule, a question, and its HH:MM."""
    zone = draw(st.sampled_from(ZONES))
    after, wall = draw(questions(zone))
    hhmm = draw(CLOCK) if wall is None else f"{wall:%H:%M}"
    expression = draw(st.sampled_from([
        (ScheduleType.DAILY, hhmm), (ScheduleType.WEEKLY, f"1-7 {hhmm}"),
        (ScheduleType.MONTHLY, f"1-31 {hhmm}")]))
    return ScheduleSpec(expression[0], expression[1], zone), after, hhmm


@SETTINGS
@given(fixed_time_cases())
def test_fixed_time_slots_keep_their_wall_time_unless_it_fell_in_a_gap(
        case: tuple[ScheduleSpec, datetime, str]) -> None:
    spec, after, hhmm = case
    for slot in islice(iter_fires(spec, after), 5):
        local = slot.astimezone(spec.zone)
        assert local.fold == 0  # a repeated wall time fires at its first occurrence only
        assert f"{local:%H:%M}" == hhmm or _ends_a_gap_that_swallowed(slot, spec.timezone, hhmm)


def _ends_a_gap_that_swallowed(slot: datetime, zone: str, hhmm: str) -> bool:
    """True if a spring-forward gap ends at `slot` and skipped a wall time hhmm."""
    before = (slot - TICK).astimezone(ZoneInfo(zone)).utcoffset()
    after = slot.astimezone(ZoneInfo(zone)).utcoffset()
    if before is None or after is None or before >= after:
        return False
    start, end = slot.replace(tzinfo=None) + before, slot.replace(tzinfo=None) + after
    hour, minute = map(int, hhmm.split(":"))
    wanted = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if wanted < start:
        wanted += timedelta(days=1)
    return wanted < end


@SETTINGS
@given(interval_cases())
def test_interval_slots_sit_on_the_anchor_grid(case: tuple[ScheduleSpec, datetime]) -> None:
    spec, after = case
    assert spec.anchor is not None
    step = timedelta(seconds=int(spec.expression))
    for slot in islice(iter_fires(spec, after), 5):
        assert (slot - spec.anchor) % step == timedelta(0) and slot > spec.anchor


@st.composite
def switch_cases(draw: st.DrawFn) -> tuple[ScheduleSpec, datetime, frozenset[int],
                                           frozenset[int]]:
    """A schedule with a fixed or wildcard hour around one DST switch, with its minutes and
    hours spelled out for the brute-force oracle."""
    zone = draw(st.sampled_from(ZONES[1:]))
    near = transitions(zone, draw(YEARS))
    switch = draw(st.sampled_from(near)) if near else datetime(2024, 1, 1, tzinfo=UTC)
    offset = (switch - TICK).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    wall = switch.replace(tzinfo=None) + offset + timedelta(minutes=draw(st.integers(-60, 90)))
    minute, hour = wall.minute, wall.hour
    step = draw(st.sampled_from([5, 15, 30]))
    choices = [
        (ScheduleType.DAILY, f"{hour:02}:{minute:02}", {minute}, {hour}),
        (ScheduleType.CRON, f"{minute} {hour} * * *", {minute}, {hour}),
        (ScheduleType.CRON, f"{minute} {hour},{(hour + 1) % 24} * * *", {minute},
         {hour, (hour + 1) % 24}),
        (ScheduleType.CRON, f"{minute} * * * *", {minute}, set(range(24))),
        (ScheduleType.CRON, f"*/{step} * * * *", set(range(0, 60, step)), set(range(24))),
    ]
    kind, expression, minutes, hours = draw(st.sampled_from(choices))
    return (ScheduleSpec(kind, expression, zone), switch, frozenset(minutes), frozenset(hours))


def oracle(spec: ScheduleSpec, start: datetime, end: datetime, minutes: frozenset[int],
           hours: frozenset[int]) -> list[datetime]:
    """Every UTC minute in (start, end] that the DST rules make a slot, found by brute force."""
    both_passes = spec.expression.split()[1:2] == ["*"]
    slots = []
    moment = start.replace(second=0, microsecond=0) + MINUTE
    while moment <= end:
        local = moment.astimezone(spec.zone)
        wanted = local.minute in minutes and local.hour in hours
        if (wanted and (both_passes or local.fold == 0)) or _gap_swallowed(moment, spec,
                                                                            minutes, hours):
            slots.append(moment)
        moment += MINUTE
    return slots


def _gap_swallowed(moment: datetime, spec: ScheduleSpec, minutes: frozenset[int],
                   hours: frozenset[int]) -> bool:
    before = (moment - TICK).astimezone(spec.zone).utcoffset()
    after = moment.astimezone(spec.zone).utcoffset()
    if before is None or after is None or before >= after:
        return False
    skipped = moment.replace(tzinfo=None) + before
    while skipped < moment.replace(tzinfo=None) + after:
        if skipped.minute in minutes and skipped.hour in hours:
            return True
        skipped += MINUTE
    return False


@settings(max_examples=150, deadline=None)
@given(switch_cases())
def test_around_a_dst_switch_the_slots_are_exactly_what_the_dst_rules_allow(
        case: tuple[ScheduleSpec, datetime, frozenset[int], frozenset[int]]) -> None:
    spec, switch, minutes, hours = case
    start, end = switch - timedelta(hours=3), switch + timedelta(hours=3)
    assert slots_between(spec, start, end) == oracle(spec, start, end, minutes, hours)
