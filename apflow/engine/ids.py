"""Identifiers the engine mints."""

from __future__ import annotations

import uuid


def new_run_id() -> str:
    """A fresh run id (32 hex characters)."""
    return uuid.uuid4().hex
