"""POST /tasks: JSON-RPC 2.0 over HTTP (single calls, batches, notifications).

A small hand-written layer rather than jsonrpcserver (see docs/api.md): each call carries the
caller's principal, batch members run concurrently, and every failure maps to one code; an
unexpected exception answers -32603 "Internal error" with no detail and is logged here, with
its traceback. HTTP statuses: 200 with a JSON-RPC body, 204 when only notifications were
sent, 401 without valid credentials, 413 for a body over `api.max_body_bytes`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from apflow.api.auth import principal_from_request
from apflow.api.keys import CLOCK, CONFIG, SERVICE
from apflow.domain.errors import ApflowError, RateLimited, Unauthenticated
from apflow.service import Principal, Service

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
MAX_BATCH = 100
MAX_DEPTH = 64  # nesting of arrays and objects, the envelope included
# Only a body with a \uD800-\uDFFF escape can hold a lone surrogate; only then we look.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class ProtocolError(Exception):
    """A request the protocol refuses before any method runs (parse error, invalid request)."""

    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Call:
    """One well-formed request object."""

    method: str
    params: Mapping[str, Any] | None
    request_id: Any
    is_notification: bool


async def handle_rpc(request: web.Request) -> web.Response:
    """The /tasks endpoint."""
    app = request.app
    config = app[CONFIG]
    limit = config.api.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return too_large(limit)
    try:
        principal = principal_from_request(
            request, config.jwt_secret, config.admin_auth_token, app[CLOCK].now(),
            admin_user_id=config.scheduler.user_id)
    except Unauthenticated as exc:
        logger.info("request refused", extra={"action": "rpc_unauthenticated",
                                              "reason": exc.message, "peer": request.remote})
        return json_response(error_response(exc.rpc_code, exc.message, None), status=401)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_large(limit)
    try:
        payload = parse_body(body)
    except ProtocolError as exc:
        return json_response(error_response(exc.code, exc.message, None))
    answer = await dispatch(app[SERVICE], payload, principal)
    return web.Response(status=204) if answer is None else json_response(answer)


def too_large(limit: int) -> web.Response:
    """HTTP 413 with a JSON-RPC error body."""
    message = f"Invalid request: body over the limit of {limit} bytes (api.max_body_bytes)"
    return json_response(error_response(INVALID_REQUEST, message, None), status=413)


def json_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


def parse_body(body: bytes) -> Any:
    """The JSON value of a UTF-8 body, or a parse error (-32700)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(PARSE_ERROR, "Parse error: the body is not UTF-8") from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ProtocolError(PARSE_ERROR, "Parse error: nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError(PARSE_ERROR, f"Parse error: {_short(exc)}") from None
    check_structure(payload, body)
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _short(exc: ValueError) -> str:
    return str(exc).split(":", 1)[0][:100]


def check_structure(payload: Any, body: bytes) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings that are not valid Unicode.

    Both need a walk of the value, done only when the raw body could hold either problem.
    """
    deep = body.count(b"[") + body.count(b"{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(body) is not None
    if not (deep or surrogates):
        return
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ProtocolError(PARSE_ERROR, f"Parse error: nested deeper than {MAX_DEPTH}")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if surrogates and isinstance(key, str):
                    _check_unicode(key)
                stack.append((item, depth + 1))
        elif surrogates and isinstance(value, str):
            _check_unicode(value)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(PARSE_ERROR,
                            "Parse error: a string holds a lone surrogate") from None


async def dispatch(service: Service, payload: Any, principal: Principal) -> str | None:
    """The response text for a single request or a batch; None when nothing is owed."""
    if not isinstance(payload, list):
        answer = await answer_one(service, payload, principal)
        return None if answer is None else encode(answer)
    if not payload:
        return error_response(INVALID_REQUEST, "Invalid request: empty batch", None)
    if len(payload) > MAX_BATCH:
        return error_response(
            INVALID_REQUEST, f"Invalid request: batch of more than {MAX_BATCH} calls", None)
    # Members are independent: they run concurrently, answers keep the request order.
    answers = await asyncio.gather(*(answer_one(service, m, principal) for m in payload))
    parts = [encode(answer) for answer in answers if answer is not None]
    return f"[{','.join(parts)}]" if parts else None


async def answer_one(service: Service, member: Any,
                     principal: Principal) -> dict[str, Any] | None:
    """The response object for one request object; None for a notification."""
    try:
        call = parse_call(member)
    except ProtocolError as exc:
        return error_object(exc.code, exc.message, exc.request_id)
    try:
        result = await service.call(call.method, call.params, principal)
    except ApflowError as exc:
        if exc.rpc_code == INTERNAL_ERROR:
            log_internal_error(call)
            return None if call.is_notification else internal_error(call.request_id)
        return None if call.is_notification else domain_error(exc, call.request_id)
    except Exception:
        log_internal_error(call)
        return None if call.is_notification else internal_error(call.request_id)
    if call.is_notification:
        return None
    return {"jsonrpc": "2.0", "result": result, "id": call.request_id}


def parse_call(member: Any) -> Call:
    """Check one request object's shape (-32600, or -32602 for non-object params)."""
    if not isinstance(member, dict):
        raise ProtocolError(INVALID_REQUEST, "Invalid request: not an object")
    has_id = "id" in member
    request_id = member.get("id")
    if has_id and not valid_id(request_id):
        raise ProtocolError(INVALID_REQUEST,
                            "Invalid request: id must be a string, a number or null")
    if member.get("jsonrpc") != "2.0":
        raise ProtocolError(INVALID_REQUEST, 'Invalid request: jsonrpc must be "2.0"',
                            request_id)
    method = member.get("method")
    if not isinstance(method, str):
        raise ProtocolError(INVALID_REQUEST, "Invalid request: method must be a string",
                            request_id)
    params = member.get("params")
    if params is not None and not isinstance(params, dict):
        raise ProtocolError(INVALID_PARAMS,
                            "params: must be an object (parameters by name)", request_id)
    return Call(method, params, request_id, not has_id)


def valid_id(value: Any) -> bool:
    """A string, a number (not a boolean) or null."""
    return value is None or (isinstance(value, str | int | float)
                             and not isinstance(value, bool))


def domain_error(exc: ApflowError, request_id: Any) -> dict[str, Any]:
    """The error object of a domain error; rate limits say when to come back."""
    data = {"retry_after": exc.retry_after} if isinstance(exc, RateLimited) else None
    return error_object(exc.rpc_code, exc.message, request_id, data)


def internal_error(request_id: Any) -> dict[str, Any]:
    return error_object(INTERNAL_ERROR, "Internal error", request_id)


def log_internal_error(call: Call) -> None:
    """A bug: keep the traceback in the server log, never in the answer."""
    logger.exception("JSON-RPC method failed", extra={"action": "rpc_internal_error",
                                                      "method": call.method[:100]})


def error_object(code: int, message: str, request_id: Any,
                 data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def error_response(code: int, message: str, request_id: Any) -> str:
    return encode(error_object(code, message, request_id))


def encode(response: dict[str, Any]) -> str:
    """JSON text of one response object; a result that cannot be encoded is a bug (-32603)."""
    try:
        return json.dumps(response, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        logger.exception("JSON-RPC result not encodable", extra={"action": "rpc_internal_error"})
        return json.dumps(internal_error(response.get("id")), separators=(",", ":"))
