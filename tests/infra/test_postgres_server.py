"""The throwaway PostgreSQL server that scripts/test starts is real and fit for the suite."""

from __future__ import annotations

import asyncpg
import pytest

pytestmark = pytest.mark.postgres


async def test_the_server_answers_a_query(postgres_server_dsn: str) -> None:
    connection = await asyncpg.connect(postgres_server_dsn)
    try:
        version = await connection.fetchval("select version()")
    finally:
        await connection.close()
    assert version.startswith("PostgreSQL ")


async def test_the_server_listens_on_loopback_only_and_allows_many_nodes(
    postgres_server_dsn: str,
) -> None:
    connection = await asyncpg.connect(postgres_server_dsn)
    try:
        listen_addresses = await connection.fetchval("show listen_addresses")
        max_connections = int(await connection.fetchval("show max_connections"))
    finally:
        await connection.close()
    assert listen_addresses == "127.0.0.1"
    assert max_connections >= 300
