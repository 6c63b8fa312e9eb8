"""Shared pieces of the gateway tests: a task factory and a real webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from apflow.domain.enums import ScheduleType
from apflow.domain.models import Task

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_task(schedule_type: str, expression: str, timezone: str = "UTC",
              **fields: Any) -> Task:
    """An enabled task with the given schedule; other fields by keyword."""
    values: dict[str, Any] = {"id": "task-1", "name": "report", "created_at": T0,
                              "updated_at": T0, "schedule_enabled": True}
    values.update(fields)
    return Task(schedule_type=ScheduleType(schedule_type), schedule_expression=expression,
                timezone=timezone, **values)


@pytest.fixture
def task_factory() -> Callable[..., Task]:
    """make_task, for tests that take it as a fixture."""
    return make_task


@dataclass
class Received:
    """One request the webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records POSTs to /webhook/trigger/{id}."""

    base_url: str
    requests: list[Received] = field(default_factory=list)

    def signature_ok(self, request: Received, secret: str) -> bool:
        """True if the request carries the HMAC of DESIGN.md section 5 for `secret`."""
        stamp = request.headers["X-Webhook-Timestamp"].encode()
        expected = hmac.new(secret.encode(), stamp + b"." + request.body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, request.headers["X-Webhook-Signature"])


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """The receiver, listening on a free port for the duration of the test."""
    receiver = WebhookReceiver("")

    async def record(request: web.Request) -> web.Response:
        receiver.requests.append(Received(request.path, dict(request.headers),
                                          await request.read()))
        return web.json_response({"run_id": "r-1"}, status=202)

    app = web.Application()
    app.router.add_post("/webhook/trigger/{task_id}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture
def need_tools() -> Callable[..., None]:
    """need_tools("openssl", "curl"): skip unless installed; under CI=true, fail instead."""
    def need(*names: str) -> None:
        missing = [name for name in names if shutil.which(name) is None]
        if missing and _in_ci():
            pytest.fail(f"CI must provide {', '.join(missing)}")
        if missing:
            pytest.skip(f"not installed here: {', '.join(missing)}")
    return need
