"""Build a node's Engine from a loaded config: the standard executors and scheduler.* keys."""

from __future__ import annotations

import os

from apflow.clock import Clock
from apflow.config import Config
from apflow.engine.engine import Engine
from apflow.engine.exclusions import CalendarLoader, ExclusionCalendars
from apflow.engine.observer import Observer
from apflow.engine.settings import EngineSettings, default_node_id
from apflow.executors.registry import ExecutorRegistry, default_registry
from apflow.store.base import Store


def build_engine(store: Store, clock: Clock, config: Config, *,
                 node_id: str | None = None,
                 registry: ExecutorRegistry | None = None,
                 calendars: CalendarLoader | None = None,
                 observer: Observer | None = None) -> Engine:
    """An engine with the standard executors and the config's scheduler settings; with
    `calendars` (the gateway's ExclusionCache, built by the caller: the engine does not
    import the gateway) tasks' exclusion calendars are honoured."""
    exclusions = ExclusionCalendars(calendars) if calendars is not None else None
    return Engine(store, clock, registry or default_registry(),
                  EngineSettings.from_config(config),
                  node_id=node_id or default_node_id(config), exclusions=exclusions,
                  observer=observer)


def private_node_id(config: Config) -> str:
    """A node id of its own for a short-lived engine, so it never claims a running node's runs
    as abandoned (the engine crashes its node id's leftover runs when it starts)."""
    return f"{default_node_id(config)}-cli-{os.getpid()}"
