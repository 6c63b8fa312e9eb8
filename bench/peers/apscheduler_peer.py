"""APScheduler 3: AsyncIOScheduler, SQLAlchemyJobStore (psycopg2) on PostgreSQL, date triggers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from _common import Recorder, due_instants, parse, report
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

ARGS = parse()
RECORDER = Recorder(ARGS.count)


async def noop(due: float) -> None:
    RECORDER.hit(due)


async def main() -> None:
    url = ARGS.dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": AsyncIOExecutor()},
        # Run every job however late it is picked up: no misfires, no coalescing.
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=UTC,
    )
    # Paused: add_job writes each job to the store; nothing runs until resume().
    scheduler.start(paused=True)
    try:
        if ARGS.workload == "throughput":
            due = time.time()
            instants = [due] * ARGS.count
        else:
            instants = due_instants(ARGS)
        for i, due in enumerate(instants):
            scheduler.add_job(noop, "date", run_date=datetime.fromtimestamp(due, UTC),
                              args=[due], id=f"j{i:05d}")
        began = time.time()
        scheduler.resume()
        await RECORDER.wait(ARGS.spread + 120)
    finally:
        scheduler.shutdown(wait=False)
    report(ARGS, RECORDER, began)


if __name__ == "__main__":
    asyncio.run(main())
