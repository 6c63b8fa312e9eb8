"""Databases on the throwaway PostgreSQL server, for every test directory that needs one.

The pattern (pgqueuer, procrastinate): migrate a template database once per session, copy it
per test with `CREATE DATABASE ... TEMPLATE`, drop the copy afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from apflow.store import PostgresStore


def database_dsn(server_dsn: str, database: str) -> str:
    """The server's DSN pointed at another database."""
    parts = urlsplit(server_dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def outside_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` on a private loop (session fixtures may be set up inside a test's loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def admin_sql(server_dsn: str, sql: str) -> None:
    """One statement on the server's maintenance connection."""
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(server_dsn: str, name: str, template: str | None = None) -> None:
    """An empty database, or a copy of `template`."""
    clause = f' TEMPLATE "{template}"' if template else ""
    await admin_sql(server_dsn, f'CREATE DATABASE "{name}"{clause}')


async def drop_database(server_dsn: str, name: str) -> None:
    """Drop it, closing whatever sessions are left."""
    await admin_sql(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrated_database(server_dsn: str, name: str) -> None:
    """A new database with apflow's schema (the store migrates it when it opens)."""
    await create_database(server_dsn, name)
    store = PostgresStore(database_dsn(server_dsn, name))
    await store.open()
    await store.close()


@contextmanager
def migrated_template(server_dsn: str, prefix: str) -> Iterator[str]:
    """For a session fixture: the name of a migrated database to copy, dropped at the end."""
    name = f"{prefix}_tpl_{uuid.uuid4().hex[:8]}"
    outside_loop(migrated_database(server_dsn, name))
    try:
        yield name
    finally:
        outside_loop(drop_database(server_dsn, name))


@asynccontextmanager
async def database_copy(server_dsn: str, template: str | None,
                        prefix: str) -> AsyncIterator[str]:
    """The DSN of a fresh copy of `template` (None: an empty database), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await create_database(server_dsn, name, template)
    try:
        yield database_dsn(server_dsn, name)
    finally:
        await drop_database(server_dsn, name)
