"""The "python" executor: calls a registered function with the run's context.

A function takes one argument, the RunContext (its inputs are `ctx.inputs`, the same as
`ctx.task.inputs`; its environment is `ctx.env`; `ctx.log.write(...)` writes to the run's
log), and returns a JSON-serialisable result. `async def` functions run as a task on the
event loop; plain functions run in a worker thread (asyncio.to_thread).

Stopping cancels the task. A thread cannot be killed in Python: a plain function that is
stopped keeps running until it returns on its own (its result is then ignored), although
the run is recorded as stopped at once. Long-running work that must stop should be async.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from apflow.domain.enums import RunState
from apflow.domain.errors import InvalidParams
from apflow.executors.base import ExecutionResult, RunContext
from apflow.executors.specs import field_name, required_str
from apflow.executors.work import cancel, result_of

PythonFunction = Callable[[RunContext], Any]
MAX_ERROR_CHARS = 500

_GLOBAL_FUNCTIONS: dict[str, PythonFunction] = {}


def register_executor(name: str) -> Callable[[PythonFunction], PythonFunction]:
    """Decorator: make `fn` runnable as `{"type": "python", "name": name}` in every registry."""
    def decorate(fn: PythonFunction) -> PythonFunction:
        _GLOBAL_FUNCTIONS[name] = fn
        return fn
    return decorate


def error_of(exc: BaseException) -> str:
    """`ExcType: first line of the message`, at most MAX_ERROR_CHARS characters."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return message[:MAX_ERROR_CHARS]


_PLAIN_JSON = frozenset({str, int, float, bool, type(None)})  # json.dumps takes them all


def json_result(value: Any) -> ExecutionResult:
    """SUCCEEDED with `value`, or FAILED if it cannot be stored as JSON."""
    if type(value) in _PLAIN_JSON:
        return ExecutionResult(state=RunState.SUCCEEDED, result=value)  # nothing to check
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        return ExecutionResult(state=RunState.FAILED,
                               error=f"result is not JSON-serialisable: {error_of(exc)}")
    return ExecutionResult(state=RunState.SUCCEEDED, result=value)


async def call(fn: PythonFunction, ctx: RunContext) -> Any:
    """Run `fn(ctx)`: a coroutine function on the loop, anything else in a thread."""
    if inspect.iscoroutinefunction(fn):
        return await fn(ctx)
    value = await asyncio.to_thread(fn, ctx)
    if inspect.isawaitable(value):  # e.g. a functools.partial of an async function
        return await value
    return value


class PythonExecution:
    """One call of a registered function."""

    def __init__(self, fn: PythonFunction, ctx: RunContext) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[ExecutionResult] = asyncio.create_task(self._run(fn))

    async def _run(self, fn: PythonFunction) -> ExecutionResult:
        try:
            value = await call(fn, self._ctx)
        except Exception as exc:  # the function's failure is the run's failure
            trace = "".join(traceback.format_exception(exc))
            await self._ctx.log.write("stderr", trace)
            return ExecutionResult(state=RunState.FAILED, error=error_of(exc))
        return json_result(value)

    async def wait(self) -> ExecutionResult:
        return await result_of(self._task)

    def outcome(self) -> asyncio.Future[ExecutionResult]:
        """The call itself, for the engine to watch without a task of its own (one run, one
        task fewer); cancelled if stop() cancelled it."""
        return self._task

    async def stop(self, grace_seconds: float) -> None:
        """Cancel the call (a function running in a thread finishes on its own later)."""
        await cancel(self._task)


class PythonExecutor:
    """Runs functions registered here (`register`) or globally (`@register_executor`)."""

    type_name = "python"

    def __init__(self) -> None:
        self._functions: dict[str, PythonFunction] = {}

    def register(self, name: str, fn: PythonFunction) -> None:
        """Make `fn` runnable under `name` by this executor only."""
        self._functions[name] = fn

    def lookup(self, name: str) -> PythonFunction | None:
        """This executor's function `name`, else the global one."""
        return self._functions.get(name) or _GLOBAL_FUNCTIONS.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({*self._functions, *_GLOBAL_FUNCTIONS}))

    def validate(self, spec: Mapping[str, Any]) -> None:
        name = required_str(spec, "name")
        if self.lookup(name) is None:
            known = ", ".join(self.names) or "none"
            raise InvalidParams(f"no Python executor named '{name}' (registered: {known})",
                                field=field_name("name"))

    async def start(self, spec: Mapping[str, Any], ctx: RunContext) -> PythonExecution:
        fn = self.lookup(required_str(spec, "name"))
        if fn is None:
            self.validate(spec)  # raises, naming what is registered
        assert fn is not None
        return PythonExecution(fn, ctx)
