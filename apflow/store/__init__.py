"""Storage: the Store protocol and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

from apflow.store.base import (
    FinishedRun,
    OccurrenceFilter,
    Planner,
    RunFilter,
    Store,
    TaskFilter,
)
from apflow.store.postgres import PostgresStore
from apflow.store.sqlite import SqliteStore
from apflow.store.urls import mask_password, parse_database_url

__all__ = [
    "FinishedRun",
    "OccurrenceFilter",
    "Planner",
    "PostgresStore",
    "RunFilter",
    "SqliteStore",
    "Store",
    "TaskFilter",
    "mask_password",
    "open_store",
]


def open_store(database_url: str) -> Store:
    """The store for `database_url`, not yet connected (call `await store.open()`).

    `sqlite:///relative/path.db`, `sqlite:////abs/path.db`, `sqlite:///:memory:`,
    `postgresql://...` or `postgres://...`; anything else is a ConfigError naming
    database_url."""
    target = parse_database_url(database_url)
    if target.dialect == "sqlite":
        return SqliteStore(target.location)
    return PostgresStore(target.location)
