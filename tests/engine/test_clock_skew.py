"""Leases on the database's clock: nodes whose clocks disagree neither steal nor lose runs.

A node whose clock runs ahead would see healthy nodes' heartbeats as old and crash their
runs; one whose clock runs behind would write leases that look long expired to the others.
Both are run here against one PostgreSQL database, ten minutes apart from real time each way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from apflow.clock import FakeClock, SystemClock
from apflow.domain.enums import RunState, Trigger
from apflow.engine.engine import Engine
from apflow.engine.leases import LeaseClock
from apflow.store import RunFilter, Store
from tests.engine.conftest import FAST, add_task, finished, now, until
from tests.engine.executors import engine_registry

SKEW = timedelta(minutes=10)
SETTINGS = replace(FAST, heartbeat_interval=0.1, lease_seconds=1.0)


class SkewedClock(SystemClock):
    """This machine's clock, `skew` off: a node whose clock is not synchronised."""

    def __init__(self, skew: timedelta) -> None:
        self.skew = skew

    def now(self) -> datetime:
        return super().now() + self.skew


async def test_the_database_clock_is_postgresqls_and_sqlite_has_none(store: Store) -> None:
    server = await store.database_time()
    if store.dialect == "sqlite":  # type: ignore[attr-defined]
        assert server is None
        return
    assert server is not None and server.utcoffset() == timedelta(0)
    assert abs(server - now()) < timedelta(seconds=1)  # one machine, one clock


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_skewed_node_measures_its_offset_to_the_database(store: Store) -> None:
    for skew in (SKEW, -SKEW):
        leases = LeaseClock(SkewedClock(skew), store)
        await leases.sync()
        assert abs(leases.offset + skew) < timedelta(seconds=1)
        assert abs(leases.now() - now()) < timedelta(seconds=1)
        assert abs(leases.until(30) - now() - timedelta(seconds=30)) < timedelta(seconds=1)


async def test_sqlite_and_fake_clocks_keep_their_own_time(store: Store) -> None:
    fake = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    leases = LeaseClock(fake, store)
    await leases.sync()
    assert (leases.offset, leases.now()) == (timedelta(0), fake.now())
    if store.dialect == "sqlite":  # type: ignore[attr-defined]
        skewed = LeaseClock(SkewedClock(SKEW), store)  # one machine: nothing to align with
        await skewed.sync()
        assert skewed.offset == timedelta(0)


async def _start(store: Store, node_id: str, skew: timedelta) -> Engine:
    engine = Engine(store, SkewedClock(skew), engine_registry(), SETTINGS, node_id=node_id)
    await engine.start()
    return engine


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_nodes_with_skewed_clocks_neither_steal_nor_lose_runs(store: Store) -> None:
    await add_task(store, "slow", command="sleep 2.5")
    behind = await _start(store, "behind", -SKEW)  # its leases would look expired
    engines = [behind]
    try:
        run = await behind.trigger("slow", Trigger.MANUAL)
        await until(lambda: _running_on(store, run.id, "behind"))
        engines.append(await _start(store, "ahead", SKEW))  # it would find "behind" lost
        # Many heartbeats and reaps of both nodes pass while the run goes on (lease 1 s).
        done = await finished(behind, run.id, seconds=15)
        assert (done.state, done.node, done.end_reason) == (RunState.SUCCEEDED, "behind", None)
        assert await store.list_runs(RunFilter(state=RunState.CRASHED)) == []
        nodes = {node.id: node.state for node in await store.list_nodes()}
        assert nodes == {"behind": "active", "ahead": "active"}
        beats = [node.heartbeat_at for node in await store.list_nodes()]
        assert all(abs(beat - now()) < timedelta(seconds=2) for beat in beats)
    finally:
        for engine in engines:
            await engine.stop(drain=False)


async def _running_on(store: Store, run_id: str, node: str) -> bool:
    run = await store.get_run(run_id)
    return run.state is RunState.RUNNING and run.node == node
