"""`apflow serve`: the HTTP API and this node's engine on one event loop, stopped cleanly by
SIGINT/SIGTERM (the engine drains its running runs before the store closes)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from apflow.api.app import create_app
from apflow.config import Config
from apflow.runtime import tune_garbage_collector

logger = logging.getLogger(__name__)


async def serve(config: Config, host: str | None = None, port: int | None = None, *,
                on_ready: Callable[[str, int], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the store is opened (and migrated) and the engine
    started before listening."""
    host = host or config.api.host
    port = config.api.port if port is None else port
    stop = stop_on_signals()  # before anything starts, so an early signal still stops cleanly
    runner = web.AppRunner(create_app(config, run_engine=True), access_log=None,
                           handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = bound_port_of(runner, port)
        tune_garbage_collector()  # after start-up: what it allocated is frozen
        logger.info("serving", extra={"action": "serve_started", "host": host,
                                      "port": bound_port})
        if on_ready is not None:
            on_ready(host, bound_port)
        await stop.wait()
        logger.info("stopping", extra={"action": "serve_stopping"})
    finally:
        try:
            await runner.cleanup()
        finally:
            remove_signal_handlers()


def bound_port_of(runner: web.AppRunner, requested: int) -> int:
    """The port actually bound (differs from the request when it was 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (a second one while stopping changes nothing)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop


def remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.remove_signal_handler(sig)
