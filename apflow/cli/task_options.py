"""The task-field flags shared by `tasks create` and `tasks update`, and the params they make."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from apflow.cli.params import COMMA_LIST, INSTANT, JSON_OBJECT, KEY_VALUE, pairs_to_dict
from apflow.domain.enums import CatchUp, OnOverlap, RetryBackoff, ScheduleType

F = TypeVar("F", bound=Callable[..., Any])


def choice(values: type[Any]) -> click.Choice[str]:
    """The values of a StrEnum as a click choice."""
    return click.Choice([member.value for member in values])


SCHEDULE_TYPES = choice(ScheduleType)

# (flags, field, type, help); every flag maps one-to-one onto a task field of DESIGN.md §3.
FIELD_OPTIONS: list[tuple[tuple[str, ...], str, Any, str]] = [
    (("--description",), "description", str, "Free text."),
    (("--inputs",), "inputs", JSON_OBJECT, "JSON object handed to the executor."),
    (("--executor",), "executor", JSON_OBJECT,
     'JSON executor, e.g. \'{"type": "http", "url": "..."}\'.'),
    (("--parent-id",), "parent_id", str, "Make it a child of this task."),
    (("--dependencies",), "dependencies", COMMA_LIST, "Task ids that must finish first."),
    (("--user-id",), "user_id", str, "Owner (admins may act for any user)."),
    (("--schedule-type",), "schedule_type", SCHEDULE_TYPES, "Schedule type."),
    (("--schedule-expression",), "schedule_expression", str,
     "e.g. 09:00 (daily), '0 9 * * 1-5' (cron), 3600 (interval)."),
    (("--timezone",), "timezone", str, "IANA zone of the schedule (default UTC)."),
    (("--schedule-start-at",), "schedule_start_at", INSTANT, "No slot at or before this."),
    (("--schedule-end-at",), "schedule_end_at", INSTANT, "No slot after this."),
    (("--max-runs",), "max_runs", int, "Stop the schedule after this many fired slots."),
    (("--catch-up",), "catch_up", choice(CatchUp), "Missed slots after downtime."),
    (("--max-catch-up-runs",), "max_catch_up_runs", int, "Cap of catch_up=all."),
    (("--jitter-seconds",), "jitter_seconds", int, "Random delay of each slot, up to this."),
    (("--timeout-seconds",), "timeout_seconds", float, "Stop a run after this long."),
    (("--graceful-stop-seconds",), "graceful_stop_seconds", float,
     "Grace between SIGTERM and SIGKILL."),
    (("--retry-limit",), "retry_limit", int, "Retries of a failed run."),
    (("--retry-delay-seconds",), "retry_delay_seconds", float, "Delay before a retry."),
    (("--retry-backoff",), "retry_backoff", choice(RetryBackoff), "How the delay grows."),
    (("--max-concurrent",), "max_concurrent", int, "Runs of this task at once."),
    (("--on-overlap",), "on_overlap", choice(OnOverlap), "When a run is still going."),
    (("--queue-max",), "queue_max", int, "Runs allowed to wait beyond max_concurrent."),
]


def task_field_options(*, create: bool) -> Callable[[F], F]:
    """Decorate a command with every task-field flag (`--name` required when creating)."""
    def decorate(command: F) -> F:
        options = [
            click.option("--name", required=create, help="Task name."),
            click.option("--command", "shell_command", default=None, metavar="CMD",
                         help='Shortcut for --executor \'{"type":"command","command":CMD}\'.'),
            *(click.option(*flags, field, type=kind, default=None, help=text)
              for flags, field, kind, text in FIELD_OPTIONS),
            click.option("--schedule-enabled/--schedule-disabled", "schedule_enabled",
                         default=None, help="Turn the schedule on or off."),
            click.option("--api-trigger/--no-api-trigger", "api_trigger", default=None,
                         help="Allow webhook and API triggers."),
            click.option("--notify-on-failure/--no-notify-on-failure", "notify_on_failure",
                         default=None, help="Notify the configured notifiers when it fails."),
            click.option("--notify-on-success/--no-notify-on-success", "notify_on_success",
                         default=None, help="Notify the configured notifiers when it succeeds."),
            click.option("--env", "env", type=KEY_VALUE, multiple=True,
                         help="Environment of each run, KEY=VALUE (repeatable)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def task_params(given: Mapping[str, Any]) -> dict[str, Any]:
    """The task fields actually given, as JSON-RPC params (None and empty flags left out)."""
    params = {key: value for key, value in given.items()
              if value is not None and key not in ("shell_command", "env")}
    command = given.get("shell_command")
    if command is not None:
        if "executor" in params:
            raise click.UsageError("give --command or --executor, not both")
        params["executor"] = {"type": "command", "command": command}
    if given.get("env"):
        params["env"] = pairs_to_dict(given["env"])
    return params
