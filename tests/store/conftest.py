"""One store suite, two backends: every test taking `store` runs on SQLite and PostgreSQL.

SQLite tests get a fresh file each. PostgreSQL tests share one database per session, copied
from a template migrated once (`CREATE DATABASE ... TEMPLATE`, the pgqueuer/procrastinate
way) and emptied before each test: copying a database per test costs 0.2-0.5 s on a small
machine (it copies the system catalogs), emptying a few small tables about a millisecond.
Tests about databases themselves (migrations, concurrent starts) make their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from apflow.store import open_store
from apflow.store.sqlstore import SqlStore
from tests.pgdb import (
    create_database,
    database_dsn,
    drop_database,
    migrated_template,
    outside_loop,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_template(postgres_server_dsn: str) -> Iterator[str]:
    """A migrated database to copy."""
    with migrated_template(postgres_server_dsn, "apflow") as name:
        yield name


@pytest.fixture(scope="session")
def postgres_session_database(postgres_server_dsn: str, postgres_template: str) -> Iterator[str]:
    """DSN of the database the PostgreSQL tests share, a copy of the template."""
    name = f"apflow_test_{uuid.uuid4().hex[:8]}"
    outside_loop(create_database(postgres_server_dsn, name, postgres_template))
    yield database_dsn(postgres_server_dsn, name)
    outside_loop(drop_database(postgres_server_dsn, name))


async def empty_database(dsn: str) -> None:
    """Delete every row but the migration ledger (tiny tables: DELETE beats TRUNCATE)."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = "
                                  "current_schema() AND tablename <> 'schema_migrations'")
        async with conn.transaction():
            for row in tables:
                await conn.execute(f'DELETE FROM "{row["tablename"]}"')
    finally:
        await conn.close()


@dataclass
class Backend:
    """One fresh database of one kind; hands out as many opened stores on it as asked."""

    name: str
    url: str
    opened: list[SqlStore] = field(default_factory=list)

    async def new_store(self) -> SqlStore:
        store = open_store(self.url)
        assert isinstance(store, SqlStore)
        await store.open()
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An empty, migrated database: a new SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        backend = Backend("sqlite", f"sqlite:///{tmp_path / 'apflow.db'}")
    else:
        dsn = request.getfixturevalue("postgres_session_database")
        await empty_database(dsn)
        backend = Backend("postgres", dsn)
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def store(backend: Backend) -> SqlStore:
    """An opened store on a fresh database."""
    return await backend.new_store()
