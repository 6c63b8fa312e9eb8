"""Exclusion calendars loaded from files or allow-listed URLs, cached, refreshed on a TTL.

A source is an absolute path (or file:// URL) under one of `allowed_dirs`, or an http(s)
URL under one of `allowed_urls` (same scheme, host and port; the path at or below the
listed one). Anything else is refused with Forbidden before any I/O. Redirects are not
followed: a redirect could leave the allow-list. A refresh that fails keeps the last good
copy (logged) and is retried after `retry_after`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

import aiohttp

from apflow.config import Config
from apflow.domain.errors import ApflowError, Forbidden, InvalidParams
from apflow.gateway.ical_import import FIELD, MAX_BYTES, ExclusionCalendar, parse_exclusions
from apflow.schedules.timezones import as_utc

logger = logging.getLogger(__name__)

DEFAULT_REFRESH = timedelta(hours=1)
DEFAULT_RETRY = timedelta(minutes=5)
_CHUNK = 64 * 1024
_WEB_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class _Entry:
    calendar: ExclusionCalendar
    loaded_at: datetime
    next_check: datetime


class ExclusionCache:
    """Loads exclusion calendars by source and keeps each for `refresh` (time from `now`)."""

    def __init__(self, *, allowed_urls: Sequence[str] = (),
                 allowed_dirs: Sequence[str | Path] = (),
                 refresh: timedelta = DEFAULT_REFRESH, retry_after: timedelta = DEFAULT_RETRY,
                 timeout_seconds: float = 10.0) -> None:
        self._urls = [urlsplit(prefix) for prefix in allowed_urls]
        self._dirs = [Path(directory).resolve() for directory in allowed_dirs]
        self._refresh, self._retry = refresh, retry_after
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, source: str, now: datetime) -> ExclusionCalendar:
        """The calendar at `source`, loaded now if the cached copy is due for a refresh."""
        at = as_utc(now, "now")
        self.check_allowed(source)
        entry = self._entries.get(source)
        if entry is not None and at < entry.next_check:
            return entry.calendar
        async with self._locks.setdefault(source, asyncio.Lock()):
            return await self._refresh_entry(source, at)

    async def _refresh_entry(self, source: str, now: datetime) -> ExclusionCalendar:
        entry = self._entries.get(source)
        if entry is not None and now < entry.next_check:  # another caller just did it
            return entry.calendar
        try:
            calendar = parse_exclusions(await self._load(source), source=display(source))
        except ApflowError as error:
            if entry is None:
                raise
            entry.next_check = now + self._retry
            logger.warning("exclusion calendar refresh failed, keeping the copy from %s: %s",
                           entry.loaded_at.isoformat(), error.message,
                           extra={"action": "exclusion_refresh_failed",
                                  "source": display(source)})
            return entry.calendar
        self._entries[source] = _Entry(calendar, now, now + self._refresh)
        return calendar

    def check_allowed(self, source: str) -> None:
        """Raise Forbidden (or InvalidParams for a malformed source) unless it may be read."""
        if not isinstance(source, str) or not source:
            raise InvalidParams("must be a file path or an http(s) URL", field=FIELD)
        if _is_web(source):
            _check_url(source, self._urls)
        else:
            _check_path(source, self._dirs)

    async def _load(self, source: str) -> bytes:
        if _is_web(source):
            return await fetch(source, self._timeout)
        return await asyncio.to_thread(read_file, _file_path(source))


def exclusion_cache(config: Config) -> ExclusionCache | None:
    """The cache the `calendars.*` keys describe, or None when they allow no source."""
    calendars = config.calendars
    if not calendars.enabled:
        return None
    return ExclusionCache(allowed_urls=calendars.allowed_urls,
                          allowed_dirs=calendars.allowed_dirs,
                          refresh=timedelta(seconds=calendars.refresh_seconds))


def _is_web(source: str) -> bool:
    return urlsplit(source).scheme.lower() in _WEB_SCHEMES


def _check_url(url: str, allowed: Sequence[SplitResult]) -> None:
    parts = urlsplit(url)
    try:
        _port(parts)
    except ValueError:
        raise InvalidParams(f"{display(url)}: the port is not a number from 0 to 65535",
                            field=FIELD) from None
    if parts.username is not None or parts.password is not None:
        raise InvalidParams(f"{display(url)}: credentials in the URL are not accepted",
                            field=FIELD)
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        raise InvalidParams(f"{display(url)}: '.' and '..' path segments are not accepted",
                            field=FIELD)
    if not any(_under(parts, prefix) for prefix in allowed):
        raise Forbidden(f"{display(url)} is not on the exclusion calendar allow-list",
                        field=FIELD)


def _under(url: SplitResult, prefix: SplitResult) -> bool:
    """True if the URL has the prefix's scheme, host and port and a path at or below it."""
    if (url.scheme.lower(), url.hostname, _port(url)) != (
            prefix.scheme.lower(), prefix.hostname, _port(prefix)):
        return False
    base = prefix.path.rstrip("/")
    return not base or url.path == base or url.path.startswith(base + "/")


def _port(parts: SplitResult) -> int | None:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())


def _file_path(source: str) -> Path:
    parts = urlsplit(source)
    if parts.scheme.lower() == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # "C:" is a drive, not a scheme
        raise InvalidParams(f"{display(source)}: only http(s) URLs and files are accepted",
                            field=FIELD)
    return Path(source)


def _check_path(source: str, allowed: Sequence[Path]) -> None:
    path = _file_path(source)
    if not path.is_absolute():
        raise InvalidParams(f"{source}: a file must be given by its absolute path", field=FIELD)
    real = path.resolve()  # symlinks followed: a link may not lead out of the directory
    if not any(real.is_relative_to(directory) for directory in allowed):
        raise Forbidden(f"{source} is not in a directory allowed for exclusion calendars",
                        field=FIELD)


def read_file(path: Path) -> bytes:
    """The file's bytes, refusing one over the size cap before reading it."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InvalidParams(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB",
                                field=FIELD)
        return path.read_bytes()
    except OSError as error:
        raise InvalidParams(f"{path}: cannot be read ({error.strerror or error})",
                            field=FIELD) from error


async def fetch(url: str, limits: aiohttp.ClientTimeout) -> bytes:
    """GET the URL (no redirects), at most MAX_BYTES of body; InvalidParams on failure."""
    try:
        async with aiohttp.ClientSession(timeout=limits) as session, session.get(
                url, allow_redirects=False, headers={"Accept": "text/calendar"}) as response:
            if response.status != 200:
                raise InvalidParams(f"{display(url)}: HTTP {response.status} "
                                    f"{response.reason or ''}".rstrip(), field=FIELD)
            return await _read_capped(response, url)
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise InvalidParams(f"{display(url)}: cannot be fetched ({reason})",
                            field=FIELD) from error


async def _read_capped(response: aiohttp.ClientResponse, url: str) -> bytes:
    too_big = InvalidParams(f"{display(url)}: larger than {MAX_BYTES // (1024 * 1024)} MiB",
                            field=FIELD)
    if (response.content_length or 0) > MAX_BYTES:
        raise too_big
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > MAX_BYTES:
            raise too_big
    return bytes(body)


def display(source: str) -> str:
    """The source for messages and logs: no credentials, query or fragment."""
    parts = urlsplit(source)
    if parts.scheme.lower() not in _WEB_SCHEMES:
        return source
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
