"""ExclusionCache: real files, a real HTTP server on 127.0.0.1, an injected `now`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from apflow.domain.errors import Forbidden, InvalidParams
from apflow.gateway.exclusion_cache import ExclusionCache
from apflow.gateway.ical_import import MAX_BYTES

NOW = datetime(2024, 12, 1, tzinfo=UTC)
CHRISTMAS = datetime(2024, 12, 25, 12, tzinfo=UTC)
NEW_YEAR = datetime(2025, 1, 1, 12, tzinfo=UTC)


def holiday(day: str) -> bytes:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//t//EN",
                        "BEGIN:VEVENT", f"UID:{day}", "DTSTAMP:20240101T000000Z",
                        f"DTSTART;VALUE=DATE:{day}", "END:VEVENT", "END:VCALENDAR", ""]).encode()


@dataclass
class CalendarServer:
    """Serves `bodies[path]` with `statuses[path]` (default 200) and counts the GETs."""

    base: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0


@pytest.fixture
async def server() -> AsyncIterator[CalendarServer]:
    state = CalendarServer()

    async def serve(request: web.Request) -> web.StreamResponse:
        state.hits[request.path] = state.hits.get(request.path, 0) + 1
        await asyncio.sleep(state.delay)
        status = state.statuses.get(request.path, 200)
        if status in (301, 302):
            raise web.HTTPFound(state.base + "/elsewhere.ics")
        return web.Response(body=state.bodies.get(request.path, b""), status=status,
                            content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
def holidays_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "calendars"
    directory.mkdir()
    (directory / "holidays.ics").write_bytes(holiday("20241225"))
    return directory


# files ----------------------------------------------------------------------------------------

async def test_a_file_in_an_allowed_directory_is_loaded(holidays_dir: Path) -> None:
    cache = ExclusionCache(allowed_dirs=[holidays_dir])
    calendar = await cache.get(str(holidays_dir / "holidays.ics"), NOW)
    assert calendar.covers(CHRISTMAS) and not calendar.covers(NEW_YEAR)


async def test_a_file_url_works_like_a_path(holidays_dir: Path) -> None:
    cache = ExclusionCache(allowed_dirs=[holidays_dir])
    calendar = await cache.get((holidays_dir / "holidays.ics").as_uri(), NOW)
    assert calendar.covers(CHRISTMAS)


async def test_a_cached_file_is_reread_only_after_the_refresh_time(holidays_dir: Path) -> None:
    path = holidays_dir / "holidays.ics"
    cache = ExclusionCache(allowed_dirs=[holidays_dir], refresh=timedelta(hours=1))
    await cache.get(str(path), NOW)
    path.write_bytes(holiday("20250101"))
    assert (await cache.get(str(path), NOW + timedelta(minutes=59))).covers(CHRISTMAS)
    fresh = await cache.get(str(path), NOW + timedelta(hours=1))
    assert fresh.covers(NEW_YEAR) and not fresh.covers(CHRISTMAS)


async def test_a_file_outside_the_allowed_directories_is_forbidden(
        holidays_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.ics"
    outside.write_bytes(holiday("20241225"))
    with pytest.raises(Forbidden, match=r"^exclusion_calendar: "):
        await ExclusionCache(allowed_dirs=[holidays_dir]).get(str(outside), NOW)


async def test_a_symlink_leading_out_of_an_allowed_directory_is_forbidden(
        holidays_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.ics"
    outside.write_bytes(holiday("20241225"))
    (holidays_dir / "link.ics").symlink_to(outside)
    with pytest.raises(Forbidden):
        await ExclusionCache(allowed_dirs=[holidays_dir]).get(
            str(holidays_dir / "link.ics"), NOW)


async def test_a_relative_path_is_refused(holidays_dir: Path) -> None:
    with pytest.raises(InvalidParams, match="absolute path"):
        await ExclusionCache(allowed_dirs=[holidays_dir]).get("holidays.ics", NOW)


async def test_a_missing_file_is_reported_as_unreadable(holidays_dir: Path) -> None:
    with pytest.raises(InvalidParams, match="cannot be read"):
        await ExclusionCache(allowed_dirs=[holidays_dir]).get(
            str(holidays_dir / "absent.ics"), NOW)


async def test_an_oversized_file_is_refused_before_it_is_read(holidays_dir: Path) -> None:
    big = holidays_dir / "big.ics"
    big.write_bytes(b"X" * (MAX_BYTES + 1))
    with pytest.raises(InvalidParams, match="larger than 5 MiB"):
        await ExclusionCache(allowed_dirs=[holidays_dir]).get(str(big), NOW)


# URLs -----------------------------------------------------------------------------------------

async def test_an_allow_listed_url_is_fetched_and_cached(server: CalendarServer) -> None:
    server.bodies["/cal/holidays.ics"] = holiday("20241225")
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    url = server.base + "/cal/holidays.ics"
    assert (await cache.get(url, NOW)).covers(CHRISTMAS)
    await cache.get(url, NOW + timedelta(minutes=30))
    assert server.hits["/cal/holidays.ics"] == 1
    await cache.get(url, NOW + timedelta(hours=1))
    assert server.hits["/cal/holidays.ics"] == 2


@pytest.mark.parametrize("url", [
    "{base}/other/holidays.ics",  # outside the listed path
    "{base}/calendar/holidays.ics",  # shares a prefix, not the directory
    "http://localhost:{port}/cal/holidays.ics",  # another host name
    "https://127.0.0.1:{port}/cal/holidays.ics",  # another scheme
])
async def test_a_url_off_the_allow_list_is_forbidden_without_a_request(
        server: CalendarServer, url: str) -> None:
    cache = ExclusionCache(allowed_urls=[server.base + "/cal"])
    port = server.base.rsplit(":", 1)[1]
    with pytest.raises(Forbidden, match="not on the exclusion calendar allow-list"):
        await cache.get(url.format(base=server.base, port=port), NOW)
    assert server.hits == {}


@pytest.mark.parametrize(("url", "reason"), [
    ("{base}/cal/../admin.ics", "path segments"),
    ("{base}/cal/%2e%2e/admin.ics", "path segments"),
    ("http://user:pw@{host}/cal/holidays.ics", "credentials"),
    ("ftp://{host}/cal/holidays.ics", "only http(s) URLs and files"),
])
async def test_a_url_that_could_escape_the_allow_list_is_refused(
        server: CalendarServer, url: str, reason: str) -> None:
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    host = server.base.split("://")[1]
    with pytest.raises(InvalidParams, match=re.escape(reason)):
        await cache.get(url.format(base=server.base, host=host), NOW)
    assert server.hits == {}


async def test_a_redirect_is_not_followed(server: CalendarServer) -> None:
    server.statuses["/cal/moved.ics"] = 302
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    with pytest.raises(InvalidParams, match="HTTP 302"):
        await cache.get(server.base + "/cal/moved.ics", NOW)
    assert "/elsewhere.ics" not in server.hits


async def test_a_first_load_that_fails_is_an_error(server: CalendarServer) -> None:
    server.statuses["/cal/absent.ics"] = 404
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    with pytest.raises(InvalidParams, match="HTTP 404"):
        await cache.get(server.base + "/cal/absent.ics", NOW)


async def test_an_oversized_body_is_refused(server: CalendarServer) -> None:
    server.bodies["/cal/big.ics"] = b"X" * (MAX_BYTES + 1)
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    with pytest.raises(InvalidParams, match="larger than 5 MiB"):
        await cache.get(server.base + "/cal/big.ics", NOW)


async def test_an_unreachable_server_is_reported(server: CalendarServer) -> None:
    cache = ExclusionCache(allowed_urls=["http://127.0.0.1:9/"], timeout_seconds=2)
    with pytest.raises(InvalidParams, match="cannot be fetched"):
        await cache.get("http://127.0.0.1:9/holidays.ics", NOW)


@pytest.mark.parametrize("failure", ["server error", "malformed file"])
async def test_a_failed_refresh_keeps_the_last_good_copy_and_logs_it(
        server: CalendarServer, caplog: pytest.LogCaptureFixture, failure: str) -> None:
    path = "/cal/holidays.ics"
    server.bodies[path] = holiday("20241225")
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"],
                           retry_after=timedelta(minutes=5))
    await cache.get(server.base + path, NOW)
    if failure == "server error":
        server.statuses[path] = 500
    else:
        server.bodies[path] = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"
    later = NOW + timedelta(hours=2)
    with caplog.at_level(logging.WARNING):
        kept = await cache.get(server.base + path, later)
    assert kept.covers(CHRISTMAS)
    assert [getattr(r, "action", None) for r in caplog.records] == ["exclusion_refresh_failed"]
    await cache.get(server.base + path, later + timedelta(minutes=4))
    assert server.hits[path] == 2  # the next attempt waits for retry_after
    await cache.get(server.base + path, later + timedelta(minutes=5))
    assert server.hits[path] == 3


async def test_concurrent_requests_for_one_source_share_one_fetch(
        server: CalendarServer) -> None:
    server.bodies["/cal/holidays.ics"] = holiday("20241225")
    server.delay = 0.2
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    url = server.base + "/cal/holidays.ics"
    first, second = await asyncio.gather(cache.get(url, NOW), cache.get(url, NOW))
    assert first is second and server.hits["/cal/holidays.ics"] == 1


async def test_the_allow_list_is_checked_even_for_a_cached_source(
        server: CalendarServer) -> None:
    cache = ExclusionCache(allowed_urls=[server.base + "/cal/"])
    with pytest.raises(Forbidden):
        await cache.get(server.base + "/private/holidays.ics", NOW)


async def test_a_naive_now_is_refused(holidays_dir: Path) -> None:
    with pytest.raises(InvalidParams, match=r"^now: "):
        await ExclusionCache(allowed_dirs=[holidays_dir]).get(
            str(holidays_dir / "holidays.ics"), datetime(2024, 12, 1))
