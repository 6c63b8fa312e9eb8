"""Option value types: JSON objects, KEY=VALUE pairs, comma lists, ISO 8601 instants."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import click


class JsonObject(click.ParamType[dict[str, Any], Any]):
    """A JSON object given inline, e.g. --inputs '{"a": 1}'."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> dict[str, Any]:
        """Parse, insisting on an object."""
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON ({exc})", param, ctx)
        if not isinstance(parsed, dict):
            self.fail("must be a JSON object ({...})", param, ctx)
        return parsed


class KeyValue(click.ParamType[tuple[str, str], Any]):
    """KEY=VALUE; the value may be empty and may contain '='."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, str]:
        """Split at the first '='."""
        if isinstance(value, tuple):
            return value
        key, sep, rest = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"expected KEY=VALUE, got {value!r}", param, ctx)
        return key.strip(), rest


class CommaList(click.ParamType[list[str], Any]):
    """ID,ID,...; blanks dropped, so "" means an empty list."""

    name = "ID,ID"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> list[str]:
        """Split at commas."""
        if isinstance(value, list):
            return value
        return [part.strip() for part in str(value).split(",") if part.strip()]


class Instant(click.ParamType[str, Any]):
    """An ISO 8601 date-time with an offset (Z or +hh:mm), sent on as given."""

    name = "ISO8601"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        """Check the shape here so a typo fails before any I/O; the service decides the rest."""
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"not an ISO 8601 date-time: {value!r}", param, ctx)
        if parsed.tzinfo is None:
            self.fail(f"needs an offset such as Z or +02:00: {value!r}", param, ctx)
        return text


def pairs_to_dict(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """KEY=VALUE options as a mapping; a repeated key keeps its last value."""
    return dict(pairs)


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params without the options left unset."""
    return {key: value for key, value in params.items() if value is not None}


JSON_OBJECT = JsonObject()
KEY_VALUE = KeyValue()
COMMA_LIST = CommaList()
INSTANT = Instant()
