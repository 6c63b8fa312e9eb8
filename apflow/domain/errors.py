"""One error root for apflow; each class carries its JSON-RPC code and HTTP status.

The docstring of each class is its default message (as in procrastinate's exceptions).
Adapters translate these at the edge; nothing below the edge formats a response.
"""

from __future__ import annotations


class ApflowError(Exception):
    """Internal error."""

    rpc_code: int = -32603
    http_status: int = 500

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        text = message or (self.__doc__ or "").strip()
        if field and not text.startswith(f"{field}:"):
            text = f"{field}: {text}"
        super().__init__(text)
        self.message = text
        self.field = field


class UnknownMethod(ApflowError):
    """Method not found."""

    rpc_code = -32601
    http_status = 404


class InvalidParams(ApflowError):
    """Invalid parameters."""

    rpc_code = -32602
    http_status = 400


class Unauthenticated(ApflowError):
    """Missing or invalid credentials."""

    rpc_code = -32001
    http_status = 401


class Forbidden(ApflowError):
    """Forbidden."""

    rpc_code = -32003
    http_status = 403


class NotFound(ApflowError):
    """Not found."""

    rpc_code = -32004
    http_status = 404


class Conflict(ApflowError):
    """Conflict with the current state."""

    rpc_code = -32009
    http_status = 409


class ChangedSinceRead(Conflict):
    """An update lost an optimistic check: someone (often the engine, writing status or
    advancing the schedule) changed the row after it was read. The service layer reads
    again and retries the call; a client sees it only if that keeps happening."""


class RateLimited(ApflowError):
    """Rate limited."""

    rpc_code = -32029
    http_status = 429

    def __init__(self, message: str | None = None, *, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(ApflowError):
    """Invalid configuration."""


class StoreError(ApflowError):
    """Storage failure."""


class StoreUnavailable(StoreError):
    """The database cannot be reached."""


class ExecutorError(ApflowError):
    """The executor failed."""
