"""Argument checks shared by the public functions."""

from __future__ import annotations

from apflow.domain.errors import InvalidParams


def whole_number(value: object, field: str, low: int = 0, high: int | None = None) -> int:
    """`value` if it is an int (not a bool) in low..high, else InvalidParams(field)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        raise InvalidParams(f"must be a whole number {bounds}", field=field)
    return value
