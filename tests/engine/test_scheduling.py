"""The scheduler end to end: slots become runs on time, once, and catch-up after downtime."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from apflow.domain.enums import CatchUp, OccurrenceOutcome, RunState, Trigger
from apflow.store import OccurrenceFilter, RunFilter, Store
from tests.engine.conftest import (
    EngineFactory,
    add_schedule,
    add_task,
    finished,
    now,
    seconds,
    until,
)


async def runs_of(store: Store, task_id: str) -> list:
    return sorted(await store.list_runs(RunFilter(task_id=task_id)),
                  key=lambda run: (run.scheduled_for or run.queued_at, run.attempt))


async def ledger(store: Store, task_id: str) -> list[tuple[object, OccurrenceOutcome]]:
    rows = await store.list_occurrences(OccurrenceFilter(task_id=task_id))
    return sorted((row.scheduled_for, row.outcome) for row in rows)


async def test_a_schedule_due_now_fires_exactly_once_and_its_run_succeeds_with_logs(
        store: Store, make_engine: EngineFactory) -> None:
    slot = now()
    await add_schedule(store, "t1", slot, command="echo hello; echo oops >&2")
    engine = await make_engine()
    (run,) = await until(lambda: runs_of(store, "t1"))
    run = await finished(engine, run.id)
    assert (run.state, run.trigger, run.scheduled_for, run.exit_code, run.node) == (
        RunState.SUCCEEDED, Trigger.SCHEDULE, slot, 0, "node-a")
    text = "".join(chunk.text for chunk in await store.read_logs(run.id))
    assert "hello" in text and "oops" in text
    await asyncio.sleep(0.3)
    assert len(await runs_of(store, "t1")) == 1
    assert await ledger(store, "t1") == [(slot, OccurrenceOutcome.FIRED)]
    task = await store.get_task("t1")
    assert (task.schedule_enabled, task.next_run_at, task.run_count, task.status.value) == (
        False, None, 1, "completed")


async def test_a_run_starts_within_milliseconds_of_its_slot(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(poll_interval=30.0)
    slot = now() + timedelta(milliseconds=300)
    await add_schedule(store, "t1", slot)
    engine.wake()  # what the service layer does after creating a task
    (run,) = await until(lambda: runs_of(store, "t1"))
    run = await finished(engine, run.id)
    lateness = seconds(run.started_at - slot)  # type: ignore[operator]
    assert 0 <= lateness < 0.2, f"started {lateness * 1000:.1f} ms after its slot"


async def test_a_woken_scheduler_does_not_wait_for_poll_interval(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(poll_interval=30.0)
    await asyncio.sleep(0.05)  # the scheduler is asleep now, for up to 30 s
    await add_schedule(store, "t1", now())
    engine.wake()
    (run,) = await until(lambda: runs_of(store, "t1"), seconds=3)
    assert (await finished(engine, run.id)).state is RunState.SUCCEEDED


def missed_interval(**fields: object) -> dict[str, object]:
    """A 60 s interval whose last four slots (the newest 30 s ago) fell while it was down."""
    anchor = now() - timedelta(minutes=4, seconds=30)
    values: dict[str, object] = {
        "schedule_type": "interval", "schedule_expression": "60", "schedule_enabled": True,
        "schedule_anchor_at": anchor, "next_run_at": anchor + timedelta(minutes=1)}
    values.update(fields)
    return values


@pytest.mark.parametrize(("mode", "cap", "fired", "others"), [
    (CatchUp.LATEST, 100, 1, OccurrenceOutcome.COALESCED),
    (CatchUp.ALL, 100, 4, None),
    (CatchUp.ALL, 2, 2, OccurrenceOutcome.MISSED),
    (CatchUp.SKIP, 100, 0, OccurrenceOutcome.MISSED),
])
async def test_catch_up_after_downtime_follows_the_mode(
        store: Store, make_engine: EngineFactory, mode: CatchUp, cap: int, fired: int,
        others: OccurrenceOutcome | None) -> None:
    task = await add_task(store, "t1", **missed_interval(catch_up=mode, max_catch_up_runs=cap))
    assert task.next_run_at is not None
    slots = [task.next_run_at + timedelta(minutes=i) for i in range(4)]
    engine = await make_engine()
    rows = await until(lambda: ledger(store, "t1"))
    expected = [(slot, others) for slot in slots[:4 - fired]] + [
        (slot, OccurrenceOutcome.FIRED) for slot in slots[4 - fired:]]
    assert rows == expected
    runs = await runs_of(store, "t1")
    assert [run.scheduled_for for run in runs] == slots[4 - fired:]
    assert {run.trigger for run in runs} <= {Trigger.CATCH_UP}
    for run in runs:
        assert (await finished(engine, run.id)).state is RunState.SUCCEEDED
    after = await store.get_task("t1")
    assert after.next_run_at == slots[-1] + timedelta(minutes=1)  # from the slot, no drift


async def test_max_runs_disables_the_schedule_when_it_fires_not_when_the_run_ends(
        store: Store, make_engine: EngineFactory) -> None:
    await add_task(store, "t1", command="sleep 30", graceful_stop_seconds=0.2,
                   **missed_interval(catch_up=CatchUp.LATEST, max_runs=1))
    await make_engine()
    (run,) = await until(lambda: runs_of(store, "t1"))
    await until(lambda: _running(store, run.id))
    task = await store.get_task("t1")
    assert (task.schedule_enabled, task.next_run_at, task.run_count) == (False, None, 1)


async def _running(store: Store, run_id: str) -> bool:
    return (await store.get_run(run_id)).state is RunState.RUNNING


async def test_two_nodes_fire_each_slot_exactly_once(
        store: Store, make_engine: EngineFactory) -> None:
    slot = now() + timedelta(milliseconds=200)
    for i in range(20):
        await add_schedule(store, f"t{i}", slot)
    first = await make_engine("node-a")
    second = await make_engine("node-b")
    first.wake()
    second.wake()
    runs = await until(lambda: _all_finished(store, 20))
    assert sorted(run.task_id for run in runs) == sorted(f"t{i}" for i in range(20))
    assert all(run.state is RunState.SUCCEEDED for run in runs)
    await asyncio.sleep(0.3)
    assert len(await store.list_runs(RunFilter(), limit=100)) == 20
    rows = await store.list_occurrences(OccurrenceFilter(), limit=100)
    assert len(rows) == 20 and {row.outcome for row in rows} == {OccurrenceOutcome.FIRED}


async def _all_finished(store: Store, count: int) -> list:
    runs = await store.list_runs(RunFilter(), limit=100)
    return runs if len(runs) == count and all(r.state.finished for r in runs) else []


async def test_a_broken_schedule_is_disabled_and_the_others_still_fire(
        store: Store, make_engine: EngineFactory) -> None:
    await add_task(store, "broken", schedule_type="cron", schedule_expression="61 * * * *",
                   schedule_enabled=True, next_run_at=now())
    await add_schedule(store, "fine", now())
    engine = await make_engine()
    (run,) = await until(lambda: runs_of(store, "fine"))
    assert (await finished(engine, run.id)).state is RunState.SUCCEEDED
    broken = await until(lambda: _disabled(store, "broken"))
    assert broken.next_run_at is None
    (row,) = await store.list_occurrences(OccurrenceFilter(task_id="broken"))
    assert row.outcome is OccurrenceOutcome.MISSED and "schedule error" in (row.detail or "")


async def _disabled(store: Store, task_id: str) -> object:
    task = await store.get_task(task_id)
    return None if task.schedule_enabled else task
