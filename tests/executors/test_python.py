"""The python executor: registered functions called with the RunContext."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from apflow.domain.enums import RunState
from apflow.domain.errors import InvalidParams
from apflow.executors import executor, register_executor
from apflow.executors.base import RunContext
from apflow.executors.python import PythonExecutor
from tests.executors.conftest import collector, finish, make_ctx


@register_executor("tests.global_double")
def global_double(ctx: RunContext) -> Any:
    return {"double": ctx.inputs["n"] * 2}


async def start(executor_: PythonExecutor, name: str, ctx: RunContext | None = None) -> Any:
    return await executor_.start({"type": "python", "name": name}, ctx or make_ctx())


async def test_an_async_function_gets_the_context_and_its_result_is_recorded() -> None:
    async def add(ctx: RunContext) -> Any:
        await ctx.log.write("stdout", "adding\n")
        return ctx.task.inputs["a"] + ctx.inputs["b"] + int(ctx.env["X"])

    python = PythonExecutor()
    python.register("add", add)
    ctx = make_ctx(inputs={"a": 1, "b": 2}, env={"X": "10"})
    result = await finish(await start(python, "add", ctx))
    assert result.state is RunState.SUCCEEDED and result.result == 13
    assert collector(ctx).text == "adding\n"


async def test_a_plain_function_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    def where(ctx: RunContext) -> str:
        threads.append(threading.current_thread())
        return "done"

    python = PythonExecutor()
    python.register("where", where)
    result = await finish(await start(python, "where"))
    assert result.result == "done" and threads[0] is not threading.main_thread()


async def test_a_globally_registered_function_is_found_by_every_executor() -> None:
    result = await finish(await start(PythonExecutor(), "tests.global_double",
                                      make_ctx(inputs={"n": 21})))
    assert result.result == {"double": 42}


async def test_an_executor_s_own_function_wins_over_a_global_one() -> None:
    python = PythonExecutor()
    python.register("tests.global_double", lambda ctx: "mine")
    assert (await finish(await start(python, "tests.global_double"))).result == "mine"


def test_executor_is_an_alias_of_register_executor() -> None:
    assert executor is register_executor


async def test_an_exception_fails_the_run_with_type_and_first_line() -> None:
    async def boom(ctx: RunContext) -> Any:
        raise ValueError("bad input\nsecond line")

    python = PythonExecutor()
    python.register("boom", boom)
    ctx = make_ctx()
    result = await finish(await start(python, "boom", ctx))
    assert result.state is RunState.FAILED and result.error == "ValueError: bad input"
    stderr = collector(ctx).of("stderr")
    assert "Traceback" in stderr and "in boom" in stderr


async def test_a_long_error_is_cut_to_500_characters() -> None:
    def long(ctx: RunContext) -> Any:
        raise RuntimeError("x" * 2000)

    python = PythonExecutor()
    python.register("long", long)
    result = await finish(await start(python, "long"))
    assert result.error is not None and len(result.error) == 500


async def test_a_result_that_is_not_json_fails() -> None:
    python = PythonExecutor()
    python.register("objects", lambda ctx: object())
    result = await finish(await start(python, "objects"))
    assert result.state is RunState.FAILED
    assert (result.error or "").startswith("result is not JSON-serialisable")


async def test_stop_cancels_an_async_function() -> None:
    cancelled = asyncio.Event()

    async def hang(ctx: RunContext) -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    python = PythonExecutor()
    python.register("hang", hang)
    execution = await start(python, "hang")
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await execution.stop(1)
    assert cancelled.is_set()
    result = await finish(execution)
    assert result.state is RunState.FAILED and result.error == "stopped before it finished"


async def test_stop_returns_while_a_sync_function_keeps_its_thread() -> None:
    release = threading.Event()

    def block(ctx: RunContext) -> Any:
        release.wait(10)
        return 1

    python = PythonExecutor()
    python.register("block", block)
    execution = await start(python, "block")
    started = time.monotonic()
    async with asyncio.timeout(5):
        await execution.stop(1)
    assert time.monotonic() - started < 2
    release.set()


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "executor.name"),
    ({"name": 3}, "executor.name"),
    ({"name": "nope"}, "executor.name"),
])
def test_a_bad_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        PythonExecutor().validate({"type": "python", **spec})
    assert caught.value.field == field


def test_an_unknown_name_lists_the_registered_ones() -> None:
    python = PythonExecutor()
    python.register("mine", lambda ctx: None)
    with pytest.raises(InvalidParams) as caught:
        python.validate({"type": "python", "name": "nope"})
    assert "no Python executor named 'nope' (registered: " in str(caught.value)
    assert "mine" in str(caught.value) and "tests.global_double" in str(caught.value)
