"""The aiohttp application factory: routes, typed state, and the lifetime of what they use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from apflow.api.calendar import add_calendar_routes
from apflow.api.dashboard import add_dashboard_routes
from apflow.api.health import health
from apflow.api.keys import CLOCK, CONFIG, ENGINE, METRICS, SERVICE, STORE
from apflow.api.metrics import metrics
from apflow.api.rpc import handle_rpc
from apflow.api.webhook import add_webhook_routes
from apflow.clock import Clock, SystemClock
from apflow.config import Config
from apflow.engine.observer import Observers
from apflow.gateway.exclusion_cache import ExclusionCache, exclusion_cache
from apflow.metrics import Metrics
from apflow.notify import Notifier
from apflow.service import Service
from apflow.store import open_store
from apflow.store.base import Store

if TYPE_CHECKING:
    from apflow.engine.engine import Engine
    from apflow.executors.registry import ExecutorRegistry

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(config: Config, *, store: Store | None = None, clock: Clock | None = None,
               run_engine: bool = False,
               engine_registry: ExecutorRegistry | None = None) -> web.Application:
    """Build the app; the store (opened unless passed in), the engine when `run_engine`,
    and the service live and die with it."""
    app = web.Application(client_max_size=config.api.max_body_bytes,
                          middlewares=[security_headers])
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app[STORE] = store if store is not None else open_store(config.database_url)
    app.cleanup_ctx.append(store_lifetime)
    app.cleanup_ctx.append(service_lifetime(run_engine, engine_registry))
    app[METRICS] = Metrics()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/tasks", handle_rpc)
    app.router.add_post("/tasks/", handle_rpc)
    add_webhook_routes(app)
    add_dashboard_routes(app)
    add_calendar_routes(app)
    return app


async def store_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Open (and migrate) the store for the app's lifetime."""
    store = app[STORE]
    await store.open()
    try:
        yield
    finally:
        await store.close()


def service_lifetime(run_engine: bool,
                     registry: ExecutorRegistry | None) -> CleanupContext:
    """The engine (if asked for) and the service, between the store opening and closing."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        # One cache for the engine and the service: a calendar checked when a task is saved
        # is already loaded when its slots fall due.
        calendars = exclusion_cache(app[CONFIG])
        notifiers = app[CONFIG].notifiers
        notifier = Notifier(app[STORE], notifiers) if run_engine and notifiers.enabled else None
        engine = await start_engine(app, registry, calendars, notifier) if run_engine else None
        app[ENGINE] = engine
        try:
            service = Service(app[STORE], app[CLOCK], engine, app[CONFIG], registry=registry,
                              calendars=calendars)
            app[SERVICE] = service
            try:
                yield
            finally:
                await service.close()
        finally:
            if engine is not None:
                await engine.stop(drain=True)
            if notifier is not None:
                await notifier.close()  # after the drain: the last runs notify too

    return lifetime


async def start_engine(app: web.Application, registry: ExecutorRegistry | None,
                       calendars: ExclusionCache | None = None,
                       notifier: Notifier | None = None) -> Engine:
    """This node's scheduler, dispatcher and heartbeat, on the app's event loop."""
    from apflow.engine.factory import build_engine  # only an app that runs one needs it

    engine = build_engine(app[STORE], app[CLOCK], app[CONFIG], registry=registry,
                          calendars=calendars,
                          observer=Observers(app[METRICS], notifier) if notifier else app[METRICS])
    await engine.start()
    return engine


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
