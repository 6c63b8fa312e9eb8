"""Which tasks an external cron can trigger through the webhook, and with which line.

An external cron only knows "fire at these minutes": it cannot stop after max_runs or at
schedule_end_at, has no year (a once schedule would repeat every year), and fires on whole
minutes, so an interval must line up with cron's minute and hour grid in the task's zone.
The webhook applies everything else (overlap policy, retries) inside apflow.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.schedules import ScheduleSpec, cron_line
from apflow.schedules.durations import format_duration
from apflow.schedules.rules import IntervalRule, OnceRule

TRIGGER_PATH = "/webhook/trigger/"


def task_cron_line(task: Task) -> str:
    """The task's schedule as a 5-field cron line in its zone, or InvalidParams saying why."""
    if task.schedule_type is None or task.schedule_expression is None:
        raise InvalidParams("the task has no schedule", field="schedule_type")
    if not task.api_trigger:
        raise InvalidParams("is false, so the webhook would refuse every call",
                            field="api_trigger")
    spec = ScheduleSpec(task.schedule_type, task.schedule_expression, task.timezone,
                        start_at=task.schedule_start_at, anchor=task.schedule_anchor_at)
    if task.max_runs is not None:
        raise InvalidParams("cron cannot stop after a number of runs", field="max_runs")
    if task.schedule_end_at is not None:
        raise InvalidParams("cron cannot stop at an end date", field="schedule_end_at")
    line = cron_line(spec)
    if line is None:
        raise _inexact(spec)
    return line


def _inexact(spec: ScheduleSpec) -> InvalidParams:
    rule = spec.rule
    if isinstance(rule, OnceRule):
        return InvalidParams("once cannot be expressed as a cron line (cron has no year: "
                             "it would fire every year)", field="schedule_type")
    if isinstance(rule, IntervalRule):
        return _inexact_interval(spec, rule.seconds)
    return InvalidParams(f"{spec.expression!r} cannot be expressed as a cron line: cron "
                         "dialects disagree on a stepped day field combined with the other "
                         "day field (Vixie cron ANDs them, Kubernetes ORs them)",
                         field="schedule_expression")


def _inexact_interval(spec: ScheduleSpec, seconds: int) -> InvalidParams:
    name = "interval" if spec.expression.isdigit() else f"@every {format_duration(seconds)} ="
    what = f"{name} {seconds} s cannot be expressed as a cron line"
    anchor = spec.start_at or spec.anchor
    if seconds % 60:
        why = "cron fires on whole minutes"
    elif anchor is None:
        why = "it has no fixed slots until the schedule is initialised"
    elif anchor.second or anchor.microsecond:
        why = f"its slots fall at {anchor.second} s past the minute"
    else:
        why = ("cron steps restart every hour or day, so the period must divide an hour or "
               f"a day, and {spec.timezone}'s UTC offset changes must not break the grid")
    return InvalidParams(f"{what} ({why})", field="schedule_type")


def trigger_url(base: str, task_id: str, field: str = "webhook_url") -> str:
    """`<base>/webhook/trigger/<task id>`; InvalidParams unless `base` is an http(s) URL."""
    parts = urlsplit(base) if isinstance(base, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParams("must be the http(s) base URL of the apflow server", field=field)
    if parts.query or parts.fragment or parts.username is not None:
        raise InvalidParams("must not carry credentials, a query or a fragment", field=field)
    return base.rstrip("/") + TRIGGER_PATH + quote(task_id, safe="")
