"""Numbered migrations applied at open, and a comparable snapshot of a database's schema."""

from __future__ import annotations

import logging
from typing import Any

from apflow.clock import SystemClock
from apflow.domain.errors import StoreError
from apflow.store.database import Database, Tx
from apflow.store.queries import migrations, queries

logger = logging.getLogger(__name__)

# Describe queries each dialect offers; the snapshot is made of whichever exist.
DESCRIBE_QUERIES = ("describe_tables", "describe_columns", "describe_indexes",
                    "describe_constraints", "describe_functions")


async def apply_migrations(db: Database) -> list[int]:
    """Apply pending migrations in one transaction (serialised across nodes); return their
    versions."""
    async with db.write() as tx:
        await tx.execute("lock_migrations")
        await tx.execute("create_migrations_table")
        applied = {row["version"] for row in await tx.fetch("applied_migrations")}
        _refuse_newer_schema(db.dialect, applied)
        done = []
        for migration in migrations(db.dialect):
            if migration.version in applied:
                continue
            await tx.run_script(migration.sql)
            await tx.execute("record_migration", migration.version, migration.name,
                             db.values.time(SystemClock().now(), "applied_at"))
            done.append(migration.version)
    if done:
        logger.info("schema migrated", extra={"action": "schema_migrated",
                                              "dialect": db.dialect, "versions": done})
    return done


def _refuse_newer_schema(dialect: str, applied: set[int]) -> None:
    known = len(migrations(dialect))
    newest = max(applied, default=0)
    if newest > known:
        raise StoreError(f"the database schema is at version {newest}, newer than this "
                         f"apflow knows ({known}): upgrade apflow")


async def schema_snapshot(tx: Tx, dialect: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes and constraints as sorted tuples, to compare two databases."""
    available = queries(dialect)
    snapshot = {}
    for name in DESCRIBE_QUERIES:
        if name in available:
            rows = await tx.fetch(name)
            snapshot[name] = sorted(tuple(_normalise(value) for value in row) for row in rows)
    return snapshot


def _normalise(value: Any) -> Any:
    """Whitespace-insensitive text, so formatting differences do not count."""
    return " ".join(value.split()) if isinstance(value, str) else value
