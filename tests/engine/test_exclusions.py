"""Exclusion calendars in the scheduler: slots on a calendar's events are ledgered `excluded`
and not run; calendars are loaded outside the firing transaction, refreshed, and one that
cannot be loaded never stops the loop. A fake clock drives the scheduler pass by pass."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from apflow.clock import FakeClock
from apflow.domain.enums import CatchUp, OccurrenceOutcome, RunState, Trigger
from apflow.domain.models import Task
from apflow.engine.exclusions import ExclusionCalendars
from apflow.engine.scheduler import Scheduler
from apflow.engine.settings import EngineSettings
from apflow.gateway.exclusion_cache import ExclusionCache
from apflow.store import OccurrenceFilter, RunFilter, Store
from tests.engine.conftest import add_task

DEC_24 = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def holiday(day: str, summary: str = "Christmas Day") -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//apflow tests//EN\r\n"
            "BEGIN:VEVENT\r\nUID:h@example.org\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART;VALUE=DATE:{day}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
            "END:VCALENDAR\r\n").encode()


@pytest.fixture
def calendars_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "calendars"
    directory.mkdir()
    (directory / "holidays.ics").write_bytes(holiday("20261225"))
    return directory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(DEC_24)


@pytest.fixture
def scheduler(store: Store, clock: FakeClock, calendars_dir: Path) -> Scheduler:
    cache = ExclusionCache(allowed_dirs=[calendars_dir], refresh=timedelta(hours=1))
    return Scheduler(store, clock, EngineSettings(), lambda plans: None,
                     ExclusionCalendars(cache))


async def daily(store: Store, task_id: str, calendar: Path | str | None,
                **fields: Any) -> Task:
    """A daily 09:00 UTC task, first due on 24 December unless `next_run_at` says otherwise."""
    values: dict[str, Any] = {"schedule_type": "daily", "schedule_expression": "09:00",
                              "schedule_enabled": True, "next_run_at": DEC_24,
                              "exclusion_calendar": str(calendar) if calendar else None}
    return await add_task(store, task_id, **{**values, **fields})


async def ledger(store: Store, task_id: str) -> list[tuple[datetime, OccurrenceOutcome]]:
    rows = await store.list_occurrences(OccurrenceFilter(task_id=task_id))
    return sorted((row.scheduled_for, row.outcome) for row in rows)


async def pass_at(scheduler: Scheduler, clock: FakeClock, at: datetime) -> None:
    clock.set(at)
    await scheduler.tick(at)


async def test_the_holiday_is_ledgered_excluded_and_the_other_days_fire(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path) -> None:
    await daily(store, "t1", calendars_dir / "holidays.ics")
    for day in range(3):
        await pass_at(scheduler, clock, DEC_24 + day * DAY)
    assert await ledger(store, "t1") == [
        (DEC_24, OccurrenceOutcome.FIRED),
        (DEC_24 + DAY, OccurrenceOutcome.EXCLUDED),
        (DEC_24 + 2 * DAY, OccurrenceOutcome.FIRED)]
    runs = await store.list_runs(RunFilter(task_id="t1"))
    assert sorted(run.scheduled_for for run in runs if run.scheduled_for) == [
        DEC_24, DEC_24 + 2 * DAY]
    task = await store.get_task("t1")
    assert (task.run_count, task.next_run_at) == (2, DEC_24 + 3 * DAY)


async def test_the_excluded_row_names_the_event(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path) -> None:
    await daily(store, "t1", calendars_dir / "holidays.ics", next_run_at=DEC_24 + DAY)
    await pass_at(scheduler, clock, DEC_24 + DAY)
    (row,) = await store.list_occurrences(OccurrenceFilter(task_id="t1"))
    assert row.outcome is OccurrenceOutcome.EXCLUDED and row.run_id is None
    assert row.detail is not None and "'Christmas Day'" in row.detail
    assert "holidays.ics" in row.detail


async def test_max_runs_counts_only_fired_slots(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path) -> None:
    await daily(store, "t1", calendars_dir / "holidays.ics", max_runs=2)
    for day in range(3):
        await pass_at(scheduler, clock, DEC_24 + day * DAY)
    task = await store.get_task("t1")
    assert (task.run_count, task.schedule_enabled, task.next_run_at) == (2, False, None)
    assert (await ledger(store, "t1"))[-1] == (DEC_24 + 2 * DAY, OccurrenceOutcome.FIRED)


async def test_catch_up_applies_to_the_slots_left_after_exclusion(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path) -> None:
    await daily(store, "t1", calendars_dir / "holidays.ics", catch_up=CatchUp.LATEST)
    await pass_at(scheduler, clock, DEC_24 + DAY + timedelta(hours=1))  # down since the 24th
    assert await ledger(store, "t1") == [(DEC_24, OccurrenceOutcome.FIRED),
                                         (DEC_24 + DAY, OccurrenceOutcome.EXCLUDED)]
    (run,) = await store.list_runs(RunFilter(task_id="t1"))
    assert (run.scheduled_for, run.trigger, run.state) == (
        DEC_24, Trigger.CATCH_UP, RunState.QUEUED)


async def test_a_calendar_edited_on_disk_is_used_after_the_refresh_time(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path) -> None:
    await daily(store, "t1", calendars_dir / "holidays.ics")
    await pass_at(scheduler, clock, DEC_24)  # loads the calendar: the 25th is the holiday
    (calendars_dir / "holidays.ics").write_bytes(holiday("20261226", "Boxing Day"))
    await pass_at(scheduler, clock, DEC_24 + DAY)  # a day later: past the hour, re-read
    await pass_at(scheduler, clock, DEC_24 + 2 * DAY)
    assert await ledger(store, "t1") == [
        (DEC_24, OccurrenceOutcome.FIRED),
        (DEC_24 + DAY, OccurrenceOutcome.FIRED),
        (DEC_24 + 2 * DAY, OccurrenceOutcome.EXCLUDED)]


async def test_a_calendar_that_cannot_be_loaded_fires_normally_and_the_loop_goes_on(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (calendars_dir / "broken.ics").write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    (tmp_path / "elsewhere.ics").write_bytes(holiday("20261224"))
    await daily(store, "missing", calendars_dir / "gone.ics")
    await daily(store, "broken", calendars_dir / "broken.ics")
    await daily(store, "forbidden", tmp_path / "elsewhere.ics")
    await daily(store, "plain", None)
    await daily(store, "good", calendars_dir / "holidays.ics", next_run_at=DEC_24 + DAY)
    with caplog.at_level(logging.WARNING):
        await pass_at(scheduler, clock, DEC_24)
        await pass_at(scheduler, clock, DEC_24 + DAY)
    for task_id in ("missing", "broken", "forbidden", "plain"):
        assert await ledger(store, task_id) == [(DEC_24, OccurrenceOutcome.FIRED),
                                                (DEC_24 + DAY, OccurrenceOutcome.FIRED)]
    assert await ledger(store, "good") == [(DEC_24 + DAY, OccurrenceOutcome.EXCLUDED)]
    warned = {getattr(r, "task_id", None) for r in caplog.records
              if getattr(r, "action", None) == "exclusions_unavailable"}
    assert {"missing", "broken", "forbidden"} <= warned


async def test_a_failed_calendar_is_tried_again_after_the_retry_time(
        store: Store, scheduler: Scheduler, clock: FakeClock, calendars_dir: Path) -> None:
    await daily(store, "t1", calendars_dir / "late.ics")
    await pass_at(scheduler, clock, DEC_24)  # not there yet: fires, warned
    (calendars_dir / "late.ics").write_bytes(holiday("20261225"))
    await pass_at(scheduler, clock, DEC_24 + DAY)  # past retry_after: loaded now
    assert await ledger(store, "t1") == [(DEC_24, OccurrenceOutcome.FIRED),
                                         (DEC_24 + DAY, OccurrenceOutcome.EXCLUDED)]


@pytest.fixture
async def slow_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """Serves a calendar (holiday on 26 December) once the event is set."""
    release = asyncio.Event()

    async def serve(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=holiday("20261226"), content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", release
    finally:
        release.set()
        await runner.cleanup()


async def test_a_slow_calendar_holds_the_pass_only_for_the_wait_and_loads_meanwhile(
        store: Store, clock: FakeClock,
        slow_server: tuple[str, asyncio.Event]) -> None:
    base, release = slow_server
    exclusions = ExclusionCalendars(ExclusionCache(allowed_urls=[base + "/"]), first_wait=0.2)
    scheduler = Scheduler(store, clock, EngineSettings(), lambda plans: None, exclusions)
    await daily(store, "t1", base + "/holidays.ics", next_run_at=DEC_24 + DAY)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pass_at(scheduler, clock, DEC_24 + DAY)  # the server does not answer yet
    assert loop.time() - started < 2
    release.set()
    await pass_at(scheduler, clock, DEC_24 + 2 * DAY)  # loaded in the meantime
    assert await ledger(store, "t1") == [(DEC_24 + DAY, OccurrenceOutcome.FIRED),
                                         (DEC_24 + 2 * DAY, OccurrenceOutcome.EXCLUDED)]
    exclusions.cancel_loads()
