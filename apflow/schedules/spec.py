"""ScheduleSpec: one schedule as the engine and the API hand it over, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from apflow.domain.enums import ScheduleType
from apflow.domain.errors import InvalidParams
from apflow.schedules.checks import whole_number
from apflow.schedules.parse import parse_rule, parse_schedule_type
from apflow.schedules.rules import Rule
from apflow.schedules.timezones import as_utc, validate_timezone


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule: type, expression, time zone, and the window it may fire in.

    Building one validates it (InvalidParams naming the field); `rule` and `zone` are the
    compiled expression and the loaded time zone.
    """

    schedule_type: ScheduleType
    expression: str
    timezone: str = "UTC"
    start_at: datetime | None = None  # schedule_start_at: slots are strictly after it
    end_at: datetime | None = None  # schedule_end_at: a slot equal to it still fires
    max_runs: int | None = None
    anchor: datetime | None = None  # interval/@every anchor when start_at is not set
    rule: Rule = field(init=False, repr=False, compare=False)
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schedule_type = parse_schedule_type(self.schedule_type)
        object.__setattr__(self, "schedule_type", schedule_type)
        object.__setattr__(self, "zone", validate_timezone(self.timezone))
        object.__setattr__(self, "rule", parse_rule(schedule_type, self.expression))
        self._check_window()

    def _check_window(self) -> None:
        for name, value in (("schedule_start_at", self.start_at),
                            ("schedule_end_at", self.end_at), ("anchor", self.anchor)):
            if value is not None:
                as_utc(value, name)
        if self.max_runs is not None:
            whole_number(self.max_runs, "max_runs")
        if self.start_at is not None and self.end_at is not None \
                and self.end_at < self.start_at:
            raise InvalidParams("must not be before schedule_start_at", field="schedule_end_at")


def validate(schedule_type: str, expression: str, timezone: str) -> ScheduleSpec:
    """A checked ScheduleSpec (expression stripped), or InvalidParams naming the bad field."""
    checked_type = parse_schedule_type(schedule_type)
    validate_timezone(timezone)
    text = expression.strip() if isinstance(expression, str) else expression
    return ScheduleSpec(schedule_type=checked_type, expression=text, timezone=timezone)
