"""notify_change / listen_changes: a change made by one store wakes the others' schedulers."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from apflow.store.postgres import LISTENER_NAME
from tests.store.conftest import Backend

WAIT = 5.0


async def test_a_change_wakes_a_listener_of_another_store(backend: Backend) -> None:
    listening, notifying = await backend.new_store(), await backend.new_store()
    woken = asyncio.Event()
    await listening.listen_changes(woken.set)
    await notifying.notify_change()
    await asyncio.wait_for(woken.wait(), WAIT)


async def test_a_change_wakes_the_notifying_store_too(backend: Backend) -> None:
    store = await backend.new_store()
    woken = asyncio.Event()
    await store.listen_changes(woken.set)
    await store.notify_change()
    await asyncio.wait_for(woken.wait(), WAIT)


async def test_async_listeners_run_and_a_failing_one_does_not_stop_the_others(
        backend: Backend) -> None:
    store = await backend.new_store()
    woken = asyncio.Event()

    def broken() -> None:
        raise RuntimeError("listener bug")

    async def wake() -> None:
        woken.set()

    await store.listen_changes(broken)
    await store.listen_changes(wake)
    await store.notify_change()
    await asyncio.wait_for(woken.wait(), WAIT)


async def test_a_closed_store_hears_nothing_more(backend: Backend) -> None:
    listening, notifying = await backend.new_store(), await backend.new_store()
    calls: list[int] = []
    await listening.listen_changes(lambda: calls.append(1))
    await listening.close()
    await notifying.notify_change()
    await asyncio.sleep(0.2)
    assert calls == []


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_listener_comes_back_after_its_connection_is_killed(
        backend: Backend) -> None:
    listening, notifying = await backend.new_store(), await backend.new_store()
    wakes: asyncio.Queue[None] = asyncio.Queue()
    await listening.listen_changes(lambda: wakes.put_nowait(None))
    admin = await asyncpg.connect(backend.url)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()", LISTENER_NAME)
    finally:
        await admin.close()
    assert killed == 1
    await asyncio.wait_for(wakes.get(), WAIT)  # the reconnect itself wakes the scheduler
    await notifying.notify_change()
    await asyncio.wait_for(wakes.get(), WAIT)
