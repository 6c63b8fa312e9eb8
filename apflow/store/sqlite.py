"""The SQLite store: one aiosqlite connection, WAL, every write in BEGIN IMMEDIATE.

One connection serialised by an asyncio.Lock is the whole concurrency story of writes within a
process: a claim or a fire is one transaction nobody can interleave with. Other processes on
the same file wait on SQLite's own write lock (busy_timeout).

Reads go to a small pool of read-only connections of their own (WAL lets readers run beside
the writer), so an API read never queues behind a claim or a fire, and several reads overlap
while the event loop serves HTTP. A reader sees only committed data: never a half-done write.
Each read block is one statement in practice, and a statement reads one snapshot. An
in-memory database has one connection only, so there reads share the writer's.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from apflow.domain.errors import ApflowError, StoreError, StoreUnavailable
from apflow.store.changes import ChangeCallback, LocalChannel
from apflow.store.errors import wrap_errors
from apflow.store.migrate import apply_migrations
from apflow.store.queries import queries
from apflow.store.rows import Row
from apflow.store.sqlstore import SqlStore
from apflow.store.values import SqliteValues

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
# STRICT tables (3.37); RETURNING and UPDATE ... FROM came earlier.
MIN_SQLITE = (3, 37, 0)
BUSY_RETRY_SECONDS = 5.0
BUSY_RETRY_PAUSE = 0.02
READERS = 2  # read-only connections per store (each is a thread in aiosqlite)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def split_statements(script: str) -> list[str]:
    """The statements of a script, cut where SQLite says a statement is complete."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
            row.strip().startswith("--") or not row.strip() for row in pending.splitlines()):
        raise StoreError("a migration ends with an incomplete statement")
    return statements


class SqliteTx:
    """Named queries on the store's connection."""

    def __init__(self, conn: aiosqlite.Connection, sql: dict[str, str]) -> None:
        self._conn = conn
        self._sql = sql

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        return list(await self._conn.execute_fetchall(self._sql[name], args))

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        rows = await self.fetch(name, *args)
        return rows[0] if rows else None

    async def fetchval(self, name: str, *args: Any) -> Any:
        row = await self.fetchrow(name, *args)
        return None if row is None else row[0]

    async def execute(self, name: str, *args: Any) -> int:
        async with self._conn.execute(self._sql[name], args) as cursor:
            return cursor.rowcount

    async def executemany(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(self._sql[name], rows)

    async def run_script(self, sql: str) -> None:
        # Not executescript(): it would COMMIT the migration transaction first.
        for statement in split_statements(sql):
            await self._conn.execute(statement)


class SqliteLookupTx:
    """Named queries answered on the calling (event loop) thread, for point reads only."""

    def __init__(self, conn: sqlite3.Connection, sql: dict[str, str]) -> None:
        self._conn = conn
        self._sql = sql

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        return list(self._conn.execute(self._sql[name], args).fetchall())

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        row: Row | None = self._conn.execute(self._sql[name], args).fetchone()
        return row

    async def fetchval(self, name: str, *args: Any) -> Any:
        row = await self.fetchrow(name, *args)
        return None if row is None else row[0]

    async def execute(self, name: str, *args: Any) -> int:
        raise StoreError("a lookup connection is read-only")

    async def executemany(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        raise StoreError("a lookup connection is read-only")

    async def run_script(self, sql: str) -> None:
        raise StoreError("a lookup connection is read-only")


class SqliteDatabase:
    """The connection, its lock and the transactions on it."""

    dialect = "sqlite"
    values = SqliteValues()

    def __init__(self, path: str) -> None:
        self.path = path
        self._sql = queries(self.dialect)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._idle_readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._readers: list[aiosqlite.Connection] = []
        self._reader_lock = asyncio.Lock()
        self._lookup: sqlite3.Connection | None = None

    async def connect(self) -> None:
        """Open the file (creating it and its directory) and configure the connection."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreUnavailable(f"SQLite {sqlite3.sqlite_version} is too old: apflow "
                                   f"needs {'.'.join(map(str, MIN_SQLITE))} or newer")
        try:
            if self.path != MEMORY:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the SQLite database {self.path}: {exc}") \
                from exc
        conn.row_factory = sqlite3.Row
        try:
            with wrap_errors():
                await self._configure(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def _configure(self, conn: aiosqlite.Connection) -> None:
        # Switching a new file to WAL can meet SQLITE_BUSY without the busy handler being
        # called (several processes starting at once): retry for up to BUSY_RETRY_SECONDS.
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        while True:
            try:
                await conn.executescript(self._sql["configure_connection"])
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(BUSY_RETRY_PAUSE)

    async def close(self) -> None:
        lookup, self._lookup = self._lookup, None
        if lookup is not None:
            lookup.close()
        readers, self._readers = self._readers, []
        self._idle_readers = asyncio.Queue()
        for reader in readers:
            await reader.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await conn.close()

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[SqliteLookupTx | SqliteTx]:
        """Point reads on the event loop's own thread: a primary-key read in WAL mode never
        waits for a writer and takes a few microseconds, less than a hop to a worker thread
        and back (which dominated tasks.get and the webhook's task read)."""
        if self.path == MEMORY:
            async with self.read() as tx:
                yield tx
            return
        self._connection()  # refuse reads on a closed store
        with wrap_errors():
            if self._lookup is None:
                self._lookup = self._open_lookup()
            yield SqliteLookupTx(self._lookup, self._sql)

    def _open_lookup(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.executescript(self._sql["configure_lookup"])
        return conn

    async def _reader(self) -> aiosqlite.Connection:
        """An idle read-only connection, opened on demand up to READERS."""
        if self._idle_readers.empty():
            async with self._reader_lock:
                if self._idle_readers.empty() and len(self._readers) < READERS:
                    reader = await aiosqlite.connect(self.path, isolation_level=None)
                    reader.row_factory = sqlite3.Row
                    await reader.executescript(self._sql["configure_reader"])
                    self._readers.append(reader)
                    return reader
        return await self._idle_readers.get()

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._conn

    @asynccontextmanager
    async def write(self, *, unique: ApflowError | None = None,
                    foreign_key: ApflowError | None = None) -> AsyncIterator[SqliteTx]:
        async with self._lock:
            conn = self._connection()
            with wrap_errors(unique=unique, foreign_key=foreign_key):
                await conn.execute(self._sql["begin_immediate"])
                try:
                    yield SqliteTx(conn, self._sql)
                    await conn.commit()
                except BaseException:
                    await self._rollback(conn)
                    raise

    def statement(self, *, unique: ApflowError | None = None,
                  foreign_key: ApflowError | None = None) -> AbstractAsyncContextManager[SqliteTx]:
        """One writing statement: a write transaction (SQLite has no round trips to save,
        and its writes take the write lock either way)."""
        return self.write(unique=unique, foreign_key=foreign_key)

    async def _rollback(self, conn: aiosqlite.Connection) -> None:
        try:
            await conn.rollback()
        except Exception as exc:  # the original error matters more; keep it propagating
            logger.error("rollback failed", exc_info=exc, extra={"action": "rollback_failed"})

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        if self.path == MEMORY:
            async with self._lock:
                conn = self._connection()
                with wrap_errors():
                    yield SqliteTx(conn, self._sql)
            return
        self._connection()  # refuse reads on a closed store
        with wrap_errors():
            reader = await self._reader()
        try:
            with wrap_errors():
                yield SqliteTx(reader, self._sql)
        finally:
            if reader in self._readers:
                self._idle_readers.put_nowait(reader)


class SqliteStore(SqlStore):
    """The Store on a SQLite file (or `:memory:`)."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self._sqlite = SqliteDatabase(str(path))
        super().__init__(self._sqlite)
        # Stores on one file share change notifications; an in-memory database is its own.
        self._channel_key = (f"{MEMORY}#{id(self)}" if str(path) == MEMORY
                             else str(Path(path).resolve()))
        self._channel: LocalChannel | None = None

    @property
    def path(self) -> str:
        return self._sqlite.path

    async def open(self) -> None:
        """Open (creating the file and its directory) and apply pending migrations."""
        await self._sqlite.connect()
        try:
            await apply_migrations(self._sqlite)
        except BaseException:
            await self._sqlite.close()
            raise

    async def close(self) -> None:
        """Release the connection; idempotent."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        await self._sqlite.close()

    async def database_time(self) -> datetime | None:
        """None: an embedded database has no clock but this machine's."""
        return None

    async def notify_change(self) -> None:
        """Wake the listeners of this database file in this process."""
        LocalChannel.notify(self._channel_key)

    async def listen_changes(self, callback: ChangeCallback) -> None:
        """Call `callback` whenever notify_change is called on this file in this process."""
        if self._channel is None:
            self._channel = LocalChannel(self._channel_key)
        self._channel.listeners.add(callback)
