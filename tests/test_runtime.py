"""The node's event loop and garbage collector settings (apflow/runtime.py)."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys

import pytest
import uvloop

from apflow.runtime import (
    EVENT_LOOP_VARIABLE,
    GC_THRESHOLDS,
    event_loop_policy,
    run,
    tune_garbage_collector,
)


def _in_a_node_process(code: str) -> str:
    """What `code` prints, run in a child Python with the node's default event loop."""
    env = {k: v for k, v in os.environ.items() if k != EVENT_LOOP_VARIABLE}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, env=env)
    return done.stdout.strip()


def test_a_node_runs_on_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_LOOP_VARIABLE, raising=False)
    assert isinstance(event_loop_policy(), uvloop.EventLoopPolicy)
    for declined in ("asyncio", " ASYNCIO "):
        monkeypatch.setenv(EVENT_LOOP_VARIABLE, declined)
        assert type(event_loop_policy()) is asyncio.DefaultEventLoopPolicy


def test_run_answers_with_the_coroutines_result_on_the_chosen_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def kind() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    monkeypatch.delenv(EVENT_LOOP_VARIABLE, raising=False)
    assert run(kind()).startswith("uvloop")
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "asyncio")
    assert run(kind()).startswith("asyncio")


def test_a_node_runs_subprocesses_on_uvloop() -> None:
    # The command executor's spawning, on the loop `apflow serve` runs on (in a child
    # process: this test process keeps its own loop).
    code = ("import asyncio\n"
            "from apflow.runtime import run\n"
            "async def main():\n"
            "    proc = await asyncio.create_subprocess_exec('/bin/sh', '-c', 'echo hi; exit 3',"
            " stdout=asyncio.subprocess.PIPE, start_new_session=True)\n"
            "    out, _ = await proc.communicate()\n"
            "    return out.decode().strip(), proc.returncode, "
            "type(asyncio.get_running_loop()).__module__\n"
            "print(run(main()))\n")
    assert _in_a_node_process(code) == "('hi', 3, 'uvloop')"


def test_tuning_the_collector_sets_its_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_run_claimed_ahead_never_starts_before_its_instant_on_uvloop() -> None:
    # uvloop's timers keep whole milliseconds and may fire up to one early.
    code = ("from datetime import timedelta\n"
            "from apflow.clock import SystemClock\n"
            "from apflow.engine.waiting import sleep_until\n"
            "from apflow.runtime import run\n"
            "async def main():\n"
            "    clock = SystemClock()\n"
            "    early = []\n"
            "    for i in range(200):\n"
            "        target = clock.now() + timedelta(microseconds=300 + 37 * i)\n"
            "        await sleep_until(clock, target)\n"
            "        early.append(clock.now() < target)\n"
            "    return sum(early)\n"
            "print(run(main()))\n")
    assert _in_a_node_process(code) == "0"
