"""One attempt of a task with an executor: start it, wait, enforce timeout and stop requests.

The executor only runs the work; everything about time limits and stopping is decided here
(executors/base.py), so every executor type is stopped the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from apflow.domain.enums import RunState
from apflow.domain.errors import ApflowError
from apflow.engine.environment import run_environment
from apflow.engine.logs import LogFactory, RunLog
from apflow.engine.runs import ActiveRun, Outcome, failed, shorten, stopped_outcome
from apflow.executors.base import Execution, ExecutionResult, RunContext
from apflow.executors.registry import ExecutorRegistry

logger = logging.getLogger(__name__)

# Extra time granted to an executor's stop() and to collecting its result afterwards;
# past it the engine records the run anyway rather than hang on a misbehaving executor.
STOP_SLACK_SECONDS = 2.0


def describe(exc: BaseException) -> str:
    """A short message for an exception raised by an executor."""
    if isinstance(exc, ApflowError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def outcome_of(result: ExecutionResult) -> Outcome:
    """Turn what the executor reported into an outcome (only succeeded or failed)."""
    if result.state is RunState.SUCCEEDED:
        return Outcome(state=RunState.SUCCEEDED, exit_code=result.exit_code,
                       result=result.result)
    error = result.error or (f"exit code {result.exit_code}" if result.exit_code is not None
                             else "failed")
    return Outcome(state=RunState.FAILED, exit_code=result.exit_code, error=shorten(error),
                   result=result.result)


class AttemptRunner:
    """Runs attempts of tasks that have an executor."""

    def __init__(self, registry: ExecutorRegistry, logs: LogFactory,
                 default_timeout: float) -> None:
        self._registry = registry
        self._logs = logs
        self._default_timeout = default_timeout

    def timeout_of(self, active: ActiveRun) -> float:
        """The task's timeout_seconds, else scheduler.timeout."""
        task = active.task
        own = task.timeout_seconds if task is not None else None
        return own if own is not None and own > 0 else self._default_timeout

    async def perform(self, active: ActiveRun) -> Outcome:
        """Run the attempt to its end; logs are flushed before this returns."""
        task = active.task
        if task is None or task.executor is None:
            return failed("nothing to run: the task has no executor")
        log = self._logs.open(active)
        try:
            outcome = await self._execute(active, task.executor, log)
        finally:
            await log.close()
        return log.mask_outcome(outcome)

    async def _execute(self, active: ActiveRun, spec: Mapping[str, Any], log: RunLog) -> Outcome:
        if active.stop_reason is not None:
            return stopped_outcome(active.stop_reason)  # stopped before it could start
        assert active.task is not None  # perform() checked it
        ctx = RunContext(run=active.run, task=active.task,
                         env=run_environment(active.task, active.run), log=log.sink,
                         graceful_stop_seconds=active.task.graceful_stop_seconds)
        try:
            executor = self._registry.get(str(spec.get("type", "")))
            execution = await executor.start(spec, ctx)
        except Exception as exc:  # a bad spec or a start failure is this run's failure
            await log.system(f"could not start: {describe(exc)}")
            return failed(describe(exc))
        return await self._supervise(active, execution, log)

    async def _supervise(self, active: ActiveRun, execution: Execution, log: RunLog) -> Outcome:
        timeout = self.timeout_of(active)
        # An execution that is one asyncio task (python) offers it as `outcome()`: watched
        # directly, it spares a wrapping task per run.
        outcome: Callable[[], asyncio.Future[ExecutionResult]] | None = getattr(
            execution, "outcome", None)
        waiter = outcome() if outcome is not None else asyncio.ensure_future(execution.wait())
        await first_of(waiter, active, timeout)
        if waiter.done():
            return self._result(waiter)
        reason = active.stop_reason
        grace = active.task.graceful_stop_seconds if active.task is not None else 5.0
        if reason is None:
            await log.system(f"timed out after {timeout:g} s; stopping (grace {grace:g} s)")
        else:
            await log.system(f"stopping ({reason}; grace {grace:g} s)")
        exit_code = await self._stop(execution, waiter, grace)
        if reason is None:
            return Outcome(state=RunState.TIMED_OUT, exit_code=exit_code, end_reason="timeout",
                           error=f"timed out after {timeout:g} s")
        return stopped_outcome(reason, exit_code)

    @staticmethod
    def _result(waiter: asyncio.Future[ExecutionResult]) -> Outcome:
        if waiter.cancelled():
            return failed("the execution was cancelled from inside the executor")
        exc = waiter.exception()
        if exc is not None:
            return failed(describe(exc))
        return outcome_of(waiter.result())

    @staticmethod
    async def _stop(execution: Execution, waiter: asyncio.Future[ExecutionResult],
                    grace: float) -> int | None:
        """SIGTERM, SIGKILL after `grace` (the executor's stop); the exit code if known."""
        try:
            async with asyncio.timeout(grace + STOP_SLACK_SECONDS):
                await execution.stop(grace)
        except Exception as exc:  # recorded below as the run's outcome; log the detail
            logger.error("executor did not stop cleanly", extra={
                "action": "run_stop_failed", "error": describe(exc)})
        return await collect_exit_code(waiter)


async def first_of(waiter: asyncio.Future[ExecutionResult], active: ActiveRun,
                   limit: float) -> None:
    """Return when the execution ends, a stop is requested, or `limit` seconds pass.

    Callbacks on one future instead of asyncio.wait over tasks: this runs once per run,
    and the burst rate depends on it staying cheap.
    """
    loop = asyncio.get_running_loop()
    wake: asyncio.Future[None] = loop.create_future()

    def ring(*_: object) -> None:
        if not wake.done():
            wake.set_result(None)

    waiter.add_done_callback(ring)
    unsubscribe = active.when_stopped(ring)
    timer = loop.call_later(limit, ring)
    try:
        await wake
    except asyncio.CancelledError:
        waiter.cancel()
        raise
    finally:
        timer.cancel()
        unsubscribe()
        waiter.remove_done_callback(ring)


async def collect_exit_code(waiter: asyncio.Future[ExecutionResult]) -> int | None:
    """The exit code of a stopped execution, if it reports one soon; never raises."""
    try:
        async with asyncio.timeout(STOP_SLACK_SECONDS):
            result = await asyncio.shield(waiter)
        return result.exit_code
    except asyncio.CancelledError:
        if own_cancellation():
            raise
        return None  # an executor that stops by cancelling its own work
    except Exception:  # no result is an answer too: the run was stopped
        waiter.cancel()
        return None


def own_cancellation() -> bool:
    """True if the current task itself is being cancelled (not just something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
