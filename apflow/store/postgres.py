"""The PostgreSQL store: an asyncpg pool, jsonb codecs, and LISTEN/NOTIFY between nodes.

Several nodes share one database. Due tasks are locked with FOR UPDATE SKIP LOCKED and a
whole fire_due batch is one transaction (a batch is small and quick; the ledger's unique key,
not the lock, is what forbids a double fire). Claims take a per-task advisory try-lock and
recount running runs after it, so max_concurrent holds across nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from apflow.domain.errors import ApflowError, StoreUnavailable
from apflow.domain.models import Task
from apflow.store.changes import ChangeCallback
from apflow.store.errors import wrap_errors
from apflow.store.listener import ChangeListener
from apflow.store.migrate import apply_migrations
from apflow.store.queries import queries
from apflow.store.rows import TASK, Row, from_rows
from apflow.store.sqlstore import SqlStore
from apflow.store.urls import mask_password
from apflow.store.values import PostgresValues, dump_json, load_json

CHANNEL = "apflow_changes"
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
LISTENER_NAME = "apflow-listener"
# The runs table swings from empty to thousands of queued rows and back; a cached generic
# plan chosen while it was small once took seconds per claim. Planning each call costs less.
POOL_SETTINGS = {"plan_cache_mode": "force_custom_plan", "application_name": "apflow"}


async def setup_connection(conn: Any) -> None:
    """JSON and jsonb columns in and out as Python values."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=dump_json, decoder=load_json,
                                  schema="pg_catalog")


async def keep_session(conn: Any) -> None:
    """Nothing to undo when a connection goes back to the pool: apflow keeps no session
    state (its advisory locks are per transaction, LISTEN has a connection of its own, the
    claim functions' planner settings are theirs). asyncpg's default reset sends
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release: one
    round trip more per store call. An open transaction is still rolled back by asyncpg."""


def _affected(status: str) -> int:
    """Rows changed, from a command tag such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTx:
    """Named queries on one pooled connection."""

    def __init__(self, conn: Any, sql: dict[str, str]) -> None:
        self._conn = conn
        self._sql = sql

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._conn.fetch(self._sql[name], *args)
        return rows

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        row: Row | None = await self._conn.fetchrow(self._sql[name], *args)
        return row

    async def fetchval(self, name: str, *args: Any) -> Any:
        return await self._conn.fetchval(self._sql[name], *args)

    async def execute(self, name: str, *args: Any) -> int:
        return _affected(await self._conn.execute(self._sql[name], *args))

    async def executemany(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(self._sql[name], rows)

    async def run_script(self, sql: str) -> None:
        await self._conn.execute(sql)  # no arguments: the simple protocol runs every statement


class PostgresDatabase:
    """The pool and the transactions on it."""

    dialect = "postgresql"
    values = PostgresValues()

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._sql = queries(self.dialect)
        self._pool: Any = None

    def unreachable(self, exc: BaseException) -> StoreUnavailable:
        """A one-line StoreUnavailable naming the server without its password."""
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StoreUnavailable(
            f"cannot connect to PostgreSQL at {mask_password(self.dsn)}: {reason}")

    async def connect(self) -> None:
        """Open the pool (one connection at first); StoreUnavailable if unreachable."""
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE,
                init=setup_connection, reset=keep_session, timeout=CONNECT_TIMEOUT,
                server_settings=POOL_SETTINGS)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self.unreachable(exc) from exc

    async def connect_listener(self) -> Any:
        """A dedicated connection outside the pool, for LISTEN."""
        try:
            return await asyncpg.connect(
                self.dsn, timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": LISTENER_NAME})
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self.unreachable(exc) from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:  # a connection still busy: do not hang shutdown on it
            pool.terminate()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return self._pool

    @asynccontextmanager
    async def write(self, *, unique: ApflowError | None = None,
                    foreign_key: ApflowError | None = None) -> AsyncIterator[PostgresTx]:
        pool = self._require_pool()
        with wrap_errors(unique=unique, foreign_key=foreign_key):
            async with pool.acquire() as conn, conn.transaction():
                yield PostgresTx(conn, self._sql)

    @asynccontextmanager
    async def statement(self, *, unique: ApflowError | None = None,
                        foreign_key: ApflowError | None = None) -> AsyncIterator[PostgresTx]:
        """One writing statement in autocommit: atomic by itself, without the BEGIN and
        COMMIT round trips of a transaction."""
        pool = self._require_pool()
        with wrap_errors(unique=unique, foreign_key=foreign_key):
            async with pool.acquire() as conn:
                yield PostgresTx(conn, self._sql)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresTx]:
        pool = self._require_pool()
        with wrap_errors():
            async with pool.acquire() as conn:
                yield PostgresTx(conn, self._sql)

    def lookup(self) -> AbstractAsyncContextManager[PostgresTx]:
        return self.read()


class PostgresStore(SqlStore):
    """The Store on a PostgreSQL database shared by any number of nodes."""

    dialect = "postgresql"

    def __init__(self, dsn: str) -> None:
        self._pg = PostgresDatabase(dsn)
        super().__init__(self._pg)
        self._listener: ChangeListener | None = None

    async def open(self) -> None:
        """Connect and apply pending migrations. StoreUnavailable if unreachable."""
        await self._pg.connect()
        try:
            await apply_migrations(self._pg)
        except BaseException:
            await self._pg.close()
            raise

    async def close(self) -> None:
        """Stop listening and release the pool; idempotent."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        await self._pg.close()

    async def _claim(self, due_by: Any, user_id: str | None, limit: int, node: str,
                     lease_until: Any, now: Any,
                     with_tasks: bool) -> tuple[Sequence[Row], list[Task]]:
        """Lock and start in one statement, its own transaction: apflow_claim_runs
        (migration 0003) recounts after its locks with a fresh snapshot. With `with_tasks`
        each row also carries its task's columns, after task_has_children."""
        query = "claim_runs_with_tasks" if with_tasks else "claim_runs"
        async with self._pg.read() as tx:
            rows = await tx.fetch(query, due_by, user_id, limit, node, lease_until, now)
        if not with_tasks or not rows:
            return rows, []
        first: dict[str, Row] = {}  # each task's row once; none for a deleted task
        for row in rows:
            if row["task_updated_at"] is not None:
                first.setdefault(row["task_id"], row)
        return rows, from_rows(TASK, list(first.values()), self._pg.values,
                               after="task_has_children")

    async def database_time(self) -> datetime | None:
        """The server's clock_timestamp() (real time, not the transaction's start)."""
        async with self._pg.read() as tx:
            instant: datetime = await tx.fetchval("database_time")
        return instant

    async def notify_change(self) -> None:
        """Tell every node's scheduler (this one's too) that schedules changed."""
        async with self._pg.read() as tx:
            await tx.execute("notify_change")

    async def listen_changes(self, callback: ChangeCallback) -> None:
        """Call `callback` on every notify_change of any node; the LISTEN connection is
        re-established if it drops."""
        if self._listener is None:
            self._listener = ChangeListener(self._pg.connect_listener, CHANNEL,
                                            queries(self.dialect)["ping"])
        await self._listener.add(callback)
