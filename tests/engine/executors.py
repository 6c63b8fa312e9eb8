"""The executor registry the engine tests use: the real one, plus a few Python executors."""

from __future__ import annotations

import asyncio
from typing import Any

from apflow.executors.base import RunContext
from apflow.executors.registry import ExecutorRegistry, default_registry


async def raise_env(ctx: RunContext) -> Any:
    """Fails with the value of the environment variable named by inputs["key"]."""
    key = str(ctx.task.inputs.get("key", "MISSING"))
    raise RuntimeError(f"cannot use {ctx.env[key]}") if key in ctx.env else KeyError(key)


async def hang(ctx: RunContext) -> Any:
    """Never returns on its own."""
    await asyncio.Event().wait()


async def noop(ctx: RunContext) -> Any:
    """Does nothing, at once."""
    return None


def engine_registry() -> ExecutorRegistry:
    registry = default_registry()
    python = registry.get("python")
    for name, function in (("raise_env", raise_env), ("hang", hang), ("noop", noop)):
        python.register(name, function)  # type: ignore[attr-defined]
    return registry
