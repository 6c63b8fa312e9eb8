"""apflow on PyPI (another project with the same name): its InternalScheduler, default store.

Its default store is a SQLite file (.data/apflow.db under the project directory, else
~/.aiperceivable/data/apflow.db); both are pointed into a temporary directory here, so the
run is throwaway. Its scheduler polls every `poll_interval` s (default 60, an int) and
takes at most 2 x max_concurrent_tasks due tasks per poll, so with its defaults 10,000
due jobs would need about 500 polls (over 8 hours): the driver sets poll_interval=1 (the
smallest it accepts) and max_concurrent_tasks=CONCURRENCY, and reports them.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from _common import Recorder, due_instants, parse, report

ARGS = parse()
RECORDER = Recorder(ARGS.count)
POLL_INTERVAL = 1
TMP = tempfile.TemporaryDirectory(prefix="published-apflow-")
os.environ["HOME"] = TMP.name
os.chdir(TMP.name)

from apflow.core.base import BaseTask  # noqa: E402
from apflow.core.extensions.decorators import executor_register  # noqa: E402
from apflow.core.storage import create_pooled_session  # noqa: E402
from apflow.core.storage.sqlalchemy.task_repository import TaskRepository  # noqa: E402
from apflow.scheduler import InternalScheduler  # noqa: E402
from apflow.scheduler.base import SchedulerConfig  # noqa: E402


@executor_register()
class BenchNoop(BaseTask):
    id = "bench_noop"
    name = "bench no-op"
    description = "records when its body ran"
    type = "bench"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        RECORDER.hit(float(inputs["due"]))
        return {}

    def get_input_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"due": {"type": "number"}}}

    def get_output_schema(self) -> dict[str, Any]:
        return {"type": "object"}


async def main() -> None:
    burst = ARGS.workload == "throughput"
    instants = [time.time()] * ARGS.count if burst else due_instants(ARGS)
    async with create_pooled_session() as session:
        repository = TaskRepository(session)
        for i, due in enumerate(instants):
            slot = datetime.fromtimestamp(due, UTC)
            await repository.create_task(
                name=f"t{i:05d}", schemas={"method": "bench_noop"}, inputs={"due": due},
                schedule_type="once", schedule_expression=slot.isoformat(),
                schedule_enabled=True, next_run_at=slot)
    concurrency = ARGS.concurrency
    scheduler = InternalScheduler(SchedulerConfig(poll_interval=POLL_INTERVAL,
                                                  max_concurrent_tasks=concurrency))
    began = time.time()
    await scheduler.start()
    try:
        await RECORDER.wait(ARGS.spread + 200)
    finally:
        await scheduler.stop()
    report(ARGS, RECORDER, began, note=f"poll_interval={POLL_INTERVAL} s (default 60), "
           f"max_concurrent_tasks={concurrency} (default 10)")


if __name__ == "__main__":
    asyncio.run(main())
