"""The SQL of each dialect, read once from `sql/<dialect>/`: named queries, migrations, schema.

A queries file is a sequence of blocks, each opened by a `-- name: <query_name>` line and a
one-line `-- comment`, as in procrastinate's queries.sql.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

QUERY_HEADER = re.compile(r"^-- name: ([a-z0-9_]+)\n(?:--.*\n)*", re.MULTILINE)
MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
DIALECTS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str


def parse_queries(text: str) -> dict[str, str]:
    """The named queries of one queries file (the text before the first header is skipped)."""
    parts = QUERY_HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


def _sql_dir(dialect: str) -> Traversable:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    return resources.files("apflow.store").joinpath("sql", dialect)


@cache
def queries(dialect: str) -> dict[str, str]:
    """The named queries of `dialect`, loaded once."""
    return parse_queries(_sql_dir(dialect).joinpath("queries.sql").read_text(encoding="utf-8"))


@cache
def migrations(dialect: str) -> tuple[Migration, ...]:
    """The migrations of `dialect`, in version order."""
    found = []
    for entry in _sql_dir(dialect).joinpath("migrations").iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{dialect} migrations must be numbered 1..n without gaps: {versions}")
    return tuple(found)


def schema(dialect: str) -> str:
    """The whole expected schema of `dialect` (what every migration together produces)."""
    return _sql_dir(dialect).joinpath("schema.sql").read_text(encoding="utf-8")
