"""apflow (this repository): `once` tasks through the engine, run by .venv/bin/python."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import Recorder, due_instants, parse, report

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apflow.clock import SystemClock
from apflow.engine.engine import Engine
from apflow.engine.settings import EngineSettings
from apflow.executors.base import RunContext
from apflow.runtime import run as run_node_loop
from apflow.runtime import tune_garbage_collector
from apflow.store import open_store
from bench.engine import bench_registry, create_tasks

ARGS = parse()
RECORDER = Recorder(ARGS.count)


async def noop(ctx: RunContext) -> None:
    """The no-op Python executor, recording when its body ran against the run's slot."""
    RECORDER.hit(ctx.run.scheduled_for.timestamp())


async def main() -> None:
    store = open_store(ARGS.dsn)
    await store.open()
    try:
        if ARGS.workload == "throughput":
            due = SystemClock().now()
            await create_tasks(store, lambda i: due, ARGS.count)
        else:
            instants = due_instants(ARGS)
            await create_tasks(store, lambda i: datetime.fromtimestamp(instants[i], UTC),
                               ARGS.count)
        settings = EngineSettings(max_concurrent=ARGS.concurrency)
        engine = Engine(store, SystemClock(), bench_registry(noop), settings, "bench")
        began = time.time()
        await engine.start()
        tune_garbage_collector()  # as `apflow serve` and `apflow scheduler start` do
        try:
            await RECORDER.wait(ARGS.spread + 120)
        finally:
            await engine.stop()
    finally:
        await store.close()
    report(ARGS, RECORDER, began, concurrency=ARGS.concurrency)


if __name__ == "__main__":
    run_node_loop(main())  # as `apflow serve` and `apflow scheduler start` run
