"""Where commands send their JSON-RPC calls: the database here, or a running API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from apflow.config import Config


class Backend(Protocol):
    """Answers JSON-RPC methods of DESIGN.md section 5 with their JSON results."""

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """The method's result; ApflowError subclasses for its errors."""
        ...


@asynccontextmanager
async def connect(config: Config, api_url: str | None, *,
                  engine: bool = False) -> AsyncIterator[Backend]:
    """A RemoteBackend when `api_url` is given, else a LocalBackend on database_url.

    `engine` (local only) runs an Engine in this process for the session, so runs queued
    here also execute here; a remote API has its own."""
    if api_url:
        from apflow.cli.remote import RemoteBackend

        async with RemoteBackend(config, api_url) as remote:
            yield remote
    else:
        from apflow.cli.local import LocalBackend

        async with LocalBackend(config, engine=engine) as local:
            yield local
