"""Retention in the SQL stores: old finished runs (with their logs) and old ledger rows go,
a batch per transaction so no lock is held for long."""

from __future__ import annotations

from datetime import datetime

from apflow.store.database import Database


class RetentionQueries:
    """The pruning part of SqlStore."""

    _db: Database

    async def retention_configured(self) -> bool:
        """Does any task set its own keep_runs or keep_for_seconds?"""
        async with self._db.read() as tx:
            return bool(await tx.fetchval("retention_configured"))

    async def prune_runs(self, now: datetime, *, keep_runs: int | None,
                         keep_for_seconds: int | None, limit: int) -> int:
        """Delete up to `limit` finished runs past retention (a task's own keep_runs /
        keep_for_seconds, else these defaults; None = keep); returns how many."""
        stamp = self._db.values.time(now, "now")
        async with self._db.write() as tx:
            rows = await tx.fetch("prunable_runs", stamp, keep_runs, keep_for_seconds, limit)
            ids = [str(row[0]) for row in rows]
            if ids:
                await tx.execute("delete_runs", self._db.values.ids(ids))
        return len(ids)

    async def prune_occurrences(self, now: datetime, *, keep_for_seconds: int | None,
                                limit: int) -> int:
        """Delete up to `limit` ledger rows recorded longer ago than keep_for."""
        stamp = self._db.values.time(now, "now")
        async with self._db.write() as tx:
            return await tx.execute("prune_occurrences", stamp, keep_for_seconds, limit)
