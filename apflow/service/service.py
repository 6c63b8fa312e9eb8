"""The one entry point both the API and the CLI call: a method name, params, and a caller.

Every JSON-RPC method of DESIGN.md section 5 is a row of METHODS; each reads its params
through `Params` (type and value checked, the field named), acts through the store and the
engine, and returns JSON-ready data. Errors are ApflowError subclasses, mapped at the edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from apflow.clock import Clock
from apflow.config import Config
from apflow.domain.errors import ChangedSinceRead, UnknownMethod
from apflow.executors.registry import ExecutorRegistry, default_registry
from apflow.service import apply, calendar, runs, scheduled, status, tasks, webhook
from apflow.service.context import Context
from apflow.service.params import Params
from apflow.service.principal import Principal
from apflow.store.base import Store

# A call whose optimistic write lost to a concurrent change is run again this often.
STALE_READ_ATTEMPTS = 5
STALE_READ_PAUSE_SECONDS = 0.01  # times the attempt number

if TYPE_CHECKING:
    from apflow.engine.engine import Engine
    from apflow.gateway.exclusion_cache import ExclusionCache

Method = Callable[[Context, Params], Awaitable[Any]]

METHODS: dict[str, Method] = {
    "tasks.create": tasks.create,
    "tasks.get": tasks.get,
    "tasks.update": tasks.update,
    "tasks.delete": tasks.delete,
    "tasks.list": tasks.list_tasks,
    "tasks.tree": tasks.tree,
    "tasks.pause": tasks.pause,
    "tasks.resume": tasks.resume,
    "tasks.run": runs.run_now,
    "tasks.runs.list": runs.runs_list,
    "tasks.runs.get": runs.runs_get,
    "tasks.runs.logs": runs.runs_logs,
    "tasks.runs.cancel": runs.runs_cancel,
    "tasks.skip": scheduled.skip,
    "tasks.occurrences.list": scheduled.occurrences,
    "tasks.scheduled.list": scheduled.scheduled_list,
    "tasks.scheduled.due": scheduled.scheduled_due,
    "tasks.scheduled.init": scheduled.scheduled_init,
    "tasks.scheduled.complete": scheduled.scheduled_complete,
    "tasks.scheduled.preview": scheduled.scheduled_preview,
    "tasks.scheduled.export-ical": calendar.export_ical,
    "tasks.apply": apply.apply,
    "tasks.scheduled.feed-token": calendar.feed_token,
    "tasks.scheduled.feed-token.revoke": calendar.revoke_feed_token,
    "tasks.webhook.trigger": webhook.webhook_trigger,
    "scheduler.status": status.scheduler_status,
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


class Service:
    """The use cases of apflow over one store, clock and (optionally) this node's engine."""

    def __init__(self, store: Store, clock: Clock, engine: Engine | None, config: Config,
                 *, registry: ExecutorRegistry | None = None,
                 calendars: ExclusionCache | None = None) -> None:
        self.store = store
        self.clock = clock
        self.engine = engine
        self.config = config
        self.registry = registry or default_registry()
        # Exclusion calendars, checked when a task names one; None when the calendars.* keys
        # allow no source. The composition root passes the engine's cache so both share it.
        self.calendars = calendars if calendars is not None else calendars_for(config)
        self.methods: dict[str, Method] = dict(METHODS)

    def add_method(self, name: str, method: Method) -> None:
        """Register a further method (the webhook and iCal adapters add theirs)."""
        self.methods[name] = method

    async def call(self, method: str, params: Mapping[str, Any] | Sequence[Any] | None,
                   principal: Principal) -> Any:
        """Run `method` for `principal`; ApflowError subclasses for every refusal."""
        handler = self.methods.get(method)
        if handler is None:
            shown = method if len(method) <= 64 else method[:64] + "..."
            raise UnknownMethod(f"method not found: {shown}")
        ctx = Context(store=self.store, clock=self.clock, engine=self.engine,
                      registry=self.registry, config=self.config, principal=principal,
                      calendars=self.calendars)
        attempt = 1
        while True:
            try:
                return await handler(ctx, Params(params))
            except ChangedSinceRead:
                # A use case reads, decides, then writes with an optimistic check; the engine
                # writes the same task rows (status, next_run_at) all the time. Read again.
                if attempt >= STALE_READ_ATTEMPTS:
                    raise
                await asyncio.sleep(STALE_READ_PAUSE_SECONDS * attempt)
                attempt += 1

    async def close(self) -> None:
        """Nothing to release: the store and engine belong to whoever made them."""


def calendars_for(config: Config) -> ExclusionCache | None:
    """The exclusion calendar cache the `calendars.*` keys describe, or None."""
    if not config.calendars.enabled:
        return None  # no source allowed: not worth importing aiohttp and icalendar for
    from apflow.gateway.exclusion_cache import exclusion_cache

    return exclusion_cache(config)
