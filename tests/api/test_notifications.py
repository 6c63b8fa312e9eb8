"""Run notifications delivered to real HTTP receivers on 127.0.0.1 by an app running its
engine: what is sent, when, with retries, and that a receiver that is down costs a run
nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from apflow.clock import SystemClock
from apflow.config import NotifiersConfig
from tests.api.conftest import Api, ApiFactory
from tests.api.test_rpc_protocol import wait_for_state


@dataclass
class Receiver:
    """An HTTP endpoint that records what it is sent; fails the first `fail_first` posts."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_first: int = 0

    async def wait_for(self, count: int, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"received {len(self.bodies)} of {count}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def post(request: web.Request) -> web.Response:
        got.attempts += 1
        if got.attempts <= got.fail_first:
            return web.Response(status=503)
        got.bodies.append(json.loads(await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", post)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    got.url = f"http://127.0.0.1:{server.port}/hook"
    try:
        yield got
    finally:
        await server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def app_with(make_api: ApiFactory, **notifiers: Any) -> Api:
    return await make_api(clock=SystemClock(), run_engine=True,
                          notifiers=NotifiersConfig(**notifiers))


async def run(api: Api, state: str, **fields: Any) -> dict[str, Any]:
    task = await api.create("nightly", **fields)
    queued = await api.call("tasks.run", {"task_id": task["id"]})
    return await wait_for_state(api, queued["id"], state)


async def test_a_failed_run_is_reported_without_logs_or_secrets(
        make_api: ApiFactory, receiver: Receiver) -> None:
    api = await app_with(make_api, webhook_urls=(receiver.url,))
    finished = await run(api, "failed", notify_on_failure=True,
                         env={"API_TOKEN": "tok-123456789"},
                         executor={"type": "command",
                                   "command": "echo leaked-output; echo $API_TOKEN >&2; exit 4"})
    await receiver.wait_for(1)
    body = receiver.bodies[0]
    assert body["event"] == "run_failed"
    assert body["task"]["name"] == "nightly"
    assert (body["run"]["id"], body["run"]["state"], body["run"]["exit_code"]) == (
        finished["id"], "failed", 4)
    text = json.dumps(body)
    assert "leaked-output" not in text and "tok-123456789" not in text


async def test_success_is_reported_only_when_asked(make_api: ApiFactory,
                                                   receiver: Receiver) -> None:
    api = await app_with(make_api, webhook_urls=(receiver.url,))
    await run(api, "succeeded", notify_on_failure=True)
    await run(api, "succeeded", notify_on_success=True)
    await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert [b["event"] for b in receiver.bodies] == ["run_succeeded"]


async def test_a_failure_with_retries_left_waits_for_the_last_attempt(
        make_api: ApiFactory, receiver: Receiver) -> None:
    api = await app_with(make_api, webhook_urls=(receiver.url,))
    await api.create("flaky", notify_on_failure=True, retry_limit=1, retry_delay_seconds=0,
                     executor={"type": "command", "command": "exit 1"})
    task = (await api.call("tasks.list", {}))["tasks"][0]
    await api.call("tasks.run", {"task_id": task["id"]})
    await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert [b["run"]["attempt"] for b in receiver.bodies] == [2]


async def test_delivery_is_retried(make_api: ApiFactory, receiver: Receiver) -> None:
    receiver.fail_first = 2
    api = await app_with(make_api, webhook_urls=(receiver.url,), retries=3)
    await run(api, "succeeded", notify_on_success=True)
    await receiver.wait_for(1)
    assert receiver.attempts == 3


async def test_slack_receivers_get_one_text_message(make_api: ApiFactory,
                                                    receiver: Receiver) -> None:
    api = await app_with(make_api, slack_urls=(receiver.url,))
    await run(api, "failed", notify_on_failure=True,
              executor={"type": "command", "command": "exit 9"})
    await receiver.wait_for(1)
    assert list(receiver.bodies[0]) == ["text"]
    assert "nightly" in receiver.bodies[0]["text"] and "failed" in receiver.bodies[0]["text"]


async def test_a_receiver_that_is_down_costs_the_run_nothing(make_api: ApiFactory) -> None:
    api = await app_with(make_api, webhook_urls=(f"http://127.0.0.1:{closed_port()}/x",),
                         retries=2)
    started = time.monotonic()
    finished = await run(api, "succeeded", notify_on_success=True)
    assert finished["state"] == "succeeded"
    assert time.monotonic() - started < 5
