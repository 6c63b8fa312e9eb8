"""`apflow runs ...`: run history, one run's record, its logs, and cancelling."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import click

from apflow.cli import views
from apflow.cli.backend import Backend
from apflow.cli.context import call, format_option, session, state
from apflow.cli.output import emit, to_json_line
from apflow.cli.params import drop_none
from apflow.domain.enums import RunState

FOLLOW_POLL_SECONDS = 0.5


@click.group()
def runs() -> None:
    """Run history, logs and cancelling."""


@runs.command(name="list")
@click.option("--task-id", default=None, help="Only this task's runs.")
@click.option("--state", "run_state", type=click.Choice([s.value for s in RunState]),
              default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@format_option
@click.pass_context
def list_runs(ctx: click.Context, task_id: str | None, run_state: str | None,
              limit: int) -> None:
    """Runs, newest first."""
    params = drop_none({"task_id": task_id, "state": run_state, "limit": limit})
    emit(ctx, call(ctx, "tasks.runs.list", params), views.run_list)


@runs.command()
@click.argument("run_id")
@format_option
@click.pass_context
def show(ctx: click.Context, run_id: str) -> None:
    """One run: trigger, state, times, exit code, error."""
    emit(ctx, call(ctx, "tasks.runs.get", {"run_id": run_id}), views.run_detail)


@runs.command()
@click.argument("run_id")
@format_option
@click.pass_context
def cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a run: a queued one at once, a running one is stopped (no retry)."""
    emit(ctx, call(ctx, "tasks.runs.cancel", {"run_id": run_id}), views.run_detail)


@runs.command()
@click.argument("run_id")
@click.option("--follow", is_flag=True, help="Keep printing until the run has finished.")
@format_option
@click.pass_context
def logs(ctx: click.Context, run_id: str, follow: bool) -> None:
    """A run's output (stdout and stderr interleaved, secrets masked)."""
    as_json = state(ctx).format == "json"

    def show_chunks(chunks: list[Mapping[str, Any]]) -> None:
        for chunk in chunks:
            if as_json:
                click.echo(to_json_line(chunk))
            else:
                click.echo(str(chunk.get("text", "")), nl=False)

    async def read(backend: Backend) -> None:
        after, finished = -1, False
        while True:
            page = await backend.call("tasks.runs.logs", {"run_id": run_id, "after_seq": after})
            chunks = views.items(page, "chunks")
            show_chunks(chunks)
            if chunks:
                after = int(chunks[-1].get("seq", after))
                continue
            if not follow or finished:
                return
            # Once finished, one more read gets what was flushed just before the end.
            finished = await run_finished(backend, run_id)
            if not finished:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    session(ctx, read)


async def run_finished(backend: Backend, run_id: str) -> bool:
    """Whether the run has ended (its logs are complete once it has)."""
    current = await backend.call("tasks.runs.get", {"run_id": run_id})
    return isinstance(current, Mapping) and current.get("state") not in ("queued", "running")
