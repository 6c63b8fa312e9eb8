"""The cron grammar: five fields (Vixie cron syntax), the @-macros and `@every <duration>`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apflow.domain.errors import InvalidParams
from apflow.schedules.durations import parse_duration
from apflow.schedules.rules import IntervalRule, Rule, WallRule, day_match

FIELD = "schedule_expression"
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun",
                "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMBER = re.compile(r"^\d+$", re.ASCII)
_FIELD_NAMES = "minute hour day-of-month month day-of-week"
# Extensions some cron dialects have and apflow does not: the message says so plainly.
_EXTENSIONS = re.compile(r"^(?:\d*[lw]|[lhr].*|.*#.*)$", re.ASCII)


@dataclass(frozen=True)
class CronField:
    """One of the five positions: its name, bounds and spelled-out names."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


MINUTE = CronField("minute", 0, 59)
HOUR = CronField("hour", 0, 23)
DAY_OF_MONTH = CronField("day-of-month", 1, 31)
MONTH = CronField("month", 1, 12, _MONTH_NAMES, 1)
DAY_OF_WEEK = CronField("day-of-week", 0, 7, _DAY_NAMES, 0)  # 0 and 7 are both Sunday
_FIELDS = (MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK)


def parse_cron(text: str) -> Rule:
    """A cron expression (five fields, a macro or `@every`) as a rule; InvalidParams if bad."""
    lowered = text.lower()
    if lowered.startswith("@every"):
        return IntervalRule(parse_duration(text[len("@every"):].strip()))
    if lowered.startswith("@"):
        return parse_fields(_expand_macro(lowered))
    return parse_fields(text)


def _expand_macro(macro: str) -> str:
    try:
        return MACROS[macro]
    except KeyError:
        raise InvalidParams(
            f"unknown macro {macro!r} (use {', '.join(MACROS)} or @every <duration>)",
            field=FIELD) from None


def parse_fields(text: str) -> WallRule:
    """Five whitespace-separated cron fields as a WallRule."""
    fields = text.split()
    _check_field_count(len(fields))
    minutes, hours, days, months, weekdays = (
        parse_field(source, spec) for source, spec in zip(fields, _FIELDS, strict=True))
    # Vixie cron: a day field written with a leading '*' (or '?') is "unrestricted", and then
    # both day fields must match; when both are written restricted, either one may.
    either = not (_starred(fields[2]) or _starred(fields[4]))
    return WallRule(minutes=minutes, hours=hours, days=days, months=months,
                    weekdays=weekdays, day_match=day_match(days, weekdays, either=either),
                    repeats=_starred(fields[1]))


def _check_field_count(count: int) -> None:
    if count == 5:
        return
    if count == 6:
        raise InvalidParams(
            f"6 fields given: a seconds field is not supported; use 5 fields ({_FIELD_NAMES})",
            field=FIELD)
    if count == 7:
        raise InvalidParams(
            "7 fields given: seconds and year fields are not supported; "
            f"use 5 fields ({_FIELD_NAMES})", field=FIELD)
    raise InvalidParams(f"expected 5 cron fields ({_FIELD_NAMES}), got {count}", field=FIELD)


def _starred(source: str) -> bool:
    return source.startswith(("*", "?"))


def parse_field(source: str, spec: CronField) -> tuple[int, ...]:
    """The sorted values of one cron field, e.g. `1-5` -> (1, 2, 3, 4, 5)."""
    values: set[int] = set()
    for item in source.split(","):
        values.update(_parse_item(item, source, spec))
    if spec is DAY_OF_WEEK:
        values = {value % 7 for value in values}
    return tuple(sorted(values))


def _parse_item(item: str, source: str, spec: CronField) -> range:
    if not item:
        raise InvalidParams(f"{spec.name} field {source!r} has an empty list item", field=FIELD)
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, source, spec) if slash else 1
    low, high = _parse_range(base, source, spec, stepped=bool(slash))
    return range(low, high + 1, step)


def _parse_step(text: str, source: str, spec: CronField) -> int:
    if not _NUMBER.match(text) or int(text) < 1:
        raise InvalidParams(
            f"{spec.name} field {source!r}: step {text!r} must be a whole number of at least 1",
            field=FIELD)
    return int(text)


def _parse_range(base: str, source: str, spec: CronField, *, stepped: bool) -> tuple[int, int]:
    if base in ("*", "?"):
        if base == "?" and spec not in (DAY_OF_MONTH, DAY_OF_WEEK):
            raise InvalidParams(f"{spec.name} field: '?' is only allowed in day-of-month "
                                "and day-of-week", field=FIELD)
        # 7 is only an alias of Sunday: '*' must not count Sunday twice in a '*/2' step.
        return spec.low, 6 if spec is DAY_OF_WEEK else spec.high
    low_text, dash, high_text = base.partition("-")
    low = _parse_value(low_text, source, spec)
    if not dash:
        # "5/15" is "5-59/15", as in Kubernetes (robfig/cron) and croniter.
        return low, spec.high if stepped else low
    high = _parse_value(high_text, source, spec)
    if low > high:
        raise InvalidParams(f"{spec.name} range {low_text}-{high_text} is reversed; "
                            "write it as two ranges", field=FIELD)
    return low, high


def _parse_value(text: str, source: str, spec: CronField) -> int:
    lowered = text.lower()
    if lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if not _NUMBER.match(text):
        raise InvalidParams(_not_a_value(text, source, spec), field=FIELD)
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise InvalidParams(f"{spec.name} {value} is out of range {spec.low}-{spec.high}",
                            field=FIELD)
    return value


def _not_a_value(text: str, source: str, spec: CronField) -> str:
    message = f"{spec.name} field {source!r}: {text!r} is not a number"
    if spec.names:
        message += f" or a name ({spec.names[0]}-{spec.names[-1]})"
    if _EXTENSIONS.match(text.lower()):
        message += "; L, W, #, H and R are not supported (standard 5-field cron)"
    return message
