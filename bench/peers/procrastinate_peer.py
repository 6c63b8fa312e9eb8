"""procrastinate: no-op tasks deferred (or scheduled with `schedule_at`), one async worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import procrastinate
from _common import Recorder, due_instants, parse, report

ARGS = parse()
RECORDER = Recorder(ARGS.count)
APP = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=ARGS.dsn))


@APP.task(name="noop")
async def noop(due: float) -> None:
    RECORDER.hit(due)


async def main() -> None:
    async with APP.open_async():
        await APP.schema_manager.apply_schema_async()
        if ARGS.workload == "throughput":
            due = time.time()
            for start in range(0, ARGS.count, 1_000):
                await noop.batch_defer_async(
                    *({"due": due} for _ in range(start, min(start + 1_000, ARGS.count))))
            began = time.time()
            # wait=False: the worker stops once it has caught up with the queue.
            await APP.run_worker_async(concurrency=ARGS.concurrency, wait=False,
                                       install_signal_handlers=False)
            report(ARGS, RECORDER, began)
            return
        for due in due_instants(ARGS):
            await noop.configure(schedule_at=datetime.fromtimestamp(due, UTC)).defer_async(
                due=due)
        worker = asyncio.create_task(APP.run_worker_async(
            concurrency=ARGS.concurrency, install_signal_handlers=False))
        try:
            await RECORDER.wait(ARGS.spread + 60)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        report(ARGS, RECORDER)


if __name__ == "__main__":
    asyncio.run(main())
