"""Time zone names and the rule that every instant carries an offset."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apflow.domain.errors import InvalidParams

MAX_ZONE_NAME_LENGTH = 64
# "localtime" is whatever the host happens to be set to: a schedule must not change meaning
# when it moves to another node.
_HOST_DEPENDENT = frozenset({"localtime"})


def validate_timezone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, or InvalidParams(field="timezone")."""
    if not isinstance(name, str):
        raise InvalidParams("must be a string, an IANA time zone name", field="timezone")
    if not name:
        raise InvalidParams("must not be empty", field="timezone")
    return _load_zone(name)


@lru_cache(maxsize=512)
def _load_zone(name: str) -> ZoneInfo:
    unknown = InvalidParams(f"unknown time zone {name!r}", field="timezone")
    if len(name) > MAX_ZONE_NAME_LENGTH or not name.isprintable() or name in _HOST_DEPENDENT:
        raise unknown
    try:
        return ZoneInfo(name)
    # ZoneInfo raises ValueError for path-like keys ("../x", "/etc/x") and OSError/TypeError
    # for odd files; to a caller all of them mean the same thing.
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise unknown from None


def as_utc(value: datetime, field: str) -> datetime:
    """`value` converted to UTC; a naive or non-datetime value raises InvalidParams(field)."""
    if not isinstance(value, datetime):
        raise InvalidParams("must be a datetime", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidParams("naive datetime; an offset is required", field=field)
    return value.astimezone(UTC)
