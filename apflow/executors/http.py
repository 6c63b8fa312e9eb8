"""The "http" executor: one HTTP request; success is a 2xx (or an `expected_status`)."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from apflow.domain.enums import RunState
from apflow.domain.errors import InvalidParams
from apflow.executors.base import ExecutionResult, LogSink, RunContext
from apflow.executors.specs import field_name, required_str, string_map
from apflow.executors.work import cancel, result_of

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT_SECONDS = 30.0
BODY_LOG_LIMIT = 64 * 1024  # bytes of the response body written to the log
RESULT_TEXT_LIMIT = 16 * 1024  # characters of a non-JSON body kept in the run's result


def _validate_url(spec: Mapping[str, Any]) -> str:
    url = required_str(spec, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParams("must be an http:// or https:// URL with a host",
                            field=field_name("url"))
    return url


def _validate_method(spec: Mapping[str, Any]) -> str:
    method = spec.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidParams(f"must be one of {', '.join(METHODS)}", field=field_name("method"))
    return method.upper()


def _validate_timeout(spec: Mapping[str, Any]) -> float:
    value = spec.get("timeout_seconds")
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidParams("must be a number > 0", field=field_name("timeout_seconds"))
    return float(value)


def _validate_expected(spec: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The accepted status codes; None means any 2xx."""
    value = spec.get("expected_status")
    if value is None:
        return None
    codes = value if isinstance(value, list) else [value]
    if not codes or not all(isinstance(c, int) and not isinstance(c, bool)
                            and 100 <= c <= 599 for c in codes):
        raise InvalidParams("must be a status code (100-599) or a list of them",
                            field=field_name("expected_status"))
    return tuple(codes)


def _validate_body(spec: Mapping[str, Any]) -> None:
    if "json" in spec and spec.get("body") is not None:
        raise InvalidParams("give either 'json' or 'body', not both", field=field_name("body"))
    if spec.get("body") is not None and not isinstance(spec["body"], str):
        raise InvalidParams("must be a string", field=field_name("body"))
    if "json" in spec:
        try:
            json.dumps(spec["json"])
        except (TypeError, ValueError) as exc:
            raise InvalidParams("must be JSON", field=field_name("json")) from exc


def connection_error(exc: BaseException, url: str) -> str:
    """A short message for a request that got no response."""
    if isinstance(exc, TimeoutError):
        return f"timed out: {url}"
    if isinstance(getattr(exc, "os_error", None), socket.gaierror):
        return f"cannot resolve host: {url}"
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError) or (
            isinstance(os_error, OSError) and os_error.errno == errno.ECONNREFUSED):
        return f"connection refused: {url}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {url} ({exc.os_error.strerror or exc.os_error})"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"request failed: {url}: {text}"


def result_body(raw: bytes, truncated: bool, content_type: str) -> Any:
    """The body for the run's result: parsed JSON if it is small JSON, else (cut) text."""
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type and not truncated and len(raw) <= RESULT_TEXT_LIMIT:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text[:RESULT_TEXT_LIMIT]


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the body, and whether there was more (the rest is discarded)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        data = await response.content.readany()
        if not data:
            return b"".join(parts), False
        parts.append(data)
        size += len(data)
    return b"".join(parts)[:limit], True


class HttpExecution:
    """One request in flight."""

    def __init__(self, spec: Mapping[str, Any], log: LogSink) -> None:
        self._task = asyncio.create_task(self._request(spec, log))

    async def wait(self) -> ExecutionResult:
        return await result_of(self._task)

    async def stop(self, grace_seconds: float) -> None:
        """Cancel the request (there is nothing to ask nicely)."""
        await cancel(self._task)

    async def _request(self, spec: Mapping[str, Any], log: LogSink) -> ExecutionResult:
        url = _validate_url(spec)
        method = _validate_method(spec)
        expected = _validate_expected(spec)
        timeout = aiohttp.ClientTimeout(total=_validate_timeout(spec))
        kwargs: dict[str, Any] = {"headers": string_map(spec, "headers")}
        if "json" in spec:
            kwargs["json"] = spec["json"]
        elif spec.get("body") is not None:
            kwargs["data"] = str(spec["body"]).encode("utf-8")
        started = time.monotonic()
        try:
            async with (aiohttp.ClientSession(timeout=timeout) as session,
                        session.request(method, url, allow_redirects=True, **kwargs) as response):
                raw, truncated = await read_capped(response, BODY_LOG_LIMIT)
                status, reason = response.status, response.reason or ""
                content_type = response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = connection_error(exc, url)
            await log.write("stderr", f"{method} {url} failed: {error}\n")
            return ExecutionResult(state=RunState.FAILED, error=error)
        elapsed_ms = (time.monotonic() - started) * 1000
        await log.write("stdout", f"{method} {url} -> {status} {reason} ({elapsed_ms:.0f} ms, "
                                  f"{len(raw)} bytes{', truncated' if truncated else ''})\n")
        if raw:
            body = raw.decode("utf-8", errors="replace")
            await log.write("stdout", body if body.endswith("\n") else body + "\n")
        result = {"status": status, "body": result_body(raw, truncated, content_type)}
        ok = status in expected if expected is not None else 200 <= status < 300
        if ok:
            return ExecutionResult(state=RunState.SUCCEEDED, result=result)
        wanted = ", ".join(map(str, expected)) if expected is not None else "2xx"
        return ExecutionResult(state=RunState.FAILED, result=result,
                               error=f"unexpected status {status} {reason} (expected {wanted})")


class HttpExecutor:
    """Sends one HTTP request per run."""

    type_name = "http"

    def validate(self, spec: Mapping[str, Any]) -> None:
        _validate_url(spec)
        _validate_method(spec)
        string_map(spec, "headers")
        _validate_body(spec)
        _validate_timeout(spec)
        _validate_expected(spec)

    async def start(self, spec: Mapping[str, Any], ctx: RunContext) -> HttpExecution:
        self.validate(spec)
        return HttpExecution(spec, ctx.log)
