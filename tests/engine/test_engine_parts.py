"""The engine's small parts: execution slots, group commit, tree checks, run environment."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from apflow.clock import FakeClock
from apflow.domain.enums import RunState, Trigger
from apflow.domain.errors import StoreError
from apflow.domain.models import Run, Task
from apflow.engine.batching import BatchWriter
from apflow.engine.capacity import Capacity
from apflow.engine.dispatcher import BLOCKED_RECHECK_SECONDS
from apflow.engine.engine import Engine
from apflow.engine.environment import run_environment
from apflow.engine.planning import queued_run
from apflow.engine.runs import STOP_CANCELLED, STOP_TREE, ActiveRun, stopped_outcome
from apflow.engine.trees import dependency_cycle, tree_problem
from apflow.store import Store
from tests.engine.conftest import FAST
from tests.engine.executors import engine_registry

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def task(task_id: str, parent: str | None = None, deps: Sequence[str] = ()) -> Task:
    return Task(id=task_id, name=task_id, created_at=T0, updated_at=T0, parent_id=parent,
                dependencies=tuple(deps))


def run(run_id: str = "r1", **fields: object) -> Run:
    values: dict[str, object] = {"task_id": "t1", "trigger": Trigger.MANUAL,
                                 "state": RunState.RUNNING, "queued_at": T0, "not_before": T0}
    values.update(fields)
    return Run(id=run_id, **values)  # type: ignore[arg-type]


# capacity ---------------------------------------------------------------------------------------


async def test_waiting_children_take_freed_slots_before_new_claims() -> None:
    woken: list[int] = []
    slots = Capacity(2, lambda: woken.append(1))
    slots.take(2)
    assert slots.free_for_claims() == 0
    child = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to the child, not to the claim loop
    await child
    assert (slots.used, slots.free_for_claims(), woken) == (2, 0, [])
    slots.release()
    assert (slots.used, slots.free_for_claims(), woken) == (1, 1, [1])


async def test_a_child_that_gives_up_waiting_does_not_leak_a_slot() -> None:
    slots = Capacity(1, lambda: None)
    slots.take(1)
    child = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    child.cancel()
    with pytest.raises(asyncio.CancelledError):
        await child
    slots.release()
    assert (slots.used, slots.free_for_claims()) == (0, 1)


# dispatcher sleep ---------------------------------------------------------------------------


async def _dispatcher_at(store: Store, clock: FakeClock, not_before: datetime) -> Engine:
    """An engine (not started) whose store holds one queued run due at `not_before`."""
    owner = task("t1")
    await store.create_task(owner)
    await store.insert_runs([queued_run(owner, "r1", Trigger.MANUAL, T0, scheduled_for=None,
                                        not_before=not_before)])
    return Engine(store, clock, engine_registry(), FAST, node_id="node-a")


async def test_a_run_that_fell_due_during_a_claim_is_claimed_without_sleeping(
        store: Store) -> None:
    claimed_at = T0
    clock = FakeClock(T0 + timedelta(milliseconds=3))  # the claim took 3 ms
    engine = await _dispatcher_at(store, clock, T0 + timedelta(milliseconds=1))
    assert await engine.dispatcher.delay_after_claim(claimed_at) == 0.0


async def test_a_run_due_at_the_claim_but_not_claimed_is_rechecked_later(
        store: Store) -> None:
    clock = FakeClock(T0 + timedelta(milliseconds=3))
    engine = await _dispatcher_at(store, clock, T0 - timedelta(seconds=1))
    delay = await engine.dispatcher.delay_after_claim(T0)
    assert delay == BLOCKED_RECHECK_SECONDS  # its task is busy; a local finish wakes us


async def test_the_dispatcher_sleeps_until_the_next_run_is_due(store: Store) -> None:
    clock = FakeClock(T0)
    engine = await _dispatcher_at(store, clock, T0 + timedelta(milliseconds=400))
    assert await engine.dispatcher.delay_after_claim(T0) == pytest.approx(0.4)


# group commit -----------------------------------------------------------------------------------


async def test_concurrent_submissions_share_one_write_and_each_gets_its_result() -> None:
    batches: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0.01)
        return [i for i in items if i % 2 == 0]  # odd ones "were no longer running"

    writer: BatchWriter[int, int] = BatchWriter(write, lambda i: i, lambda r: r)
    first = asyncio.ensure_future(writer.submit(0))
    await asyncio.sleep(0)  # the first write is now in flight
    rest = await asyncio.gather(*(writer.submit(i) for i in range(1, 6)))
    assert await first == 0
    assert rest == [None, 2, None, 4, None]
    assert batches == [[0], [1, 2, 3, 4, 5]]


async def test_a_failed_write_is_retried_then_reported_to_every_caller() -> None:
    calls = 0

    async def write(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        raise StoreError("database is locked")

    writer: BatchWriter[int, int] = BatchWriter(write, lambda i: i, lambda r: r)
    results = await asyncio.gather(writer.submit(1), writer.submit(2), return_exceptions=True)
    assert all(isinstance(r, StoreError) for r in results)
    assert calls == 3


# trees ------------------------------------------------------------------------------------------


def test_a_dependency_cycle_is_found_and_named() -> None:
    siblings = [task("a", "r", ["c"]), task("b", "r", ["a"]), task("c", "r", ["b"]),
                task("d", "r")]
    assert dependency_cycle(siblings) == ["a", "b", "c"]
    assert "cycle" in (tree_problem([task("r"), *siblings]) or "")


def test_a_valid_tree_has_no_problem() -> None:
    tasks = [task("r"), task("a", "r"), task("b", "r", ["a"]), task("x", "a"),
             task("y", "a", ["x"])]
    assert tree_problem(tasks) is None


def test_a_dependency_on_a_cousin_is_refused() -> None:
    tasks = [task("r"), task("a", "r"), task("x", "a", ["b"]), task("b", "r")]
    assert "not a sibling" in (tree_problem(tasks) or "")


# runs -------------------------------------------------------------------------------------------


def test_stopping_a_tree_run_stops_its_children_with_tree_stopped() -> None:
    parent, child = ActiveRun(run("p"), None), ActiveRun(run("c"), None)
    parent.children.append(child)
    heard: list[str] = []
    child.when_stopped(lambda: heard.append("child"))
    parent.request_stop(STOP_CANCELLED)
    parent.request_stop("terminated")  # the first reason stays
    assert (parent.stop_reason, child.stop_reason, heard) == (STOP_CANCELLED, STOP_TREE,
                                                              ["child"])
    assert stopped_outcome(STOP_TREE).state is RunState.CANCELLED


def test_apflow_variables_overwrite_task_env_and_run_variables() -> None:
    t = Task(id="t1", name="t", created_at=T0, updated_at=T0,
             env={"A": "task", "B": "task", "APFLOW_ATTEMPT": "99"})
    r = run(variables={"B": "run", "APFLOW_RUN_ID": "x"}, attempt=2, scheduled_for=T0)
    env = run_environment(t, r)
    assert (env["A"], env["B"], env["APFLOW_ATTEMPT"], env["APFLOW_RUN_ID"]) == (
        "task", "run", "2", "r1")
    assert (env["APFLOW_TRIGGER"], env["APFLOW_SCHEDULED_FOR"], env["APFLOW_TASK_ID"]) == (
        "manual", T0.isoformat(), "t1")
