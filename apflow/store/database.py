"""What the store logic needs from a driver: transactions that run named queries.

`SqlStore` is written once against these protocols; `sqlite.py` and `postgres.py` provide
them. Queries are called by name (see `queries.py`); parameters are always bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from apflow.domain.errors import ApflowError
from apflow.store.rows import Row
from apflow.store.values import Values


class Tx(Protocol):
    """A connection inside a transaction (write) or in autocommit mode (read)."""

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        """All rows of query `name`."""
        ...

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        """The first row of query `name`, or None."""
        ...

    async def fetchval(self, name: str, *args: Any) -> Any:
        """The first column of the first row of query `name`, or None."""
        ...

    async def execute(self, name: str, *args: Any) -> int:
        """Run query `name`; return how many rows it changed."""
        ...

    async def executemany(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run query `name` once per parameter row, in one round trip where possible."""
        ...

    async def run_script(self, sql: str) -> None:
        """Run a multi-statement script (a migration) inside the transaction."""
        ...


class Database(Protocol):
    """A connected database of one dialect."""

    dialect: str

    @property
    def values(self) -> Values:
        """How this dialect encodes parameters and decodes results."""
        ...

    def write(self, *, unique: ApflowError | None = None,
              foreign_key: ApflowError | None = None) -> AbstractAsyncContextManager[Tx]:
        """A write transaction; driver errors leave it as domain errors (`errors.py`)."""
        ...

    def statement(self, *, unique: ApflowError | None = None,
                  foreign_key: ApflowError | None = None) -> AbstractAsyncContextManager[Tx]:
        """A connection for one writing statement, atomic by itself: no transaction where
        the driver would spend round trips on BEGIN and COMMIT (PostgreSQL); errors as in
        `write`."""
        ...

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for reads (no transaction)."""
        ...

    def lookup(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for one read by primary key (get_task, get_run): the hot path of the
        API and the webhook gateway. Same answers as `read`, possibly served faster."""
        ...
