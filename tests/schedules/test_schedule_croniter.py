"""croniter, the design's cron library, as an oracle: we agree with it where it is right
and differ, on purpose, where it is wrong (see docs/schedules.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apflow.domain.enums import ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules import ScheduleSpec, iter_fires, next_fire

NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def croniter_fires(expression: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    walker = croniter(expression, after.astimezone(zone))
    return [walker.get_next(datetime).astimezone(UTC) for _ in range(count)]


def test_raw_croniter_fires_a_fixed_time_job_twice_on_a_fall_back_night_and_we_fire_once() -> None:
    after = utc(2024, 11, 2, 12)
    theirs = croniter_fires("30 1 * * *", NEW_YORK, after, 2)
    ours = [slot for slot, _ in zip(
        iter_fires(ScheduleSpec(ScheduleType.CRON, "30 1 * * *", "America/New_York"), after),
        range(2), strict=False)]
    assert theirs == [utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6, 30)]  # 01:30 EDT and EST
    assert ours == [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]


def test_raw_croniter_reads_an_equal_range_as_the_whole_field_and_we_as_one_value() -> None:
    after = utc(2024, 1, 1)
    assert croniter_fires("5-5 * * * *", ZoneInfo("UTC"), after, 1) == [utc(2024, 1, 1, 0, 1)]
    spec = ScheduleSpec(ScheduleType.CRON, "5-5 * * * *")
    assert next_fire(spec, after) == utc(2024, 1, 1, 0, 5)


def test_croniter_ors_a_stepped_star_day_field_where_vixie_cron_and_we_and_it() -> None:
    after = utc(2024, 1, 1)
    assert croniter_fires("0 0 */2 * 1", ZoneInfo("UTC"), after, 2) == [
        utc(2024, 1, 3), utc(2024, 1, 5)]  # odd days, or Mondays
    spec = ScheduleSpec(ScheduleType.CRON, "0 0 */2 * 1")
    assert next_fire(spec, after) == utc(2024, 1, 15)  # odd days that are Mondays


def _values(low: int, high: int) -> st.SearchStrategy[str]:
    single = st.integers(low, high).map(str)
    span = st.tuples(st.integers(low, high), st.integers(low, high)).filter(
        lambda pair: pair[0] < pair[1]).map(lambda pair: f"{pair[0]}-{pair[1]}")
    return st.lists(st.one_of(single, span), min_size=1, max_size=3).map(",".join)


def _free_field(low: int, high: int) -> st.SearchStrategy[str]:
    steps = st.integers(2, max(2, (high - low) // 2)).map(lambda step: f"*/{step}")
    return st.one_of(st.just("*"), steps, _values(low, high))


def _day_pair() -> st.SearchStrategy[tuple[str, str]]:
    # Day fields where croniter and Vixie read the OR rule alike: '*' or value lists. (They
    # part ways on '*/2' with a weekday: Vixie ANDs, croniter ORs.)
    return st.one_of(
        st.tuples(st.just("*"), st.just("*")),
        st.tuples(_values(1, 31), st.just("*")),
        st.tuples(st.just("*"), _values(0, 7)),
        st.tuples(_values(1, 31), _values(0, 7)),
    )


@st.composite
def _expressions(draw: st.DrawFn) -> str:
    minute = draw(_free_field(0, 59))
    hour = draw(_free_field(0, 23))
    dom, dow = draw(_day_pair())
    month = draw(st.one_of(st.just("*"), _values(1, 12)))
    return f"{minute} {hour} {dom} {month} {dow}"


@settings(max_examples=100, deadline=None)
@given(expression=_expressions(),
       after=st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1)),
       zone=st.sampled_from(["UTC", "Asia/Kolkata", "Asia/Tokyo"]))
def test_we_agree_with_croniter_wherever_no_dst_change_is_involved(
        expression: str, after: datetime, zone: str) -> None:
    start = after.replace(tzinfo=UTC)
    try:
        spec = ScheduleSpec(ScheduleType.CRON, expression, zone)
    except InvalidParams:  # e.g. 31 February: never fires, and croniter would search forever
        assume(False)
        raise
    ours = [slot for slot, _ in zip(iter_fires(spec, start), range(3), strict=False)]
    assert ours == croniter_fires(expression, ZoneInfo(zone), start, 3)
