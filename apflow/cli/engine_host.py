"""An Engine inside the CLI process: `scheduler start`, and `tasks run --wait` without an API."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from apflow.clock import SystemClock
from apflow.config import Config
from apflow.engine.engine import Engine
from apflow.engine.factory import build_engine
from apflow.gateway.exclusion_cache import exclusion_cache
from apflow.notify import Notifier
from apflow.runtime import tune_garbage_collector
from apflow.store import open_store

logger = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def with_scheduler_overrides(config: Config, **overrides: Any) -> Config:
    """`config` with the scheduler.* keys given on the command line (None = keep)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return replace(config, scheduler=replace(config.scheduler, **given)) if given else config


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM; a second one while draining is logged."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            logger.warning("already draining", extra={"action": "node_draining",
                                                      "signal": sig.name})
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    return stop


async def run_node(config: Config, on_ready: Callable[[Engine], None]) -> None:
    """Run scheduler, dispatcher and heartbeat until SIGINT/SIGTERM, then drain and return."""
    stop = stop_on_signals()  # before anything starts, so an early signal still drains
    store = open_store(config.database_url)
    await store.open()
    try:
        notifier = Notifier(store, config.notifiers) if config.notifiers.enabled else None
        engine = build_engine(store, SystemClock(), config, calendars=exclusion_cache(config),
                              observer=notifier)
        await engine.start()
        tune_garbage_collector()  # after start-up: what it allocated is frozen
        try:
            on_ready(engine)
            await stop.wait()
            logger.info("draining", extra={"action": "node_stopping", "node": engine.node_id})
        finally:
            await engine.stop(drain=True)
            if notifier is not None:
                await notifier.close()
    finally:
        await store.close()
