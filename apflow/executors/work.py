"""Waiting on an executor's own asyncio task (http, python), which stop() cancels."""

from __future__ import annotations

import asyncio

from apflow.domain.enums import RunState
from apflow.executors.base import ExecutionResult

STOPPED = "stopped before it finished"


async def result_of(work: asyncio.Task[ExecutionResult]) -> ExecutionResult:
    """The task's result; FAILED "stopped ..." if stop() cancelled it.

    A cancellation of the caller itself is passed on, never mistaken for a stop.
    """
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if work.cancelled() and (current is None or current.cancelling() == 0):
            return ExecutionResult(state=RunState.FAILED, error=STOPPED)
        raise


async def cancel(work: asyncio.Task[ExecutionResult]) -> None:
    """Cancel the task and wait until it has ended."""
    work.cancel()
    await asyncio.wait({work})
