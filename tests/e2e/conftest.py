"""End-to-end: the real app with its engine on one event loop, driven over HTTP JSON-RPC."""

from __future__ import annotations

from tests.api.conftest import make_api  # noqa: F401 - the fixture, shared with the API tests
