"""Checks shared by the executors' validate(): each names the offending field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apflow.domain.errors import InvalidParams


def field_name(name: str) -> str:
    return f"executor.{name}"


def required_str(spec: Mapping[str, Any], name: str) -> str:
    """spec[name], a non-empty string."""
    value = spec.get(name)
    if value is None:
        raise InvalidParams("is required", field=field_name(name))
    if not isinstance(value, str) or not value.strip():
        raise InvalidParams("must be a non-empty string", field=field_name(name))
    return value


def optional_str(spec: Mapping[str, Any], name: str) -> str | None:
    """spec[name] if present: a non-empty string."""
    if spec.get(name) is None:
        return None
    return required_str(spec, name)


def string_map(spec: Mapping[str, Any], name: str) -> dict[str, str]:
    """spec[name] if present: an object of string to string; {} if absent."""
    value = spec.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParams("must be an object of strings", field=field_name(name))
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidParams("keys must be non-empty strings", field=field_name(name))
        if not isinstance(item, str):
            raise InvalidParams(f"value of '{key}' must be a string", field=field_name(name))
    return dict(value)


def env_map(spec: Mapping[str, Any], name: str = "env") -> dict[str, str]:
    """Like string_map, and the names must be usable as environment variables."""
    env = string_map(spec, name)
    for key, value in env.items():
        if "=" in key or "\0" in key or "\0" in value:
            raise InvalidParams(f"'{key}' is not a valid variable", field=field_name(name))
    return env
