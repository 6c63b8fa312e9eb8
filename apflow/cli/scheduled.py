"""`apflow tasks scheduled ...`: a task's schedule state, due tasks, and previews."""

from __future__ import annotations

import click

from apflow.cli import views
from apflow.cli.context import call, format_option
from apflow.cli.output import emit
from apflow.cli.params import INSTANT, drop_none
from apflow.cli.task_options import SCHEDULE_TYPES


@click.group()
def scheduled() -> None:
    """Initialise, complete and preview schedules; list due tasks."""


@scheduled.command()
@click.argument("task_id")
@click.option("--from-time", type=INSTANT, default=None,
              help="Compute the first slot strictly after this instant (default now).")
@format_option
@click.pass_context
def init(ctx: click.Context, task_id: str, from_time: str | None) -> None:
    """Set a task's next_run_at to its first slot after now (or --from-time)."""
    params = drop_none({"task_id": task_id, "from_time": from_time})
    emit(ctx, call(ctx, "tasks.scheduled.init", params), views.task_detail)


@scheduled.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@format_option
@click.pass_context
def due(ctx: click.Context, limit: int) -> None:
    """Enabled schedules whose next_run_at has come, earliest first."""
    emit(ctx, call(ctx, "tasks.scheduled.due", {"limit": limit}), views.scheduled_list)


@scheduled.command()
@click.argument("task_id")
@format_option
@click.pass_context
def complete(ctx: click.Context, task_id: str) -> None:
    """Mark the current slot done (for external schedulers) and advance next_run_at."""
    emit(ctx, call(ctx, "tasks.scheduled.complete", {"task_id": task_id}), views.task_detail)


@scheduled.command()
@click.option("--schedule-type", type=SCHEDULE_TYPES, required=True)
@click.option("--schedule-expression", required=True)
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone.")
@click.option("--count", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--from-time", type=INSTANT, default=None,
              help="Slots strictly after this instant (default now).")
@format_option
@click.pass_context
def preview(ctx: click.Context, schedule_type: str, schedule_expression: str,
            timezone: str, count: int, from_time: str | None) -> None:
    """The next COUNT slots of a schedule, without creating anything."""
    params = drop_none({"schedule_type": schedule_type,
                        "schedule_expression": schedule_expression,
                        "timezone": timezone, "count": count, "from_time": from_time})
    emit(ctx, call(ctx, "tasks.scheduled.preview", params), views.preview)
