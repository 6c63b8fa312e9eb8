"""Driver errors leave the store as domain errors, cause kept; nothing else is touched."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from apflow.domain.enums import RunState
from apflow.domain.errors import (
    ApflowError,
    Conflict,
    InvalidParams,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from apflow.store.base import FinishedRun
from apflow.store.errors import wrap_errors
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, at


def _sqlite_error(sql: str) -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, n INTEGER CHECK (n > 0))")
    conn.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))")
    conn.execute("INSERT INTO parent VALUES (1, 1)")
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{sql} did not fail")


CASES: list[tuple[str, BaseException, type[ApflowError]]] = [
    ("sqlite unique", _sqlite_error("INSERT INTO parent VALUES (1, 1)"), Conflict),
    ("sqlite foreign key", _sqlite_error("INSERT INTO child VALUES (7)"), InvalidParams),
    ("sqlite check", _sqlite_error("INSERT INTO parent VALUES (2, 0)"), InvalidParams),
    ("sqlite other", _sqlite_error("SELECT * FROM missing"), StoreError),
    ("postgres unique", asyncpg.UniqueViolationError("duplicate key"), Conflict),
    ("postgres foreign key", asyncpg.ForeignKeyViolationError("no parent"), InvalidParams),
    ("postgres check", asyncpg.CheckViolationError("check failed"), InvalidParams),
    ("postgres gone", asyncpg.ConnectionDoesNotExistError("closed"), StoreUnavailable),
    ("refused", ConnectionRefusedError(111, "Connection refused"), StoreUnavailable),
    ("postgres other", asyncpg.UndefinedTableError("no such table"), StoreError),
]


@pytest.mark.parametrize(("case", "error", "expected"), CASES, ids=[c for c, _, _ in CASES])
def test_driver_errors_become_domain_errors_with_their_cause(
        case: str, error: BaseException, expected: type[ApflowError]) -> None:
    with pytest.raises(expected) as caught, wrap_errors():
        raise error
    assert type(caught.value) is expected
    assert caught.value.__cause__ is error


def test_a_violation_can_be_given_its_meaning_at_the_call() -> None:
    meaning = NotFound("parent task p1 not found", field="parent_id")
    with pytest.raises(NotFound) as caught, wrap_errors(foreign_key=meaning):
        raise asyncpg.ForeignKeyViolationError("violates foreign key")
    assert caught.value is meaning


@pytest.mark.parametrize("error", [ValueError("planner bug"), NotFound("no such task")])
def test_errors_that_are_not_the_drivers_pass_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, wrap_errors():
        raise error
    assert caught.value is error


async def test_a_value_the_schema_refuses_is_invalid_params(store: SqlStore) -> None:
    with pytest.raises(InvalidParams):
        await store.insert_runs([a_run("r1", state="exploded")])  # type: ignore[arg-type]


async def test_an_outcome_that_is_not_a_state_is_invalid_params(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1", state=RunState.RUNNING, node="n")])
    with pytest.raises(InvalidParams, match="state"):
        await store.finish_runs([FinishedRun("r1", "exploded", at(1))])  # type: ignore[arg-type]
    assert (await store.get_run("r1")).state is RunState.RUNNING
