"""Peers: apflow against procrastinate, pgqueuer and APScheduler 3 on the same PostgreSQL.

Run only when named: `scripts/bench peers`. Every system runs the same two workloads, each
in its own subprocess on a fresh database of the throwaway server (created and dropped
here, one per system, workload and round):

Throughput: THROUGHPUT_JOBS no-op jobs all due at one instant before the worker starts;
jobs/s = THROUGHPUT_JOBS / (last job body - worker start).
Lateness: LATENESS_JOBS no-op jobs due at instants spread evenly over LATENESS_SPREAD s;
lateness = job body start - due instant, p50 and p99.

Both are measured inside the job body with time.time(), the same way for every system
(bench/peers/_common.py). The peers are installed, at the versions pinned in PEER_PINS,
into their own virtualenv, .venv-peers (created here when missing or when the pins
change); apflow itself runs from .venv. The published `apflow` distribution on PyPI (a
different project with the same name) is installed there too and measured on its own
default store (SQLite) with its internal scheduler, when its driver can run.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench._report import machine_line
from bench.engine import _pg_admin, _pg_dsn

NEEDS = ("postgres",)
ROUNDS = 3
THROUGHPUT_JOBS = 10_000
LATENESS_JOBS = 200
LATENESS_SPREAD = 10.0
CONCURRENCY = 50  # jobs executing at once, where the system has such a limit
LATENESS_CONCURRENCY = 10  # apflow's default max_concurrent
PUBLISHED_BURST = 1_000
RUN_TIMEOUT = 240.0  # seconds per subprocess, setup included

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DRIVERS = BENCH_DIR / "peers"
PEERS_VENV = REPO_ROOT / ".venv-peers"
OURS_PYTHON = Path(sys.executable)
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
# The current releases when this section was written; bump them here and the virtualenv
# is rebuilt on the next run.
PEER_PINS = (
    "procrastinate==3.10.0",
    "psycopg[binary]==3.3.9",
    "psycopg-pool==3.3.3",
    "pgqueuer==1.6.0",
    "asyncpg==0.32.0",
    "APScheduler==3.11.3",
    "SQLAlchemy[asyncio]==2.1.9",  # greenlet: the published apflow needs it
    "psycopg2-binary==2.9.13",
)
PUBLISHED_APFLOW_PIN = "apflow==0.24.0"  # PyPI's apflow: another project, same name
VERSION_OF = {  # system key -> the distribution whose version is reported
    "procrastinate_peer": "procrastinate",
    "pgqueuer_peer": "pgqueuer",
    "apscheduler_peer": "APScheduler",
    "published_apflow": "apflow",
}


@dataclass(frozen=True)
class System:
    key: str  # the driver is bench/peers/<key>.py
    label: str
    python: Path
    how: str
    uses_dsn: bool = True
    # Overrides where the system cannot run the common burst in the time budget.
    throughput_jobs: int = THROUGHPUT_JOBS
    throughput_concurrency: int = CONCURRENCY
    throughput_rounds: int = ROUNDS
    workloads: tuple[str, ...] = ("throughput", "lateness")
    driver: str = ""  # bench/peers/<driver>.py; default: the key
    # The apflow row whose throughput is the same kind of work (queue entries enqueued before
    # the worker starts, or jobs scheduled for an instant); lateness is always REFERENCE's.
    compare_with: str = "ours"

    @property
    def script(self) -> Path:
        return DRIVERS / f"{self.driver or self.key}.py"


SYSTEMS = (
    System("ours", "apflow, `once` tasks", OURS_PYTHON,
           f"`once` tasks, engine max_concurrent={CONCURRENCY}"),
    System("ours_queued", "apflow, queued runs", OURS_PYTHON,
           f"`tasks.run` (the engine's trigger) on tasks without a schedule, all queued before "
           f"the engine starts, max_concurrent={CONCURRENCY}: the same work as the queues' "
           "jobs enqueued before their worker starts; throughput only",
           workloads=("throughput",), driver="ours_queued"),
    System("ours_500", "apflow, `once` tasks, max_concurrent=500", OURS_PYTHON,
           "the same burst with max_concurrent=500, as bench/engine.py runs it (APScheduler's "
           "AsyncIOExecutor has no limit at all); lateness as above",
           throughput_concurrency=500, workloads=("throughput",), driver="ours"),
    System("procrastinate_peer", "procrastinate", PEERS_PYTHON,
           f"`batch_defer_async` / `schedule_at`, async worker concurrency={CONCURRENCY}, "
           "default polling (5 s) + LISTEN/NOTIFY; throughput compared with apflow's queued "
           "runs", compare_with="ours_queued"),
    System("pgqueuer_peer", "pgqueuer", PEERS_PYTHON,
           f"`enqueue` / `execute_after`, QueueManager max_concurrent_tasks={CONCURRENCY}, "
           "batch_size=10, default dequeue_timeout (30 s) + LISTEN/NOTIFY; throughput "
           "compared with apflow's queued runs", compare_with="ours_queued"),
    System("apscheduler_peer", "APScheduler 3", PEERS_PYTHON,
           "AsyncIOScheduler + SQLAlchemyJobStore (psycopg2), date triggers, "
           "AsyncIOExecutor (no concurrency limit)"),
    System("published_apflow", "apflow on PyPI (other project)", PEERS_PYTHON,
           f"InternalScheduler on its default store (a SQLite file), poll_interval=1 s "
           f"(its minimum; default 60 s), max_concurrent_tasks=10 (its default: at 50 its "
           f"SQLite pool of 5+10 connections times out). It takes at most 2 x max_concurrent "
           f"due tasks per poll, so a burst of {THROUGHPUT_JOBS:,} would take over 500 s a "
           f"round: its burst is {PUBLISHED_BURST:,} jobs, 1 round, so its throughput "
           "ratio is indicative only", uses_dsn=False, throughput_jobs=PUBLISHED_BURST,
           throughput_concurrency=10, throughput_rounds=1),
)
REFERENCE = "ours"


@dataclass
class Results:
    throughput: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


# the peers' virtualenv ------------------------------------------------------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PEERS_PYTHON), "-m", "pip", "-q", "--disable-pip-version-check",
                           *args], capture_output=True, text=True, timeout=600)


def ensure_peers_venv() -> str:
    """Create .venv-peers and install the pins unless its stamp matches; notes, if any."""
    stamp_file = PEERS_VENV / ".apflow-peers-stamp"
    stamp = "\n".join((*PEER_PINS, PUBLISHED_APFLOW_PIN))
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return ""
    if not PEERS_PYTHON.exists():
        print("creating .venv-peers", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    print("installing the peers into .venv-peers", file=sys.stderr, flush=True)
    done = _pip("install", *PEER_PINS)
    if done.returncode != 0:
        raise RuntimeError(f"pip install of the peers failed:\n{done.stderr[-2000:]}")
    # The published apflow is optional: the other peers are measured without it.
    done = _pip("install", PUBLISHED_APFLOW_PIN)
    if done.returncode != 0:
        return f"`pip install {PUBLISHED_APFLOW_PIN}` failed: {done.stderr.strip()[-300:]}"
    stamp_file.write_text(stamp)
    return ""


def installed_versions() -> dict[str, str]:
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            f"for name in {sorted(set(VERSION_OF.values()))!r}:\n"
            "    try: out[name] = m.version(name)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([str(PEERS_PYTHON), "-c", code], capture_output=True, text=True,
                          check=True, cwd="/")
    return json.loads(done.stdout)


# one measurement ------------------------------------------------------------------------------


def run_driver(system: System, workload: str) -> dict[str, object]:
    """Run one workload of one system on a fresh database; its JSON line."""
    server = os.environ["APFLOW_TEST_POSTGRES_DSN"]
    database = f"apflow_peers_{system.key}_{uuid.uuid4().hex[:8]}"
    count, concurrency = ((system.throughput_jobs, system.throughput_concurrency)
                          if workload == "throughput"
                          else (LATENESS_JOBS, LATENESS_CONCURRENCY))
    if system.uses_dsn:
        asyncio.run(_pg_admin(server, f'CREATE DATABASE "{database}"'))
    try:
        # cwd is the drivers' directory, so the peers' `import apflow` is never this repo.
        done = subprocess.run(
            [str(system.python), str(system.script), workload,
             _pg_dsn(server, database), str(count), str(LATENESS_SPREAD), str(concurrency)],
            cwd=DRIVERS, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    finally:
        if system.uses_dsn:
            asyncio.run(_pg_admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {tail[:300]}")
    result: dict[str, object] = json.loads(lines[-1])
    if result.get("skipped"):
        raise RuntimeError(str(result["skipped"]))
    return result


def measure(systems: Sequence[System]) -> dict[str, Results]:
    results = {system.key: Results() for system in systems}
    for round_number in range(1, ROUNDS + 1):
        for system in systems:
            got = results[system.key]
            if len(got.failures) >= 2:  # it failed twice: do not spend the budget on it
                continue
            for workload in system.workloads:
                if workload == "throughput" and round_number > system.throughput_rounds:
                    continue
                began = time.monotonic()
                try:
                    line = run_driver(system, workload)
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    got.failures.append(f"{workload}: {error}")
                    print(f"peers: round {round_number} {system.key} {workload} failed: "
                          f"{error}", file=sys.stderr, flush=True)
                    continue
                if workload == "throughput":
                    got.throughput.append(float(line["jobs_per_s"]))  # type: ignore[arg-type]
                else:
                    got.p50.append(float(line["p50_ms"]))  # type: ignore[arg-type]
                    got.p99.append(float(line["p99_ms"]))  # type: ignore[arg-type]
                got.extra.update({k: v for k, v in line.items() if k.startswith("note")})
                print(f"peers: round {round_number} {system.key} {workload} "
                      f"{time.monotonic() - began:.1f}s {json.dumps(line)}",
                      file=sys.stderr, flush=True)
    return results


# report ---------------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{_num(statistics.median(values))} ({_num(min(values))} … {_num(max(values))})"


def _ratio(ours: Sequence[float], theirs: Sequence[float]) -> str:
    if not ours or not theirs or statistics.median(theirs) == 0:
        return "—"
    ratio = statistics.median(ours) / statistics.median(theirs)
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def report(systems: Sequence[System], results: dict[str, Results],
           versions: dict[str, str], notes: Sequence[str]) -> str:
    ours = results[REFERENCE]
    labels = {system.key: system.label for system in systems}
    lines = [
        "| system | version | throughput, jobs/s | apflow/peer (apflow row) "
        "| lateness p50, ms | lateness p99, ms | apflow/peer p99 | ahead on both? |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for system in systems:
        got = results[system.key]
        version = versions.get(VERSION_OF.get(system.key, ""), "")
        mine = system.python == OURS_PYTHON
        same_work = results.get(system.compare_with, ours)
        if mine:
            version, ahead = "this checkout", "—"
        elif not got.throughput or not got.p99 or not same_work.throughput or not ours.p99:
            ahead = "not measured"
        else:
            ahead = "yes" if (statistics.median(same_work.throughput)
                              > statistics.median(got.throughput)
                              and statistics.median(ours.p99)
                              < statistics.median(got.p99)) else "**no**"
        tp_ratio = "—" if mine else (f"{_ratio(same_work.throughput, got.throughput)} "
                                     f"({labels.get(system.compare_with, system.compare_with)})")
        p99_ratio = "—" if mine else _ratio(ours.p99, got.p99)
        lines.append(
            f"| {system.label} | {version} | {_cell(got.throughput)} | {tp_ratio} "
            f"| {_cell(got.p50)} | {_cell(got.p99)} | {p99_ratio} | {ahead} |")
    how = "\n".join(f"- {system.label}: {system.how}." for system in systems)
    failures = [f"- {system.label}: {f}" for system in systems
                for f in dict.fromkeys(results[system.key].failures)]
    extras = [f"- {system.label}: {v}" for system in systems
              for v in results[system.key].extra.values()]
    parts = [
        "## Peers: throughput and lateness against other schedulers", "", machine_line(),
        "", "\n".join(lines), "",
        f"Medians of {ROUNDS} rounds (min … max). Same PostgreSQL server and machine, a fresh "
        "database per system, workload and round, each system in its own process. "
        f"Throughput: {THROUGHPUT_JOBS:,} no-op jobs all due at one instant before the "
        "worker starts; jobs/s from the worker's start to the last job body. Each peer's "
        "throughput is compared with the apflow row doing the same kind of work: the "
        "queues' jobs (procrastinate, pgqueuer) are entries enqueued before the worker "
        "starts, as apflow's queued runs are; APScheduler's date jobs and the other "
        "apflow's scheduled tasks fire a schedule each, as apflow's `once` tasks do (a "
        "ledger row, the schedule's advance and the run row per job). Lateness: "
        f"{LATENESS_JOBS} no-op jobs due at instants spread evenly over "
        f"{LATENESS_SPREAD:.0f} s (apflow: `once` tasks); job body start minus due instant. "
        "Both are read with `time.time()` inside the job body, the same way for every "
        "system. apflow/peer: above 1 on throughput and below 1 on p99 means apflow is "
        f"ahead. Default settings except concurrency ({CONCURRENCY} for the burst, "
        f"{LATENESS_CONCURRENCY} for lateness, where the system has a limit). Pinned in "
        f".venv-peers: {', '.join(f'`{pin}`' for pin in (*PEER_PINS, PUBLISHED_APFLOW_PIN))}.",
        "", how,
    ]
    if extras:
        parts += ["", "Notes from the drivers:", "", *extras]
    if notes or failures:
        parts += ["", "Not measured or failed:", "", *notes, *failures]
    return "\n".join(parts) + "\n"


def main() -> None:
    notes = []
    published_problem = ensure_peers_venv()
    systems = list(SYSTEMS)
    if published_problem:
        notes.append(f"- apflow on PyPI: {published_problem}")
        systems = [s for s in systems if s.key != "published_apflow"]
    versions = installed_versions()
    results = measure(systems)
    print(report(systems, results, versions, notes))


if __name__ == "__main__":
    main()
