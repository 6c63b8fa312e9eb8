"""`apflow scheduler ...`: run this machine as a node without the HTTP API, and watch it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from apflow.cli import daemon, views
from apflow.cli.backend import Backend
from apflow.cli.context import (
    call,
    format_option,
    log_level,
    session,
    state,
    verbose_option,
)
from apflow.cli.errors import EXIT_BAD_INPUT, CliError
from apflow.cli.logsetup import configure_logging
from apflow.cli.output import emit
from apflow.cli.params import drop_none
from apflow.cli.task_options import SCHEDULE_TYPES
from apflow.config import Config
from apflow.domain.enums import CatchUp, OnOverlap, ScheduleType, TaskStatus
from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.runtime import run as run_node_loop

if TYPE_CHECKING:
    from apflow.engine.engine import Engine

# The seed's `scheduler list --status running` reads as "in progress".
STATUS_ALIASES = {"running": TaskStatus.IN_PROGRESS.value}


@click.group()
def scheduler() -> None:
    """Run the scheduler and dispatcher loops here; list schedules; node status."""


@scheduler.command()
@click.option("--poll-interval", type=click.FloatRange(0, min_open=True), default=None,
              help="Longest sleep between looks at the database (scheduler.poll_interval).")
@click.option("--max-concurrent", type=click.IntRange(1), default=None,
              help="Runs executing at once on this node (scheduler.max_concurrent).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
              help="Timeout of tasks without timeout_seconds (scheduler.timeout).")
@click.option("--user-id", default=None, help="Only fire and run this user's tasks.")
@click.option("--background", is_flag=True, help="Detach; print the PID and return.")
@click.option("--pid-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              hidden=True)
@verbose_option
@click.pass_context
def start(ctx: click.Context, poll_interval: float | None, max_concurrent: int | None,
          timeout: float | None, user_id: str | None, background: bool,
          pid_file: Path | None) -> None:
    """Fire due schedules and execute runs until SIGINT/SIGTERM (then drain and exit 0)."""
    # Imported here: the engine and executors load only for the commands that run them.
    from apflow.cli.engine_host import run_node, with_scheduler_overrides

    st = state(ctx)
    if st.api_url:
        raise click.UsageError("scheduler start works on database_url; it takes no --api-url")
    overrides = {"poll_interval": poll_interval, "max_concurrent": max_concurrent,
                 "timeout": timeout, "user_id": user_id}
    config = with_scheduler_overrides(st.config(), **overrides)
    if background:
        args = child_args(config, overrides, verbose=st.verbose)
        pid = daemon.start_detached(args, daemon.pid_file(config), daemon.log_file(config))
        click.echo(pid)
        return
    configure_logging(log_level(ctx, logging.INFO))
    try:
        run_node_loop(run_node(config, announce(pid_file)))
    finally:
        if pid_file is not None:
            daemon.remove_pid_file(pid_file)


@scheduler.command()
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=60.0,
              show_default=True, help="Seconds to wait for the drain.")
@click.pass_context
def stop(ctx: click.Context, timeout: float) -> None:
    """Stop the scheduler started with --background (SIGTERM; waits for the drain)."""
    pid = daemon.stop_detached(daemon.pid_file(state(ctx).config()), timeout)
    click.echo(f"stopped {pid}")


@scheduler.command(name="list")
@click.option("--status", type=click.Choice([*(s.value for s in TaskStatus), *STATUS_ALIASES]),
              default=None, help="Only tasks in this status (running = in_progress).")
@click.option("--type", "schedule_type", type=SCHEDULE_TYPES, default=None,
              help="Only this schedule type.")
@click.option("--all", "include_disabled", is_flag=True, help="Include disabled schedules.")
@click.option("--user-id", default=None, help="Only this user's tasks.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@format_option
@click.pass_context
def list_scheduled(ctx: click.Context, status: str | None, schedule_type: str | None,
                   include_disabled: bool, user_id: str | None, limit: int) -> None:
    """Scheduled tasks (enabled ones unless --all), oldest first."""
    params = drop_none({
        "status": STATUS_ALIASES.get(status or "", status), "schedule_type": schedule_type,
        "enabled_only": not include_disabled, "user_id": user_id, "limit": limit})
    emit(ctx, call(ctx, "tasks.scheduled.list", params), views.scheduled_list)


@scheduler.command(name="status")
@format_option
@click.pass_context
def status_command(ctx: click.Context) -> None:
    """Nodes, their heartbeats and load; runs by state; the next due slot."""
    emit(ctx, call(ctx, "scheduler.status", {}), views.status)


def child_args(config: Config, overrides: dict[str, Any], *, verbose: bool) -> list[str]:
    """The command line of the detached `scheduler start` that --background launches."""
    args = ["--config", str(config.path.resolve())] if config.path is not None else []
    if verbose:
        args.append("--verbose")
    args += ["scheduler", "start"]
    for key, value in overrides.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def announce(pid_file: Path | None) -> Callable[[Engine], None]:
    """What to do once the engine runs: say so, and write the pid file if detached."""
    def ready(engine: Engine) -> None:
        if pid_file is not None:
            daemon.write_pid_file(pid_file)
        logging.getLogger(__name__).info(
            "scheduler running; SIGINT or SIGTERM drains and stops it",
            extra={"action": "scheduler_ready", "node": engine.node_id})
    return ready


# exports ------------------------------------------------------------------------------------

output_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write to this file (default: stdout).")
url_base_option = click.option(
    "--webhook-url-base", default=None, metavar="URL",
    help="Base URL of the apflow server the entries call (default: --api-url, else "
         "http://api.host:api.port).")
LIST_PAGE = 1000


@scheduler.command(name="feed-token")
@click.option("--user-id", default=None, help="Another user's token (admins only).")
@click.option("--revoke", is_flag=True, help="Revoke the token instead of issuing one.")
@format_option
@click.pass_context
def feed_token(ctx: click.Context, user_id: str | None, revoke: bool) -> None:
    """Issue (or --revoke) the calendar feed token: subscribe to /scheduler/ical?token=...
    in a calendar app. A new token replaces the previous one."""
    method = "tasks.scheduled.feed-token.revoke" if revoke else "tasks.scheduled.feed-token"
    emit(ctx, call(ctx, method, drop_none({"user_id": user_id})), views.status)


@scheduler.command(name="export-ical")
@output_option
@click.option("--user-id", default=None, help="Another user's tasks (admins only).")
@click.option("--name", "calendar_name", default=None, help="Calendar name (default apflow).")
@click.option("--all", "include_disabled", is_flag=True, help="Include paused schedules.")
@click.option("--horizon-days", type=click.IntRange(1, 3660), default=None,
              help="Days of slots to list (default 30).")
@click.pass_context
def export_ical(ctx: click.Context, output: Path | None, user_id: str | None,
                calendar_name: str | None, include_disabled: bool,
                horizon_days: int | None) -> None:
    """Scheduled tasks as an iCalendar (.ics) file (tasks.scheduled.export-ical)."""
    params = drop_none({"user_id": user_id, "calendar_name": calendar_name,
                        "enabled_only": not include_disabled, "horizon_days": horizon_days})
    result = call(ctx, "tasks.scheduled.export-ical", params)
    write_output(output, str(result["content"]), f"{result['count']} task(s)")


@scheduler.command(name="export-crontab")
@url_base_option
@output_option
@click.option("--user-id", default=None, help="Only this user's tasks (admins).")
@click.option("--env-file", default=None, metavar="PATH",
              help="File each entry sources for the secret (keep it mode 0600).")
@click.option("--skip-unexportable", is_flag=True,
              help="Write tasks cron cannot express as comments instead of failing.")
@click.pass_context
def export_crontab_command(ctx: click.Context, webhook_url_base: str | None,
                           output: Path | None, user_id: str | None, env_file: str | None,
                           skip_unexportable: bool) -> None:
    """Enabled schedules as crontab entries calling the signed webhook (exit 2 if one
    cannot be expressed, naming the field, unless --skip-unexportable)."""
    from apflow.gateway.cron_export import task_cron_line
    from apflow.gateway.crontab import export_crontab

    base = url_base(ctx, webhook_url_base)
    tasks = [task_from_view(view) for view in scheduled_views(ctx, user_id)]
    for task in tasks:
        try:
            task_cron_line(task)
        except InvalidParams as error:
            message = f"task {task.id} ({task.name}): {error.message}"
            if not skip_unexportable:
                raise CliError(message, EXIT_BAD_INPUT) from None
            click.echo(f"warning: skipped {message}", err=True)
    text = export_crontab(tasks, webhook_url_base=base, env_file=env_file)
    write_output(output, text, f"{len(tasks)} task(s)")


@scheduler.command(name="export-k8s")
@click.argument("task_id")
@url_base_option
@click.option("--namespace", default="default", show_default=True)
@click.option("--secret-name", default="apflow-webhook", show_default=True,
              help="Kubernetes Secret holding the signing secret (key: secret).")
@click.option("--image", default=None, help="Image with sh and curl "
              "(default curlimages/curl).")
@output_option
@click.pass_context
def export_k8s(ctx: click.Context, task_id: str, webhook_url_base: str | None,
               namespace: str, secret_name: str, image: str | None,
               output: Path | None) -> None:
    """A Kubernetes CronJob manifest triggering TASK_ID through the signed webhook (exit 2
    if cron cannot express its schedule, naming the field)."""
    from apflow.gateway.k8s import kubernetes_cronjob

    base = url_base(ctx, webhook_url_base)
    task = task_from_view(call(ctx, "tasks.get", {"task_id": task_id}))
    extra = {} if image is None else {"image": image}
    text = kubernetes_cronjob(task, webhook_url=base, namespace=namespace,
                              secret_name=secret_name, **extra)
    write_output(output, text, f"task {task.id}")


def url_base(ctx: click.Context, given: str | None) -> str:
    """--webhook-url-base, else the API the CLI talks to, else the configured listener."""
    if given:
        return given
    st = state(ctx)
    remote = st.remote_url()
    if remote:
        return remote
    api = st.config().api
    host = f"[{api.host}]" if ":" in api.host else api.host
    return f"http://{host}:{api.port}"


def scheduled_views(ctx: click.Context, user_id: str | None) -> list[dict[str, Any]]:
    """Every enabled scheduled task the caller sees, page by page over one backend."""
    async def fetch(backend: Backend) -> list[dict[str, Any]]:
        views: list[dict[str, Any]] = []
        while True:
            page = await backend.call("tasks.scheduled.list", drop_none({
                "user_id": user_id, "limit": LIST_PAGE, "offset": len(views)}))
            views.extend(page["tasks"])
            if not page["tasks"] or len(views) >= page["total"]:
                return views
    return session(ctx, fetch)


def write_output(output: Path | None, text: str, what: str) -> None:
    """The text, byte for byte, to the file or stdout; a one-line note when a file."""
    data = text.encode("utf-8")
    if output is None:
        click.echo(data, nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {what} to {output}", err=True)


def task_from_view(view: Mapping[str, Any]) -> Task:
    """The fields the exporters read, from a task's API JSON. The API does not return an
    interval's anchor; its next slot lies on the same grid, so it anchors the export."""
    def instant(key: str) -> datetime | None:
        value = view.get(key)
        return None if value is None else datetime.fromisoformat(str(value))

    created = instant("created_at")
    updated = instant("updated_at")
    if created is None or updated is None:
        raise CliError("the API returned a task without created_at/updated_at")
    schedule_type = view.get("schedule_type")
    return Task(
        id=str(view["id"]), name=str(view.get("name") or ""), created_at=created,
        updated_at=updated, description=str(view.get("description") or ""),
        user_id=view.get("user_id"),
        schedule_type=None if schedule_type is None else ScheduleType(schedule_type),
        schedule_expression=view.get("schedule_expression"),
        timezone=str(view.get("timezone") or "UTC"),
        schedule_enabled=bool(view.get("schedule_enabled")),
        schedule_start_at=instant("schedule_start_at"),
        schedule_end_at=instant("schedule_end_at"),
        schedule_anchor_at=instant("next_run_at"),
        max_runs=view.get("max_runs"), run_count=int(view.get("run_count") or 0),
        next_run_at=instant("next_run_at"), last_run_at=instant("last_run_at"),
        catch_up=CatchUp(view.get("catch_up") or CatchUp.LATEST.value),
        on_overlap=OnOverlap(view.get("on_overlap") or OnOverlap.QUEUE.value),
        api_trigger=bool(view.get("api_trigger", True)),
        timeout_seconds=view.get("timeout_seconds"),
    )
