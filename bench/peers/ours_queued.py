"""apflow (this repository): on-demand runs queued before the engine starts, like the
queues' jobs (`tasks.run` on tasks without a schedule); throughput only."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from _common import Recorder, parse, report

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apflow.clock import SystemClock
from apflow.domain.enums import Trigger
from apflow.domain.models import Task
from apflow.engine.engine import Engine
from apflow.engine.settings import EngineSettings
from apflow.executors.base import RunContext
from apflow.runtime import run as run_node_loop
from apflow.runtime import tune_garbage_collector
from apflow.store import open_store
from bench.engine import NOOP, bench_registry

ARGS = parse()
RECORDER = Recorder(ARGS.count)
BATCH = 200  # triggers in flight at once while queueing


async def noop(ctx: RunContext) -> None:
    """The no-op Python executor, recording when its body ran against the run's queueing."""
    RECORDER.hit(ctx.run.queued_at.timestamp())


async def main() -> None:
    if ARGS.workload != "throughput":
        raise SystemExit("ours_queued measures throughput only")
    store = open_store(ARGS.dsn)
    await store.open()
    try:
        now = SystemClock().now()
        ids = [f"t{i:05d}" for i in range(ARGS.count)]
        for start in range(0, len(ids), BATCH):
            await asyncio.gather(*(store.create_task(Task(
                id=task_id, name=task_id, created_at=now, updated_at=now, executor=NOOP))
                for task_id in ids[start:start + BATCH]))
        settings = EngineSettings(max_concurrent=ARGS.concurrency)
        engine = Engine(store, SystemClock(), bench_registry(noop), settings, "bench")
        for start in range(0, len(ids), BATCH):  # the engine's tasks.run, before it starts
            await asyncio.gather(*(engine.trigger(task_id, Trigger.MANUAL)
                                   for task_id in ids[start:start + BATCH]))
        began = time.time()
        await engine.start()
        tune_garbage_collector()  # as `apflow serve` and `apflow scheduler start` do
        try:
            await RECORDER.wait(120)
        finally:
            await engine.stop()
    finally:
        await store.close()
    report(ARGS, RECORDER, began, concurrency=ARGS.concurrency)


if __name__ == "__main__":
    run_node_loop(main())  # as `apflow serve` and `apflow scheduler start` run
