"""Several `apflow scheduler start` processes on one PostgreSQL database, under abuse: a node
killed with SIGKILL mid-run, every database connection cut, rolling restarts. Whatever
happens, each due slot fires exactly once, every crashed run is retried, no run is left
running and nothing is lost. Every wait is bounded."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from apflow.service import Service
from tests.chaos.conftest import ADMIN, Db, Nodes, create_task, until

pytestmark = pytest.mark.postgres

TASKS = 300
LEASE = 3.0  # seconds: a silent node is declared lost after this (heartbeat every 1 s)


def command_for(index: int) -> str:
    return "sleep 0.2" if index % 3 == 0 else "true"


@pytest.mark.timeout(120)
async def test_three_nodes_fire_each_slot_once_through_a_kill_and_a_connection_cut(
        nodes: Nodes, db: Db, service: Service) -> None:
    a, b, victim = (nodes.start(name, lease_seconds=LEASE) for name in ("a", "b", "victim"))
    await nodes.wait_ready(db, a, b, victim)
    slot = (await db.now()).replace(microsecond=0) + timedelta(seconds=4)
    ids = [(await create_task(
        service, name=f"burst-{i}", schedule_type="once", schedule_expression=slot.isoformat(),
        schedule_enabled=True, retry_limit=2, retry_delay_seconds=0.5,
        executor={"type": "command", "command": command_for(i)}))["id"]
        for i in range(TASKS)]
    assert await db.now() < slot, "creating the tasks took longer than the lead time"

    await until(lambda: _running_on(db, "victim"), timeout=20, what="the victim to run work",
                nodes=nodes, every=0.01)
    nodes.kill(victim)
    assert await db.cut_connections() > 0  # a's and b's pools and listeners

    try:
        await until(lambda: _settled(db, len(ids)), timeout=45, what="every slot to be done",
                    nodes=nodes, every=0.2)
    except AssertionError as exc:
        unsettled = await db.fetch(
            "SELECT id, task_id, state, node, attempt, error, lease_expires_at FROM runs "
            "WHERE state NOT IN ('succeeded', 'crashed') OR task_id NOT IN "
            "(SELECT task_id FROM runs WHERE state = 'succeeded')")
        raise AssertionError(f"unsettled runs: {[dict(r) for r in unsettled]}") from exc
    assert a.alive() and b.alive(), "a node died on the connection cut"

    ledger = await db.fetch("SELECT task_id, scheduled_for, outcome, run_id FROM occurrences")
    assert sorted(row["task_id"] for row in ledger) == sorted(ids)
    assert {(row["scheduled_for"], row["outcome"]) for row in ledger} == {(slot, "fired")}
    runs = await db.fetch("SELECT * FROM runs")
    firsts = [run for run in runs if run["trigger"] != "retry"]
    assert sorted(run["task_id"] for run in firsts) == sorted(ids)  # one per slot
    assert {run["id"] for run in firsts} == {row["run_id"] for row in ledger}
    assert {(run["trigger"], run["scheduled_for"]) for run in firsts} == {("schedule", slot)}
    assert not [run["id"] for run in runs if run["state"] in ("queued", "running")]
    _assert_every_crash_retried_to_success(runs, "victim")
    succeeded = sorted(run["task_id"] for run in runs if run["state"] == "succeeded")
    assert succeeded == sorted(ids)  # each chain ends in exactly one success


async def _running_on(db: Db, node: str) -> bool:
    count = await db.fetchval(
        "SELECT count(*) FROM runs WHERE node = $1 AND state = 'running'", node)
    return bool(count >= 2)


async def _settled(db: Db, tasks: int) -> bool:
    row = (await db.fetch(
        "SELECT count(DISTINCT task_id) FILTER (WHERE state = 'succeeded') AS done, "
        "count(*) FILTER (WHERE state IN ('queued', 'running')) AS live FROM runs"))[0]
    return bool(row["done"] == tasks and row["live"] == 0)


def _assert_every_crash_retried_to_success(runs: list[Any], victim: str) -> None:
    by_retry_of = {run["retry_of"]: run for run in runs if run["retry_of"] is not None}
    left = [run for run in runs if run["node"] == victim]
    crashed = [run for run in left if run["state"] != "succeeded"]
    assert crashed, "the victim was killed with no run in flight"
    for run in crashed:
        assert run["state"] == "crashed", dict(run)
        assert run["end_reason"] in ("node_lost", "lease_expired"), dict(run)
        chain = run
        while chain["state"] != "succeeded":
            assert chain["id"] in by_retry_of, f"run {chain['id']} ({chain['state']}) " \
                                               "was not retried"
            chain = by_retry_of[chain["id"]]
        assert chain["scheduled_for"] == run["scheduled_for"]
        assert chain["node"] != victim
    # On the survivors a run may only have crashed through an expired lease (a claim whose
    # answer the connection cut lost), and then it was retried to success like the others.
    others = [run for run in runs if run["node"] != victim and run["state"] != "succeeded"]
    for run in others:
        assert (run["state"], run["end_reason"]) == ("crashed", "lease_expired"), dict(run)
        chain = run
        while chain["state"] != "succeeded":
            assert chain["id"] in by_retry_of, f"run {chain['id']} was not retried"
            chain = by_retry_of[chain["id"]]


@pytest.mark.timeout(90)
async def test_a_rolling_restart_fires_every_slot_once(
        nodes: Nodes, db: Db, service: Service) -> None:
    a, b = nodes.start("a", lease_seconds=LEASE), nodes.start("b", lease_seconds=LEASE)
    await nodes.wait_ready(db, a, b)
    ids = [(await create_task(
        service, name=f"tick-{i}", schedule_type="interval", schedule_expression="1",
        schedule_enabled=True, retry_limit=1, retry_delay_seconds=0.2,
        executor={"type": "command", "command": "true"}))["id"] for i in range(10)]
    await asyncio.sleep(1.5)
    for name in ("a", "b"):
        old = a if name == "a" else b
        assert await nodes.terminate(old) == 0, old.tail()
        await asyncio.sleep(0.5)  # the other node alone for a moment
        new = nodes.start(name, lease_seconds=LEASE)
        await nodes.wait_ready(db, new)
        await asyncio.sleep(1.5)
    for task_id in ids:
        await service.call("tasks.pause", {"task_id": task_id}, ADMIN)
    await until(lambda: _idle(db), timeout=20, what="no run queued or running", nodes=nodes)

    ledger = await db.fetch(
        "SELECT task_id, scheduled_for, outcome, run_id FROM occurrences "
        "WHERE outcome <> 'paused' ORDER BY task_id, scheduled_for")
    runs = await db.fetch("SELECT * FROM runs")
    for task_id in ids:
        _assert_slots_contiguous(task_id, [row for row in ledger if row["task_id"] == task_id])
    firsts = [run for run in runs if run["trigger"] != "retry"]
    fired = {(row["task_id"], row["scheduled_for"]): row["run_id"] for row in ledger
             if row["outcome"] == "fired"}
    keys = sorted((run["task_id"], run["scheduled_for"]) for run in firsts)
    assert len(keys) == len(set(keys)), "a slot ran twice"
    assert set(keys) == set(fired)
    assert not [run["id"] for run in runs if run["state"] in ("queued", "running")]
    for run in runs:
        if run["state"] == "crashed":  # stopped by a drain: retried on the other node
            assert run["end_reason"] == "shutdown", dict(run)
            assert any(other["retry_of"] == run["id"] for other in runs), dict(run)


async def _idle(db: Db) -> bool:
    return not await db.fetchval(
        "SELECT count(*) FROM runs WHERE state IN ('queued', 'running')")


def _assert_slots_contiguous(task_id: str, rows: list[Any]) -> None:
    """Every slot from the first to the last is ledgered once, as fired (a late slot may
    be coalesced under catch_up=latest, but none may be missing)."""
    slots: list[datetime] = [row["scheduled_for"] for row in rows]
    assert len(slots) >= 5, (task_id, slots)
    gaps = [(x, y) for x, y in itertools.pairwise(slots)
            if y - x != timedelta(seconds=1)]
    assert not gaps, (task_id, gaps)
    outcomes = {row["outcome"] for row in rows}
    assert outcomes <= {"fired", "coalesced"}, (task_id, outcomes)
    assert [row["outcome"] for row in rows].count("fired") >= len(rows) - 2, (task_id, rows)


@pytest.mark.timeout(60)
async def test_a_schedule_created_elsewhere_starts_on_time_on_a_sleeping_node(
        nodes: Nodes, db: Db, service: Service) -> None:
    node = nodes.start("a", poll_interval=60.0)
    await nodes.wait_ready(db, node)
    await asyncio.sleep(1.0)  # its scheduler is asleep until the poll, 60 s away
    started = await _run_started_after_creation(db, service, nodes)
    assert started < timedelta(milliseconds=300), started


@pytest.mark.timeout(60)
async def test_a_schedule_created_after_a_connection_cut_still_wakes_the_node(
        nodes: Nodes, db: Db, service: Service) -> None:
    node = nodes.start("a", poll_interval=60.0)
    await nodes.wait_ready(db, node)
    assert await db.cut_connections() > 0
    await asyncio.sleep(2.0)  # the listener reconnects after 0.5 s
    started = await _run_started_after_creation(db, service, nodes)
    assert started < timedelta(milliseconds=300), started
    assert node.alive()


async def _run_started_after_creation(db: Db, service: Service, nodes: Nodes) -> timedelta:
    """Create a `once` task due 1 s ahead; how long after its slot its run started."""
    slot = await db.now() + timedelta(seconds=1)
    task = await create_task(service, name="fresh", schedule_type="once",
                             schedule_expression=slot.isoformat(), schedule_enabled=True,
                             executor={"type": "command", "command": "true"})

    async def started() -> Any:
        rows = await db.fetch("SELECT scheduled_for, started_at FROM runs "
                              "WHERE task_id = $1 AND started_at IS NOT NULL", task["id"])
        return rows[0] if rows else None

    run = await until(started, timeout=10, what="the run to start", nodes=nodes, every=0.02)
    assert run["scheduled_for"] == slot
    assert run["started_at"] >= slot, "started before its slot"
    late: timedelta = run["started_at"] - slot
    return late


@pytest.mark.timeout(60)
async def test_a_connection_cut_during_a_status_write_loses_no_task_status(
        nodes: Nodes, db: Db, service: Service) -> None:
    node = nodes.start("a")
    await nodes.wait_ready(db, node)
    task = await create_task(service, name="status",
                             executor={"type": "command", "command": "sleep 0.5"})
    await service.call("tasks.run", {"task_id": task["id"]}, ADMIN)
    await until(lambda: _task_status_is(db, task["id"], "in_progress"), timeout=10,
                what="the run to start", nodes=nodes, every=0.01)

    blocker = Db(db.dsn)  # holds the task row, so the final status write waits in flight
    conn = await blocker.connection()
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task["id"])
            await until(lambda: _run_succeeded_and_status_write_blocked(db, task["id"]),
                        timeout=10, what="the status write to wait on the row", nodes=nodes)
            await db.cut_connections_except(conn)
    finally:
        await blocker.close()

    assert node.alive()
    await until(lambda: _task_status_is(db, task["id"], "completed"), timeout=5,
                what="the task status to say completed", nodes=nodes, every=0.1)


async def _task_status_is(db: Db, task_id: str, status: str) -> bool:
    return bool(await db.fetchval("SELECT status FROM tasks WHERE id = $1", task_id) == status)


async def _run_succeeded_and_status_write_blocked(db: Db, task_id: str) -> bool:
    state = await db.fetchval("SELECT state FROM runs WHERE task_id = $1", task_id)
    waiting = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'")
    return bool(state == "succeeded" and waiting)
