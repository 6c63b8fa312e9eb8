"""Rendering results: aligned plain-text tables and key/value blocks, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from apflow.cli.context import state

Cell = Callable[[Mapping[str, Any]], Any]
Column = tuple[str, str | Cell]  # header, and the key (or function) giving the cell
View = Callable[[Any], str]
MAX_CELL = 60


def emit(ctx: click.Context, result: Any, view: View) -> None:
    """Print `result` as JSON under -f json, else as `view` renders it."""
    if state(ctx).format == "json":
        click.echo(to_json(result))
    else:
        text = view(result)
        if text:
            click.echo(text)


def to_json(value: Any) -> str:
    """Pretty, stable JSON; anything JSON lacks (datetimes) as its string form."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def to_json_line(value: Any) -> str:
    """Compact one-line JSON (JSON Lines, for streams)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def cell_text(value: Any, limit: int = MAX_CELL) -> str:
    """One line for a table cell: empty for null, compact JSON for structures, shortened."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
          empty: str = "(none)") -> str:
    """Rows under a header, columns padded to the widest cell, two spaces apart."""
    if not rows:
        return empty
    cells = [[header for header, _ in columns]]
    for row in rows:
        cells.append([cell_text(get(row)) if callable(get) else cell_text(row.get(get))
                      for _, get in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
                     .rstrip() for line in cells)


def details(record: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """`key: value` lines, keys padded to one width; nested mappings as dotted keys."""
    flat = flatten(record)
    shown = [k for k in keys if k in flat] if keys is not None else list(flat)
    if not shown:
        return ""
    width = max(len(key) for key in shown)
    return "\n".join(f"{key.ljust(width)}  {cell_text(flat[key], limit=200)}"
                     for key in shown)


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} as {"a.b": 1}; empty mappings stay as they are."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
