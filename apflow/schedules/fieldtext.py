"""Sets of field values written back as compact cron text: `1-5`, `*/15`, `0,30`."""

from __future__ import annotations


def star_text(values: tuple[int, ...], low: int, high: int) -> str | None:
    """`*` or `*/k` if `values` is exactly that pattern over low..high, else None."""
    if not values or values[0] != low:
        return None
    step = values[1] - values[0] if len(values) > 1 else high - low + 1
    if values == tuple(range(low, high + 1, step)):
        return "*" if step == 1 else f"*/{step}"
    return None


def plain_text(values: tuple[int, ...]) -> str:
    """Numbers only, never starting with `*`: `0-22/2`, `1-5,10`, `3,7`."""
    # Short lists read better spelled out: 1,3,5 rather than 1-5/2.
    step = values[1] - values[0] if len(values) > 3 else 0
    if step > 1 and values == tuple(range(values[0], values[-1] + 1, step)):
        return f"{values[0]}-{values[-1]}/{step}"
    return ",".join(_runs(values))


def any_text(values: tuple[int, ...], low: int, high: int) -> str:
    """The shortest faithful text: the star form when it fits, else numbers."""
    star = star_text(values, low, high) if len(values) > 1 else None
    return star or plain_text(values)


def _runs(values: tuple[int, ...]) -> list[str]:
    parts: list[str] = []
    for first, last in run_groups(values):
        parts.extend(_run(first, last))
    return parts


def _run(start: int, end: int) -> list[str]:
    if end - start >= 2:
        return [f"{start}-{end}"]
    return [str(v) for v in range(start, end + 1)]


def run_groups(values: tuple[int, ...]) -> list[tuple[int, int]]:
    """Consecutive runs as (first, last) pairs: (1, 2, 3, 5) -> [(1, 3), (5, 5)]."""
    groups: list[tuple[int, int]] = []
    for value in values:
        if groups and value == groups[-1][1] + 1:
            groups[-1] = (groups[-1][0], value)
        else:
            groups.append((value, value))
    return groups
