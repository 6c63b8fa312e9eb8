"""A deterministic delay per (task, slot), to spread runs that share a slot."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from apflow.schedules.checks import whole_number
from apflow.schedules.timezones import as_utc


def jitter_offset(task_id: str, slot: datetime, jitter_seconds: int) -> timedelta:
    """A delay in [0, jitter_seconds), whole milliseconds, the same on every node and retry.

    Derived from a hash rather than a random draw so that every node, and a replanning after
    a crash, computes the same start time for the same slot.
    """
    whole_number(jitter_seconds, "jitter_seconds")
    at = as_utc(slot, "slot")
    if jitter_seconds == 0:
        return timedelta(0)
    key = f"{task_id}\x00{at.isoformat()}".encode()
    draw = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    return timedelta(milliseconds=draw % (jitter_seconds * 1000))
