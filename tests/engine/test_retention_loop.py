"""The retention loop prunes by the engine's settings, in batches, and stops when asked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apflow.clock import FakeClock
from apflow.domain.enums import RunState, Trigger
from apflow.domain.models import Run, Task
from apflow.engine import retention
from apflow.engine.retention import Retention
from apflow.engine.settings import EngineSettings
from apflow.store import open_store
from apflow.store.base import RunFilter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_a_pass_prunes_past_keep_runs_in_batches(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    await store.open()
    try:
        await store.create_task(Task(id="t", name="t", created_at=T0, updated_at=T0))
        await store.insert_runs([
            Run(id=f"r{i:03}", task_id="t", trigger=Trigger.MANUAL, state=RunState.SUCCEEDED,
                queued_at=T0 + timedelta(seconds=i), not_before=T0 + timedelta(seconds=i),
                finished_at=T0 + timedelta(seconds=i + 1))
            for i in range(25)])
        monkeypatch.setattr(retention, "BATCH", 10)  # three batches for 22 runs
        pruner = Retention(store, FakeClock(T0 + timedelta(hours=1)),
                           EngineSettings(keep_runs=3))
        pruned = await pruner.prune()
        assert pruned.runs == 22
        left = await store.list_runs(RunFilter(task_id="t"), limit=100)
        assert sorted(r.id for r in left) == ["r022", "r023", "r024"]
    finally:
        await store.close()


async def test_the_loop_stops_promptly(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    await store.open()
    try:
        pruner = Retention(store, FakeClock(T0), EngineSettings(retention_interval=3600))
        loop = asyncio.create_task(pruner.run())
        await asyncio.sleep(0.05)
        pruner.stop()
        await asyncio.wait_for(loop, 2)
    finally:
        await store.close()
