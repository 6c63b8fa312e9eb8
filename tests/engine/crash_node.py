"""A node that starts one run and then is killed by the test (python crash_node.py URL NODE TASK).

It prints RUNNING <run id> once the run's process is up, then waits to be SIGKILLed, so the
test can check what a restart of the same node finds.
"""

from __future__ import annotations

import asyncio
import sys

from apflow.clock import SystemClock
from apflow.domain.enums import RunState, Trigger
from apflow.engine.engine import Engine
from apflow.engine.settings import EngineSettings
from apflow.executors.registry import default_registry
from apflow.store import open_store


async def main(url: str, node: str, task_id: str) -> None:
    store = open_store(url)
    await store.open()
    engine = Engine(store, SystemClock(), default_registry(),
                    EngineSettings(poll_interval=1.0, heartbeat_interval=0.2), node_id=node)
    await engine.start()
    run = await engine.trigger(task_id, Trigger.MANUAL, triggered_by="crash-test")
    for _ in range(500):
        if (await store.get_run(run.id)).state is RunState.RUNNING:
            break
        await asyncio.sleep(0.01)
    print(f"RUNNING {run.id}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
