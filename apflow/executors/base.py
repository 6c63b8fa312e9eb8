"""The executor interface: the dispatcher starts an Execution and waits for its result.

The dispatcher owns timeouts, cancels, retries and recording; an executor only runs one
thing, streams its output to the run's LogSink, and can be stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from apflow.domain.enums import RunState
from apflow.domain.models import Run, Task


class LogSink(Protocol):
    """Where an execution writes its output; the sink masks and caps it."""

    async def write(self, stream: str, data: bytes | str) -> None:
        """Append output of `stream` ("stdout", "stderr" or "system")."""
        ...


@dataclass(frozen=True)
class RunContext:
    """What an executor needs to run one attempt of a task."""

    run: Run
    task: Task
    env: Mapping[str, str]  # task env + run variables + APFLOW_* (already merged, APFLOW_* win)
    log: LogSink
    graceful_stop_seconds: float = 5.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> Mapping[str, Any]:
        """The task's inputs (a Python executor's arguments)."""
        return self.task.inputs


@dataclass(frozen=True)
class ExecutionResult:
    """How an execution ended, as far as the executor can tell."""

    state: RunState  # SUCCEEDED or FAILED (the dispatcher decides timed_out/cancelled)
    exit_code: int | None = None
    error: str | None = None  # short; the dispatcher masks it before storing
    result: Any = None


class Execution(Protocol):
    """A started run."""

    async def wait(self) -> ExecutionResult:
        """Wait until it ends on its own."""
        ...

    async def stop(self, grace_seconds: float) -> None:
        """Ask it to stop (SIGTERM to the whole process group), force it after the grace
        period (SIGKILL); return when nothing of it is left running."""
        ...


class Executor(Protocol):
    """One kind of work: command, http, docker, python."""

    type_name: str

    def validate(self, spec: Mapping[str, Any]) -> None:
        """Raise InvalidParams naming the field (e.g. "executor.command") if spec is bad."""
        ...

    async def start(self, spec: Mapping[str, Any], ctx: RunContext) -> Execution:
        """Start the work; failures to start raise ExecutorError with a short message."""
        ...
