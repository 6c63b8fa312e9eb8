"""fire_due and apply_to_task: due slots become ledger rows and queued runs, exactly once."""

from __future__ import annotations

import asyncio

import pytest

from apflow.domain.enums import RunState
from apflow.domain.errors import NotFound
from apflow.domain.models import Task
from apflow.domain.plans import Plan, TaskLoad
from apflow.store.base import OccurrenceFilter, RunFilter
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, a_schedule, a_slot, a_task, at, fire_next_slot
from tests.store.conftest import Backend


async def test_fire_due_queues_a_run_records_the_slot_and_advances(store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(0)))
    [plan] = await store.fire_due(at(5), fire_next_slot(at(5)))
    [run] = plan.runs
    assert await store.get_run(run.id) == run
    [slot] = await store.list_occurrences(OccurrenceFilter(task_id="t1"))
    assert (slot.scheduled_for, slot.run_id) == (at(0), run.id)
    task = await store.get_task("t1")
    assert (task.next_run_at, task.run_count, task.last_run_at, task.updated_at) == (
        at(60), 1, at(0), at(5))


async def test_fire_due_with_nothing_due_does_nothing(store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(10)))
    await store.create_task(a_schedule("off", next_run_at=at(0), schedule_enabled=False))
    assert await store.fire_due(at(9), fire_next_slot(at(9))) == []
    assert await store.list_runs(RunFilter()) == []


async def test_fire_due_takes_the_earliest_schedules_up_to_the_limit(store: SqlStore) -> None:
    for task_id, due in (("c", 3), ("a", 1), ("b", 2)):
        await store.create_task(a_schedule(task_id, next_run_at=at(due)))
    plans = await store.fire_due(at(10), fire_next_slot(at(10)), limit=2)
    assert [plan.task_id for plan in plans] == ["a", "b"]


async def test_a_slot_already_in_the_ledger_is_not_fired_again(store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(0)))
    stuck = fire_next_slot(at(1), advance=False)  # the same slot stays due
    [first] = await store.fire_due(at(1), stuck)
    [second] = await store.fire_due(at(2), stuck)
    assert len(first.runs) == 1 and len(first.occurrences) == 1
    assert second.runs == () and second.occurrences == ()
    assert len(await store.list_runs(RunFilter(task_id="t1"))) == 1


async def test_a_slot_skipped_in_advance_drops_its_run(store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(0)))
    await store.record_occurrences([a_slot("t1", at(0), recorded_at=at(-100))])
    [plan] = await store.fire_due(at(1), fire_next_slot(at(1)))
    assert plan.runs == ()
    assert (await store.get_task("t1")).next_run_at == at(60)  # the advance still applies


@pytest.mark.parametrize("advance", [True, False], ids=["advancing", "stuck"])
async def test_two_nodes_firing_at_once_fire_each_slot_exactly_once(
        backend: Backend, advance: bool) -> None:
    first, second = await backend.new_store(), await backend.new_store()
    for index in range(20):
        await first.create_task(a_schedule(f"t{index:02}", next_run_at=at(0)))
    # A stuck planner leaves every slot due, so only the ledger's key can stop a double fire.
    planner = fire_next_slot(at(1), advance=advance)
    for _ in range(3):
        await asyncio.gather(first.fire_due(at(1), planner, limit=50),
                             second.fire_due(at(1), planner, limit=50),
                             first.fire_due(at(1), planner, limit=50))
    runs = await first.list_runs(RunFilter(), limit=1000)
    assert sorted(run.task_id for run in runs) == [f"t{index:02}" for index in range(20)]
    assert len(await first.list_occurrences(OccurrenceFilter(), limit=1000)) == 20


async def test_a_failing_planner_skips_only_its_task(store: SqlStore) -> None:
    await store.create_task(a_schedule("bad", next_run_at=at(0)))
    await store.create_task(a_schedule("good", next_run_at=at(1)))
    fire = fire_next_slot(at(5))

    def planner(task: Task, load: TaskLoad) -> Plan:
        if task.id == "bad":
            raise ValueError("cannot plan")
        return fire(task, load)

    plans = await store.fire_due(at(5), planner)
    assert [plan.task_id for plan in plans] == ["good"]
    assert (await store.get_task("bad")).next_run_at == at(0)
    assert [run.task_id for run in await store.list_runs(RunFilter())] == ["good"]


async def test_the_planner_sees_each_tasks_queued_and_running_runs(store: SqlStore) -> None:
    await store.create_task(a_schedule("busy", next_run_at=at(0)))
    await store.create_task(a_schedule("idle", next_run_at=at(0)))
    await store.insert_runs([
        a_run("q1", "busy"), a_run("q2", "busy"),
        a_run("r1", "busy", state=RunState.RUNNING, node="n"),
        a_run("done", "busy", state=RunState.SUCCEEDED),
        a_run("other", "idle", state=RunState.FAILED),
    ])
    seen: list[tuple[str, TaskLoad]] = []
    await store.fire_due(at(1), fire_next_slot(at(1), seen=seen))
    assert sorted(seen) == [("busy", TaskLoad(queued=2, running=1)),
                            ("idle", TaskLoad(queued=0, running=0))]


async def test_runs_without_a_linked_slot_are_inserted_as_given(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    extra = a_run("loose", "t1")
    plan = await store.apply_to_task(
        "t1", at(0), lambda task, load: Plan(task_id=task.id, runs=(extra,)))
    assert plan.runs == (extra,)
    assert await store.get_run("loose") == extra


async def test_terminate_running_asks_the_tasks_running_runs_to_stop(store: SqlStore) -> None:
    await store.create_task(a_task("t1"))
    await store.create_task(a_task("t2"))
    await store.insert_runs([a_run("running", "t1", state=RunState.RUNNING, node="n"),
                             a_run("queued", "t1"),
                             a_run("neighbour", "t2", state=RunState.RUNNING, node="n")])
    await store.apply_to_task("t1", at(0), lambda task, load: Plan(task_id=task.id,
                                                             terminate_running=True))
    assert (await store.get_run("running")).cancel_requested == "terminated"
    assert (await store.get_run("queued")).cancel_requested is None
    assert (await store.get_run("neighbour")).cancel_requested is None


async def test_apply_to_task_applies_the_plan_of_that_task(store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(100)))  # not due: a manual run
    plan = await store.apply_to_task("t1", at(3), fire_next_slot(at(3)))
    assert [run.task_id for run in plan.runs] == ["t1"]
    assert (await store.get_task("t1")).next_run_at == at(160)


async def test_apply_to_an_unknown_task_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.apply_to_task("nope", at(0), fire_next_slot(at(0)))


async def test_a_planner_error_in_apply_to_task_propagates_and_writes_nothing(
        store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(0)))

    class Refused(Exception):
        pass

    def planner(task: Task, load: TaskLoad) -> Plan:
        raise Refused("on_overlap=forbid")

    with pytest.raises(Refused):
        await store.apply_to_task("t1", at(1), planner)
    assert await store.get_task("t1") == a_schedule("t1", next_run_at=at(0))
    assert await store.list_runs(RunFilter()) == []
