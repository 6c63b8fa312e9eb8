"""The http executor against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from apflow.domain.enums import RunState
from apflow.domain.errors import InvalidParams
from apflow.executors.http import HttpExecutor
from tests.executors.conftest import collector, finish, make_ctx


async def echo(request: web.Request) -> web.Response:
    body = await request.text()
    return web.json_response({"method": request.method, "body": body,
                              "auth": request.headers.get("Authorization"),
                              "content_type": request.headers.get("Content-Type")})


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status page")


async def big(request: web.Request) -> web.Response:
    return web.Response(text="y" * 200_000)


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(text="late")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(spec: dict[str, Any]) -> tuple[Any, str]:
    ctx = make_ctx()
    result = await finish(await HttpExecutor().start({"type": "http", **spec}, ctx))
    return result, collector(ctx).text


async def test_a_2xx_response_succeeds_with_status_and_parsed_json(server: str) -> None:
    result, text = await run({"url": f"{server}/echo"})
    assert result.state is RunState.SUCCEEDED
    assert result.result["status"] == 200 and result.result["body"]["method"] == "GET"
    assert text.startswith(f"GET {server}/echo -> 200 OK (")
    assert '"method": "GET"' in text


async def test_json_is_sent_as_json_with_headers(server: str) -> None:
    result, _ = await run({"url": f"{server}/echo", "method": "post", "json": {"a": [1, 2]},
                           "headers": {"Authorization": "Bearer t0ken"}})
    body = result.result["body"]
    assert body["method"] == "POST" and json.loads(body["body"]) == {"a": [1, 2]}
    assert body["auth"] == "Bearer t0ken" and body["content_type"] == "application/json"


async def test_a_body_is_sent_as_given(server: str) -> None:
    result, _ = await run({"url": f"{server}/echo", "method": "PUT", "body": "raw text"})
    assert result.result["body"]["body"] == "raw text"


async def test_a_non_2xx_status_fails(server: str) -> None:
    result, _ = await run({"url": f"{server}/status/500"})
    assert result.state is RunState.FAILED
    assert result.error == "unexpected status 500 Internal Server Error (expected 2xx)"
    assert result.result == {"status": 500, "body": "status page"}


async def test_expected_status_overrides_the_2xx_rule(server: str) -> None:
    ok, _ = await run({"url": f"{server}/status/404", "expected_status": [404, 410]})
    assert ok.state is RunState.SUCCEEDED
    bad, _ = await run({"url": f"{server}/status/200", "expected_status": 204})
    assert bad.state is RunState.FAILED and "(expected 204)" in (bad.error or "")


async def test_a_large_body_is_logged_up_to_64_kib(server: str) -> None:
    result, text = await run({"url": f"{server}/big"})
    assert result.state is RunState.SUCCEEDED and "truncated" in text.splitlines()[0]
    assert "".join(text.splitlines()[1:]) == "y" * 64 * 1024
    assert len(result.result["body"]) <= 16 * 1024


async def test_connection_refused_fails_with_a_short_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    result, _ = await run({"url": url})
    assert result.state is RunState.FAILED and result.error == f"connection refused: {url}"


async def test_a_timeout_fails_with_a_short_error(server: str) -> None:
    result, _ = await run({"url": f"{server}/slow", "timeout_seconds": 0.3})
    assert result.state is RunState.FAILED and result.error == f"timed out: {server}/slow"


async def test_an_unresolvable_host_fails_with_a_short_error() -> None:
    result, _ = await run({"url": "http://no-such-host.invalid/", "timeout_seconds": 5})
    assert result.state is RunState.FAILED
    assert result.error in ("cannot resolve host: http://no-such-host.invalid/",
                            "timed out: http://no-such-host.invalid/")


async def test_stop_cancels_the_request(server: str) -> None:
    execution = await HttpExecutor().start({"type": "http", "url": f"{server}/slow"},
                                           make_ctx())
    await asyncio.sleep(0.1)
    async with asyncio.timeout(5):
        await execution.stop(1)
    result = await finish(execution)
    assert result.state is RunState.FAILED and result.error == "stopped before it finished"


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "executor.url"),
    ({"url": "ftp://x/"}, "executor.url"),
    ({"url": "http://"}, "executor.url"),
    ({"url": "http://x/", "method": "FETCH"}, "executor.method"),
    ({"url": "http://x/", "headers": {"A": 1}}, "executor.headers"),
    ({"url": "http://x/", "body": {"a": 1}}, "executor.body"),
    ({"url": "http://x/", "body": "a", "json": {}}, "executor.body"),
    ({"url": "http://x/", "timeout_seconds": 0}, "executor.timeout_seconds"),
    ({"url": "http://x/", "timeout_seconds": "5"}, "executor.timeout_seconds"),
    ({"url": "http://x/", "expected_status": "200"}, "executor.expected_status"),
    ({"url": "http://x/", "expected_status": [200, 700]}, "executor.expected_status"),
])
def test_a_bad_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        HttpExecutor().validate({"type": "http", **spec})
    assert caught.value.field == field
