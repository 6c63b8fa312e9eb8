"""Scale: 100,000 enabled schedules on one node (issue 6, item 7).

N daily schedules (1,000 and 100,000) are inserted in bulk, each with its next slot 6 h or
more away, so none is due. Then, per backend:
- pass cost, in this process: `Scheduler.tick(now)` + `Scheduler.delay_until_due()` on the
  opened store with nothing due (what one scheduler turn costs), many times, median per round;
  the ratio between 100,000 and 1,000 schedules says whether a pass grows with the schedules
  that are not due;
- a real node, `apflow scheduler start` in a child process on that database: the CPU it uses
  while idle (utime + stime from /proc/<pid>/stat over a few windows, as % of one core) and
  its resident memory (VmRSS, and the peak VmHWM, from /proc/<pid>/status);
- the same node with one more schedule among the 100,000 that fires every second (an
  `interval` of 1 s running `true` through the command executor): a node at light load.

The tasks are written with the store's own `insert_task` statement, many rows per
transaction (the store has no bulk create; 100,000 `create_task` calls take ~30 s on SQLite).
SQLite always; PostgreSQL when APFLOW_TEST_POSTGRES_DSN is set (the node's CPU is the apflow
process only, not the PostgreSQL server's).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from apflow.clock import SystemClock
from apflow.domain.enums import ScheduleType
from apflow.domain.models import Task
from apflow.engine.scheduler import Scheduler
from apflow.engine.settings import EngineSettings
from apflow.runtime import run as run_node_loop
from apflow.store import RunFilter, Store, open_store
from apflow.store.rows import TASK, params
from bench._report import Row, machine_line, table

NEEDS = ("postgres",)
SIZES = (1_000, 100_000)
INSERT_BATCH = 5_000
PASS_ROUNDS = 5
PASS_SAMPLES = 60  # per round
IDLE_WINDOWS = 3
WINDOW_SECONDS = 3.0
SETTLE_SECONDS = 1.0  # after the node says it runs, before the first window
START_TIMEOUT = 60.0
RSS_CEILING_MB = 200
CLK_TCK = os.sysconf("SC_CLK_TCK")
APFLOW = Path(sys.executable).with_name("apflow")
TRUE_COMMAND = {"type": "command", "command": "true"}


# databases -------------------------------------------------------------------------------------


def _pg_dsn(server: str, database: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _pg_admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[str]:
    """The URL of an empty database (schema created), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="apflow-scale-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'scale.db'}"
            await _migrate(url)
            yield url
        return
    server = os.environ["APFLOW_TEST_POSTGRES_DSN"]
    name = f"apflow_scale_{uuid.uuid4().hex[:8]}"
    await _pg_admin(server, f'CREATE DATABASE "{name}"')
    try:
        url = _pg_dsn(server, name)
        await _migrate(url)
        yield url
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate(url: str) -> None:
    store = open_store(url)
    await store.open()  # creates the schema
    await store.close()


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def daily_task(i: int, now: datetime) -> Task:
    """A daily schedule whose next slot is 6 h (+ i ms) away: enabled, not due."""
    return Task(id=f"s{i:06d}", name=f"scale {i}", created_at=now, updated_at=now,
                executor=TRUE_COMMAND, schedule_type=ScheduleType.DAILY,
                schedule_expression="03:00", schedule_enabled=True,
                next_run_at=now + timedelta(hours=6, milliseconds=i))


def every_second_task(now: datetime) -> Task:
    first = now + timedelta(seconds=2)
    return Task(id="every-second", name="every second", created_at=now, updated_at=now,
                executor=TRUE_COMMAND, schedule_type=ScheduleType.INTERVAL,
                schedule_expression="1", schedule_enabled=True, schedule_anchor_at=first,
                next_run_at=first)


async def insert_tasks(store: Store, tasks: list[Task]) -> None:
    """Many tasks per transaction through the store's own insert_task statement."""
    db = store._db  # type: ignore[attr-defined]  # bench only: the store has no bulk create
    for start in range(0, len(tasks), INSERT_BATCH):
        rows = [params(TASK, task, db.values) for task in tasks[start:start + INSERT_BATCH]]
        async with db.write() as tx:
            await tx.executemany("insert_task", rows)


# measurements ----------------------------------------------------------------------------------


async def pass_costs(stores: dict[int, Store]) -> dict[int, list[float]]:
    """Median ms of tick(now) + delay_until_due() per round, with nothing due.

    The rounds of the different sizes are interleaved, so a slow spell of the machine
    weighs on every size alike and the ratio compares like with like."""
    clock = SystemClock()
    schedulers = {n: Scheduler(store, clock, EngineSettings(), on_fired=lambda plans: None)
                  for n, store in stores.items()}
    for scheduler in schedulers.values():
        for _ in range(20):  # warm up: statement caches, pages in memory
            await scheduler.tick(clock.now())
            await scheduler.delay_until_due()
    medians: dict[int, list[float]] = {n: [] for n in stores}
    for _ in range(PASS_ROUNDS):
        for n, scheduler in schedulers.items():
            samples = []
            for _ in range(PASS_SAMPLES):
                began = time.perf_counter()
                fired = await scheduler.tick(clock.now())
                await scheduler.delay_until_due()
                samples.append((time.perf_counter() - began) * 1000)
                if fired:
                    raise RuntimeError("a schedule was due: this is not an idle pass")
            medians[n].append(statistics.median(samples))
    return medians


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


@dataclass
class NodeFigures:
    cpu_percent: list[float]  # per window, % of one core
    rss_mb: list[float]  # VmRSS at the end of each window
    peak_mb: float  # VmHWM at the end


@contextmanager
def node(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`apflow scheduler start` on `url`, running (pid file written); stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="apflow-scale-home-") as home:
        pid_file = Path(home) / "node.pid"
        env = {**os.environ, "APFLOW_HOME": home, "APFLOW_DATABASE_URL": url}
        env.pop("APFLOW_CONFIG", None)
        with open(Path(home) / "node.log", "wb") as log:
            process = subprocess.Popen(
                [str(APFLOW), "scheduler", "start", "--pid-file", str(pid_file)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not pid_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (Path(home) / "node.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the node did not start (exit {process.poll()}):\n{tail}")
                time.sleep(0.05)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def watch_node(url: str) -> NodeFigures:
    with node(url) as process:
        time.sleep(SETTLE_SECONDS)
        cpu, rss = [], []
        for _ in range(IDLE_WINDOWS):
            cpu0, t0 = _cpu_seconds(process.pid), time.perf_counter()
            time.sleep(WINDOW_SECONDS)
            cpu1, t1 = _cpu_seconds(process.pid), time.perf_counter()
            cpu.append(100 * (cpu1 - cpu0) / (t1 - t0))
            rss.append(_status_mb(process.pid, "VmRSS"))
        return NodeFigures(cpu, rss, _status_mb(process.pid, "VmHWM"))


@dataclass
class BackendFigures:
    insert_seconds: dict[int, float]
    pass_ms: dict[int, list[float]]
    idle: dict[int, NodeFigures]
    loaded: NodeFigures
    loaded_runs: int


async def build(url: str, count: int, now: datetime) -> float:
    async with opened(url) as store:
        began = time.perf_counter()
        await insert_tasks(store, [daily_task(i, now) for i in range(count)])
        return time.perf_counter() - began


async def measure(backend: str) -> BackendFigures:
    inserts: dict[int, float] = {}
    idle: dict[int, NodeFigures] = {}
    async with AsyncExitStack() as stack:
        urls = {n: await stack.enter_async_context(fresh_database(backend)) for n in SIZES}
        now = SystemClock().now()
        for n, url in urls.items():
            inserts[n] = await build(url, n, now)
        async with AsyncExitStack() as stores:
            opened_stores = {n: await stores.enter_async_context(opened(url))
                             for n, url in urls.items()}
            passes = await pass_costs(opened_stores)
        for n, url in urls.items():
            idle[n] = await asyncio.to_thread(watch_node, url)
        url = urls[max(SIZES)]
        async with opened(url) as store:
            await insert_tasks(store, [every_second_task(SystemClock().now())])
        loaded = await asyncio.to_thread(watch_node, url)
        async with opened(url) as store:
            runs = await store.list_runs(RunFilter(), limit=1_000)
    failed = [r for r in runs if r.exit_code not in (0, None)]
    if failed:
        raise RuntimeError(f"the 1 s schedule fails: {failed[0].error}")
    return BackendFigures(inserts, passes, idle, loaded, len(runs))


# report ---------------------------------------------------------------------------------------


def rows_for(figures: BackendFigures) -> list[Row]:
    small, large = min(SIZES), max(SIZES)
    ratio = [b / a for a, b in zip(figures.pass_ms[small], figures.pass_ms[large], strict=True)]
    rows = [
        Row(f"scheduler pass, nothing due, {n:,} schedules", figures.pass_ms[n], "ms", "—")
        for n in SIZES
    ]
    rows.append(Row(f"pass cost ratio {large:,} / {small:,}", ratio, "x", "target ~1"))
    for n in SIZES:
        idle = figures.idle[n]
        rows += [
            Row(f"idle node CPU, {n:,} schedules", idle.cpu_percent, "% of a core",
                "target ≈ 0"),
            Row(f"idle node RSS, {n:,} schedules", idle.rss_mb, "MB",
                f"ceiling {RSS_CEILING_MB} MB"),
        ]
    loaded = figures.loaded
    rows += [
        Row(f"node CPU, {large:,} schedules + one firing every 1 s", loaded.cpu_percent,
            "% of a core", "—"),
        Row(f"node RSS, {large:,} schedules + one firing every 1 s", loaded.rss_mb, "MB",
            f"ceiling {RSS_CEILING_MB} MB"),
        Row("node peak RSS (VmHWM), any of the runs above",
            [max([loaded.peak_mb, *(f.peak_mb for f in figures.idle.values())])], "MB",
            f"ceiling {RSS_CEILING_MB} MB"),
        Row(f"bulk insert of {large:,} schedules (setup)", [figures.insert_seconds[large]],
            "s", "—"),
    ]
    return rows


def main() -> None:
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("APFLOW_TEST_POSTGRES_DSN")
                             else [])
    parts = ["## Scale: 100,000 schedules on one node", "", machine_line(), ""]
    runs_seen = {}
    for backend in backends:
        figures = run_node_loop(measure(backend))  # a node's event loop
        runs_seen[backend] = figures.loaded_runs
        parts += [f"### {backend}", "", table(rows_for(figures)), ""]
    window = IDLE_WINDOWS * WINDOW_SECONDS
    parts.append(
        f"Daily schedules whose next slot is ≥ 6 h away, none due. Pass: one "
        f"`Scheduler.tick(now)` + `delay_until_due()` in the bench process on the opened "
        f"store, median of {PASS_SAMPLES} per round, {PASS_ROUNDS} rounds. Node: "
        f"`apflow scheduler start` (default settings) in a child process, {SETTLE_SECONDS:.0f} s "
        f"after it is ready, {IDLE_WINDOWS} windows of {WINDOW_SECONDS:.0f} s; CPU is "
        f"utime + stime of that process from /proc (resolution 1/{CLK_TCK} s, i.e. "
        f"{100 / CLK_TCK / WINDOW_SECONDS:.2f} % per window), RSS is VmRSS at each window's "
        "end. Loaded: one more `interval` 1 s schedule running `true` (command executor); "
        "it started "
        + ", ".join(f"{n} runs on {b}" for b, n in runs_seen.items())
        + f" in ~{window + SETTLE_SECONDS:.0f} s. The PostgreSQL server's own CPU is not "
        "counted.")
    if len(backends) == 1:
        parts.append("PostgreSQL not measured: APFLOW_TEST_POSTGRES_DSN is not set.")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
