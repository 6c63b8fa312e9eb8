"""Domain dataclasses to query parameters and result rows back, for either dialect.

Columns carry the dataclass field names, and insert queries list them in field order, so
one description per class (which fields are instants, JSON, booleans, enums) is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any, Generic, Protocol, TypeVar, cast

from apflow.domain.enums import (
    CatchUp,
    OccurrenceOutcome,
    OnOverlap,
    RetryBackoff,
    RunState,
    ScheduleType,
    TaskStatus,
    Trigger,
)
from apflow.domain.models import LogChunk, Node, Occurrence, Run, Task
from apflow.store.values import Values

T = TypeVar("T")
Codec = Callable[[Any], Any]
Converters = tuple[tuple[str, Codec | None], ...]  # (field, converter or None) per field


class Row(Protocol):
    """A result row of either driver (sqlite3.Row, asyncpg.Record): columns by name."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> Any: ...


@dataclass(frozen=True)
class Shape(Generic[T]):
    """How the fields of one dataclass are stored."""

    cls: type[T]
    times: frozenset[str] = frozenset()
    jsons: frozenset[str] = frozenset()
    tuples: frozenset[str] = frozenset()  # JSON arrays read back as tuples
    bools: frozenset[str] = frozenset()
    floats: frozenset[str] = frozenset()  # SQLite's RETURNING gives 5 for a REAL 5.0
    enums: Mapping[str, type[StrEnum]] = field(default_factory=dict)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cast(Any, self.cls)))


TASK: Shape[Task] = Shape(
    Task,
    times=frozenset({"created_at", "updated_at", "schedule_start_at", "schedule_end_at",
                     "schedule_anchor_at", "last_run_at", "next_run_at"}),
    jsons=frozenset({"executor", "inputs", "result", "env"}),
    tuples=frozenset({"dependencies"}),
    bools=frozenset({"schedule_enabled", "api_trigger", "notify_on_failure",
                     "notify_on_success"}),
    floats=frozenset({"progress", "timeout_seconds", "graceful_stop_seconds",
                      "retry_delay_seconds"}),
    enums={"status": TaskStatus, "schedule_type": ScheduleType, "catch_up": CatchUp,
           "retry_backoff": RetryBackoff, "on_overlap": OnOverlap},
)
RUN: Shape[Run] = Shape(
    Run,
    times=frozenset({"queued_at", "not_before", "scheduled_for", "started_at", "finished_at",
                     "lease_expires_at"}),
    jsons=frozenset({"variables", "result"}),
    enums={"trigger": Trigger, "state": RunState},
)
OCCURRENCE: Shape[Occurrence] = Shape(Occurrence, times=frozenset({"scheduled_for", "recorded_at"}),
                   enums={"outcome": OccurrenceOutcome})
LOG_CHUNK: Shape[LogChunk] = Shape(LogChunk, times=frozenset({"at"}))
NODE: Shape[Node] = Shape(Node, times=frozenset({"started_at", "heartbeat_at"}))


def _time_encoder(values: Values, name: str) -> Codec:
    return lambda value: values.time(value, name)


def _enum_value(value: StrEnum | str | None) -> str | None:
    return None if value is None else str(value)  # a member or its plain value


def _encoder(shape: Shape[Any], name: str, values: Values) -> Codec | None:
    if name in shape.times:
        return _time_encoder(values, name)  # the naive check applies to every dialect
    if values.native_types and name not in shape.enums:
        return None
    if name in shape.jsons or name in shape.tuples:
        return values.json
    if name in shape.enums:
        return _enum_value
    return None


def _tuple_of(decode: Codec) -> Codec:
    return lambda raw: tuple(decode(raw) or ())


def _optional_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def _optional_enum(enum: type[StrEnum]) -> Codec:
    members: dict[Any, StrEnum | None] = {member.value: member for member in enum}
    members[None] = None
    return members.__getitem__  # a dict lookup: rows are decoded by the thousand


def _decoder(shape: Shape[Any], name: str, values: Values) -> Codec | None:
    if values.native_types and name not in shape.enums and name not in shape.tuples:
        return None
    if name in shape.times:
        return values.time_value
    if name in shape.jsons:
        return values.json_value
    if name in shape.tuples:
        return _tuple_of(values.json_value)
    if name in shape.bools:
        return bool
    if name in shape.floats:
        return _optional_float
    if name in shape.enums:
        return _optional_enum(shape.enums[name])
    return None


# Converter plans per (dataclass, dialect), built once: rows are converted by the thousand.
_CONVERTERS: dict[tuple[type[Any], type[Any], str], Converters] = {}


def _converters(shape: Shape[Any], values: Values, direction: str) -> Converters:
    key = (shape.cls, type(values), direction)
    found = _CONVERTERS.get(key)
    if found is None:
        make = _encoder if direction == "encode" else _decoder
        found = tuple((name, make(shape, name, values)) for name in shape.names)
        _CONVERTERS[key] = found
    return found


# Encoding plans per (dataclass, dialect): all fields read in one call, then the few that
# need a conversion converted (rows are written by the thousand: every firing).
_ENCODERS: dict[tuple[type[Any], type[Any]], tuple[Callable[[Any], Any],
                                                   tuple[tuple[int, Codec], ...]]] = {}


def _encoding(shape: Shape[Any], values: Values) -> tuple[Callable[[Any], Any],
                                                          tuple[tuple[int, Codec], ...]]:
    key = (shape.cls, type(values))
    found = _ENCODERS.get(key)
    if found is None:
        converters = _converters(shape, values, "encode")
        found = (attrgetter(*(name for name, _ in converters)),
                 tuple((index, encode) for index, (_, encode) in enumerate(converters)
                       if encode is not None))
        _ENCODERS[key] = found
    return found


def params(shape: Shape[Any], obj: object, values: Values) -> tuple[Any, ...]:
    """The query parameters of `obj`, in field order."""
    read, encoders = _encoding(shape, values)
    raw: tuple[Any, ...] = read(obj)
    if not encoders:
        return raw
    out = list(raw)
    for index, encode in encoders:
        out[index] = encode(out[index])
    return tuple(out)


def from_rows(shape: Shape[T], rows: Sequence[Row], values: Values, *,
              after: str | None = None) -> list[T]:
    """The dataclasses of `shape` built from result rows; with `after`, from the columns
    that follow the column of that name (a row that carries two tables' columns).

    Columns are located once, then read by position (sqlite3.Row finds a column by name
    slowly). The objects are filled without calling their __init__: rows are decoded by the
    thousand (every claim, every firing), and a frozen dataclass's __init__ costs five times
    the rest. What __init__ would check, that instants are aware, holds for every decoded
    instant (both dialects read them back as aware UTC)."""
    if not rows:
        return []
    names = list(rows[0].keys())
    start = 0 if after is None else names.index(after) + 1
    converters = _converters(shape, values, "decode")
    fields_in_order = tuple(name for name, _ in converters)
    read = itemgetter(*(names.index(name, start) for name in fields_in_order))
    decoded = [(name, names.index(name, start), decode)
               for name, decode in converters if decode is not None]
    new = object.__new__
    build = shape.cls
    objects = []
    for row in rows:
        state = dict(zip(fields_in_order, read(row), strict=True))
        for name, index, decode in decoded:
            state[name] = decode(row[index])
        obj = new(build)
        obj.__dict__.update(state)
        objects.append(obj)
    return objects


def from_row(shape: Shape[T], row: Row, values: Values) -> T:
    """The dataclass of `shape` built from a result row."""
    return from_rows(shape, [row], values)[0]
