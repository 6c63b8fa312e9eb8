"""The writable task fields of DESIGN.md section 3: each with its check and whether null is allowed.

`read_fields` turns the params of tasks.create / tasks.update into typed values, refusing a
wrong type or value with the field named. Cross-field rules (a schedule that parses, start
before end, parents and dependencies that exist) are checked by the task use cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apflow.domain.enums import CatchUp, OnOverlap, RetryBackoff, ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules import MAX_EXPRESSION_LENGTH
from apflow.service.params import (
    MAX_NAME_LENGTH,
    Params,
    check_bool,
    check_enum,
    check_id,
    check_id_list,
    check_instant,
    check_int,
    check_json,
    check_number,
    check_object,
    check_string_map,
    check_text,
)

Check = Callable[[object, str], Any]
ONE_DAY = 86_400
MAX_INPUTS_CHARS = 1_000_000
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class FieldRule:
    """How one writable field is checked."""

    check: Check
    nullable: bool


def _name(value: object, field: str) -> str:
    return check_text(value, field, max_length=MAX_NAME_LENGTH, allow_empty=False,
                      single_line=True).strip()


def _description(value: object, field: str) -> str:
    return check_text(value, field)


def _expression(value: object, field: str) -> str:
    return check_text(value, field, max_length=MAX_EXPRESSION_LENGTH, allow_empty=False,
                      single_line=True).strip()


def _timezone(value: object, field: str) -> str:
    return check_text(value, field, max_length=64, allow_empty=False, single_line=True)


def _int_range(lo: int, hi: int) -> Check:
    return lambda value, field: check_int(value, field, lo, hi)


def _seconds(lo: float, hi: float, *, positive: bool = False) -> Check:
    above = 0.0 if positive else None
    return lambda value, field: check_number(value, field, lo, hi, above=above)


def _enum(kind: type[Any]) -> Check:
    return lambda value, field: check_enum(value, field, kind)


def _executor(value: object, field: str) -> dict[str, Any]:
    check_json(value, field)
    return check_object(value, field)


def _inputs(value: object, field: str) -> dict[str, Any]:
    inputs = check_object(value, field)
    check_json(inputs, field)
    if len(repr(inputs)) > MAX_INPUTS_CHARS:
        raise InvalidParams(f"must be smaller than {MAX_INPUTS_CHARS} characters", field=field)
    return inputs


def _secret(value: object, field: str) -> str:
    secret = check_text(value, field, max_length=512, allow_empty=False, single_line=True)
    if len(secret) < MIN_SECRET_LENGTH:
        raise InvalidParams(f"must be at least {MIN_SECRET_LENGTH} characters", field=field)
    return secret


def _source(value: object, field: str) -> str:
    return check_text(value, field, max_length=2048, allow_empty=False, single_line=True)


FIELD_RULES: dict[str, FieldRule] = {
    "name": FieldRule(_name, False),
    "description": FieldRule(_description, False),
    "user_id": FieldRule(check_id, False),
    "parent_id": FieldRule(check_id, True),
    "dependencies": FieldRule(check_id_list, False),
    "executor": FieldRule(_executor, True),
    "inputs": FieldRule(_inputs, False),
    "schedule_type": FieldRule(_enum(ScheduleType), True),
    "schedule_expression": FieldRule(_expression, True),
    "timezone": FieldRule(_timezone, False),
    "schedule_enabled": FieldRule(check_bool, False),
    "schedule_start_at": FieldRule(check_instant, True),
    "schedule_end_at": FieldRule(check_instant, True),
    "max_runs": FieldRule(_int_range(1, 1_000_000_000), True),
    "catch_up": FieldRule(_enum(CatchUp), False),
    "max_catch_up_runs": FieldRule(_int_range(0, 10_000), False),
    "jitter_seconds": FieldRule(_int_range(0, ONE_DAY), False),
    "timeout_seconds": FieldRule(_seconds(0, 30 * ONE_DAY, positive=True), True),
    "graceful_stop_seconds": FieldRule(_seconds(0, 3600), False),
    "retry_limit": FieldRule(_int_range(0, 100), False),
    "retry_delay_seconds": FieldRule(_seconds(0, ONE_DAY), False),
    "retry_backoff": FieldRule(_enum(RetryBackoff), False),
    "max_concurrent": FieldRule(_int_range(1, 1000), False),
    "on_overlap": FieldRule(_enum(OnOverlap), False),
    "queue_max": FieldRule(_int_range(0, 100_000), False),
    "api_trigger": FieldRule(check_bool, False),
    "env": FieldRule(check_string_map, False),
    "webhook_secret": FieldRule(_secret, True),
    "exclusion_calendar": FieldRule(_source, True),
    "notify_on_failure": FieldRule(check_bool, False),
    "notify_on_success": FieldRule(check_bool, False),
    "keep_runs": FieldRule(_int_range(1, 1_000_000), True),
    "keep_for_seconds": FieldRule(_int_range(1, 100 * 365 * ONE_DAY), True),
}

READ_ONLY_FIELDS = frozenset({
    "id", "status", "result", "error", "progress", "created_at", "updated_at", "run_count",
    "last_run_at", "next_run_at",
})


def read_fields(params: Params) -> dict[str, Any]:
    """The writable fields given in `params`, checked; read-only fields are refused."""
    values: dict[str, Any] = {}
    for field, rule in FIELD_RULES.items():
        if not params.has(field):
            continue
        value = params.raw(field)
        if value is None:
            if not rule.nullable:
                raise InvalidParams("must not be null", field=field)
            values[field] = None
        else:
            values[field] = rule.check(value, field)
    for field in READ_ONLY_FIELDS:
        if params.has(field) and field != "id":
            raise InvalidParams("is read-only", field=field)
    return values
