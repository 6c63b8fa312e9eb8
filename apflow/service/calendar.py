"""The iCalendar feed's use case: which tasks a caller's calendar shows, and its validators.

The rendering itself is the gateway's pure exporter (apflow.gateway.ical_export).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apflow.domain.errors import Forbidden
from apflow.domain.models import Task
from apflow.gateway.ical_export import export_calendar
from apflow.service.context import Context
from apflow.service.params import Params, check_text
from apflow.service.principal import Principal
from apflow.store.base import Store, TaskFilter

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
DEFAULT_HORIZON_DAYS = 30
MAX_HORIZON_DAYS = 3660
MAX_NAME_LENGTH = 200
# The feed changes with time as well as with the tasks (its window moves): validators are
# good for one such bucket, so a client revalidating within the hour gets 304s.
VALIDATOR_BUCKET_SECONDS = 3600


@dataclass(frozen=True)
class FeedOptions:
    """What one export asks for."""

    calendar_name: str = "apflow"
    enabled_only: bool = True
    limit: int = DEFAULT_LIMIT
    user_id: str | None = None  # admins only: another user's tasks
    horizon_days: int = DEFAULT_HORIZON_DAYS


@dataclass(frozen=True)
class Feed:
    """An export: the .ics bytes, how many tasks it covers, and its HTTP validators."""

    content: bytes
    count: int
    etag: str
    last_modified: datetime


def read_options(params: Params) -> FeedOptions:
    """FeedOptions from JSON-RPC params (also what the HTTP feed's query maps to)."""
    name = params.raw("calendar_name", None)
    options = FeedOptions(
        calendar_name="apflow" if name is None else check_text(
            name, "calendar_name", max_length=MAX_NAME_LENGTH, allow_empty=False,
            single_line=True),
        enabled_only=params.flag("enabled_only", True),
        limit=params.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        user_id=params.optional_id("user_id"),
        horizon_days=params.integer("horizon_days", DEFAULT_HORIZON_DAYS, 1, MAX_HORIZON_DAYS),
    )
    params.done()
    return options


async def build_feed(ctx: Context, options: FeedOptions) -> Feed:
    """The caller's scheduled tasks (admins: everyone's, or `user_id`'s) as iCalendar."""
    owner = feed_owner(ctx, options.user_id)
    flt = TaskFilter(user_id=owner, scheduled_only=True,
                     schedule_enabled=True if options.enabled_only else None)
    tasks = await ctx.store.list_tasks(flt, limit=options.limit)
    now = ctx.clock.now()
    content = export_calendar(tasks, now=now, calendar_name=options.calendar_name,
                           horizon_days=options.horizon_days,
                           enabled_only=options.enabled_only)
    return Feed(content, len(tasks), validator(tasks, options, now),
                last_modified(tasks, now))


def feed_owner(ctx: Context, requested: str | None) -> str | None:
    """Whose tasks: the caller's own; an admin's choice (None: everyone's)."""
    if requested is not None and requested != ctx.principal.user_id \
            and not ctx.principal.is_admin:
        raise Forbidden("only an admin may export another user's calendar", field="user_id")
    return ctx.owner_filter(requested)


def validator(tasks: Sequence[Task], options: FeedOptions, now: datetime) -> str:
    """A strong ETag: the options, each task's id and version, and the hour; a deleted or
    edited task, or the next hour, changes it."""
    digest = hashlib.sha256(repr((options, _bucket(now))).encode())
    for task in tasks:
        digest.update(f"\n{task.id}\x00{task.updated_at.isoformat()}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def last_modified(tasks: Sequence[Task], now: datetime) -> datetime:
    """The newest task version or the start of the hour, whichever is later."""
    bucket = datetime.fromtimestamp(_bucket(now) * VALIDATOR_BUCKET_SECONDS, now.tzinfo)
    return max([bucket, *(task.updated_at for task in tasks)])


def _bucket(now: datetime) -> int:
    return int(now.timestamp()) // VALIDATOR_BUCKET_SECONDS


async def export_ical(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.export-ical: {"content": <ics text>, "count": <tasks>}."""
    feed = await build_feed(ctx, read_options(params))
    return {"content": feed.content.decode("utf-8"), "count": feed.count,
            "etag": feed.etag}


# per-user feed tokens --------------------------------------------------------------------

FEED_TOKEN_BYTES = 32


def feed_token_digest(token: str) -> str:
    """What the store keeps of a feed token: its SHA-256 (the token itself is shown once)."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


async def feed_token(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.feed-token: a new calendar feed token for the caller (an admin may
    name another user); the previous one stops working. Shown once, stored as a digest."""
    requested = params.optional_id("user_id")
    params.done()
    user_id = feed_owner(ctx, requested) or ctx.principal.user_id
    token = secrets.token_urlsafe(FEED_TOKEN_BYTES)
    await ctx.store.save_feed_token(user_id, feed_token_digest(token), ctx.clock.now())
    return {"user_id": user_id, "token": token,
            "feed_path": f"/scheduler/ical?token={token}"}


async def revoke_feed_token(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.scheduled.feed-token.revoke: the caller's (or, for an admin, a user's) feed
    token stops working."""
    requested = params.optional_id("user_id")
    params.done()
    user_id = feed_owner(ctx, requested) or ctx.principal.user_id
    return {"user_id": user_id, "revoked": await ctx.store.revoke_feed_token(user_id)}


async def feed_token_principal(store: Store, token: str) -> Principal | None:
    """The owner of a feed token, as a plain user (a feed shows its owner's tasks only)."""
    user_id = await store.feed_token_user(feed_token_digest(token))
    return None if user_id is None else Principal(user_id, "user")
