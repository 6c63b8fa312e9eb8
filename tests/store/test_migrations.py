"""Migrations: they produce exactly schema.sql, run once, and refuse a newer schema.

The idea is procrastinate's: a database built by every migration in turn must equal one built
from the hand-kept schema.sql, so the two can never drift apart unnoticed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from apflow.domain.errors import StoreError
from apflow.store import open_store
from apflow.store.database import Database
from apflow.store.migrate import schema_snapshot
from apflow.store.postgres import PostgresDatabase
from apflow.store.queries import DIALECTS, migrations, queries, schema
from apflow.store.sqlite import SqliteDatabase
from apflow.store.sqlstore import SqlStore
from tests.pgdb import create_database, database_dsn, drop_database
from tests.store.builders import at
from tests.store.conftest import BACKENDS

# Queries only one dialect needs: SQLite's connection pragmas and write lock, STRICT flags;
# PostgreSQL's NOTIFY and the listener's ping.
DIALECT_ONLY = {"sqlite": {"configure_connection", "configure_reader", "configure_lookup",
                           "begin_immediate",
                           "describe_tables", "lock_claimable_tasks"},
                "postgresql": {"notify_change", "ping", "database_time", "describe_functions",
                               "claim_runs_with_tasks"}}

NewDatabase = Callable[[], Any]


@pytest.fixture(params=BACKENDS)
async def empty_databases(request: pytest.FixtureRequest,
                          tmp_path: Path) -> AsyncIterator[NewDatabase]:
    """A factory of empty (never migrated) databases: their database_url each."""
    dropped: list[str] = []

    async def new_sqlite() -> str:
        return f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"

    async def new_postgres() -> str:
        server = request.getfixturevalue("postgres_server_dsn")
        name = f"apflow_empty_{uuid.uuid4().hex[:10]}"
        await create_database(server, name, "template0")
        dropped.append(name)
        return database_dsn(server, name)

    yield new_sqlite if request.param == "sqlite" else new_postgres
    for name in dropped:
        await drop_database(request.getfixturevalue("postgres_server_dsn"), name)


def _database_for(url: str) -> Database:
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url.removeprefix("sqlite:///"))
    return PostgresDatabase(url)


async def _snapshot_of_schema_sql(url: str) -> dict[str, list[tuple[Any, ...]]]:
    db: Any = _database_for(url)
    await db.connect()
    try:
        async with db.write() as tx:
            await tx.run_script(schema(db.dialect))
        async with db.read() as tx:
            return await schema_snapshot(tx, db.dialect)
    finally:
        await db.close()


async def _opened(url: str) -> SqlStore:
    store = open_store(url)
    assert isinstance(store, SqlStore)
    await store.open()
    return store


async def test_the_migrations_produce_exactly_schema_sql(empty_databases: NewDatabase) -> None:
    migrated = await _opened(await empty_databases())
    try:
        from_migrations = await migrated.schema_snapshot()
    finally:
        await migrated.close()
    from_schema = await _snapshot_of_schema_sql(await empty_databases())
    assert from_migrations["describe_columns"], "the snapshot must see the tables"
    assert from_migrations == from_schema


async def test_opening_again_applies_nothing(empty_databases: NewDatabase) -> None:
    url = await empty_databases()
    first = await _opened(url)
    versions = await first.applied_migrations()
    await first.close()
    second = await _opened(url)
    try:
        assert await second.applied_migrations() == versions
    finally:
        await second.close()
    assert versions == [m.version for m in migrations(second.dialect)]


async def test_nodes_starting_at_once_migrate_once(empty_databases: NewDatabase) -> None:
    url = await empty_databases()
    stores = await asyncio.gather(*(_opened(url) for _ in range(5)))
    try:
        for store in stores:
            assert await store.applied_migrations() == [
                m.version for m in migrations(store.dialect)]
    finally:
        for store in stores:
            await store.close()


async def test_a_schema_newer_than_this_apflow_is_refused(empty_databases: NewDatabase) -> None:
    url = await empty_databases()
    db: Any = _database_for(url)
    await db.connect()
    try:
        async with db.write() as tx:
            await tx.execute("create_migrations_table")
            await tx.execute("record_migration", 999, "from_the_future",
                             db.values.time(at(0), "applied_at"))
    finally:
        await db.close()
    store = open_store(url)
    with pytest.raises(StoreError, match="newer"):
        await store.open()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_both_dialects_name_the_same_queries(dialect: str) -> None:
    other = next(d for d in DIALECTS if d != dialect)
    mine = set(queries(dialect)) - DIALECT_ONLY[dialect]
    theirs = set(queries(other)) - DIALECT_ONLY[other]
    assert mine == theirs


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_named_query_has_a_one_line_comment(dialect: str) -> None:
    from importlib import resources
    text = resources.files("apflow.store").joinpath(
        "sql", dialect, "queries.sql").read_text(encoding="utf-8")
    headers = re.findall(r"^-- name: ([a-z0-9_]+)\n(.*)$", text, re.MULTILINE)
    assert [name for name, _ in headers] == list(queries(dialect))
    assert all(comment.startswith("-- ") and len(comment) > 5 for _, comment in headers)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_query_formats_values_in(dialect: str) -> None:
    for name, sql in queries(dialect).items():
        assert "{" not in sql and "%s" not in sql, name
