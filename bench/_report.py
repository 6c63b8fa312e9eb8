"""Helpers every section shares: repeated rounds, medians and the markdown it prints."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured quantity: its rounds and what it is compared to."""

    measure: str
    rounds: Sequence[float]
    unit: str
    compares_to: str

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)


def machine_line() -> str:
    """The line every section prints under its title, so results can be compared."""
    return (
        f"Machine: {os.cpu_count()} cores (os.cpu_count()), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}."
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def table(rows: Sequence[Row]) -> str:
    """A markdown table: median, spread and the target or ceiling of each row."""
    lines = [
        "| measure | median | min … max | rounds | compares to |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        spread = f"{_number(min(row.rounds))} … {_number(max(row.rounds))}"
        lines.append(
            f"| {row.measure} | {_number(row.median)} {row.unit} | {spread} "
            f"| {len(row.rounds)} | {row.compares_to} |"
        )
    return "\n".join(lines)


def section(title: str, rows: Sequence[Row], notes: str = "") -> str:
    """The whole markdown section: title, machine line, table, optional notes."""
    parts = [f"## {title}", "", machine_line(), "", table(rows)]
    if notes:
        parts += ["", notes]
    return "\n".join(parts) + "\n"
