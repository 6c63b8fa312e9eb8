"""`apflow tasks ...`: define, inspect, change and run tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import click

from apflow.cli import views
from apflow.cli.backend import Backend
from apflow.cli.context import call, format_option, session, state
from apflow.cli.errors import EXIT_FAILURE, CliError
from apflow.cli.output import View, emit
from apflow.cli.params import KEY_VALUE, drop_none, pairs_to_dict
from apflow.cli.scheduled import scheduled
from apflow.cli.task_options import task_field_options, task_params
from apflow.domain.enums import TaskStatus

WAIT_POLL_SECONDS = 0.2
FINISHED_OK = "succeeded"
UNFINISHED = ("queued", "running")


@click.group()
def tasks() -> None:
    """Define, inspect, change and run tasks."""


tasks.add_command(scheduled)


@tasks.command()
@task_field_options(create=True)
@format_option
@click.pass_context
def create(ctx: click.Context, /, **given: Any) -> None:
    """Create a task; prints it (its id first)."""
    emit(ctx, call(ctx, "tasks.create", task_params(given)), views.task_detail)


@tasks.command()
@click.argument("task_id")
@task_field_options(create=False)
@format_option
@click.pass_context
def update(ctx: click.Context, /, task_id: str, **given: Any) -> None:
    """Change the given fields of a task; the others stay as they are."""
    params = task_params(given)
    if not params:
        raise click.UsageError("nothing to update: give at least one field flag")
    emit(ctx, call(ctx, "tasks.update", {"task_id": task_id, **params}), views.task_detail)


@tasks.command()
@click.argument("task_id")
@format_option
@click.pass_context
def get(ctx: click.Context, task_id: str) -> None:
    """Show one task."""
    emit(ctx, call(ctx, "tasks.get", {"task_id": task_id}), views.task_detail)


@tasks.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in TaskStatus]), default=None)
@click.option("--user-id", default=None, help="Only this user's tasks.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@format_option
@click.pass_context
def list_tasks(ctx: click.Context, status: str | None, user_id: str | None, limit: int,
               offset: int) -> None:
    """List tasks, oldest first."""
    params = {"status": status, "user_id": user_id, "limit": limit, "offset": offset}
    emit(ctx, call(ctx, "tasks.list", drop_none(params)), views.task_list)


@tasks.command()
@click.argument("task_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@format_option
@click.pass_context
def delete(ctx: click.Context, task_id: str, yes: bool) -> None:
    """Delete a task and its subtasks (their run history is kept)."""
    if not yes:
        click.confirm(f"Delete task {task_id} and its subtasks?", abort=True, err=True)
    emit(ctx, call(ctx, "tasks.delete", {"task_id": task_id}), deleted_view(task_id))


@tasks.command()
@click.argument("task_id")
@format_option
@click.pass_context
def tree(ctx: click.Context, task_id: str) -> None:
    """Show a task and its subtasks as a tree."""
    emit(ctx, call(ctx, "tasks.tree", {"task_id": task_id}), views.tree)


@tasks.command()
@click.argument("task_id")
@format_option
@click.pass_context
def pause(ctx: click.Context, task_id: str) -> None:
    """Stop firing a task's schedule (due slots are ledgered as paused)."""
    emit(ctx, call(ctx, "tasks.pause", {"task_id": task_id}), views.task_detail)


@tasks.command()
@click.argument("task_id")
@format_option
@click.pass_context
def resume(ctx: click.Context, task_id: str) -> None:
    """Fire a paused task's schedule again."""
    emit(ctx, call(ctx, "tasks.resume", {"task_id": task_id}), views.task_detail)


@tasks.command()
@click.argument("task_id")
@click.option("--var", "variables", type=KEY_VALUE, multiple=True,
              help="Variable of this run, KEY=VALUE (repeatable); reaches the run's env.")
@click.option("--wait", is_flag=True,
              help="Wait for the run to finish; exit 1 unless it succeeded.")
@format_option
@click.pass_context
def run(ctx: click.Context, task_id: str, variables: tuple[tuple[str, str], ...],
        wait: bool) -> None:
    """Run a task now (under its overlap policy); prints the run."""
    params: dict[str, Any] = {"task_id": task_id}
    if variables:
        params["variables"] = pairs_to_dict(variables)
    if not wait:
        emit(ctx, call(ctx, "tasks.run", params), views.run_detail)
        return

    async def run_and_wait(backend: Backend) -> Any:
        queued = await backend.call("tasks.run", params)
        return await wait_for_run(backend, run_id_of(queued))

    # Without an API, this process is the node that executes the run.
    outcome = session(ctx, run_and_wait, engine=state(ctx).remote_url() is None)
    emit(ctx, outcome, views.run_detail)
    if outcome.get("state") != FINISHED_OK:
        reason = outcome.get("error") or outcome.get("end_reason") or ""
        raise CliError(f"run {outcome.get('id')} {outcome.get('state')}"
                       + (f": {reason}" if reason else ""), EXIT_FAILURE)


@tasks.command()
@click.argument("task_id")
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="How many coming slots to skip.")
@click.option("--reason", default=None, help="Recorded in the ledger with your user id.")
@format_option
@click.pass_context
def skip(ctx: click.Context, task_id: str, count: int, reason: str | None) -> None:
    """Skip the next COUNT slots of a task's schedule (ledgered as skipped)."""
    params = drop_none({"task_id": task_id, "count": count, "reason": reason})
    emit(ctx, call(ctx, "tasks.skip", params), views.task_detail)


@tasks.command()
@click.argument("task_id")
@click.option("--outcome", default=None, help="Only this outcome (fired, missed, ...).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@format_option
@click.pass_context
def occurrences(ctx: click.Context, task_id: str, outcome: str | None, limit: int) -> None:
    """The ledger of a task: every due slot and what became of it, newest first."""
    params = drop_none({"task_id": task_id, "outcome": outcome, "limit": limit})
    emit(ctx, call(ctx, "tasks.occurrences.list", params), views.occurrence_list)


async def wait_for_run(backend: Backend, run_id: str) -> Mapping[str, Any]:
    """Poll the run until it has finished."""
    while True:
        current: Mapping[str, Any] = await backend.call("tasks.runs.get", {"run_id": run_id})
        if current.get("state") not in UNFINISHED:
            return current
        await asyncio.sleep(WAIT_POLL_SECONDS)


def run_id_of(result: Any) -> str:
    """The id of the run tasks.run answered with."""
    if isinstance(result, Mapping):
        run_id = result.get("id") or result.get("run_id")
        if isinstance(run_id, str):
            return run_id
    raise CliError(f"tasks.run answered without a run id: {result!r}")


def deleted_view(task_id: str) -> View:
    """What `tasks delete` prints in table mode."""
    def render(result: Any) -> str:
        return f"deleted {task_id}"
    return render
