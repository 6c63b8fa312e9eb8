"""`apflow serve`: the HTTP server on one event loop, stopped cleanly by SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from apflow.api.app import create_app
from apflow.config import Config

logger = logging.getLogger(__name__)


async def serve(config: Config, host: str | None = None, port: int | None = None, *,
                on_ready: Callable[[str, int], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the store is opened (and migrated) before listening."""
    host = host or config.api.host
    port = config.api.port if port is None else port
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = bound_port_of(runner, port)
        logger.info("serving", extra={"action": "serve_started", "host": host,
                                      "port": bound_port})
        if on_ready is not None:
            on_ready(host, bound_port)
        await wait_for_stop_signal()
        logger.info("stopping", extra={"action": "serve_stopping"})
    finally:
        await runner.cleanup()


def bound_port_of(runner: web.AppRunner, requested: int) -> int:
    """The port actually bound (differs from the request when it was 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


async def wait_for_stop_signal() -> None:
    """Return on the first SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
