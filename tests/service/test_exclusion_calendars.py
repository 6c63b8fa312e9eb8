"""A task's exclusion_calendar is checked when the task is saved: allow-listed, readable and a
valid calendar, else -32602 naming the field (and, when not allowed, the config key)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from apflow.clock import FakeClock
from apflow.config import CalendarsConfig, Config
from apflow.domain.errors import InvalidParams
from apflow.service import Service
from apflow.store.sqlstore import SqlStore
from tests.service.conftest import ALICE, Caller

HOLIDAY = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
           b"UID:h@example.org\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\n"
           b"SUMMARY:Christmas Day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


@pytest.fixture
def calendars_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "calendars"
    directory.mkdir()
    (directory / "holidays.ics").write_bytes(HOLIDAY)
    (directory / "truncated.ics").write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    return directory


@pytest.fixture
def calendar_service(store: SqlStore, clock: FakeClock, calendars_dir: Path) -> Caller:
    config = Config(database_url="sqlite://", jwt_secret="x" * 32,
                    calendars=CalendarsConfig(allowed_dirs=(str(calendars_dir),)))
    return Caller(Service(store, clock, None, config), ALICE)


async def test_an_allowed_valid_calendar_is_accepted_and_read_back(
        calendar_service: Caller, calendars_dir: Path) -> None:
    source = str(calendars_dir / "holidays.ics")
    task = await calendar_service("tasks.create", name="t", exclusion_calendar=source)
    assert task["exclusion_calendar"] == source
    assert (await calendar_service("tasks.get", task_id=task["id"]))[
        "exclusion_calendar"] == source


async def test_without_configured_calendars_a_task_naming_one_is_refused(
        alice: Caller, calendars_dir: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^exclusion_calendar: .*calendars\.allowed_dirs"):
        await alice("tasks.create", name="t",
                    exclusion_calendar=str(calendars_dir / "holidays.ics"))


async def test_a_calendar_outside_the_allowed_directories_is_refused(
        calendar_service: Caller, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.ics"
    outside.write_bytes(HOLIDAY)
    with pytest.raises(InvalidParams, match=r"^exclusion_calendar: .*not in a directory "
                                            r"allowed.*calendars\.allowed_dirs") as caught:
        await calendar_service("tasks.create", name="t", exclusion_calendar=str(outside))
    assert caught.value.rpc_code == -32602


async def test_a_malformed_calendar_is_refused_with_the_reason(
        calendar_service: Caller, calendars_dir: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^exclusion_calendar: .*truncated"):
        await calendar_service("tasks.create", name="t",
                               exclusion_calendar=str(calendars_dir / "truncated.ics"))


async def test_a_missing_calendar_file_is_refused(
        calendar_service: Caller, calendars_dir: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^exclusion_calendar: .*cannot be read"):
        await calendar_service("tasks.create", name="t",
                               exclusion_calendar=str(calendars_dir / "gone.ics"))


async def test_update_checks_a_changed_calendar_and_nothing_is_saved_when_refused(
        calendar_service: Caller, calendars_dir: Path) -> None:
    task = await calendar_service("tasks.create", name="t")
    with pytest.raises(InvalidParams, match=r"^exclusion_calendar: "):
        await calendar_service("tasks.update", task_id=task["id"],
                               exclusion_calendar=str(calendars_dir / "gone.ics"))
    assert (await calendar_service("tasks.get", task_id=task["id"]))[
        "exclusion_calendar"] is None
    source = str(calendars_dir / "holidays.ics")
    updated = await calendar_service("tasks.update", task_id=task["id"],
                                     exclusion_calendar=source)
    assert updated["exclusion_calendar"] == source


async def test_an_unchanged_calendar_is_not_checked_again_on_update(
        calendar_service: Caller, calendars_dir: Path) -> None:
    source = calendars_dir / "holidays.ics"
    task = await calendar_service("tasks.create", name="t", exclusion_calendar=str(source))
    source.unlink()  # a source gone for a while must not block unrelated edits
    renamed = await calendar_service("tasks.update", task_id=task["id"], name="renamed")
    assert renamed["name"] == "renamed"


def test_the_config_without_sources_gives_the_service_no_cache(store: SqlStore,
                                                                clock: FakeClock) -> None:
    config = Config(database_url="sqlite://", jwt_secret="x" * 32)
    assert Service(store, clock, None, config).calendars is None
    allowed = replace(config, calendars=CalendarsConfig(allowed_urls=("https://c.example/",)))
    assert Service(store, clock, None, allowed).calendars is not None
