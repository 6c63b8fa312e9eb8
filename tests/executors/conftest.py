"""Executor tests: a log collector standing in for the run's sink, and a RunContext builder."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from apflow.domain.enums import RunState, Trigger
from apflow.domain.models import Run, Task
from apflow.executors.base import Execution, ExecutionResult, RunContext

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Collector:
    """A LogSink that keeps what it is given, in order of arrival."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []

    async def write(self, stream: str, data: bytes | str) -> None:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        self.writes.append((stream, text))

    def of(self, stream: str) -> str:
        return "".join(text for s, text in self.writes if s == stream)

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.writes)


def make_ctx(*, env: Mapping[str, str] | None = None, inputs: Mapping[str, Any] | None = None,
             run_id: str = "run0001", task_id: str = "task0001",
             grace: float = 5.0) -> RunContext:
    task = Task(id=task_id, name="t", created_at=NOW, updated_at=NOW, inputs=inputs or {})
    run = Run(id=run_id, task_id=task_id, trigger=Trigger.MANUAL, state=RunState.RUNNING,
              queued_at=NOW, not_before=NOW)
    return RunContext(run=run, task=task, env=dict(env or {}), log=Collector(),
                      graceful_stop_seconds=grace)


def collector(ctx: RunContext) -> Collector:
    assert isinstance(ctx.log, Collector)
    return ctx.log


async def finish(execution: Execution, seconds: float = 20) -> ExecutionResult:
    """The execution's result, bounded in time."""
    async with asyncio.timeout(seconds):
        return await execution.wait()


@pytest.fixture
def ctx() -> RunContext:
    return make_ctx()
