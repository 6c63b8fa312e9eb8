"""Driver errors become domain errors at the store's edge, with the cause kept.

Like procrastinate's `wrap_exceptions`: nothing from sqlite3 or asyncpg leaks past the store;
anything that is not a driver error (a planner's exception, a domain error) passes unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from apflow.domain.errors import (
    ApflowError,
    Conflict,
    InvalidParams,
    StoreError,
    StoreUnavailable,
)

# asyncpg raises these (or OSError, TimeoutError included) when the server cannot be
# reached or the link is lost.
PG_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
PG_INVALID_VALUE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.DataError,
)
SQLITE_UNAVAILABLE = ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_READONLY", "SQLITE_FULL")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def translate(exc: BaseException, *, unique: ApflowError | None = None,
              foreign_key: ApflowError | None = None) -> ApflowError | None:
    """The domain error for a driver error, or None if `exc` is not one."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return unique or Conflict(f"already exists: {_first_line(exc)}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return foreign_key or InvalidParams(f"unknown reference: {_first_line(exc)}")
    if isinstance(exc, PG_INVALID_VALUE_ERRORS):
        return InvalidParams(f"value refused by the database: {_first_line(exc)}")
    if isinstance(exc, PG_CONNECTION_ERRORS):
        return StoreUnavailable(f"the database cannot be reached: {_first_line(exc)}")
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return StoreError(f"database error: {_first_line(exc)}")
    if isinstance(exc, sqlite3.Error):
        return _translate_sqlite(exc, unique=unique, foreign_key=foreign_key)
    return None


def _translate_sqlite(exc: sqlite3.Error, *, unique: ApflowError | None,
                      foreign_key: ApflowError | None) -> ApflowError:
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return unique or Conflict(f"already exists: {_first_line(exc)}")
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return foreign_key or InvalidParams(f"unknown reference: {_first_line(exc)}")
    if isinstance(exc, sqlite3.IntegrityError):
        return InvalidParams(f"value refused by the database: {_first_line(exc)}")
    if name in SQLITE_UNAVAILABLE:
        return StoreUnavailable(f"the database cannot be used: {_first_line(exc)}")
    return StoreError(f"database error: {_first_line(exc)}")


@contextmanager
def wrap_errors(*, unique: ApflowError | None = None,
                foreign_key: ApflowError | None = None) -> Iterator[None]:
    """Re-raise driver errors as domain errors; `unique`/`foreign_key` say what a violation
    means at this call (e.g. Conflict("task t1 already exists"))."""
    try:
        yield
    except ApflowError:
        raise
    except Exception as exc:
        wrapped = translate(exc, unique=unique, foreign_key=foreign_key)
        if wrapped is None:
            raise
        raise wrapped from exc
