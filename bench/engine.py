"""Engine: how late runs start after their slot, and how fast a burst of due runs drains.

Lateness: 1,000 `once` tasks whose slots are spread evenly over 10 s, each running a Python
executor that notes the time its body starts; lateness is that instant - the slot (what a
user's job sees; the dispatcher claims runs up to 20 ms ahead and stamps started_at with
the slot it then waits for, so started_at alone would hide the start's own delay).
Burst: 10,000 `once` tasks all due at the same instant; the time until every run has
started and until every run has finished, counted from that instant, and the runs/s
that makes. SQLite always; PostgreSQL when APFLOW_TEST_POSTGRES_DSN is set.
Commands: 1,000 `once` tasks running `/bin/true` through the command executor (own process
group, stdout and stderr captured into the run log), all due at one instant, against bare
asyncio spawning and reaping as many `/bin/true` with the same concurrency (SQLite only:
the store is not what limits process runs).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from apflow.clock import SystemClock
from apflow.domain.enums import ScheduleType
from apflow.domain.models import Run, Task
from apflow.engine.engine import Engine
from apflow.engine.settings import EngineSettings
from apflow.executors.base import RunContext
from apflow.executors.python import PythonFunction
from apflow.executors.registry import ExecutorRegistry, default_registry
from apflow.runtime import run as run_node_loop
from apflow.runtime import tune_garbage_collector
from apflow.store import RunFilter, Store, open_store
from bench._report import Row, machine_line, table

NEEDS = ("postgres",)
ROUNDS = 3
LATENESS_TASKS = 1_000
LATENESS_SPREAD_SECONDS = 10.0
BURST_RUNS = 10_000
BURST_CONCURRENCY = 500
SETUP_MARGIN_SECONDS = 1.0
COMMAND_RUNS = 1_000
COMMAND_CONCURRENCY = 50
COMMAND_ROUNDS = 5  # pairs of a bare round and an engine round
COMMAND_TARGET = 0.5  # of the bare asyncio spawn rate


async def noop(ctx: RunContext) -> Any:
    """The no-op Python executor: returns at once."""
    return None


BODY_STARTS: dict[str, datetime] = {}  # run id -> when the `stamp` executor's body began


async def stamp(ctx: RunContext) -> Any:
    """A no-op that notes when its body started."""
    BODY_STARTS[ctx.run.id] = SystemClock().now()


def bench_registry(noop_body: PythonFunction = noop) -> ExecutorRegistry:
    """The default executors, with `noop` (or the body given for it) and `stamp`."""
    registry = default_registry()
    registry.get("python").register("noop", noop_body)  # type: ignore[attr-defined]
    registry.get("python").register("stamp", stamp)  # type: ignore[attr-defined]
    return registry


NOOP = {"type": "python", "name": "noop"}
STAMP = {"type": "python", "name": "stamp"}
TRUE_COMMAND = {"type": "command", "command": "/bin/true"}


def once_task(task_id: str, slot: datetime, created: datetime,
              executor: dict[str, Any] | None = None) -> Task:
    return Task(id=task_id, name=task_id, created_at=created, updated_at=created,
                executor=executor or NOOP,
                schedule_type=ScheduleType.ONCE, schedule_expression=slot.isoformat(),
                schedule_enabled=True, next_run_at=slot)


# databases -------------------------------------------------------------------------------------


def _pg_dsn(server: str, database: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@asynccontextmanager
async def fresh_store(backend: str) -> AsyncIterator[Store]:
    """An opened store on an empty database, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
            await store.open()
            try:
                yield store
            finally:
                await store.close()
        return
    server = os.environ["APFLOW_TEST_POSTGRES_DSN"]
    name = f"apflow_bench_{uuid.uuid4().hex[:8]}"
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    store = open_store(_pg_dsn(server, name))
    try:
        await store.open()
        yield store
    finally:
        await store.close()
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg_admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def all_runs(store: Store, expected: int) -> list[Run]:
    runs: list[Run] = []
    while len(runs) < expected:
        page = await store.list_runs(RunFilter(), limit=5_000, offset=len(runs))
        if not page:
            break
        runs += page
    return runs


async def wait_all_finished(store: Store, expected: int, within: float) -> list[Run]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        counts = await store.count_runs_by_state()
        done = sum(n for state, n in counts.items() if state.finished)
        if done >= expected:
            return await all_runs(store, expected)
        # Seldom: the poll shares the store with the engine being measured, and the
        # figures come from the runs' own timestamps, not from when this loop notices.
        await asyncio.sleep(0.25)
    raise TimeoutError(f"runs not finished within {within} s")


# measurements ----------------------------------------------------------------------------------


async def create_tasks(store: Store, slots: Callable[[int], datetime], count: int,
                       executor: dict[str, Any] | None = None) -> None:
    created = SystemClock().now()
    batch = 200
    for start in range(0, count, batch):
        await asyncio.gather(*(store.create_task(
            once_task(f"t{i:05d}", slots(i), created, executor))
            for i in range(start, min(start + batch, count))))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def lateness_round(backend: str) -> tuple[float, float, float]:
    """p50, p99 and max lateness in ms for LATENESS_TASKS slots spread over 10 s."""
    async with fresh_store(backend) as store:
        step = LATENESS_SPREAD_SECONDS / LATENESS_TASKS
        first = SystemClock().now() + timedelta(seconds=SETUP_MARGIN_SECONDS + 2)
        BODY_STARTS.clear()
        await create_tasks(store, lambda i: first + timedelta(seconds=i * step), LATENESS_TASKS,
                           STAMP)
        engine = Engine(store, SystemClock(), bench_registry(), EngineSettings(), "bench")
        await engine.start()
        try:
            runs = await wait_all_finished(store, LATENESS_TASKS,
                                           LATENESS_SPREAD_SECONDS + 30)
        finally:
            await engine.stop()
    late = [(BODY_STARTS[r.id] - r.scheduled_for).total_seconds() * 1000  # type: ignore[operator]
            for r in runs]
    return percentile(late, 0.5), percentile(late, 0.99), max(late)


async def burst_round(backend: str) -> tuple[float, float, float]:
    """Seconds from the engine's start until all started, all finished; runs/s.

    The runs are all due at one instant before the engine starts, so the clock starts with
    the engine: the whole burst is already due when the first loop turns.
    """
    async with fresh_store(backend) as store:
        due = SystemClock().now()
        await create_tasks(store, lambda i: due, BURST_RUNS)
        settings = EngineSettings(max_concurrent=BURST_CONCURRENCY)
        engine = Engine(store, SystemClock(), bench_registry(), settings, "bench")
        began = SystemClock().now()
        await engine.start()
        try:
            runs = await wait_all_finished(store, BURST_RUNS, 300)
        finally:
            await engine.stop()
    started = max(r.started_at for r in runs if r.started_at) - began
    finished = max(r.finished_at for r in runs if r.finished_at) - began
    return started.total_seconds(), finished.total_seconds(), \
        BURST_RUNS / finished.total_seconds()


async def command_round() -> float:
    """/bin/true runs per second through the engine (SQLite), all due at one instant."""
    async with fresh_store("sqlite") as store:
        due = SystemClock().now()
        await create_tasks(store, lambda i: due, COMMAND_RUNS, TRUE_COMMAND)
        settings = EngineSettings(max_concurrent=COMMAND_CONCURRENCY)
        engine = Engine(store, SystemClock(), bench_registry(), settings, "bench")
        began = SystemClock().now()
        await engine.start()
        try:
            runs = await wait_all_finished(store, COMMAND_RUNS, 120)
        finally:
            await engine.stop()
    failed = [r for r in runs if r.exit_code != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} /bin/true runs failed, e.g. {failed[0].error}")
    finished = max(r.finished_at for r in runs if r.finished_at) - began
    return COMMAND_RUNS / finished.total_seconds()


async def spawn_round() -> float:
    """Bare asyncio: spawn and reap COMMAND_RUNS `/bin/true`, COMMAND_CONCURRENCY at a time."""
    gate = asyncio.Semaphore(COMMAND_CONCURRENCY)

    async def one() -> None:
        async with gate:
            process = await asyncio.create_subprocess_exec("/bin/true")
            await process.wait()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(COMMAND_RUNS)))
    return COMMAND_RUNS / (time.perf_counter() - started)


async def measure_commands() -> list[Row]:
    """Bare and engine rounds in pairs, back to back, each share from its own pair: the
    machine's speed drifts between rounds more than the two differ within one."""
    bare: list[float] = []
    engine: list[float] = []
    for _ in range(COMMAND_ROUNDS):
        bare.append(await spawn_round())
        engine.append(await command_round())
    share = [100 * e / b for e, b in zip(engine, bare, strict=True)]
    return [
        Row(f"bare asyncio spawn + wait `/bin/true`, {COMMAND_CONCURRENCY} at a time", bare,
            "runs/s", "ceiling"),
        Row(f"command runs of `/bin/true` with logs, max_concurrent={COMMAND_CONCURRENCY}",
            engine, "runs/s", "—"),
        Row("command runs as a share of bare spawns", share, "%",
            f"target ≥ {COMMAND_TARGET:.0%}"),
    ]


# report ---------------------------------------------------------------------------------------


async def measure(backend: str) -> tuple[list[Row], list[Row]]:
    lateness = [await lateness_round(backend) for _ in range(ROUNDS)]
    burst = [await burst_round(backend) for _ in range(ROUNDS)]
    late_rows = [
        Row(f"lateness p50, {LATENESS_TASKS:,} slots over 10 s", [r[0] for r in lateness],
            "ms", "target p99 ≤ 10 ms"),
        Row(f"lateness p99, {LATENESS_TASKS:,} slots over 10 s", [r[1] for r in lateness],
            "ms", "target ≤ 10 ms"),
        Row("lateness max", [r[2] for r in lateness], "ms", "—"),
    ]
    target = "≥ 3,000 runs/s" if backend == "sqlite" else "≥ 5,000 runs/s"
    burst_rows = [
        Row(f"burst of {BURST_RUNS:,}: all started after", [r[0] for r in burst], "s", "—"),
        Row(f"burst of {BURST_RUNS:,}: all finished after", [r[1] for r in burst], "s", "—"),
        Row(f"burst of {BURST_RUNS:,}: throughput", [r[2] for r in burst], "runs/s", target),
    ]
    return late_rows, burst_rows


def main() -> None:
    tune_garbage_collector()  # the engine runs as in `apflow serve` / `scheduler start`
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("APFLOW_TEST_POSTGRES_DSN")
                             else [])
    parts = ["## Engine: lateness and burst", "", machine_line(), ""]
    for backend in backends:
        late_rows, burst_rows = run_node_loop(measure(backend))  # a node's event loop
        parts += [f"### {backend}", "", table(late_rows), "", table(burst_rows), ""]
    parts += ["### command runs (sqlite)", "", table(asyncio.run(measure_commands())), ""]
    parts.append(
        "Lateness and bursts run on the event loop of `apflow serve` and `apflow scheduler "
        "start` (uvloop), with their garbage collector settings (apflow/runtime.py); the "
        "command runs and their bare baseline both on asyncio's own loop. "
        f"No-op Python executor; medians of {ROUNDS} rounds. Burst: {BURST_RUNS:,} `once` "
        f"tasks due at one instant, scheduler.max_concurrent={BURST_CONCURRENCY}; lateness: "
        "default settings (max_concurrent=10), measured when the job's body starts. "
        f"Command runs: {COMMAND_ROUNDS} pairs of rounds (bare, then engine; each share "
        f"from its pair), {COMMAND_RUNS:,} `once` tasks running `/bin/true` "
        "(a plain path-qualified command, exec'd directly as sh would; own process group, "
        "output captured), all due at one "
        f"instant, scheduler.max_concurrent={COMMAND_CONCURRENCY}, from engine start to the "
        "last finish; the bare rate spawns `/bin/true` directly with the same concurrency.")
    if len(backends) == 1:
        parts.append("PostgreSQL not measured: APFLOW_TEST_POSTGRES_DSN is not set.")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
