"""The JSON-RPC error answer as an exception, for every test directory that calls the API."""

from __future__ import annotations

from typing import Any


class RpcError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = str(error.get("message"))
        self.error = error
