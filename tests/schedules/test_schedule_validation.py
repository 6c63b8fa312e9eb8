"""validate(): every bad input is refused with InvalidParams naming the field and the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from apflow.domain.enums import ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules import (
    ScheduleSpec,
    iter_fires,
    jitter_offset,
    matches,
    next_fire,
    preview,
    slots_between,
    validate,
    validate_timezone,
)

NAIVE = datetime(2024, 1, 1, 9, 0)
AWARE = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def refusal(schedule_type: str, expression: str, timezone: str = "UTC") -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        validate(schedule_type, expression, timezone)
    return caught.value


def test_valid_input_gives_a_spec_with_the_enum_type_and_stripped_expression() -> None:
    spec = validate("daily", "  09:00 ", "Europe/Berlin")
    assert spec == ScheduleSpec(ScheduleType.DAILY, "09:00", "Europe/Berlin")
    assert spec.schedule_type is ScheduleType.DAILY


def test_unknown_schedule_type_lists_the_six_types() -> None:
    error = refusal("hourly", "09:00")
    assert error.field == "schedule_type"
    assert error.message == (
        "schedule_type: must be one of once, interval, cron, daily, weekly, monthly")


def test_unknown_timezone_is_named() -> None:
    error = refusal("daily", "09:00", "Mars/Base")
    assert error.field == "timezone"
    assert error.message == "timezone: unknown time zone 'Mars/Base'"


@pytest.mark.parametrize("name", ["", "../../etc/passwd", "/etc/localtime", "localtime",
                                  "Europe/Berlin\x00", "x" * 100])
def test_timezone_names_that_are_not_iana_zones_are_refused(name: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        validate_timezone(name)
    assert caught.value.field == "timezone"


def test_validate_timezone_returns_the_zone() -> None:
    assert str(validate_timezone("Asia/Kolkata")) == "Asia/Kolkata"


@pytest.mark.parametrize(("schedule_type", "expression", "message"), [
    ("daily", "25:00", "hour 25 is out of range 0-23"),
    ("daily", "09:60", "minute 60 is out of range 0-59"),
    ("daily", "9am", "expected a time as HH:MM (24-hour clock), got '9am'"),
    ("daily", "09:00:00", "expected a time as HH:MM (24-hour clock), got '09:00:00'"),
    ("daily", "9:5", "expected a time as HH:MM (24-hour clock), got '9:5'"),
    ("weekly", "8 09:00", "weekday 8 is out of range 1-7"),
    ("weekly", "0 09:00", "weekday 0 is out of range 1-7"),
    ("weekly", "5-1 09:00", "weekday range 5-1 is reversed"),
    ("weekly", "mon 09:00", "expected weekdays as numbers 1-7 separated by commas"),
    ("weekly", "1,3,5", "a weekly schedule is days and a time, e.g. '1,3,5 09:00'"),
    ("weekly", "1,3,5 24:00", "hour 24 is out of range 0-23"),
    ("monthly", "32 09:00", "day 32 is out of range 1-31"),
    ("monthly", "0 09:00", "day 0 is out of range 1-31"),
    ("monthly", "1,,15 09:00", "expected days as numbers 1-31"),
    ("monthly", "15", "a monthly schedule is days and a time"),
    ("cron", "0 25 * * *", "hour 25 is out of range 0-23"),
    ("cron", "60 * * * *", "minute 60 is out of range 0-59"),
    ("cron", "0 9 32 * *", "day-of-month 32 is out of range 1-31"),
    ("cron", "0 9 0 * *", "day-of-month 0 is out of range 1-31"),
    ("cron", "0 9 * 13 *", "month 13 is out of range 1-12"),
    ("cron", "0 9 * * 8", "day-of-week 8 is out of range 0-7"),
    ("cron", "0 9 * * 5-1", "day-of-week range 5-1 is reversed"),
    ("cron", "*/0 * * * *", "step '0' must be a whole number of at least 1"),
    ("cron", "0 9 * * mon#2", "L, W, #, H and R are not supported"),
    ("cron", "0 9 L * *", "L, W, #, H and R are not supported"),
    ("cron", "H 9 * * *", "L, W, #, H and R are not supported"),
    ("cron", "0 9 * * funday", "'funday' is not a number or a name (sun-sat)"),
    ("cron", "0,,5 9 * * *", "minute field '0,,5' has an empty list item"),
    ("cron", "? 9 * * *", "'?' is only allowed in day-of-month and day-of-week"),
    ("cron", "0 9 * *", "expected 5 cron fields (minute hour day-of-month month "
                        "day-of-week), got 4"),
    ("cron", "0 0 9 * * *", "6 fields given: a seconds field is not supported"),
    ("cron", "0 0 9 * * * 2024", "7 fields given: seconds and year fields are not supported"),
    ("cron", "@reboot", "unknown macro '@reboot'"),
    ("cron", "@every 1.5h", "'@every 1.5h': expected a duration such as 90s"),
    ("cron", "@every 30m1h", "expected a duration"),
    ("cron", "@every 0s", "the interval must be at least 1 second"),
    ("cron", "0 0 30 2 *", "never fires"),
    ("cron", "0 0 31 4,6,9,11 *", "never fires"),
    ("interval", "0", "the interval must be at least 1 second"),
    ("interval", "-5", "an interval is whole seconds, e.g. 3600; got '-5'"),
    ("interval", "1.5", "an interval is whole seconds"),
    ("interval", "1h", "use cron '@every 1h30m'"),
    ("interval", "999999999999", "the interval must be at most 315360000 seconds"),
    ("once", "2024-01-15T09:00:00", "a once schedule needs a UTC offset"),
    ("once", "2024-01-15", "a once schedule needs a UTC offset"),
    ("once", "tomorrow", "'tomorrow' is not an ISO 8601 date-time"),
    ("once", "2024-02-30T09:00:00Z", "is not an ISO 8601 date-time"),
])
def test_bad_expressions_are_refused_naming_the_expression_field(
        schedule_type: str, expression: str, message: str) -> None:
    error = refusal(schedule_type, expression)
    assert error.field == "schedule_expression"
    assert error.message.startswith("schedule_expression: ")
    assert message in error.message


def test_out_of_range_messages_read_exactly_as_documented() -> None:
    assert refusal("cron", "0 25 * * *").message == (
        "schedule_expression: hour 25 is out of range 0-23")


@pytest.mark.parametrize("schedule_type", [t.value for t in ScheduleType])
@pytest.mark.parametrize(("expression", "message"), [
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("09:00\x00", "contains a NUL byte"),
    ("0" * 257, "longer than 256 characters"),
    ("\uff10\uff19:\uff10\uff10", "may contain only printable ASCII characters"),
    ("09:00\n* * * * *", "may contain only printable ASCII characters"),
])
def test_empty_oversized_and_binary_expressions_are_refused_for_every_type(
        schedule_type: str, expression: str, message: str) -> None:
    error = refusal(schedule_type, expression)
    assert error.field == "schedule_expression"
    assert message in error.message


@pytest.mark.parametrize("garbage", ["garbage", "* * * * * * * *", "@", "--", "1-", "*/"])
def test_garbage_cron_is_refused(garbage: str) -> None:
    assert refusal("cron", garbage).field == "schedule_expression"


def test_an_expression_of_exactly_256_characters_is_accepted() -> None:
    expression = "0  9 * * " + ",".join(["1"] * 124)
    assert len(expression) == 256
    assert validate("cron", expression, "UTC").expression == expression


def test_building_a_spec_directly_validates_it_too() -> None:
    with pytest.raises(InvalidParams) as caught:
        ScheduleSpec(ScheduleType.CRON, "0 25 * * *")
    assert caught.value.field == "schedule_expression"


@pytest.mark.parametrize(("field", "kwargs"), [
    ("schedule_start_at", {"start_at": NAIVE}),
    ("schedule_end_at", {"end_at": NAIVE}),
    ("anchor", {"anchor": NAIVE}),
])
def test_naive_window_datetimes_are_refused(field: str, kwargs: dict[str, datetime]) -> None:
    with pytest.raises(InvalidParams) as caught:
        ScheduleSpec(ScheduleType.DAILY, "09:00", **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert "naive datetime" in caught.value.message


def test_end_before_start_is_refused() -> None:
    with pytest.raises(InvalidParams) as caught:
        ScheduleSpec(ScheduleType.DAILY, "09:00", start_at=AWARE,
                     end_at=datetime(2023, 1, 1, tzinfo=UTC))
    assert caught.value.field == "schedule_end_at"


@pytest.mark.parametrize("max_runs", [-1, True, 1.5])
def test_max_runs_must_be_a_whole_number_of_zero_or_more(max_runs: object) -> None:
    with pytest.raises(InvalidParams) as caught:
        ScheduleSpec(ScheduleType.DAILY, "09:00", max_runs=max_runs)  # type: ignore[arg-type]
    assert caught.value.field == "max_runs"


SPEC = ScheduleSpec(ScheduleType.DAILY, "09:00")


@pytest.mark.parametrize(("field", "call"), [
    ("after", lambda: next_fire(SPEC, NAIVE)),
    ("after", lambda: list(iter_fires(SPEC, NAIVE))),
    ("after", lambda: slots_between(SPEC, NAIVE, AWARE)),
    ("until", lambda: slots_between(SPEC, AWARE, NAIVE)),
    ("instant", lambda: matches(SPEC, NAIVE)),
    ("slot", lambda: jitter_offset("t1", NAIVE, 10)),
    ("from_time", lambda: preview(SPEC, NAIVE, 3)),
])
def test_naive_datetimes_are_refused_naming_the_argument(
        field: str, call: Callable[[], object]) -> None:
    with pytest.raises(InvalidParams) as caught:
        call()
    assert caught.value.field == field
    assert caught.value.message == f"{field}: naive datetime; an offset is required"


def test_negative_run_count_is_refused() -> None:
    with pytest.raises(InvalidParams) as caught:
        next_fire(ScheduleSpec(ScheduleType.DAILY, "09:00"), AWARE, run_count=-1)
    assert caught.value.field == "run_count"
