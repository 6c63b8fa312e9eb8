"""Engine tests run real processes against real stores: a fresh SQLite file, and (marked
`postgres`) a fresh database on the throwaway PostgreSQL server, copied from a template
migrated once per session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apflow.clock import SystemClock
from apflow.domain.models import Run, Task
from apflow.engine.engine import Engine
from apflow.engine.settings import EngineSettings
from apflow.store import Store, open_store
from tests.engine.executors import engine_registry
from tests.pgdb import database_copy, migrated_template

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
FAST = EngineSettings(poll_interval=2.0, max_concurrent=8, heartbeat_interval=0.2,
                      lease_seconds=3.0)


@pytest.fixture(scope="session")
def engine_pg_template(postgres_server_dsn: str) -> Iterator[str]:
    """A migrated PostgreSQL database the engine tests copy."""
    with migrated_template(postgres_server_dsn, "apflow_engine") as name:
        yield name


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL copy of the template."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'apflow.db'}"
        return
    server = request.getfixturevalue("postgres_server_dsn")
    template = request.getfixturevalue("engine_pg_template")
    async with database_copy(server, template, "apflow_engine") as dsn:
        yield dsn


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An opened store on the fresh database."""
    opened = open_store(database_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(store: Store) -> AsyncIterator[EngineFactory]:
    """Start engines on `store` (FAST settings unless overridden); all stopped at the end."""
    started: list[Engine] = []

    async def start(node_id: str = "node-a", **overrides: Any) -> Engine:
        engine = Engine(store, SystemClock(), engine_registry(),
                        replace(FAST, **overrides), node_id=node_id)
        await engine.start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        await engine.stop(drain=False)


@pytest.fixture
async def engine(make_engine: EngineFactory) -> Engine:
    """A started engine (node "node-a")."""
    return await make_engine()


def now() -> datetime:
    return SystemClock().now()


async def add_task(store: Store, task_id: str, **fields: Any) -> Task:
    """Create a task (a shell command `true` unless `command` or `executor` is given)."""
    command = fields.pop("command", "true")
    values: dict[str, Any] = {"name": task_id, "created_at": now(), "updated_at": now(),
                              "executor": {"type": "command", "command": command}}
    values.update(fields)
    return await store.create_task(Task(id=task_id, **values))


async def add_schedule(store: Store, task_id: str, next_run_at: datetime,
                       **fields: Any) -> Task:
    """An enabled `once` schedule at `next_run_at`, unless fields say otherwise."""
    values: dict[str, Any] = {"schedule_type": "once",
                              "schedule_expression": next_run_at.isoformat(),
                              "schedule_enabled": True, "next_run_at": next_run_at}
    values.update(fields)
    return await add_task(store, task_id, **values)


async def until(check: Callable[[], Awaitable[Any]], seconds: float = 10.0,
                step: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; fail after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {seconds} s (last: {value!r})")
        await asyncio.sleep(step)


async def finished(engine: Engine, run_id: str, seconds: float = 10.0) -> Run:
    """The run once finished; fails the test if it is not within `seconds`."""
    run = await engine.wait_run(run_id, seconds)
    assert run.state.finished, f"run {run_id} still {run.state.value} after {seconds} s"
    return run


def seconds(delta: timedelta | None) -> float:
    assert delta is not None
    return delta.total_seconds()
