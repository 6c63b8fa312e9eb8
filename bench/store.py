"""Store throughput: queue 10,000 runs, claim them in batches, finish them in batches.

This is the dispatcher's database work per run, without executing anything: one insert, one
share of a claim and one share of a finish. Each round uses a fresh database (a new SQLite
file; a new PostgreSQL database on the server of APFLOW_TEST_POSTGRES_DSN, dropped after).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from apflow.domain.enums import RunState, Trigger
from apflow.domain.models import Run, Task
from apflow.store import FinishedRun, open_store
from apflow.store.base import Store
from bench._report import Row, section

NEEDS = ("postgres",)
ROUNDS = 3
RUNS = 10_000
TASKS = 100
BATCH = 500  # runs per claim_runs and per finish_runs call
INSERT_CHUNK = 1_000  # runs per insert_runs call
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TARGETS = {"sqlite": 3_000, "postgresql": 5_000}
CALIBRATION_STEPS = 10_000_000


@dataclass(frozen=True)
class Round:
    """Seconds spent in each phase of one round."""

    insert: float
    claim: float
    finish: float

    @property
    def total(self) -> float:
        return self.insert + self.claim + self.finish


def tasks() -> list[Task]:
    return [Task(id=f"task-{i:03}", name=f"task {i}", created_at=T0, updated_at=T0,
                 max_concurrent=RUNS) for i in range(TASKS)]


def runs() -> list[Run]:
    return [Run(id=f"run-{i:05}", task_id=f"task-{i % TASKS:03}", trigger=Trigger.SCHEDULE,
                state=RunState.QUEUED, queued_at=T0, not_before=T0 + timedelta(microseconds=i),
                scheduled_for=T0) for i in range(RUNS)]


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    """Seconds `action` takes."""
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def one_round(store: Store) -> Round:
    """Queue, claim and finish RUNS runs; the seconds of each phase."""
    for task in tasks():
        await store.create_task(task)
    queued = runs()
    now = T0 + timedelta(seconds=1)
    claimed: list[Run] = []

    async def insert() -> None:
        for start in range(0, RUNS, INSERT_CHUNK):
            await store.insert_runs(queued[start:start + INSERT_CHUNK])

    async def claim() -> None:
        while batch := await store.claim_runs(now, "bench", limit=BATCH, lease_seconds=60):
            claimed.extend(batch)

    async def finish() -> None:
        for start in range(0, len(claimed), BATCH):
            await store.finish_runs([FinishedRun(run.id, RunState.SUCCEEDED, now, exit_code=0)
                                     for run in claimed[start:start + BATCH]])

    phases = Round(await timed(insert), await timed(claim), await timed(finish))
    if len(claimed) != RUNS:
        raise RuntimeError(f"claimed {len(claimed)} runs, expected {RUNS}")
    return phases


@asynccontextmanager
async def sqlite_url() -> AsyncIterator[str]:
    """A new SQLite file, removed afterwards."""
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    """A new database on the test server, dropped afterwards."""
    server = os.environ["APFLOW_TEST_POSTGRES_DSN"]
    name = f"apflow_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(server)
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(fresh_url: Callable[[], AbstractAsyncContextManager[str]],
                  ) -> tuple[str, list[Round]]:
    """ROUNDS rounds, each on a fresh database; the dialect and the rounds."""
    rounds = []
    dialect = ""
    for _ in range(ROUNDS):
        async with fresh_url() as url:
            store = open_store(url)
            await store.open()
            try:
                dialect = store.dialect
                rounds.append(await one_round(store))
            finally:
                await store.close()
    return dialect, rounds


def rows_of(dialect: str, rounds: list[Round]) -> list[Row]:
    label = "SQLite" if dialect == "sqlite" else "PostgreSQL"
    target = f"target ≥ {TARGETS[dialect]:,} runs/s on 2 cores"
    return [
        Row(f"{label}: queue → claim → finish, {RUNS:,} runs",
            [RUNS / r.total for r in rounds], "runs/s", target),
        Row(f"{label}: insert_runs ({INSERT_CHUNK:,} per call)",
            [RUNS / r.insert for r in rounds], "runs/s", "—"),
        Row(f"{label}: claim_runs ({BATCH} per call)",
            [RUNS / r.claim for r in rounds], "runs/s", "—"),
        Row(f"{label}: finish_runs ({BATCH} per call)",
            [RUNS / r.finish for r in rounds], "runs/s", "—"),
    ]


def python_loop_seconds() -> float:
    """Seconds of a fixed pure-Python loop: how fast this machine is right now (a shared
    VM can be several times slower from one hour to the next)."""
    started = time.perf_counter()
    total = 0
    for step in range(CALIBRATION_STEPS):
        total += step
    return time.perf_counter() - started


def calibration_row() -> Row:
    return Row(f"reference: a {CALIBRATION_STEPS:,}-step Python loop",
               [python_loop_seconds() for _ in range(ROUNDS)], "s",
               "machine speed at the time (lower is faster)")


async def _measure_all() -> list[Row]:
    rows = [calibration_row()]
    rows += rows_of(*await measure(sqlite_url))
    if os.environ.get("APFLOW_TEST_POSTGRES_DSN"):
        rows += rows_of(*await measure(postgres_url))
    return rows


def main() -> None:
    rows = asyncio.run(_measure_all())
    notes = (f"{TASKS} tasks (max_concurrent high enough not to hold claims back); "
             f"each round on a fresh database; medians of {ROUNDS} rounds.")
    print(section("Store: queue → claim → finish", rows, notes))


if __name__ == "__main__":
    main()
