"""GET /scheduler/ical: the caller's scheduled tasks as an iCalendar feed (docs/calendar.md).

Authentication is `Authorization: Bearer <JWT>` (or the admin token) and goes through
`feed_principal`, which also takes a per-user, revocable feed token (`?token=`). Answers
`text/calendar; charset=utf-8` with a strong ETag (If-None-Match gives 304) and
Last-Modified; errors are `{"error": {"code": <http status>, "message": ...}}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from apflow.api.auth import principal_from_request
from apflow.api.keys import CLOCK, CONFIG, SERVICE
from apflow.api.webhook import context_for, error_response
from apflow.domain.errors import ApflowError, InvalidParams, Unauthenticated
from apflow.service import Principal
from apflow.service.calendar import (
    Feed,
    build_feed,
    feed_token_principal,
    read_options,
)
from apflow.service.params import Params

logger = logging.getLogger(__name__)

ROUTE = "/scheduler/ical"
CONTENT_TYPE = "text/calendar"
# query name -> option; `name` is the short form of calendar_name
_QUERY_FIELDS = {"name": "calendar_name", "calendar_name": "calendar_name",
                 "user_id": "user_id", "enabled_only": "enabled_only",
                 "horizon_days": "horizon_days", "limit": "limit"}
_INTEGER_FIELDS = ("horizon_days", "limit")
_FLAG_FIELDS = ("enabled_only",)


def add_calendar_routes(app: web.Application) -> None:
    """Add the feed route."""
    app.router.add_get(ROUTE, ical_feed)


async def ical_feed(request: web.Request) -> web.StreamResponse:
    """The feed; 304 when the client's ETag still matches."""
    try:
        principal = await feed_principal(request)
        params = Params(query_params(request.query))
        feed = await build_feed(context_for(request.app[SERVICE], principal),
                                read_options(params))
    except ApflowError as exc:
        if isinstance(exc, Unauthenticated):
            logger.info("feed refused", extra={"action": "ical_unauthenticated",
                                               "reason": exc.message, "peer": request.remote})
        return error_response(exc)
    headers = {"ETag": feed.etag, "Last-Modified": _http_date(feed),
               "Cache-Control": "private, no-cache"}
    if _etag_matches(request.headers.get("If-None-Match"), feed.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Disposition"] = 'inline; filename="apflow.ics"'
    return web.Response(body=feed.content, status=200, headers=headers,
                        content_type=CONTENT_TYPE, charset="utf-8")


async def feed_principal(request: web.Request) -> Principal:
    """Who the feed is for: the owner of a `?token=` feed token (calendar apps cannot send
    headers; the token is revocable and opens this feed only), else the bearer token's
    principal."""
    token = request.query.get("token")
    if token is not None:
        owner = await feed_token_principal(request.app[SERVICE].store, token)
        if owner is None:
            raise Unauthenticated("unknown or revoked feed token")
        return owner
    config = request.app[CONFIG]
    return principal_from_request(request, config.jwt_secret, config.admin_auth_token,
                                  request.app[CLOCK].now(),
                                  admin_user_id=config.scheduler.user_id)


def query_params(query: Mapping[str, str]) -> dict[str, Any]:
    """The query string as the params of tasks.scheduled.export-ical (typed, checked)."""
    params: dict[str, Any] = {}
    for key, value in query.items():
        if key == "token":
            continue  # the feed token: who, not what
        field = _QUERY_FIELDS.get(key)
        if field is None:
            raise InvalidParams("unknown query parameter", field=key[:64])
        if field in params:
            raise InvalidParams("given twice", field=key[:64])
        params[field] = _typed(field, value)
    return params


def _typed(field: str, value: str) -> Any:
    if field in _INTEGER_FIELDS:
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            raise InvalidParams("must be a whole number", field=field)
        return int(value)
    if field in _FLAG_FIELDS:
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise InvalidParams("must be true or false", field=field)
    return value


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates


def _http_date(feed: Feed) -> str:
    return format_datetime(feed.last_modified.astimezone(UTC), usegmt=True)
