"""The webhook gateway's checks (DESIGN.md section 5), free of HTTP: the API adapter hands in
what arrived (task id, headers, raw body, peer address, a verified bearer principal) and gets
back who may trigger which task with which variables, or a domain error to answer with.

Order: credentials (a valid JWT, else a registered verify hook, else HMAC over timestamp and
raw body, each signature once), then the IP allow-list, then the per-client rate limit, then
the task itself (404 unknown, 403 someone else's or `api_trigger: false`), then the body.
Every refusal is logged as `webhook_refused` with its reason, never with a secret or a
signature. Register a verify hook with `apflow.service.webhook.register_webhook_verify_hook`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import ipaddress
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from apflow.clock import Clock
from apflow.config import Config, WebhookConfig
from apflow.domain.enums import Trigger
from apflow.domain.errors import (
    ApflowError,
    ConfigError,
    Forbidden,
    InvalidParams,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from apflow.domain.models import Run, Task
from apflow.service.context import Context
from apflow.service.params import Params, check_string_map, type_name
from apflow.service.principal import SYSTEM, Principal
from apflow.service.runs import queue_run, trigger
from apflow.service.views import run_view
from apflow.store.base import RunFilter, Store

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
RATE_WINDOW_SECONDS = 60
MAX_SYNC_WAIT_SECONDS = 300.0
MAX_CHILD_RUNS = 1000
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MAX_SHOWN_IP = 64
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# verify hooks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyContext:
    """What a verify hook sees of one webhook request."""

    task_id: str
    signature: str | None  # X-Webhook-Signature as sent
    timestamp: str | None  # X-Webhook-Timestamp as sent
    client_ip: str
    body: bytes  # the raw body, exactly as received
    headers: Mapping[str, str]  # case-insensitive when the adapter passes aiohttp's


@dataclass(frozen=True)
class VerifyResult:
    """A hook's verdict: valid (optionally naming the user the call acts as) or not, why."""

    valid: bool
    user_id: str | None = None
    error: str | None = None


VerifyHook = Callable[[VerifyContext], "VerifyResult | Awaitable[VerifyResult | None] | None"]
_HOOKS: list[VerifyHook] = []


def register_webhook_verify_hook(hook: VerifyHook) -> VerifyHook:
    """Decorator: verify webhook calls that carry no valid JWT with `hook` instead of HMAC.

    The hook (sync or async) gets a VerifyContext and returns a VerifyResult, or None to let
    the next hook, and finally HMAC, decide. Hooks are tried in registration order.
    """
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def unregister_webhook_verify_hook(hook: VerifyHook) -> None:
    """Forget a hook (tests, plugins being unloaded); unknown hooks are ignored."""
    if hook in _HOOKS:
        _HOOKS.remove(hook)


def verify_hooks() -> tuple[VerifyHook, ...]:
    """The registered hooks, in order."""
    return tuple(_HOOKS)


# what arrived, what was admitted --------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook call as the HTTP adapter received it."""

    task_id: str
    body: bytes
    headers: Mapping[str, str]
    peer: str | None  # the socket's remote address
    bearer: Principal | None = None  # a verified Authorization: Bearer token's principal
    bearer_error: str | None = None  # why a presented bearer token was not accepted
    forwarded_for: str | None = None  # every X-Forwarded-For header, joined with ","


@dataclass(frozen=True)
class Admitted:
    """A call that passed every check: trigger `task` as `caller` with `variables`."""

    task: Task
    caller: Principal
    variables: dict[str, str]
    client_ip: str
    method: str  # "jwt", "hook" or "hmac"


@dataclass(frozen=True)
class Gate:
    """What the checks read: the webhook config, the shared store and the clock."""

    config: Config
    store: Store
    clock: Clock

    @property
    def webhook(self) -> WebhookConfig:
        return self.config.webhook


async def admit(gate: Gate, request: WebhookRequest) -> Admitted:
    """Run every check in order; the first refusal is logged and raised."""
    client_ip = client_address(request.peer, request.forwarded_for,
                               gate.webhook.trusted_proxies)
    try:
        return await _admit(gate, request, client_ip)
    except ApflowError as refusal:
        log_refusal(request.task_id, client_ip, refusal)
        raise


async def _admit(gate: Gate, request: WebhookRequest, client_ip: str) -> Admitted:
    task = await _find_task(gate.store, request.task_id)
    caller, method = await authenticate(gate, request, task, client_ip)
    check_allowed_ip(client_ip, gate.webhook.allowed_ips)
    await check_rate(gate, client_ip)
    if task is None:
        raise NotFound(f"task {request.task_id} not found")
    owner = _acting_principal(task, caller)
    if not task.api_trigger:
        raise Forbidden(f"task {task.id} has api_trigger false: only its schedule starts it")
    return Admitted(task, owner, parse_body(request.body), client_ip, method)


async def _find_task(store: Store, task_id: str) -> Task | None:
    try:
        return await store.get_task(task_id)
    except NotFound:
        return None


def log_refusal(task_id: str, client_ip: str, refusal: ApflowError) -> None:
    """One structured line per refused call: reason, task, client; never a secret."""
    logger.warning("webhook refused", extra={
        "action": "webhook_refused", "reason": refusal.message, "status": refusal.http_status,
        "task_id": task_id[:128], "client_ip": client_ip})


# credentials ----------------------------------------------------------------------------------


async def authenticate(gate: Gate, request: WebhookRequest, task: Task | None,
                       client_ip: str) -> tuple[Principal | None, str]:
    """Who is calling: a JWT's principal, a hook's user (None: the task's owner), or None
    for HMAC (the signing secret speaks for the owner). Unauthenticated otherwise."""
    if request.bearer is not None:
        return request.bearer, "jwt"
    verdict = await run_hooks(_verify_context(request, client_ip))
    if verdict is not None:
        if not verdict.valid:
            raise Unauthenticated(f"verify hook refused the call: {verdict.error or 'invalid'}")
        return (None if verdict.user_id is None else Principal(verdict.user_id)), "hook"
    try:
        await verify_hmac(gate, request, task)
    except Unauthenticated as exc:
        if request.bearer_error and request.headers.get(SIGNATURE_HEADER) is None:
            raise Unauthenticated(request.bearer_error) from None
        raise exc from None
    return None, "hmac"


def _verify_context(request: WebhookRequest, client_ip: str) -> VerifyContext:
    return VerifyContext(task_id=request.task_id,
                         signature=request.headers.get(SIGNATURE_HEADER),
                         timestamp=request.headers.get(TIMESTAMP_HEADER),
                         client_ip=client_ip, body=request.body, headers=request.headers)


async def run_hooks(context: VerifyContext) -> VerifyResult | None:
    """The first verdict of the registered hooks; a hook that fails refuses the call."""
    for hook in verify_hooks():
        try:
            verdict = hook(context)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("webhook verify hook failed", extra={
                "action": "webhook_hook_failed", "task_id": context.task_id[:128],
                "hook": getattr(hook, "__qualname__", repr(hook))[:200]})
            return VerifyResult(valid=False, error="the verify hook failed")
        if verdict is not None:
            if not isinstance(verdict, VerifyResult):
                logger.error("webhook verify hook returned %s, not a VerifyResult",
                             type_name(verdict), extra={"action": "webhook_hook_failed",
                                                        "task_id": context.task_id[:128]})
                return VerifyResult(valid=False, error="the verify hook failed")
            return verdict
    return None


async def verify_hmac(gate: Gate, request: WebhookRequest, task: Task | None) -> None:
    """X-Webhook-Signature = hex HMAC-SHA256(secret, timestamp + "." + raw body), with a
    fresh timestamp, never seen before. An unknown task is checked against the global
    secret, so only a correctly signed call learns that the task does not exist."""
    secret = signing_secret(task, gate.webhook)
    signature = request.headers.get(SIGNATURE_HEADER)
    stamp = request.headers.get(TIMESTAMP_HEADER)
    if signature is None:
        raise Unauthenticated(f"missing {SIGNATURE_HEADER} header (or a Bearer token)")
    if stamp is None:
        raise Unauthenticated(f"missing {TIMESTAMP_HEADER} header")
    check_signature_format(signature)
    now = gate.clock.now()
    sent_at = check_timestamp(stamp, now, gate.webhook.timestamp_tolerance)
    if not hmac.compare_digest(signature, sign(secret, stamp, request.body)):
        raise Unauthenticated("signature does not match")
    # Remembered until the timestamp itself goes stale: after that the clock check refuses
    # the signature anyway, whatever the store remembers.
    expires = datetime.fromtimestamp(sent_at, now.tzinfo) + timedelta(
        seconds=gate.webhook.timestamp_tolerance + 1)
    if not await gate.store.remember_signature(replay_digest(request.task_id, signature), now,
                                               max(expires, now)):
        raise Unauthenticated("signature already used")


def signing_secret(task: Task | None, config: WebhookConfig) -> str:
    """The task's own webhook_secret, else webhook.secret; Unauthenticated if neither."""
    secret = task.webhook_secret if task is not None and task.webhook_secret else config.secret
    if not secret:
        raise Unauthenticated("webhook signing is not configured")
    return secret


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256(secret, timestamp + "." + body)."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def replay_digest(task_id: str, signature: str) -> str:
    """What the store remembers of a used signature (not the signature itself)."""
    return hashlib.sha256((task_id + signature).encode("utf-8")).hexdigest()


def check_signature_format(signature: str) -> None:
    """64 lowercase hex digits, nothing else (no `sha256=` prefix, no upper case)."""
    if _SIGNATURE.fullmatch(signature) is None:
        raise Unauthenticated(f"{SIGNATURE_HEADER} must be 64 lowercase hex digits "
                              "(HMAC-SHA256), without a prefix")


def check_timestamp(stamp: str, now: datetime, tolerance: int) -> int:
    """The unix time in whole seconds, within `tolerance` of `now`."""
    if _TIMESTAMP.fullmatch(stamp) is None:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} must be the unix time in whole seconds")
    sent_at = int(stamp)
    skew = now.timestamp() - sent_at
    if skew > tolerance:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is too old (more than {tolerance} s ago)")
    if skew < -tolerance:
        raise Unauthenticated(
            f"{TIMESTAMP_HEADER} is in the future (more than {tolerance} s ahead)")
    return sent_at


def _acting_principal(task: Task, caller: Principal | None) -> Principal:
    """Who the run is triggered as: the caller if it may touch the task (403 otherwise),
    the task's owner when the credential was the task's signing secret or a hook."""
    if caller is not None:
        if not caller.owns(task.user_id):
            raise Forbidden(f"task {task.id} belongs to another user")
        return caller
    if task.user_id is None:
        return SYSTEM
    return Principal(user_id=task.user_id)


# client address, allow-list, rate limit -------------------------------------------------------


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted_proxies: tuple[str, ...]) -> str:
    """The peer's address; behind a trusted proxy, the right-most X-Forwarded-For entry that
    is not itself a trusted proxy (entries to its left are whatever the client wrote)."""
    address = peer or "unknown"
    if not trusted_proxies or not forwarded_for or not _in_networks(address, trusted_proxies):
        return address
    for entry in reversed(forwarded_for.split(",")):
        hop = _parse_ip(entry.strip())
        if hop is None:
            break  # a malformed hop: keep the last address a trusted proxy vouched for
        address = str(hop)
        if not _in_networks(address, trusted_proxies):
            break
    return address


def check_allowed_ip(client_ip: str, allowed: tuple[str, ...]) -> None:
    """Forbidden unless the allow-list is empty or holds the client's address or range."""
    if allowed and not _in_networks(client_ip, allowed):
        raise Forbidden(f"client address {client_ip[:_MAX_SHOWN_IP]} is not allowed "
                        "(webhook.allowed_ips)")


async def check_rate(gate: Gate, client_ip: str) -> None:
    """RateLimited once a client passes webhook.rate_limit calls in this minute; the store
    counts, so the limit holds across nodes."""
    limit = gate.webhook.rate_limit
    if limit <= 0:
        return
    now = gate.clock.now()
    epoch = math.floor(now.timestamp())
    window = datetime.fromtimestamp(epoch - epoch % RATE_WINDOW_SECONDS, now.tzinfo)
    count = await gate.store.rate_limit_hit(f"webhook:{client_ip}", window, now)
    if count > limit:
        remaining = (window + timedelta(seconds=RATE_WINDOW_SECONDS) - now).total_seconds()
        raise RateLimited(f"more than {limit} webhook calls per minute from this client",
                          retry_after=float(max(1, math.ceil(remaining))))


def check_networks(entries: tuple[str, ...], key: str) -> None:
    """ConfigError naming `key` unless every entry is an address or a CIDR range."""
    try:
        networks(entries)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


@lru_cache(maxsize=64)
def networks(entries: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    """Addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _in_networks(address: str, entries: tuple[str, ...]) -> bool:
    ip = _parse_ip(address)
    if ip is None:
        return False
    try:
        ranges = networks(entries)
    except ValueError as exc:
        raise ConfigError(f"webhook address list: {exc}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return any(ip.version == net.version and ip in net for net in ranges)


def _parse_ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


# body -----------------------------------------------------------------------------------------


def parse_body(body: bytes) -> dict[str, str]:
    """An empty body, or a JSON object whose optional `variables` is an object of strings."""
    if not body.strip():
        return {}
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidParams("the body must be empty or a JSON object") from None
    if not isinstance(payload, dict):
        raise InvalidParams(f"the body must be a JSON object, not {type_name(payload)}")
    variables = payload.get("variables")
    return {} if variables is None else check_string_map(variables, "variables")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# triggering and waiting -----------------------------------------------------------------------


async def trigger_admitted(ctx: Context, admitted: Admitted) -> Run:
    """Queue the run (trigger=webhook) as the admitted caller; the overlap policy applies."""
    # admit() has just read the task and checked ownership and api_trigger: no second read.
    run = await queue_run(ctx, admitted.task.id, Trigger.WEBHOOK, admitted.variables)
    logger.info("webhook accepted", extra={
        "action": "webhook_accepted", "task_id": admitted.task.id, "run_id": run.id,
        "method": admitted.method, "client_ip": admitted.client_ip})
    return run


def sync_wait_seconds(task: Task) -> float:
    """How long a synchronous call waits: the task's timeout (plus its grace to stop), at
    most MAX_SYNC_WAIT_SECONDS."""
    if task.timeout_seconds is None:
        return MAX_SYNC_WAIT_SECONDS
    return min(task.timeout_seconds + task.graceful_stop_seconds + 5.0, MAX_SYNC_WAIT_SECONDS)


async def wait_for_run(ctx: Context, run: Run, timeout: float) -> Run:  # noqa: ASYNC109
    """The run once finished, or as it stands after `timeout` seconds. Without an engine in
    this process another node runs it: poll the store."""
    if run.state.finished or timeout <= 0:
        return run
    if ctx.engine is not None:
        return await ctx.engine.wait_run(run.id, timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not run.state.finished and loop.time() < deadline:
        await asyncio.sleep(min(0.2, max(deadline - loop.time(), 0.0)))
        run = await ctx.store.get_run(run.id)
    return run


def accepted_view(run: Run) -> dict[str, Any]:
    """The 202 answer: which run was queued (or skipped by the overlap policy)."""
    return {"run_id": run.id, "task_id": run.task_id, "state": run.state.value,
            "trigger": run.trigger.value, "end_reason": run.end_reason,
            "queued_at": run.queued_at.isoformat()}


async def outcome_view(ctx: Context, run: Run) -> dict[str, Any]:
    """The synchronous answer: the run, whether it finished, and its child runs (a tree)."""
    children = await ctx.store.list_runs(RunFilter(parent_run_id=run.id),
                                         limit=MAX_CHILD_RUNS)
    return {**accepted_view(run), "finished": run.state.finished, "run": run_view(run),
            "children": [run_view(child) for child in reversed(children)]}


async def webhook_trigger(ctx: Context, params: Params) -> dict[str, Any]:
    """tasks.webhook.trigger: the webhook for a caller JSON-RPC already authenticated (its
    JWT): queue a run with trigger=webhook; `async_execution: false` waits for its outcome."""
    task_id = params.id("task_id")
    variables = params.string_map("variables") or {}
    async_execution = params.flag("async_execution", True)
    params.done()
    task = await ctx.task(task_id)
    run = await trigger(ctx, task_id, Trigger.WEBHOOK, variables)
    if async_execution:
        return accepted_view(run)
    run = await wait_for_run(ctx, run, sync_wait_seconds(task))
    return await outcome_view(ctx, run)
