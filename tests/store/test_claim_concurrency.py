"""Several nodes claiming from one database: max_concurrent holds and each run starts once.

Half the runs arrive while the claimers work, each ahead of the waiting ones (a retry or a
manual run due earlier): two claimers looking at different moments then rank a task's runs
differently, which is when counting without a per-task lock lets a task run too many. That
race is rare per claim, so the load test below catches a missing lock only now and then; the
PostgreSQL test after it checks the lock itself, deterministically.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import asyncpg
import pytest

from apflow.domain.enums import RunState
from apflow.domain.models import Run
from apflow.store.base import FinishedRun, RunFilter
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, a_task, at
from tests.store.conftest import Backend

TASKS = 20
RUNS_PER_TASK = 10
MAX_CONCURRENT = 2
CLAIMERS = 4
PAUSE = 0.001  # between two batches of new runs
SEEDED = RUNS_PER_TASK // 2  # batches queued before the claimers start


class Referee:
    """What the claimers did, checked as they do it."""

    def __init__(self) -> None:
        self.claimed: Counter[str] = Counter()
        self.holding: Counter[str] = Counter()  # runs a claimer holds, per task
        self.peak = 0
        self.done = asyncio.Event()

    def took(self, run_ids_by_task: list[tuple[str, str]]) -> None:
        for run_id, task_id in run_ids_by_task:
            self.claimed[run_id] += 1
            self.holding[task_id] += 1
            self.peak = max(self.peak, self.holding[task_id])
        if len(self.claimed) == TASKS * RUNS_PER_TASK:
            self.done.set()

    def released(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self.holding[task_id] -= 1


async def claimer(store: SqlStore, node: str, referee: Referee) -> None:
    """Claim, hold the runs a moment (released before the finish is written), finish."""
    rng = random.Random(node)
    while not referee.done.is_set():
        runs = await store.claim_runs(at(3600), node, limit=rng.randint(1, 6), lease_seconds=60)
        if not runs:
            await asyncio.sleep(0.001)
            continue
        referee.took([(run.id, run.task_id) for run in runs])
        await asyncio.sleep(rng.uniform(0, 0.004))
        referee.released([run.task_id for run in runs])
        await store.finish_runs([FinishedRun(run.id, RunState.SUCCEEDED, at(3601))
                                 for run in runs])


def runs_of(batch: int) -> list[Run]:
    """Batch `batch` of the runs: one per task, each due before every earlier batch."""
    return [a_run(f"t{index:02}-{batch}", f"t{index:02}", not_before=at(-batch * TASKS + index))
            for index in range(TASKS)]


async def keep_inserting(store: SqlStore, batches: range) -> None:
    """Queue more runs, a batch at a time, while the claimers work."""
    for batch in batches:
        await store.insert_runs(runs_of(batch))
        await asyncio.sleep(PAUSE)


async def watch_running(store: SqlStore, referee: Referee) -> int:
    """Sample the running runs per task until the claimers are done; return the peak."""
    peak = 0
    while not referee.done.is_set():
        running = await store.list_runs(RunFilter(state=RunState.RUNNING), limit=1000)
        per_task = Counter(run.task_id for run in running)
        peak = max([peak, *per_task.values()])
        await asyncio.sleep(0)
    return peak


async def test_concurrent_claimers_keep_max_concurrent_and_claim_each_run_once(
        backend: Backend) -> None:
    seeder = await backend.new_store()
    for index in range(TASKS):
        await seeder.create_task(a_task(f"t{index:02}", max_concurrent=MAX_CONCURRENT))
    for batch in range(SEEDED):
        await seeder.insert_runs(runs_of(batch))
    stores = [await backend.new_store() for _ in range(CLAIMERS + 1)]
    referee = Referee()
    watched, *_ = await asyncio.wait_for(asyncio.gather(
        watch_running(seeder, referee),
        keep_inserting(stores[-1], range(SEEDED, RUNS_PER_TASK)),
        *(claimer(store, f"node-{i}", referee) for i, store in enumerate(stores[:-1]))), 30)
    assert set(referee.claimed.values()) == {1}
    assert len(referee.claimed) == TASKS * RUNS_PER_TASK
    assert referee.peak <= MAX_CONCURRENT and watched <= MAX_CONCURRENT
    states = Counter(run.state for run in await seeder.list_runs(RunFilter(), limit=1000))
    assert states == {RunState.SUCCEEDED: TASKS * RUNS_PER_TASK}


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_task_another_node_is_claiming_is_left_to_it(backend: Backend) -> None:
    store = await backend.new_store()
    for task_id in ("busy", "free"):
        await store.create_task(a_task(task_id, max_concurrent=2))
    await store.insert_runs([a_run("busy-1", "busy", not_before=at(1)),
                             a_run("busy-2", "busy", not_before=at(2)),
                             a_run("free-1", "free", not_before=at(3))])
    other_node = await asyncpg.connect(backend.url)
    try:
        async with other_node.transaction():  # another node is inside its claim of "busy"
            assert await other_node.fetchval(
                "SELECT pg_try_advisory_xact_lock(1095780936, hashtext('busy'))")
            claimed = await store.claim_runs(at(10), "me", limit=10, lease_seconds=5)
            assert [run.id for run in claimed] == ["free-1"]
    finally:
        await other_node.close()
    claimed = await store.claim_runs(at(10), "me", limit=10, lease_seconds=5)
    assert [run.id for run in claimed] == ["busy-1", "busy-2"]
