"""Durations written as `1h30m` (units d h m s), for `@every` and for describing intervals."""

from __future__ import annotations

import re

from apflow.domain.errors import InvalidParams

FIELD = "schedule_expression"
# Ten years: far beyond any real schedule, and keeps slot arithmetic clear of datetime's limits.
MAX_INTERVAL_SECONDS = 3650 * 86400
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$", re.ASCII)


def parse_duration(text: str) -> int:
    """Whole seconds of a duration such as `90s`, `15m`, `1h30m` or `1d`."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise InvalidParams(
            f"'@every {text}': expected a duration such as 90s, 15m, 1h30m or 1d "
            "(whole numbers; units d h m s, largest first)", field=FIELD)
    seconds = sum(int(value) * size
                  for value, (_, size) in zip(match.groups(), _UNITS, strict=True) if value)
    return check_interval(seconds)


def check_interval(seconds: int) -> int:
    """`seconds` if it is a usable interval length, else InvalidParams."""
    if seconds < 1:
        raise InvalidParams("the interval must be at least 1 second", field=FIELD)
    if seconds > MAX_INTERVAL_SECONDS:
        raise InvalidParams(
            f"the interval must be at most {MAX_INTERVAL_SECONDS} seconds (3650 days)",
            field=FIELD)
    return seconds


def format_duration(seconds: int) -> str:
    """`5400` -> `1h30m`; the inverse of parse_duration."""
    parts = []
    rest = seconds
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
