"""Service tests run on both stores (the store suite's `backend` fixture) with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from apflow.clock import FakeClock
from apflow.config import Config
from apflow.service import Principal, Service
from apflow.store.sqlstore import SqlStore
from tests.store.conftest import (  # noqa: F401 - fixtures re-exported for this directory
    backend,
    postgres_session_database,
    postgres_template,
    store,
)

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
ADMIN = Principal("root", "admin")
ALICE = Principal("alice", "user")
BOB = Principal("bob", "user")


class Caller:
    """Calls service methods as one principal."""

    def __init__(self, service: Service, principal: Principal) -> None:
        self.service = service
        self.principal = principal

    async def __call__(self, method: str, **params: Any) -> Any:
        return await self.service.call(method, params, self.principal)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def service(store: SqlStore, clock: FakeClock) -> Service:  # noqa: F811 - the fixture above
    return Service(store, clock, None, Config(database_url="sqlite://", jwt_secret="x" * 32))


@pytest.fixture
def admin(service: Service) -> Caller:
    return Caller(service, ADMIN)


@pytest.fixture
def alice(service: Service) -> Caller:
    return Caller(service, ALICE)


@pytest.fixture
def bob(service: Service) -> Caller:
    return Caller(service, BOB)
