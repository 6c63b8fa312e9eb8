"""LocalBackend: the service layer on database_url, in this process, as the admin."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from apflow.clock import SystemClock
from apflow.config import Config
from apflow.service import Principal, Service
from apflow.service.service import calendars_for
from apflow.store import open_store

if TYPE_CHECKING:
    from apflow.engine.engine import Engine

ADMIN_ROLE = "admin"


def admin_principal(config: Config) -> Principal:
    """Who local commands act as: the scheduler's user (scheduler.user_id, else "admin")."""
    return Principal(user_id=config.scheduler.user_id or "admin", role=ADMIN_ROLE)


class LocalBackend:
    """Opens (and migrates) the store; optionally runs an Engine for the session."""

    def __init__(self, config: Config, *, engine: bool = False) -> None:
        self.config = config
        self.clock = SystemClock()
        self.store = open_store(config.database_url)  # a bad URL fails here, before any I/O
        self.principal = admin_principal(config)
        self.engine: Engine | None = None
        self._with_engine = engine
        self._service: Service | None = None

    async def __aenter__(self) -> LocalBackend:
        await self.store.open()
        try:
            calendars = calendars_for(self.config)  # one cache for engine and service
            if self._with_engine:
                # Imported here: only `tasks run --wait` loads the engine and executors.
                from apflow.engine.factory import build_engine, private_node_id

                self.engine = build_engine(self.store, self.clock, self.config,
                                           node_id=private_node_id(self.config),
                                           calendars=calendars)
                await self.engine.start()
            self._service = Service(self.store, self.clock, self.engine, self.config,
                                    calendars=calendars)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Drain the engine (if any), then release the database."""
        try:
            if self.engine is not None:
                await self.engine.stop(drain=True)
        finally:
            await self.store.close()

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """Dispatch to the service as the admin principal."""
        if self._service is None:
            raise RuntimeError("LocalBackend used outside `async with`")
        return await self._service.call(method, params, self.principal)
