"""The dispatcher reuses the tasks the scheduler read when it fired them, only while their rows
are unchanged: a run never starts from an outdated definition."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from apflow.domain.enums import RunState, Trigger
from apflow.domain.models import Task
from apflow.engine.known_tasks import KnownTasks
from apflow.store import RunFilter, Store
from apflow.store.base import TaskHead
from tests.engine.conftest import EngineFactory, add_schedule, add_task, finished, now, until
from tests.store.builders import T0, a_task, at


def test_a_copy_is_current_only_while_the_row_carries_the_updated_at_it_was_kept_with() -> None:
    known = KnownTasks()
    known.remember([a_task("a"), a_task("b")], at(1))
    heads = {"a": TaskHead("a", at(1), False), "b": TaskHead("b", at(2), False),
             "c": TaskHead("c", at(1), False)}
    assert list(known.current(heads)) == ["a"]  # b changed since; c was never kept
    known.remember([a_task("b", name="renamed")], at(2))
    assert known.current(heads)["b"].name == "renamed"


def test_the_oldest_copies_go_first_beyond_the_limit() -> None:
    known = KnownTasks(limit=2)
    known.remember([a_task("a"), a_task("b")], T0)
    known.remember([a_task("a")], T0)  # kept again: now the newest
    known.remember([a_task("c")], T0)
    heads = {task_id: TaskHead(task_id, T0, False) for task_id in "abc"}
    assert (sorted(known.current(heads)), len(known)) == (["a", "c"], 2)


async def test_a_run_fired_before_its_task_changed_starts_from_the_change(
        store: Store, make_engine: EngineFactory) -> None:
    # The slot fires while a manual run holds the task's only slot, so its run waits in
    # the queue, fired from the definition that says "old"; then the command changes.
    await add_task(store, "t1", command="sleep 1; echo first")
    engine = await make_engine()
    first = await engine.trigger("t1", Trigger.MANUAL)
    await until(lambda: _state(store, first.id, RunState.RUNNING))
    task = await store.get_task("t1")
    slot = now() + timedelta(milliseconds=200)
    await store.update_task(replace(
        task, schedule_type="once", schedule_expression=slot.isoformat(),
        schedule_enabled=True, next_run_at=slot, updated_at=now(),
        executor={"type": "command", "command": "echo old"}))
    engine.wake()
    queued = await until(lambda: _scheduled_run(store))
    assert queued.state is RunState.QUEUED
    task = await store.get_task("t1")
    await store.update_task(replace(task, updated_at=now(),
                                    executor={"type": "command", "command": "echo new"}))
    done = await finished(engine, queued.id)
    assert done.state is RunState.SUCCEEDED
    assert "".join(chunk.text for chunk in await store.read_logs(done.id)) == "new\n"


async def test_a_scheduled_run_reuses_the_fired_task_and_runs_it(
        store: Store, make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    slot = now() + timedelta(milliseconds=300)
    await add_schedule(store, "t1", slot, command="echo fired")
    read_tasks = store.get_tasks
    reread: list[str] = []

    async def recorded_get_tasks(task_ids: list[str]) -> list[Task]:
        reread.extend(task_ids)
        return await read_tasks(task_ids)

    monkeypatch.setattr(store, "get_tasks", recorded_get_tasks)
    engine = await make_engine()
    engine.dispatcher.bring_tasks = False  # so only the firing's copy can spare the read
    run = await until(lambda: _scheduled_run(store))
    done = await finished(engine, run.id)
    assert (done.state, done.scheduled_for) == (RunState.SUCCEEDED, slot)
    assert "".join(chunk.text for chunk in await store.read_logs(done.id)) == "fired\n"
    assert len(engine.dispatcher.known) == 1
    assert "t1" not in reread  # started from the copy the firing read


async def test_a_manual_runs_task_comes_with_its_claim(
        store: Store, make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    await add_task(store, "t1", command="echo brought")
    read: list[str] = []
    read_tasks = store.get_tasks

    async def recorded_get_tasks(task_ids: list[str]) -> list[Task]:
        read.extend(task_ids)
        return await read_tasks(task_ids)

    monkeypatch.setattr(store, "get_tasks", recorded_get_tasks)
    engine = await make_engine()
    run = await engine.trigger("t1", Trigger.MANUAL)  # no copy held here: the claim brings it
    done = await finished(engine, run.id)
    assert done.state is RunState.SUCCEEDED
    assert "".join(chunk.text for chunk in await store.read_logs(done.id)) == "brought\n"
    assert read == []


async def _state(store: Store, run_id: str, state: RunState) -> bool:
    return (await store.get_run(run_id)).state is state


async def _scheduled_run(store: Store) -> object:
    runs = await store.list_runs(RunFilter(task_id="t1", trigger=Trigger.SCHEDULE))
    return runs[0] if runs else None
