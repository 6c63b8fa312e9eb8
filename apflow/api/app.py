"""The aiohttp application factory: routes, typed state, and the store's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from apflow.api.health import health
from apflow.api.keys import CLOCK, CONFIG, STORE
from apflow.clock import Clock, SystemClock
from apflow.config import Config
from apflow.store import open_store
from apflow.store.base import Store


def create_app(config: Config, *, store: Store | None = None,
               clock: Clock | None = None) -> web.Application:
    """Build the app; the store is opened and closed with it unless one is passed in."""
    app = web.Application(client_max_size=config.api.max_body_bytes,
                          middlewares=[security_headers])
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app[STORE] = store if store is not None else open_store(config.database_url)
    app.cleanup_ctx.append(store_lifetime)
    app.router.add_get("/health", health)
    return app


async def store_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Open (and migrate) the store for the app's lifetime."""
    store = app[STORE]
    await store.open()
    try:
        yield
    finally:
        await store.close()


@web.middleware
async def security_headers(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Conservative headers on every answer."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
