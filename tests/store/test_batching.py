"""Group commit: concurrent apply_to_task and remember_signature calls share transactions, and
decide exactly what the same calls made one after another would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from apflow.domain.enums import OnOverlap, RunState, Trigger
from apflow.domain.errors import ApflowError, Conflict, NotFound
from apflow.domain.models import Task
from apflow.domain.plans import Plan, TaskLoad
from apflow.engine.planning import plan_manual
from apflow.store.base import Planner, RunFilter
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, a_schedule, a_task, at, fire_next_slot

POLICIES: dict[str, dict[str, Any]] = {
    "queue": {"queue_max": 5},
    "queue_two_at_once": {"queue_max": 3, "max_concurrent": 2},
    "skip": {"on_overlap": OnOverlap.SKIP},
    "forbid": {"on_overlap": OnOverlap.FORBID},
    "terminate": {"on_overlap": OnOverlap.TERMINATE, "max_concurrent": 2},
}
CALLS = 300  # more than one batch holds


def trigger(run_id: str) -> Planner:
    """A manual trigger, planned as the webhook gateway and tasks.run plan it."""
    def planner(task: Task, load: TaskLoad) -> Plan:
        return plan_manual(task, load, at(1), Trigger.MANUAL, None, "someone", run_id)
    return planner


def decision(outcome: Plan | BaseException) -> object:
    """What a call decided, without ids: the runs' states and reasons, or the error type."""
    if isinstance(outcome, BaseException):
        return type(outcome)
    return ([(run.state, run.end_reason) for run in outcome.runs], outcome.terminate_running)


async def trigger_all(store: SqlStore, prefix: str, *, concurrently: bool) -> list[object]:
    """CALLS manual triggers spread over one task per policy (`prefix` + policy name)."""
    names = list(POLICIES)
    calls = [(f"{prefix}{names[i % len(names)]}", f"{prefix}run{i}") for i in range(CALLS)]
    if concurrently:
        outcomes = await asyncio.gather(
            *(store.apply_to_task(task_id, at(1), trigger(run_id)) for task_id, run_id in calls),
            return_exceptions=True)
    else:
        outcomes = []
        for task_id, run_id in calls:
            try:
                outcomes.append(await store.apply_to_task(task_id, at(1), trigger(run_id)))
            except ApflowError as exc:
                outcomes.append(exc)
    return [decision(outcome) for outcome in outcomes]


async def create_policy_tasks(store: SqlStore, prefix: str) -> None:
    for name, fields in POLICIES.items():
        await store.create_task(a_task(f"{prefix}{name}", **fields))


async def test_concurrent_triggers_decide_as_if_applied_one_after_another(
        store: SqlStore) -> None:
    await create_policy_tasks(store, "seq-")
    await create_policy_tasks(store, "con-")
    one_by_one = await trigger_all(store, "seq-", concurrently=False)
    concurrent = await trigger_all(store, "con-", concurrently=True)
    assert concurrent == one_by_one
    assert Conflict in concurrent  # forbid refused the triggers after its first


async def test_concurrent_triggers_each_land_exactly_once(store: SqlStore) -> None:
    await create_policy_tasks(store, "")
    outcomes = await asyncio.gather(
        *(store.apply_to_task(name, at(1), trigger(f"run{i}"))
          for i, name in enumerate(list(POLICIES) * 40)), return_exceptions=True)
    planned = sorted(run.id for outcome in outcomes if isinstance(outcome, Plan)
                     for run in outcome.runs)
    stored = sorted(run.id for run in await store.list_runs(RunFilter(), limit=1000))
    assert stored == planned
    assert len(set(stored)) == len(stored)


async def test_a_queue_of_five_takes_five_behind_the_one_that_may_run(
        store: SqlStore) -> None:
    await store.create_task(a_task("t1", queue_max=5))
    plans = await asyncio.gather(*(store.apply_to_task("t1", at(1), trigger(f"r{i}"))
                                   for i in range(20)))
    states = [run.state for plan in plans for run in plan.runs]
    assert states == [RunState.QUEUED] * 6 + [RunState.SKIPPED] * 14
    assert len(await store.list_runs(RunFilter(state=RunState.QUEUED))) == 6


def refusing(exc: Exception) -> Planner:
    def planner(task: Task, load: TaskLoad) -> Plan:
        raise exc
    return planner


def queue_run(run_id: str) -> Planner:
    def planner(task: Task, load: TaskLoad) -> Plan:
        return Plan(task_id=task.id, runs=(a_run(run_id, task.id),))
    return planner


async def gather_outcomes(store: SqlStore,
                          calls: Sequence[tuple[str, Planner]]) -> list[Plan | BaseException]:
    return await asyncio.gather(*(store.apply_to_task(task_id, at(1), planner)
                                  for task_id, planner in calls), return_exceptions=True)


async def test_a_planner_error_fails_only_its_own_call(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    first, refused, last = await gather_outcomes(store, [
        ("t1", queue_run("a")), ("t1", refusing(Conflict("on_overlap=forbid"))),
        ("t1", queue_run("b"))])
    assert isinstance(refused, Conflict)
    assert isinstance(first, Plan) and isinstance(last, Plan)
    assert sorted(run.id for run in await store.list_runs(RunFilter())) == ["a", "b"]


async def test_a_missing_task_fails_only_its_own_call(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    first, missing, last = await gather_outcomes(store, [
        ("t1", queue_run("a")), ("nope", queue_run("lost")), ("t1", queue_run("b"))])
    assert isinstance(missing, NotFound)
    assert isinstance(first, Plan) and isinstance(last, Plan)
    assert sorted(run.id for run in await store.list_runs(RunFilter())) == ["a", "b"]


async def test_a_store_error_in_a_batch_fails_only_the_call_that_caused_it(
        store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.insert_runs([a_run("taken", "t1", state=RunState.SUCCEEDED)])
    first, clash, last = await gather_outcomes(store, [
        ("t1", queue_run("a")), ("t1", queue_run("taken")), ("t1", queue_run("b"))])
    assert isinstance(clash, ApflowError)
    assert isinstance(first, Plan) and isinstance(last, Plan)
    later = await store.apply_to_task("t1", at(2), queue_run("c"))
    assert [run.id for run in later.runs] == ["c"]
    assert sorted(run.id for run in await store.list_runs(RunFilter())) == [
        "a", "b", "c", "taken"]


async def test_concurrent_fires_of_one_schedule_fire_successive_slots(
        store: SqlStore) -> None:
    """A plan that writes the ledger and the task row is seen by the next call in a batch."""
    await store.create_task(a_schedule("t1", next_run_at=at(0)))
    plans = await asyncio.gather(*(store.apply_to_task("t1", at(5), fire_next_slot(at(5)))
                                   for _ in range(3)))
    assert [run.scheduled_for for plan in plans for run in plan.runs] == [
        at(0), at(60), at(120)]
    task = await store.get_task("t1")
    assert (task.next_run_at, task.run_count) == (at(180), 3)


async def test_concurrent_calls_see_the_same_slot_once(store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(0)))
    plans = await asyncio.gather(*(store.apply_to_task(
        "t1", at(5), fire_next_slot(at(5), advance=False)) for _ in range(3)))
    assert [len(plan.runs) for plan in plans] == [1, 0, 0]


def answers_of(digests: Sequence[str]) -> Callable[[SqlStore], Any]:
    async def ask(store: SqlStore) -> list[bool]:
        return await asyncio.gather(*(store.remember_signature(digest, at(0), at(300))
                                      for digest in digests))
    return ask


async def test_concurrent_signatures_let_the_first_of_each_digest_through(
        store: SqlStore) -> None:
    digests = ["a", "b", "a", "c", "b", "a"] * 50
    answers = await answers_of(digests)(store)
    assert answers == [True, True, False, True] + [False] * (len(digests) - 4)


async def test_an_expired_signature_is_new_again_in_a_batch(store: SqlStore) -> None:
    assert await store.remember_signature("old", at(0), at(10))
    answers = await asyncio.gather(store.remember_signature("old", at(20), at(320)),
                                   store.remember_signature("old", at(20), at(320)),
                                   store.remember_signature("new", at(20), at(320)))
    assert answers == [True, False, True]
    assert await store.remember_signature("old", at(30), at(330)) is False


@pytest.mark.parametrize("calls", [1, 300])
async def test_signature_batches_keep_serving_after_a_bad_call(store: SqlStore,
                                                               calls: int) -> None:
    naive = at(0).replace(tzinfo=None)
    with pytest.raises(ApflowError):
        await store.remember_signature("x", naive, at(300))
    answers = await asyncio.gather(*(store.remember_signature(f"d{i}", at(0), at(300))
                                     for i in range(calls)))
    assert answers == [True] * calls
