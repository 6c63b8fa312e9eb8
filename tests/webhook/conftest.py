"""The webhook gateway and the iCal feed under test: the real app (create_app plus the routes
of apflow.api.webhook and apflow.api.calendar) on a real aiohttp server on 127.0.0.1, over a
SQLite file in tmp_path (or a PostgreSQL database), with a fake clock unless told otherwise.

`Gateway.signed(...)` signs a body the DESIGN.md section 5 way with the app clock's time;
`Gateway.runs()` reads every run from the store, so a test can prove nothing ran.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from apflow.api.app import create_app
from apflow.api.auth import issue_token
from apflow.api.keys import STORE
from apflow.clock import Clock, FakeClock
from apflow.config import ApiConfig, Config, WebhookConfig
from apflow.domain.models import Run
from apflow.service import webhook as webhook_service
from apflow.store.base import RunFilter, Store
from tests.rpc import RpcError

JWT_SECRET = "webhook-test-jwt-secret-" + "0123456789abcdef" * 3
GLOBAL_SECRET = "global-webhook-secret-1234"
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


@dataclass
class Answer:
    """An HTTP answer: status, parsed JSON body (None if empty), headers."""

    status: int
    body: Any
    headers: Any

    @property
    def message(self) -> str:
        return str(self.body["error"]["message"])


def sign(secret: str, stamp: str, body: bytes) -> str:
    """The reference signature: lowercase hex HMAC-SHA256(secret, stamp + "." + body)."""
    return hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass
class Gateway:
    """A running app with the webhook and feed routes, and a client for it."""

    client: TestClient[web.Request, web.Application]
    clock: Clock
    config: Config
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def app(self) -> web.Application:
        return self.client.server.app  # type: ignore[return-value]

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def port(self) -> int:
        port = self.client.server.port
        assert port is not None
        return port

    def token(self, user: str = "alice", role: str = "user") -> str:
        return issue_token(JWT_SECRET, user, role, 3600, now=self.clock.now().timestamp())

    def bearer(self, user: str = "alice", role: str = "user") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, role)}"}

    def stamp(self, offset: float = 0) -> str:
        return str(int(self.clock.now().timestamp() + offset))

    def signed(self, body: bytes = b"{}", secret: str = GLOBAL_SECRET,
               stamp: str | None = None) -> dict[str, str]:
        """Headers signing `body` now (or at `stamp`)."""
        stamp = stamp or self.stamp()
        return {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": sign(secret, stamp, body),
                "Content-Type": "application/json"}

    async def post(self, task_id: str, body: bytes = b"{}", headers: dict[str, str] | None = None,
                   query: str = "") -> Answer:
        """POST /webhook/trigger/<task_id>[?query] with the raw body."""
        path = f"/webhook/trigger/{task_id}" + (f"?{query}" if query else "")
        async with self.client.post(path, data=body, headers=headers or {}) as response:
            text = await response.text()
            return Answer(response.status, json.loads(text) if text else None,
                          response.headers)

    async def trigger(self, task_id: str, body: bytes = b"{}", query: str = "",
                      secret: str = GLOBAL_SECRET) -> Answer:
        """A correctly signed call."""
        return await self.post(task_id, body, self.signed(body, secret), query)

    async def call(self, method: str, params: Any = None, *, user: str = "alice",
                   role: str = "user") -> Any:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(self.ids)}
        if params is not None:
            request["params"] = params
        async with self.client.post("/tasks", json=request,
                                    headers=self.bearer(user, role)) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer["result"]

    async def create(self, name: str = "t", *, user: str = "alice",
                     **fields: Any) -> dict[str, Any]:
        params = {"name": name, "executor": {"type": "command", "command": "true"}, **fields}
        task: dict[str, Any] = await self.call("tasks.create", params, user=user,
                                               role="admin" if "user_id" in fields else "user")
        return task

    async def runs(self, task_id: str | None = None) -> list[Run]:
        return await self.store.list_runs(RunFilter(task_id=task_id), limit=1000)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start apps on demand (all stopped at the end of the test)."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(*, database_url: str | None = None, clock: Clock | None = None,
                   run_engine: bool = False, max_body_bytes: int = 1024 * 1024,
                   **webhook: Any) -> Gateway:
        url = database_url or f"sqlite:///{tmp_path / f'apflow-{len(clients)}.db'}"
        settings = {"secret": GLOBAL_SECRET, **webhook}
        config = Config(database_url=url, jwt_secret=JWT_SECRET,
                        api=ApiConfig(max_body_bytes=max_body_bytes),
                        webhook=WebhookConfig(**settings))
        used_clock = clock or FakeClock(T0)
        app = create_app(config, clock=used_clock, run_engine=run_engine)
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return Gateway(client, used_clock, config)

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def gw(make_gateway: GatewayFactory) -> Gateway:
    """The app on a fresh SQLite file, fake clock at T0, global secret set, no engine."""
    return await make_gateway()


@pytest.fixture(autouse=True)
def no_hooks_left() -> Iterator[None]:
    """Verify hooks are process-wide: each test starts and ends without any."""
    before = webhook_service.verify_hooks()
    assert not before
    yield
    for hook in webhook_service.verify_hooks():
        webhook_service.unregister_webhook_verify_hook(hook)
