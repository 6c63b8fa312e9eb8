"""RemoteBackend: the same JSON-RPC methods, POSTed to a running `apflow serve`."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from apflow.config import Config
from apflow.domain.errors import (
    ApflowError,
    Conflict,
    Forbidden,
    InvalidParams,
    NotFound,
    RateLimited,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

ERRORS_BY_CODE: dict[int, type[ApflowError]] = {
    cls.rpc_code: cls
    for cls in (InvalidParams, Unauthenticated, Forbidden, NotFound, Conflict, RateLimited)
}
TOKEN_TTL_SECONDS = 12 * 3600
TOKEN_RENEW_MARGIN = 60
TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=10)


class AdminToken:
    """admin_auth_token if configured, else an admin JWT from jwt_secret, made once and kept."""

    def __init__(self, config: Config, now: Callable[[], float] = time.time) -> None:
        self.config = config
        self.subject = config.scheduler.user_id or "admin"
        self.source = "admin_auth_token" if config.admin_auth_token else "jwt_secret"
        self._now = now
        self._token: str | None = None
        self._expires = 0.0

    def value(self) -> str:
        """The bearer token to send now."""
        if self.config.admin_auth_token:
            return self.config.admin_auth_token
        if self._token is None or self._now() > self._expires - TOKEN_RENEW_MARGIN:
            from apflow.api.auth import issue_token

            self._token = issue_token(self.config.jwt_secret, self.subject, "admin",
                                      TOKEN_TTL_SECONDS)
            self._expires = self._now() + TOKEN_TTL_SECONDS
        return self._token


def error_from_response(error: Mapping[str, Any]) -> ApflowError:
    """The domain error a JSON-RPC error object stands for."""
    code = error.get("code")
    message = str(error.get("message") or "request failed")
    cls = ERRORS_BY_CODE.get(code) if isinstance(code, int) else None
    if cls is None:
        return ApflowError(f"{message} (JSON-RPC {code})")
    return cls(message)


class RemoteBackend:
    """POSTs each call to `<api_url>/tasks/` with `Authorization: Bearer <admin token>`."""

    def __init__(self, config: Config, api_url: str) -> None:
        self.url = api_url.rstrip("/") + "/tasks/"
        self.token = AdminToken(config)
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RemoteBackend:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        logger.debug("api client", extra={"action": "api_client_auth", "url": self.url,
                                          "subject": self.token.subject,
                                          "source": self.token.source})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """One JSON-RPC request; its result, or the domain error it answered with."""
        if self._session is None:
            raise RuntimeError("RemoteBackend used outside `async with`")
        body = {"jsonrpc": "2.0", "method": method, "params": dict(params),
                "id": next(self._ids)}
        headers = {"Authorization": f"Bearer {self.token.value()}"}
        try:
            async with self._session.post(self.url, json=body, headers=headers) as response:
                status, text = response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApflowError(f"cannot reach the API at {self.url}: "
                              f"{exc or type(exc).__name__}") from exc
        return self._result(status, text)

    def _result(self, status: int, text: str) -> Any:
        if status == 413:
            raise InvalidParams("request too large for the API (api.max_body_bytes)")
        try:
            answer = json.loads(text)
        except ValueError:
            raise ApflowError(f"{self.url} answered HTTP {status}, not JSON-RPC") from None
        if not isinstance(answer, dict):
            raise ApflowError(f"{self.url} answered HTTP {status} with an unexpected body")
        if isinstance(answer.get("error"), Mapping):
            raise error_from_response(answer["error"])
        if "result" not in answer:
            raise ApflowError(f"{self.url} answered HTTP {status} without a result")
        return answer["result"]
