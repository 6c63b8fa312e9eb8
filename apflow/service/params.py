"""Reading JSON-RPC params: each getter checks type and value and names the field it refuses.

Every method reads its params through one `Params`; `done()` then refuses fields the method
does not know, so a typo never silently does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from apflow.domain.errors import InvalidParams

E = TypeVar("E", bound=StrEnum)

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 10_000
MAX_NAME_LENGTH = 200
_MISSING = object()


def type_name(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_text(value: object, field: str, *, max_length: int = MAX_TEXT_LENGTH,
               allow_empty: bool = True, single_line: bool = False) -> str:
    """A string without NUL bytes (and without control characters when single_line)."""
    if not isinstance(value, str):
        raise InvalidParams(f"must be a string, not {type_name(value)}", field=field)
    if not allow_empty and not value.strip():
        raise InvalidParams("must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidParams(f"must be at most {max_length} characters", field=field)
    if "\x00" in value:
        raise InvalidParams("must not contain NUL characters", field=field)
    if single_line and any(ch < " " or ch == "\x7f" for ch in value):
        raise InvalidParams("must not contain control characters", field=field)
    return value


def check_int(value: object, field: str, lo: int | None = None, hi: int | None = None) -> int:
    """A whole number (JSON booleans are not numbers) within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidParams(f"must be a whole number, not {type_name(value)}", field=field)
    if lo is not None and value < lo:
        raise InvalidParams(f"must be at least {lo}", field=field)
    if hi is not None and value > hi:
        raise InvalidParams(f"must be at most {hi}", field=field)
    return value


def check_number(value: object, field: str, lo: float | None = None, hi: float | None = None,
                 *, above: float | None = None) -> float:
    """A finite number within [lo, hi] (and > above when given)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParams(f"must be a number, not {type_name(value)}", field=field)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidParams("must be a finite number", field=field)
    if above is not None and number <= above:
        raise InvalidParams(f"must be greater than {above:g}", field=field)
    if lo is not None and number < lo:
        raise InvalidParams(f"must be at least {lo:g}", field=field)
    if hi is not None and number > hi:
        raise InvalidParams(f"must be at most {hi:g}", field=field)
    return number


def check_bool(value: object, field: str) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise InvalidParams(f"must be true or false, not {type_name(value)}", field=field)
    return value


def check_enum(value: object, field: str, kind: type[E]) -> E:
    """One of the enum's values."""
    if not isinstance(value, str):
        raise InvalidParams(f"must be a string, not {type_name(value)}", field=field)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidParams(f"must be one of {allowed}", field=field) from None


def check_instant(value: object, field: str) -> datetime:
    """An ISO 8601 date-time with an offset (or Z)."""
    text = check_text(value, field, max_length=64, single_line=True)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParams("must be an ISO 8601 date-time such as 2024-01-15T09:00:00Z",
                            field=field) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidParams("must include an offset, e.g. Z or +01:00", field=field)
    return parsed


def check_id(value: object, field: str) -> str:
    """A task or run id: a short single-line string."""
    return check_text(value, field, max_length=MAX_ID_LENGTH, allow_empty=False,
                      single_line=True)


def check_object(value: object, field: str) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise InvalidParams(f"must be an object, not {type_name(value)}", field=field)
    return value


MAX_JSON_DEPTH = 32


def check_json(value: object, field: str, depth: int = 0) -> object:
    """Any JSON value whose strings (and keys) hold no NUL, nested at most MAX_JSON_DEPTH."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidParams(f"is nested deeper than {MAX_JSON_DEPTH} levels", field=field)
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidParams("must not contain NUL characters", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or "\x00" in key:
                raise InvalidParams("keys must be strings without NUL characters", field=field)
            check_json(item, f"{field}.{key}" if len(field) < 200 else field, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{field}[{index}]" if len(field) < 200 else field, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidParams("must be a finite number", field=field)
    return value


def check_string_map(value: object, field: str, *, max_items: int = 500) -> dict[str, str]:
    """An object of string values (environment variables, run variables)."""
    mapping = check_object(value, field)
    if len(mapping) > max_items:
        raise InvalidParams(f"must have at most {max_items} entries", field=field)
    for key, item in mapping.items():
        check_text(key, f"{field} key", max_length=256, allow_empty=False, single_line=True)
        check_text(item, f"{field}.{key}", max_length=MAX_TEXT_LENGTH)
    return dict(mapping)


def check_id_list(value: object, field: str, *, max_items: int = 1000) -> list[str]:
    """An array of ids, without duplicates."""
    if not isinstance(value, list):
        raise InvalidParams(f"must be an array, not {type_name(value)}", field=field)
    if len(value) > max_items:
        raise InvalidParams(f"must have at most {max_items} items", field=field)
    ids = [check_id(item, f"{field}[{index}]") for index, item in enumerate(value)]
    if len(set(ids)) != len(ids):
        raise InvalidParams("must not repeat an id", field=field)
    return ids


class Params:
    """The params of one call; getters consume fields, `done()` refuses the rest."""

    def __init__(self, raw: Mapping[str, Any] | Sequence[Any] | None) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise InvalidParams("params must be an object of named fields")
        self._raw = dict(raw)
        self._seen: set[str] = set()

    def has(self, field: str) -> bool:
        """Was the field given (null counts as given)?"""
        self._seen.add(field)
        return field in self._raw

    def raw(self, field: str, default: Any = _MISSING) -> Any:
        """The field's value as sent; InvalidParams if required and absent."""
        self._seen.add(field)
        if field in self._raw:
            return self._raw[field]
        if default is _MISSING:
            raise InvalidParams("is required", field=field)
        return default

    def id(self, field: str) -> str:
        """A required id."""
        return check_id(self.raw(field), field)

    def optional_id(self, field: str) -> str | None:
        """An id or null."""
        value = self.raw(field, None)
        return None if value is None else check_id(value, field)

    def integer(self, field: str, default: int, lo: int | None = None,
            hi: int | None = None) -> int:
        """A whole number with a default."""
        value = self.raw(field, None)
        return default if value is None else check_int(value, field, lo, hi)

    def optional_integer(self, field: str, lo: int | None = None,
                     hi: int | None = None) -> int | None:
        """A whole number or null."""
        value = self.raw(field, None)
        return None if value is None else check_int(value, field, lo, hi)

    def flag(self, field: str, default: bool) -> bool:
        """true/false with a default."""
        value = self.raw(field, None)
        return default if value is None else check_bool(value, field)

    def optional_flag(self, field: str) -> bool | None:
        """true/false or null."""
        value = self.raw(field, None)
        return None if value is None else check_bool(value, field)

    def text(self, field: str, default: str | None = None, *,
             max_length: int = MAX_TEXT_LENGTH) -> str | None:
        """A string with a default."""
        value = self.raw(field, None)
        if value is None:
            return default
        return check_text(value, field, max_length=max_length)

    def enum(self, field: str, kind: type[E]) -> E | None:
        """One of an enum's values, or null."""
        value = self.raw(field, None)
        return None if value is None else check_enum(value, field, kind)

    def instant(self, field: str) -> datetime | None:
        """An ISO 8601 date-time with an offset, or null."""
        value = self.raw(field, None)
        return None if value is None else check_instant(value, field)

    def string_map(self, field: str) -> dict[str, str] | None:
        """An object of strings, or null."""
        value = self.raw(field, None)
        return None if value is None else check_string_map(value, field)

    def given(self) -> dict[str, Any]:
        """Every field as sent (for methods that read fields generically)."""
        return dict(self._raw)

    def mark(self, *fields: str) -> None:
        """Consider these fields read."""
        self._seen.update(fields)

    def done(self) -> None:
        """Refuse fields nobody read."""
        unknown = sorted(set(self._raw) - self._seen)
        if unknown:
            shown = unknown[0] if len(unknown[0]) <= 64 else unknown[0][:64] + "..."
            raise InvalidParams("unknown field", field=shown)
