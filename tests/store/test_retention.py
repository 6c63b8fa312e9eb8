"""Retention: finished runs past keep_runs / keep_for go with their logs; live runs stay;
a task's own settings beat the defaults; ledger rows go by age."""

from __future__ import annotations

from datetime import timedelta

from apflow.domain.enums import RunState
from apflow.domain.models import LogChunk
from apflow.store.base import OccurrenceFilter, RunFilter
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, a_slot, a_task, at


async def finished_runs(store: SqlStore, task_id: str, count: int, *, start: float = 0) -> None:
    await store.insert_runs([
        a_run(f"{task_id}-r{i}", task_id, RunState.SUCCEEDED, not_before=at(start + i),
              finished_at=at(start + i + 0.5))
        for i in range(count)])


async def run_ids(store: SqlStore, task_id: str) -> list[str]:
    return sorted(r.id for r in await store.list_runs(RunFilter(task_id=task_id), limit=1000))


async def test_nothing_is_configured_nothing_goes(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await finished_runs(store, "t1", 5)
    assert await store.retention_configured() is False
    assert await store.prune_runs(at(10_000), keep_runs=None, keep_for_seconds=None,
                                  limit=100) == 0
    assert len(await run_ids(store, "t1")) == 5


async def test_keep_runs_keeps_the_newest_per_task_and_their_logs(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.create_task(a_task("t2"))
    await finished_runs(store, "t1", 5)
    await finished_runs(store, "t2", 2)
    await store.append_logs([LogChunk("t1-r0", 0, at(0), "stdout", "old\n"),
                             LogChunk("t1-r4", 0, at(4), "stdout", "new\n")])
    assert await store.prune_runs(at(100), keep_runs=2, keep_for_seconds=None, limit=100) == 3
    assert await run_ids(store, "t1") == ["t1-r3", "t1-r4"]
    assert await run_ids(store, "t2") == ["t2-r0", "t2-r1"]
    assert await store.read_logs("t1-r0") == []
    assert [c.text for c in await store.read_logs("t1-r4")] == ["new\n"]


async def test_live_runs_are_never_pruned(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.insert_runs([a_run("q", "t1", RunState.QUEUED, not_before=at(0))])
    await finished_runs(store, "t1", 3, start=10)
    assert await store.prune_runs(at(100), keep_runs=1, keep_for_seconds=1, limit=100) == 3
    assert await run_ids(store, "t1") == ["q"]


async def test_keep_for_prunes_by_age_and_a_tasks_own_setting_wins(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.create_task(a_task("t2", keep_for_seconds=10_000))
    await finished_runs(store, "t1", 3)
    await finished_runs(store, "t2", 3)
    now = at(0) + timedelta(seconds=3600)
    assert await store.prune_runs(now, keep_runs=None, keep_for_seconds=60, limit=100) == 3
    assert await run_ids(store, "t1") == []
    assert len(await run_ids(store, "t2")) == 3


async def test_a_tasks_keep_runs_applies_without_defaults(store: SqlStore) -> None:
    await store.create_task(a_task("t1", keep_runs=1))
    await finished_runs(store, "t1", 3)
    assert await store.retention_configured() is True
    assert await store.prune_runs(at(100), keep_runs=None, keep_for_seconds=None,
                                  limit=100) == 2


async def test_pruning_goes_in_batches(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await finished_runs(store, "t1", 7)
    assert await store.prune_runs(at(100), keep_runs=1, keep_for_seconds=None, limit=4) == 4
    assert await store.prune_runs(at(100), keep_runs=1, keep_for_seconds=None, limit=4) == 2
    assert await store.prune_runs(at(100), keep_runs=1, keep_for_seconds=None, limit=4) == 0


async def test_old_ledger_rows_go_by_age(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.record_occurrences([a_slot("t1", at(0)), a_slot("t1", at(7200))])
    now = at(7200) + timedelta(seconds=30)
    assert await store.prune_occurrences(now, keep_for_seconds=3600, limit=100) == 1
    rows = await store.list_occurrences(OccurrenceFilter(task_id="t1"))
    assert [r.scheduled_for for r in rows] == [at(7200)]


async def test_runs_with_long_expired_leases_are_crashed(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.insert_runs([a_run("q", "t1", RunState.QUEUED, not_before=at(0))])
    claimed = await store.claim_runs(at(0), "n1", limit=1, lease_seconds=10)
    assert [r.id for r in claimed] == ["q"]
    assert await store.crash_expired_runs(at(15), at(5)) == []  # expired at 10, not before 5
    crashed = await store.crash_expired_runs(at(40), at(20))
    assert [(r.id, r.state, r.end_reason) for r in crashed] == [
        ("q", RunState.CRASHED, "lease_expired")]
