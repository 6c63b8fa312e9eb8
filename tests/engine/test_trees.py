"""Task trees: reset, dependency order, parallel siblings, failure propagation, stopping."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from pathlib import Path

from apflow.domain.enums import RunState, TaskStatus, Trigger
from apflow.domain.models import Run
from apflow.engine.engine import Engine
from apflow.engine.trees import tree_problem
from apflow.store import RunFilter, Store
from tests.engine.conftest import EngineFactory, add_task, finished, now, until


async def tree_runs(store: Store, root_run: Run) -> dict[str, Run]:
    """The child runs of a tree run, by task id (the latest attempt of each)."""
    runs = await store.list_runs(RunFilter(parent_run_id=root_run.id), limit=100)
    return {run.task_id: run for run in sorted(runs, key=lambda r: r.attempt)}


def during(run: Run) -> tuple[datetime, datetime]:
    assert run.started_at is not None and run.finished_at is not None
    return run.started_at, run.finished_at


async def test_children_run_in_dependency_order_and_independent_ones_in_parallel(
        store: Store, engine: Engine) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "a", parent_id="root", command="sleep 0.4")
    await add_task(store, "b", parent_id="root", command="sleep 0.4")
    await add_task(store, "c", parent_id="root", dependencies=("a", "b"), command="echo c")
    root = await engine.trigger("root", Trigger.MANUAL, triggered_by="tester")
    root = await finished(engine, root.id)
    assert root.state is RunState.SUCCEEDED
    runs = await tree_runs(store, root)
    assert set(runs) == {"a", "b", "c"}
    a, b, c = during(runs["a"]), during(runs["b"]), during(runs["c"])
    assert a[0] < b[1] and b[0] < a[1]  # a and b overlapped
    assert c[0] >= max(a[1], b[1])  # c waited for both
    assert all(run.trigger is Trigger.MANUAL and run.state is RunState.SUCCEEDED
               for run in runs.values())
    for task_id in "abc":
        assert (await store.get_task(task_id)).status is TaskStatus.COMPLETED
    assert (await store.get_task("root")).status is TaskStatus.COMPLETED


async def test_running_a_tree_resets_every_descendant_first(
        store: Store, engine: Engine) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "a", parent_id="root", command="sleep 30",
                   graceful_stop_seconds=0.2)
    await add_task(store, "b", parent_id="root", dependencies=("a",), command="true")
    await store.set_task_outcome("b", now(), status=TaskStatus.FAILED, result={"old": 1},
                                 error="old failure", progress=0.5)
    root = await engine.trigger("root", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: _status(store, "a", TaskStatus.IN_PROGRESS))
    b = await store.get_task("b")
    assert (b.status, b.result, b.error) == (TaskStatus.PENDING, None, None)
    await engine.cancel(root.id)


async def _status(store: Store, task_id: str, status: TaskStatus) -> bool:
    return (await store.get_task(task_id)).status is status


async def test_a_failed_child_fails_the_tree_and_its_dependants_are_not_started(
        store: Store, engine: Engine) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "extract", name="extract", parent_id="root", command="exit 2")
    await add_task(store, "load", parent_id="root", dependencies=("extract",), command="true")
    await add_task(store, "report", parent_id="load", command="true")
    await add_task(store, "audit", parent_id="root", command="echo independent")
    root = await engine.trigger("root", Trigger.MANUAL, triggered_by="tester")
    root = await finished(engine, root.id)
    assert root.state is RunState.FAILED
    assert "extract" in (root.error or "") and "failed" in (root.error or "")
    runs = await tree_runs(store, root)
    assert runs["extract"].state is RunState.FAILED
    assert (runs["load"].state, runs["load"].end_reason) == (RunState.SKIPPED,
                                                             "dependency_failed")
    assert runs["audit"].state is RunState.SUCCEEDED
    assert "report" not in runs
    assert (await store.get_task("load")).status is TaskStatus.CANCELLED
    assert (await store.get_task("report")).status is TaskStatus.PENDING
    assert (await store.get_task("root")).status is TaskStatus.FAILED


async def test_a_nested_group_finishes_its_children_before_its_own_executor(
        store: Store, engine: Engine) -> None:
    await add_task(store, "root", command="echo root-last")
    await add_task(store, "group", parent_id="root", executor=None)
    await add_task(store, "x", parent_id="group", command="sleep 0.2")
    await add_task(store, "y", parent_id="group", dependencies=("x",), command="true")
    root = await engine.trigger("root", Trigger.MANUAL, triggered_by="tester")
    root = await finished(engine, root.id)
    assert root.state is RunState.SUCCEEDED
    runs = await tree_runs(store, root)
    assert {run.parent_run_id for run in runs.values()} == {root.id}
    assert during(runs["y"])[0] >= during(runs["x"])[1]
    assert during(runs["group"])[1] >= during(runs["y"])[1]
    text = "".join(c.text for c in await store.read_logs(root.id))
    assert "root-last" in text
    assert root.finished_at >= during(runs["group"])[1]  # type: ignore[operator]


async def test_a_child_is_retried_inside_the_tree(store: Store, engine: Engine) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "flaky", parent_id="root", retry_limit=1, retry_delay_seconds=0,
                   command='[ "$APFLOW_ATTEMPT" = 2 ]')
    root = await finished(engine, (await engine.trigger(
        "root", Trigger.MANUAL, triggered_by="tester")).id)
    assert root.state is RunState.SUCCEEDED
    attempts = await store.list_runs(RunFilter(parent_run_id=root.id))
    assert sorted((r.attempt, r.state) for r in attempts) == [
        (1, RunState.FAILED), (2, RunState.SUCCEEDED)]


async def test_cancelling_the_root_stops_its_running_children(
        store: Store, engine: Engine) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "slow", parent_id="root", command="sleep 30",
                   graceful_stop_seconds=0.3)
    await add_task(store, "after", parent_id="root", dependencies=("slow",))
    root = await engine.trigger("root", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: _status(store, "slow", TaskStatus.IN_PROGRESS))
    cancelled = await engine.cancel(root.id)
    assert (cancelled.state, cancelled.end_reason) == (RunState.CANCELLED, "cancelled")
    runs = await tree_runs(store, cancelled)
    assert (runs["slow"].state, runs["slow"].end_reason) == (RunState.CANCELLED,
                                                             "tree_stopped")
    assert runs["after"].state is RunState.SKIPPED


async def test_cancelling_a_tree_on_a_full_node_starts_no_waiting_child(
        store: Store, make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine(max_concurrent=1)
    started = tmp_path / "started"
    await add_task(store, "root", executor=None)
    for name in ("a", "b"):  # independent: one runs, the other waits for the node's slot
        await add_task(store, name, parent_id="root", graceful_stop_seconds=0.3,
                       command=f"echo $APFLOW_TASK_ID >> {started}; sleep 30")
    root = await engine.trigger("root", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: _exists(started))
    began = asyncio.get_running_loop().time()
    cancelled = await engine.cancel(root.id)
    assert asyncio.get_running_loop().time() - began < 2
    assert (cancelled.state, cancelled.end_reason) == (RunState.CANCELLED, "cancelled")
    runs = await tree_runs(store, cancelled)
    assert sorted((r.state, r.end_reason) for r in runs.values()) == [
        (RunState.CANCELLED, "tree_stopped"), (RunState.SKIPPED, "tree_stopped")]
    await asyncio.sleep(0.2)
    assert len(started.read_text().split()) == 1  # the waiting child never started


async def _exists(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def test_a_dependency_cycle_fails_the_tree_before_anything_runs(
        store: Store, engine: Engine) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "a", parent_id="root", dependencies=("b",))
    await add_task(store, "b", parent_id="root", dependencies=("a",))
    root = await finished(engine, (await engine.trigger(
        "root", Trigger.MANUAL, triggered_by="tester")).id)
    assert root.state is RunState.FAILED and "cycle" in (root.error or "")
    assert await store.list_runs(RunFilter(parent_run_id=root.id)) == []


async def test_a_dependency_outside_the_siblings_is_reported(store: Store) -> None:
    await add_task(store, "root", executor=None)
    await add_task(store, "a", parent_id="root", dependencies=("elsewhere",))
    problem = tree_problem(await store.subtree("root"))
    assert problem is not None and "elsewhere" in problem and "sibling" in problem


async def test_a_group_without_children_fails_with_nothing_to_run(
        store: Store, engine: Engine) -> None:
    await add_task(store, "empty", executor=None)
    run = await finished(engine, (await engine.trigger(
        "empty", Trigger.MANUAL, triggered_by="tester")).id)
    assert run.state is RunState.FAILED and "nothing to run" in (run.error or "")


async def test_a_tree_on_a_one_slot_node_still_completes(
        store: Store, make_engine: object) -> None:
    engine = await make_engine(max_concurrent=1)  # type: ignore[operator]
    await add_task(store, "root", command="true")
    for name in ("a", "b", "c"):
        await add_task(store, name, parent_id="root", command="sleep 0.1")
    run = await finished(engine, (await engine.trigger(
        "root", Trigger.MANUAL, triggered_by="tester")).id)
    assert run.state is RunState.SUCCEEDED
    runs = sorted((await tree_runs(store, run)).values(), key=lambda r: r.started_at)
    for first, second in itertools.pairwise(runs):
        assert second.started_at >= first.finished_at  # type: ignore[operator]
