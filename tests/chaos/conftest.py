"""Chaos tests run real `apflow scheduler start` processes on one fresh PostgreSQL database.

`nodes` starts node processes (stdout and stderr to files in tmp_path) and stops every one
of them, by PID, at the end of the test, printing the tail of each log (pytest shows it when
the test failed). `db` is a plain asyncpg connection to the same database for reading the
ledger and the runs and for cutting the other connections; `service` creates tasks the way
another node's API would (through its own store, with NOTIFY).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from apflow.clock import SystemClock
from apflow.config import Config
from apflow.service import Principal, Service
from apflow.store import open_store
from tests.cli.helpers import APFLOW_BIN, clean_env
from tests.pgdb import database_copy, migrated_template

ADMIN = Principal("chaos", "admin")
LOG_TAIL_LINES = 60
STOP_TIMEOUT = 20.0


@pytest.fixture(scope="session")
def chaos_pg_template(postgres_server_dsn: str) -> Iterator[str]:
    """A migrated PostgreSQL database each chaos test copies."""
    with migrated_template(postgres_server_dsn, "apflow_chaos") as name:
        yield name


@pytest.fixture
async def database_url(postgres_server_dsn: str, chaos_pg_template: str) -> AsyncIterator[str]:
    """A fresh migrated database for this test, dropped (with any session left) afterwards."""
    async with database_copy(postgres_server_dsn, chaos_pg_template, "apflow_chaos") as dsn:
        yield dsn


# reading the database --------------------------------------------------------------------


@dataclass
class Db:
    """One plain connection to the test database; it reconnects if it was cut."""

    dsn: str
    conn: Any = None

    async def connection(self) -> Any:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn)
        return self.conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await (await self.connection()).fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await (await self.connection()).fetchval(sql, *args)

    async def now(self) -> datetime:
        value: datetime = await self.fetchval("SELECT clock_timestamp()")
        return value

    async def cut_connections(self) -> int:
        """Terminate every other session on this database (the nodes' pools and listeners)."""
        terminated = await self.fetch(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return sum(1 for row in terminated if row["done"])

    async def cut_connections_except(self, keep: Any) -> int:
        """Terminate every session on this database but this one and `keep`'s."""
        terminated = await self.fetch(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND pid <> $1", keep.get_server_pid())
        return sum(1 for row in terminated if row["done"])

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            await self.conn.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    reader = Db(database_url)
    try:
        yield reader
    finally:
        await reader.close()


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    """The use cases on their own store, as another node's API would call them."""
    store = open_store(database_url)
    await store.open()
    config = Config(database_url=database_url, jwt_secret="chaos-" + "x" * 32)
    try:
        yield Service(store, SystemClock(), None, config)
    finally:
        await store.close()


async def create_task(service: Service, **fields: Any) -> dict[str, Any]:
    """tasks.create as the admin."""
    task: dict[str, Any] = await service.call("tasks.create", fields, ADMIN)
    return task


# node processes ----------------------------------------------------------------------------


@dataclass
class NodeProcess:
    """One `apflow scheduler start`."""

    node_id: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: datetime  # wall clock just before it was spawned

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Nodes:
    """Starts and stops node processes on one database."""

    database_url: str
    root: Path
    started: list[NodeProcess] = field(default_factory=list)

    def start(self, node_id: str, *, lease_seconds: float = 3.0, poll_interval: float = 60.0,
              max_concurrent: int = 10) -> NodeProcess:
        """Spawn a node; its output goes to <tmp>/<node>-<n>.log."""
        home = self.root / "home"
        env = clean_env(home, APFLOW_DATABASE_URL=self.database_url,
                        APFLOW_SCHEDULER_NODE_ID=node_id,
                        APFLOW_SCHEDULER_LEASE_SECONDS=str(lease_seconds),
                        APFLOW_SCHEDULER_POLL_INTERVAL=str(poll_interval),
                        APFLOW_SCHEDULER_MAX_CONCURRENT=str(max_concurrent),
                        APFLOW_JWT_SECRET="chaos-" + "x" * 32)
        log = self.root / f"{node_id}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(APFLOW_BIN), "scheduler", "start"], env=env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        node = NodeProcess(node_id, proc, log, datetime.now(UTC))
        self.started.append(node)
        return node

    def kill(self, node: NodeProcess) -> None:
        """SIGKILL: nothing is recorded, its runs stay running in the database."""
        os.kill(node.pid, signal.SIGKILL)
        node.proc.wait(timeout=STOP_TIMEOUT)

    async def terminate(self, node: NodeProcess, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait (bounded) for the drain; the exit code."""
        node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while node.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.node_id} did not exit within {timeout} s of "
                                     f"SIGTERM:\n{node.tail()}")
            await asyncio.sleep(0.05)
        return node.proc.returncode

    async def wait_ready(self, db: Db, *nodes: NodeProcess, timeout: float = 20.0) -> None:
        """Until each node's row says it is active since it was spawned (its loops run)."""
        deadline = time.monotonic() + timeout
        pending = list(nodes)
        while pending:
            for node in list(pending):
                if not node.alive():
                    raise AssertionError(f"{node.node_id} exited ({node.proc.returncode}) "
                                         f"before it was ready:\n{node.tail()}")
                row = await db.fetch("SELECT state, started_at FROM nodes WHERE id = $1",
                                     node.node_id)
                if row and row[0]["state"] == "active" and row[0]["started_at"] >= node.started:
                    pending.remove(node)
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"nodes not ready within {timeout} s: "
                                     f"{[n.node_id for n in pending]}\n{self.logs()}")
            await asyncio.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(f"----- {node.node_id} (pid {node.pid}, {node.log.name}) -----\n"
                         f"{node.tail()}" for node in self.started)

    def stop_all(self) -> None:
        """Kill (by PID) every node still running."""
        for node in self.started:
            if node.alive():
                node.proc.kill()
            node.proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def nodes(database_url: str, tmp_path: Path) -> Iterator[Nodes]:
    """Node processes on the test database; all stopped at the end, their logs printed."""
    started = Nodes(database_url, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
        print(started.logs())


async def until(check: Any, *, timeout: float, what: str, nodes: Nodes | None = None,
                every: float = 0.05) -> Any:
    """Await `check()` every `every` s until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = f"\n{nodes.logs()}" if nodes is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{logs}")
        await asyncio.sleep(every)
