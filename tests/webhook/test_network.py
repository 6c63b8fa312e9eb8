"""Who the client is (peer address, X-Forwarded-For only behind a trusted proxy), the IP
allow-list, the rate limit, and bodies that are too big or too slow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict

from apflow.api import webhook as webhook_api
from apflow.clock import FakeClock
from apflow.domain.errors import ConfigError
from tests.webhook.conftest import Gateway, GatewayFactory


def nonce(n: int) -> bytes:
    return json.dumps({"nonce": n}).encode()


# allow-list and X-Forwarded-For ---------------------------------------------------------------


async def test_a_client_inside_an_allowed_range_is_accepted(
        make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.0.0.0/8", "127.0.0.0/8"))
    task = await gw.create()
    assert (await gw.trigger(task["id"])).status == 202


async def test_a_client_outside_the_allowed_ranges_is_403(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.0.0.0/8", "192.168.1.7"))
    task = await gw.create()
    answer = await gw.trigger(task["id"])
    assert answer.status == 403
    assert answer.message == "client address 127.0.0.1 is not allowed (webhook.allowed_ips)"
    assert await gw.runs() == []


async def test_the_allow_list_applies_to_jwt_calls_too(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.0.0.0/8",))
    task = await gw.create(user="alice")
    assert (await gw.post(task["id"], b"", gw.bearer("alice"))).status == 403


async def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(
        make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.1.0.0/16",))
    task = await gw.create()
    headers = {**gw.signed(b"{}"), "X-Forwarded-For": "10.1.2.3"}
    answer = await gw.post(task["id"], b"{}", headers)
    assert answer.status == 403
    assert "127.0.0.1" in answer.message
    assert await gw.runs() == []


async def test_x_forwarded_for_is_believed_from_a_trusted_proxy(
        make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.1.0.0/16",), trusted_proxies=("127.0.0.1",))
    task = await gw.create()
    headers = {**gw.signed(b"{}"), "X-Forwarded-For": "10.1.2.3"}
    assert (await gw.post(task["id"], b"{}", headers)).status == 202


async def test_only_the_right_most_untrusted_forwarded_entry_counts(
        make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.1.0.0/16",), trusted_proxies=("127.0.0.1",))
    task = await gw.create()
    # the client wrote 10.1.2.3 itself; the proxy appended the address it really saw
    headers = {**gw.signed(b"{}"), "X-Forwarded-For": "10.1.2.3, 203.0.113.9"}
    answer = await gw.post(task["id"], b"{}", headers)
    assert answer.status == 403
    assert "203.0.113.9" in answer.message


async def test_a_chain_of_trusted_proxies_is_walked(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.1.0.0/16",),
                            trusted_proxies=("127.0.0.1", "192.168.0.0/16"))
    task = await gw.create()
    headers = {**gw.signed(b"{}"), "X-Forwarded-For": "6.6.6.6, 10.1.2.3, 192.168.4.4"}
    assert (await gw.post(task["id"], b"{}", headers)).status == 202


async def test_a_malformed_allow_list_fails_at_start_up(make_gateway: GatewayFactory) -> None:
    with pytest.raises(ConfigError, match=r"webhook\.allowed_ips"):
        await make_gateway(allowed_ips=("10.0.0.0/33",))


# rate limit -----------------------------------------------------------------------------------


async def test_calls_over_the_rate_limit_get_429_with_retry_after(
        make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(rate_limit=2)
    assert isinstance(gw.clock, FakeClock)
    task = await gw.create()
    for n in range(2):
        assert (await gw.trigger(task["id"], nonce(n))).status == 202
    gw.clock.advance(20)
    limited = await gw.trigger(task["id"], nonce(3))
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "40"  # the minute's window ends in 40 s
    assert limited.body["error"]["code"] == 429
    assert len(await gw.runs()) == 2
    gw.clock.advance(40)
    assert (await gw.trigger(task["id"], nonce(4))).status == 202


async def test_the_rate_limit_counts_each_client_apart(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(rate_limit=1, trusted_proxies=("127.0.0.1",))
    task = await gw.create()

    async def from_client(ip: str, n: int) -> int:
        headers = {**gw.signed(nonce(n)), "X-Forwarded-For": ip}
        return (await gw.post(task["id"], nonce(n), headers)).status

    assert await from_client("10.0.0.1", 1) == 202
    assert await from_client("10.0.0.1", 2) == 429
    assert await from_client("10.0.0.2", 3) == 202


# bodies ---------------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(max_body_bytes=2048)
    task = await gw.create()
    body = json.dumps({"variables": {"A": "x" * 4000}}).encode()
    answer = await gw.trigger(task["id"], body)
    assert answer.status == 413
    assert answer.body["error"]["code"] == 413
    assert await gw.runs() == []


async def test_a_chunked_body_over_the_limit_is_413(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(max_body_bytes=2048)
    task = await gw.create()
    body = json.dumps({"variables": {"A": "x" * 4000}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start:start + 512]

    path = f"/webhook/trigger/{task['id']}"
    async with gw.client.post(path, data=chunks(), headers=gw.signed(body)) as response:
        assert response.status == 413
    assert await gw.runs() == []


async def open_trickle(gw: Gateway, task_id: str, length: int = 64) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that sent signed headers and the first byte of a `length`-byte body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    headers = gw.signed(b"x" * length)
    head = (f"POST /webhook/trigger/{task_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {length}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    writer.write(head.encode() + b"{")
    await writer.drain()
    return reader, writer


async def test_a_slow_body_does_not_hold_up_other_calls(gw: Gateway) -> None:
    task = await gw.create()
    reader, writer = await open_trickle(gw, task["id"])
    stop = asyncio.Event()

    async def trickle() -> None:
        while not stop.is_set():
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.2)

    trickling = asyncio.create_task(trickle())
    try:
        await asyncio.sleep(0.3)
        started = time.monotonic()
        answer = await asyncio.wait_for(gw.trigger(task["id"]), timeout=5)
        assert answer.status == 202
        assert time.monotonic() - started < 2.0
        assert not reader.at_eof()  # the slow client is still being waited for
    finally:
        stop.set()
        await trickling
        writer.close()
    (run,) = await gw.runs()
    assert run.id == answer.body["run_id"]


async def test_a_body_that_never_finishes_is_cut_off_with_408(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_api, "BODY_READ_SECONDS", 0.5)
    task = await gw.create()
    reader, writer = await open_trickle(gw, task["id"])
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    assert await gw.runs() == []


async def test_a_call_without_credentials_is_refused_without_reading_its_body(
        gw: Gateway) -> None:
    task = await gw.create()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(f"POST /webhook/trigger/{task['id']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Length: 100000\r\n\r\n".encode())
    await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 401"), status_line


async def test_several_forwarded_headers_read_as_one_list(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(allowed_ips=("10.1.0.0/16",), trusted_proxies=("127.0.0.1",))
    task = await gw.create()
    path = f"/webhook/trigger/{task['id']}"
    headers = CIMultiDict(gw.signed(b"{}"))
    headers.add("X-Forwarded-For", "10.1.2.3")  # what the client wrote
    headers.add("X-Forwarded-For", "203.0.113.9")  # what the proxy saw
    async with gw.client.post(path, data=b"{}", headers=headers) as response:
        assert response.status == 403
        assert "203.0.113.9" in (await response.json())["error"]["message"]
