"""Crashes and shutdowns: a killed node's runs are crashed and retried, lost nodes are reaped,
and a stopping node drains its runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from apflow.domain.enums import OccurrenceOutcome, RunState, Trigger
from apflow.domain.models import Node
from apflow.engine.engine import Engine
from apflow.engine.scheduler import safe_planner
from apflow.store import OccurrenceFilter, RunFilter, Store
from tests.engine.conftest import EngineFactory, add_task, finished, now, until

CRASH_NODE = Path(__file__).with_name("crash_node.py")


async def test_a_killed_node_finds_its_runs_crashed_and_retries_them_on_restart(
        store: Store, database_url: str, make_engine: EngineFactory, tmp_path: Path) -> None:
    pidfile = tmp_path / "shell.pid"
    await add_task(store, "t1", command=f"echo $$ > {pidfile}; sleep 30", retry_limit=1,
                   retry_delay_seconds=0, graceful_stop_seconds=0.2)
    node = await asyncio.create_subprocess_exec(
        sys.executable, str(CRASH_NODE), database_url, "node-x", "t1",
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2])
    try:
        assert node.stdout is not None
        line = await asyncio.wait_for(node.stdout.readline(), 20)
        assert line.startswith(b"RUNNING "), line
        run_id = line.split()[1].decode()
        await until(lambda: _exists(pidfile))  # the run's shell is up
    finally:
        node.kill()  # SIGKILL: nothing is recorded, the run stays "running"
        await node.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(pidfile.read_text()), signal.SIGKILL)  # the orphan of the dead node
    assert (await store.get_run(run_id)).state is RunState.RUNNING

    restarted = await make_engine("node-x")
    crashed = await store.get_run(run_id)
    assert (crashed.state, crashed.end_reason) == (RunState.CRASHED, "node_lost")
    retry = await until(lambda: _retry_of(store, run_id))
    assert (retry.attempt, retry.trigger) == (2, Trigger.RETRY)
    await until(lambda: _running(store, retry.id))
    assert (await restarted.cancel(retry.id)).state is RunState.CANCELLED


async def _exists(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def _retry_of(store: Store, run_id: str) -> object:
    runs = await store.list_runs(RunFilter(task_id="t1"))
    return next((run for run in runs if run.retry_of == run_id), None)


async def _tracked(engine: Engine, count: int) -> bool:
    return engine.status()["running"] == count


async def _running(store: Store, run_id: str) -> bool:
    return (await store.get_run(run_id)).state is RunState.RUNNING


async def test_a_restarted_node_retries_its_crashed_scheduled_run_without_firing_the_slot_again(
        store: Store, make_engine: EngineFactory) -> None:
    slot = now() - timedelta(seconds=1)
    await add_task(store, "t1", command="echo again", retry_limit=1, retry_delay_seconds=0,
                   schedule_type="interval", schedule_expression="3600",
                   schedule_enabled=True, schedule_anchor_at=slot - timedelta(hours=1),
                   next_run_at=slot)
    (fired,) = await store.fire_due(now(), safe_planner(now(), now()))
    (run,) = fired.runs
    (claimed,) = await store.claim_runs(now(), "node-x", limit=1, lease_seconds=30)
    assert claimed.id == run.id  # then the node died: the run stays "running"

    engine = await make_engine("node-x")
    retry = await until(lambda: _retry_of(store, run.id))
    done = await finished(engine, retry.id)  # type: ignore[attr-defined]
    assert (done.state, done.trigger, done.attempt, done.scheduled_for) == (
        RunState.SUCCEEDED, Trigger.RETRY, 2, slot)
    assert (await store.get_run(run.id)).state is RunState.CRASHED
    await asyncio.sleep(0.2)
    rows = await store.list_occurrences(OccurrenceFilter(task_id="t1"))
    assert [(row.scheduled_for, row.outcome, row.run_id) for row in rows] == [
        (slot, OccurrenceOutcome.FIRED, run.id)]
    assert len(await store.list_runs(RunFilter(task_id="t1"))) == 2
    task = await store.get_task("t1")
    assert (task.next_run_at, task.run_count) == (slot + timedelta(hours=1), 1)


async def test_a_crashed_run_without_retries_left_is_not_retried(
        store: Store, make_engine: EngineFactory) -> None:
    await add_task(store, "t1", retry_limit=0)
    await _abandoned_run(store, "node-x", "t1", "r1")
    await make_engine("node-x")
    crashed = await store.get_run("r1")
    assert (crashed.state, crashed.end_reason) == (RunState.CRASHED, "node_lost")
    await asyncio.sleep(0.3)
    assert [run.id for run in await store.list_runs(RunFilter(task_id="t1"))] == ["r1"]


async def _abandoned_run(store: Store, node: str, task_id: str, run_id: str) -> None:
    """A run `node` claimed and never finished (what a SIGKILL leaves behind)."""
    from apflow.engine.planning import queued_run

    task = await store.get_task(task_id)
    stamp = now() - timedelta(seconds=1)
    await store.insert_runs([queued_run(task, run_id, Trigger.MANUAL, stamp,
                                        scheduled_for=None, not_before=stamp)])
    (claimed,) = await store.claim_runs(now(), node, limit=1, lease_seconds=30)
    assert claimed.id == run_id


async def test_another_nodes_lost_runs_are_crashed_and_retried_by_a_survivor(
        store: Store, make_engine: EngineFactory) -> None:
    await add_task(store, "t1", command="echo retried", retry_limit=1,
                   retry_delay_seconds=0)
    await _abandoned_run(store, "ghost", "t1", "r1")
    stale = now() - timedelta(minutes=5)
    await store.upsert_node(Node(id="ghost", host="elsewhere", pid=1, started_at=stale,
                                 heartbeat_at=stale, state="active", running=1))
    survivor = await make_engine("node-a")
    retry = await until(lambda: _retry_of(store, "r1"), seconds=5)
    crashed = await store.get_run("r1")
    assert (crashed.state, crashed.end_reason) == (RunState.CRASHED, "node_lost")
    done = await finished(survivor, retry.id)  # type: ignore[attr-defined]
    assert (done.state, done.node) == (RunState.SUCCEEDED, "node-a")
    nodes = {node.id: node.state for node in await store.list_nodes()}
    assert nodes["ghost"] == "lost" and nodes["node-a"] == "active"


async def test_stop_drains_short_runs_and_stops_long_ones_after_their_grace(
        store: Store, make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    marker = tmp_path / "short.done"
    await add_task(store, "short", command=f"sleep 0.3; touch {marker}",
                   graceful_stop_seconds=3)
    await add_task(store, "long", command="sleep 30", graceful_stop_seconds=0.3,
                   retry_limit=1, retry_delay_seconds=0)
    short = await engine.trigger("short", Trigger.MANUAL, triggered_by="tester")
    long = await engine.trigger("long", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: _running(store, short.id))
    await until(lambda: _running(store, long.id))
    began = asyncio.get_running_loop().time()
    await engine.stop(drain=True)
    took = asyncio.get_running_loop().time() - began
    assert took < 2.5
    assert (await store.get_run(short.id)).state is RunState.SUCCEEDED and marker.exists()
    stopped = await store.get_run(long.id)
    assert (stopped.state, stopped.end_reason) == (RunState.CRASHED, "shutdown")
    retry = await _retry_of_task(store, "long", long.id)
    assert retry is not None and retry.state is RunState.QUEUED  # another node may take it
    late = await engine.trigger("short", Trigger.MANUAL, triggered_by="tester")
    await asyncio.sleep(0.3)
    assert (await store.get_run(late.id)).state is RunState.QUEUED  # no claims after stop
    assert {n.id: n.state for n in await store.list_nodes()}["node-a"] == "stopped"


async def _retry_of_task(store: Store, task_id: str, run_id: str) -> object:
    runs = await store.list_runs(RunFilter(task_id=task_id))
    return next((run for run in runs if run.retry_of == run_id), None)


async def test_status_reports_the_node_and_its_loops(engine: Engine, store: Store) -> None:
    await add_task(store, "t1", command="sleep 30", graceful_stop_seconds=0.2)
    run = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: _running(store, run.id))
    await until(lambda: _tracked(engine, 1))  # the claim's answer is read a moment later
    status = engine.status()
    assert (status["node_id"], status["running"], status["state"]) == ("node-a", 1, "active")
    assert status["loops"] == {"scheduler": True, "dispatcher": True, "heartbeat": True,
                               "retention": True}
    assert status["started_at"] is not None


async def test_a_user_filtered_node_only_takes_that_users_work(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(user_id="alice")
    await add_task(store, "mine", user_id="alice", schedule_type="once",
                   schedule_expression=now().isoformat(), schedule_enabled=True,
                   next_run_at=now())
    await add_task(store, "theirs", user_id="bob", schedule_type="once",
                   schedule_expression=now().isoformat(), schedule_enabled=True,
                   next_run_at=now())
    engine.wake()
    (mine,) = await until(lambda: store.list_runs(RunFilter(task_id="mine")))
    assert (await finished(engine, mine.id)).state is RunState.SUCCEEDED
    manual = await engine.trigger("theirs", Trigger.MANUAL, triggered_by="bob")
    await asyncio.sleep(0.4)
    assert (await store.get_run(manual.id)).state is RunState.QUEUED
    assert (await store.get_task("theirs")).schedule_enabled  # not fired by alice's node


async def test_a_run_claimed_but_not_yet_started_is_tracked_and_can_be_cancelled(
        engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await add_task(store, "t1", command="sleep 30", graceful_stop_seconds=0.2)
    gate = asyncio.Event()
    read_tasks = store.get_tasks

    async def slow_read(task_ids: list[str]) -> object:  # the claimed run's task read lags
        await gate.wait()
        return await read_tasks(task_ids)

    monkeypatch.setattr(store, "get_tasks", slow_read)
    engine.dispatcher.bring_tasks = False  # the claim leaves the task to that slow read
    try:
        run = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
        await until(lambda: _running(store, run.id))
        await until(lambda: _tracked(engine, 1))  # tracked (leases, drain) before it starts
        cancelling = asyncio.create_task(engine.cancel(run.id))
        await asyncio.sleep(0.05)
    finally:
        gate.set()
    cancelled = await asyncio.wait_for(cancelling, 10)
    assert (cancelled.state, cancelled.end_reason) == (RunState.CANCELLED, "cancelled")
    assert "".join(chunk.text for chunk in await store.read_logs(run.id)) == ""
