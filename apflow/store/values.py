"""How each dialect carries instants, JSON, id lists and bulk rows as query parameters.

SQLite keeps instants as INTEGER microseconds since the Unix epoch (compact and ordered) and
JSON as text; PostgreSQL keeps timestamptz and jsonb (asyncpg encodes them). Either way the
store sees aware UTC datetimes and plain Python values; a naive datetime is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apflow.domain.errors import InvalidParams
from apflow.domain.models import require_aware

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _plain(value: object) -> object:
    """json.dumps fallback: read-only mappings and other collections as plain JSON."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dump_json(value: object) -> str:
    """Compact JSON text; InvalidParams if `value` is not JSON data."""
    try:
        return json.dumps(value, separators=(",", ":"), default=_plain)
    except (TypeError, ValueError) as exc:
        raise InvalidParams(f"not JSON data: {exc}") from exc


# JSON column values that are this short are nearly always empty containers or null (a
# task's env, inputs, variables): answered without the parser, a fresh object each time.
_EMPTY_JSON: dict[str, Callable[[], Any]] = {"{}": dict, "[]": list}


def load_json(text: str) -> Any:
    """json.loads, with a shortcut for the common empty values (rows are read by the
    thousand and most JSON columns hold `{}`, `[]` or `null`)."""
    if len(text) <= 4:
        if text == "null":
            return None
        empty = _EMPTY_JSON.get(text)
        if empty is not None:
            return empty()
    return json.loads(text)


def aware(value: datetime, name: str) -> datetime:
    """`value` if it carries an offset; InvalidParams naming `name` if it is naive."""
    require_aware(value, name)
    return value


class Values(Protocol):
    """Parameter encoding and result decoding of one dialect."""

    # True when the driver itself reads instants, JSON, booleans and floats back as Python
    # values, so rows need no converting there (instants are still checked on the way in).
    native_types: bool

    def time(self, value: datetime | None, name: str) -> Any:
        """An instant as a parameter (None stays None)."""
        ...

    def time_value(self, raw: Any) -> datetime | None:
        """An instant read back, aware UTC."""
        ...

    def json(self, value: object) -> Any:
        """A JSON column value as a parameter (None is SQL NULL)."""
        ...

    def json_value(self, raw: Any) -> Any:
        """A JSON column read back."""
        ...

    def ids(self, ids: Sequence[str]) -> Any:
        """A list of ids as one parameter."""
        ...

    def rows(self, rows: Sequence[Sequence[Any]], width: int) -> tuple[Any, ...]:
        """Bulk rows (each `width` encoded values) as the parameters of a bulk query."""
        ...


class SqliteValues:
    """SQLite: INTEGER microseconds, JSON text, JSON arrays for lists and bulk rows."""

    native_types = False

    def time(self, value: datetime | None, name: str) -> int | None:
        if value is None:
            return None
        return (aware(value, name) - EPOCH) // MICROSECOND

    def time_value(self, raw: Any) -> datetime | None:
        return None if raw is None else EPOCH + timedelta(microseconds=raw)

    def json(self, value: object) -> str | None:
        return None if value is None else dump_json(value)

    def json_value(self, raw: Any) -> Any:
        return None if raw is None else load_json(raw)

    def ids(self, ids: Sequence[str]) -> str:
        return json.dumps(list(ids))

    def rows(self, rows: Sequence[Sequence[Any]], width: int) -> tuple[Any, ...]:
        return (json.dumps([list(row) for row in rows]),)


class PostgresValues:
    """PostgreSQL: asyncpg encodes datetimes and (with our codec) JSON; arrays per column."""

    native_types = True

    def time(self, value: datetime | None, name: str) -> datetime | None:
        return None if value is None else aware(value, name)

    def time_value(self, raw: Any) -> datetime | None:
        instant: datetime | None = raw  # asyncpg decodes timestamptz as aware UTC already
        return instant

    def json(self, value: object) -> object:
        return value  # the connection's jsonb codec (dump_json) encodes it

    def json_value(self, raw: Any) -> Any:
        return raw

    def ids(self, ids: Sequence[str]) -> list[str]:
        return list(ids)

    def rows(self, rows: Sequence[Sequence[Any]], width: int) -> tuple[Any, ...]:
        return tuple([row[column] for row in rows] for column in range(width))
