"""The API under test: the real app on a real aiohttp server on 127.0.0.1, over a real store.

`make_api` builds one (SQLite in tmp_path unless a database URL is given) and stops it at the
end of the test; `Api` posts JSON-RPC to it with tokens signed by the test secret and dated by
the app's clock, so a fake clock drives token expiry too. `fresh_pg_database` makes a fresh
database on the throwaway PostgreSQL server (copied from a template migrated once per session).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from apflow.api.app import create_app
from apflow.api.auth import issue_token
from apflow.clock import Clock, FakeClock
from apflow.config import Config
from tests.pgdb import database_copy, migrated_template
from tests.rpc import RpcError

SECRET = "api-test-secret-" + "0123456789abcdef" * 4  # 79 bytes: long enough for HS512 too
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


@dataclass
class Api:
    """A running app and a client for it."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: Clock
    config: Config
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def token(self, user: str = "alice", role: str = "user", ttl: int = 3600) -> str:
        """A JWT for `user`, issued at the app clock's now."""
        return issue_token(SECRET, user, role, ttl, now=self.clock.now().timestamp())

    def headers(self, user: str | None = "alice", role: str = "user") -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.token(user, role)}"}

    async def post(self, body: Any, *, headers: dict[str, str] | None = None,
                   path: str = "/tasks") -> tuple[int, Any]:
        """POST `body` (bytes/str as they are, anything else as JSON); (status, parsed body)."""
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        async with self.client.post(path, data=data, headers=headers) as response:
            text = await response.text()
            if text:
                assert response.content_type == "application/json", text
            return response.status, (json.loads(text) if text else None)

    async def rpc(self, method: str, params: Any = None, *, user: str = "alice",
                  role: str = "user") -> dict[str, Any]:
        """One call's whole response object (HTTP 200 required)."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(self.ids)}
        if params is not None:
            request["params"] = params
        status, answer = await self.post(request, headers=self.headers(user, role))
        assert status == 200, (status, answer)
        assert answer["jsonrpc"] == "2.0" and answer["id"] == request["id"], answer
        return dict(answer)

    async def call(self, method: str, params: Any = None, *, user: str = "alice",
                   role: str = "user") -> Any:
        """The result of one call; RpcError if it answered an error."""
        answer = await self.rpc(method, params, user=user, role=role)
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer["result"]

    async def error(self, method: str, params: Any = None, *, user: str = "alice",
                    role: str = "user") -> RpcError:
        """The error of a call that must fail."""
        answer = await self.rpc(method, params, user=user, role=role)
        assert "error" in answer, answer
        return RpcError(answer["error"])

    async def create(self, name: str = "t", *, user: str = "alice", role: str = "user",
                     **fields: Any) -> dict[str, Any]:
        """tasks.create with a harmless command unless fields say otherwise."""
        params = {"name": name, "executor": {"type": "command", "command": "true"}, **fields}
        task: dict[str, Any] = await self.call("tasks.create", params, user=user, role=role)
        return task


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[ApiFactory]:
    """Start apps on demand; every one is stopped at the end of the test."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(*, database_url: str | None = None, clock: Clock | None = None,
                   run_engine: bool = False, **config_fields: Any) -> Api:
        url = database_url or f"sqlite:///{tmp_path / f'apflow-{len(clients)}.db'}"
        config = Config(database_url=url, jwt_secret=SECRET, **config_fields)
        used_clock = clock or FakeClock(T0)
        app = create_app(config, clock=used_clock, run_engine=run_engine)
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return Api(client, app, used_clock, config)

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    """The app on a fresh SQLite file, with a fake clock at T0 and no engine."""
    return await make_api()


# PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def api_pg_template(postgres_server_dsn: str) -> Iterator[str]:
    """A migrated PostgreSQL database the API tests copy."""
    with migrated_template(postgres_server_dsn, "apflow_api") as name:
        yield name


@asynccontextmanager
async def fresh_pg_database(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh PostgreSQL database copied from the template, dropped afterwards (for fixtures
    that choose their backend by parameter)."""
    server = request.getfixturevalue("postgres_server_dsn")
    template = request.getfixturevalue("api_pg_template")
    async with database_copy(server, template, "apflow_api") as dsn:
        yield dsn
