"""POST /webhook/trigger/{task_id}: the signed webhook gateway (docs/webhook.md).

This adapter reads HTTP (the bearer token, the raw body within the size limit and a time
limit, `?async=`), hands the rest to `apflow.service.webhook`, and writes JSON: 202 with the
queued run, 200 with the finished run under `?async=false`, and `{"error": {"code": <http
status>, "message": ...}}` for every refusal (429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from apflow.api.auth import principal_from_request
from apflow.api.keys import CLOCK, CONFIG, METRICS, SERVICE
from apflow.config import Config
from apflow.domain.errors import ApflowError, InvalidParams, RateLimited, Unauthenticated
from apflow.service import Principal, Service
from apflow.service.context import Context
from apflow.service.webhook import (
    SIGNATURE_HEADER,
    Gate,
    WebhookRequest,
    accepted_view,
    admit,
    check_networks,
    log_refusal,
    outcome_view,
    sync_wait_seconds,
    trigger_admitted,
    verify_hooks,
    wait_for_run,
)

logger = logging.getLogger(__name__)

ROUTE = "/webhook/trigger/{task_id}"
# A client that sends its headers and then trickles the body holds only its own
# connection, and not for longer than this.
BODY_READ_SECONDS = 10.0
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def add_webhook_routes(app: web.Application) -> None:
    """Add the webhook route; a malformed webhook.allowed_ips or trusted_proxies entry is a
    ConfigError now rather than a refusal at the first call."""
    config = app[CONFIG]
    check_networks(config.webhook.allowed_ips, "webhook.allowed_ips")
    check_networks(config.webhook.trusted_proxies, "webhook.trusted_proxies")
    app.router.add_post(ROUTE, trigger_webhook)


async def trigger_webhook(request: web.Request) -> web.Response:
    """Check the call, queue the run, and answer (waiting for it under ?async=false)."""
    task_id = request.match_info["task_id"]
    try:
        wait = not async_flag(request.query.get("async"))
        return await _trigger(request, task_id, wait)
    except ApflowError as exc:
        request.app[METRICS].webhook_refused(refusal_reason(exc))
        return error_response(exc)
    except Exception:
        logger.exception("webhook failed", extra={"action": "webhook_internal_error",
                                                  "task_id": task_id[:128]})
        return error_json(500, "internal error")


async def _trigger(request: web.Request, task_id: str, wait: bool) -> web.Response:
    app = request.app
    config, service = app[CONFIG], app[SERVICE]
    bearer, bearer_error = bearer_of(request, config)
    if bearer is None and not verify_hooks() and SIGNATURE_HEADER not in request.headers:
        body = b""  # refused whatever it holds: do not wait for it
    else:
        body = await read_body(request, config.api.max_body_bytes, task_id)
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ())) or None
    call = WebhookRequest(task_id=task_id, body=body, headers=request.headers,
                          peer=request.remote, bearer=bearer, bearer_error=bearer_error,
                          forwarded_for=forwarded)
    admitted = await admit(Gate(config, service.store, service.clock), call)
    ctx = context_for(service, admitted.caller)
    run = await trigger_admitted(ctx, admitted)
    if not wait:
        return json_response(accepted_view(run), 202)
    run = await wait_for_run(ctx, run, sync_wait_seconds(admitted.task))
    return json_response(await outcome_view(ctx, run), 200 if run.state.finished else 202)


def async_flag(value: str | None) -> bool:
    """`?async=`: absent or true queues and answers at once; false waits for the run."""
    if value is None or value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidParams("must be true or false", field="async")


def bearer_of(request: web.Request, config: Config) -> tuple[Principal | None, str | None]:
    """The principal of a valid `Authorization: Bearer` token, else why it was refused."""
    header = request.headers.get("Authorization")
    if header is None:
        return None, None
    try:
        principal = principal_from_request(
            request, config.jwt_secret, config.admin_auth_token, request.app[CLOCK].now(),
            admin_user_id=config.scheduler.user_id)
    except Unauthenticated as exc:
        return None, exc.message
    return principal, None


async def read_body(request: web.Request, limit: int, task_id: str) -> bytes:
    """The raw body: 413 over `limit`, 408 when it does not arrive in BODY_READ_SECONDS."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit)
    try:
        async with asyncio.timeout(BODY_READ_SECONDS):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(limit) from None
    except TimeoutError:
        refusal = BodyTimeout()
        log_refusal(task_id, request.remote or "unknown", refusal)
        raise refusal from None


class TooLarge(ApflowError):
    """Request body too large."""

    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over the limit of {limit} bytes (api.max_body_bytes)")


class BodyTimeout(ApflowError):
    """The request body did not arrive in time."""

    http_status = 408


def context_for(service: Service, principal: Principal) -> Context:
    """A use-case context on the app's service, acting as `principal`."""
    return Context(store=service.store, clock=service.clock, engine=service.engine,
                   registry=service.registry, config=service.config, principal=principal)


def refusal_reason(exc: ApflowError) -> str:
    """A short, fixed label for a refusal (metrics must not carry messages or ids)."""
    return REFUSAL_REASONS.get(exc.http_status, "error")


REFUSAL_REASONS = {400: "bad_request", 401: "unauthenticated", 403: "forbidden",
                   404: "not_found", 408: "body_timeout", 409: "conflict", 413: "too_large",
                   429: "rate_limited"}


def error_response(exc: ApflowError) -> web.Response:
    """The JSON error of a domain error; internal ones say nothing more than that."""
    if exc.http_status >= 500:
        logger.error("webhook failed: %s", exc.message, extra={
            "action": "webhook_internal_error"})
        return error_json(exc.http_status, "internal error")
    response = error_json(exc.http_status, exc.message)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="apflow"'
    return response


def error_json(status: int, message: str) -> web.Response:
    return json_response({"error": {"code": status, "message": message}}, status)


def json_response(payload: dict[str, Any], status: int) -> web.Response:
    return web.Response(text=json.dumps(payload, separators=(",", ":")), status=status,
                        content_type="application/json")
