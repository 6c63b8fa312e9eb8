"""Two app instances (two nodes) on one real PostgreSQL database: a signature used on one is
refused on the other, and the rate limit counts the client's calls on both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.pgdb import database_copy
from tests.webhook.conftest import GatewayFactory

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_database(postgres_server_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database on the throwaway server (the first app migrates it)."""
    async with database_copy(postgres_server_dsn, None, "apflow_webhook") as dsn:
        yield dsn


async def test_a_signature_used_on_one_node_is_refused_on_the_other(
        make_gateway: GatewayFactory, pg_database: str) -> None:
    first = await make_gateway(database_url=pg_database)
    second = await make_gateway(database_url=pg_database)
    task = await first.create("shared")
    headers = first.signed(b"{}")
    accepted = await first.post(task["id"], b"{}", headers)
    assert accepted.status == 202, accepted.body
    replay = await second.post(task["id"], b"{}", headers)
    assert (replay.status, replay.message) == (401, "signature already used")
    assert [run.id for run in await second.runs()] == [accepted.body["run_id"]]


async def test_the_rate_limit_is_shared_by_the_nodes(make_gateway: GatewayFactory,
                                                     pg_database: str) -> None:
    first = await make_gateway(database_url=pg_database, rate_limit=1)
    second = await make_gateway(database_url=pg_database, rate_limit=1)
    task = await first.create("shared")
    assert (await first.trigger(task["id"], json.dumps({"n": 1}).encode())).status == 202
    limited = await second.trigger(task["id"], json.dumps({"n": 2}).encode())
    assert limited.status == 429
    assert len(await first.runs()) == 1
