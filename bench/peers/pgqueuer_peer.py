"""pgqueuer: no-op jobs enqueued (or delayed with `execute_after`), one QueueManager."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
from _common import Recorder, due_instants, parse, report
from pgqueuer import AsyncpgDriver, Queries, QueueManager
from pgqueuer.models import Job
from pgqueuer.types import QueueExecutionMode

ARGS = parse()
RECORDER = Recorder(ARGS.count)
BATCH = 1_000


async def main() -> None:
    conn = await asyncpg.connect(ARGS.dsn)
    driver = AsyncpgDriver(conn)
    queries = Queries(driver)
    await queries.install()
    manager = QueueManager(queries)

    @manager.entrypoint("noop")
    async def noop(job: Job) -> None:
        RECORDER.hit(float(job.payload or b"0"))

    if ARGS.workload == "throughput":
        payload = repr(time.time()).encode()
        for start in range(0, ARGS.count, BATCH):
            n = min(BATCH, ARGS.count - start)
            await queries.enqueue(["noop"] * n, [payload] * n, [0] * n)
        began = time.time()
        await manager.run(mode=QueueExecutionMode.drain, max_concurrent_tasks=ARGS.concurrency)
        report(ARGS, RECORDER, began)
        return
    instants = due_instants(ARGS)
    now = time.time()
    await queries.enqueue(["noop"] * ARGS.count, [repr(d).encode() for d in instants],
                          [0] * ARGS.count, [timedelta(seconds=d - now) for d in instants])
    runner = asyncio.create_task(manager.run(max_concurrent_tasks=max(ARGS.concurrency, 20)))
    try:
        await RECORDER.wait(ARGS.spread + 60)
    finally:
        manager.shutdown.set()
        await runner
    report(ARGS, RECORDER)


if __name__ == "__main__":
    asyncio.run(main())
