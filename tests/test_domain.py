"""Domain model: aware datetimes only, one error root with JSON-RPC codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apflow.domain import errors
from apflow.domain.enums import RunState, Trigger
from apflow.domain.models import Run, Task

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_task_with_a_naive_datetime_is_rejected_naming_the_field() -> None:
    with pytest.raises(errors.InvalidParams, match="schedule_start_at"):
        Task(id="t", name="n", created_at=NOW, updated_at=NOW,
             schedule_start_at=datetime(2026, 1, 1))


def test_a_run_with_a_naive_datetime_is_rejected_naming_the_field() -> None:
    with pytest.raises(errors.InvalidParams, match="queued_at"):
        Run(id="r", task_id="t", trigger=Trigger.MANUAL, state=RunState.QUEUED,
            queued_at=datetime(2026, 1, 1), not_before=NOW)


def test_models_are_frozen() -> None:
    task = Task(id="t", name="n", created_at=NOW, updated_at=NOW)
    with pytest.raises(AttributeError):
        task.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.InvalidParams, -32602),
        (errors.Unauthenticated, -32001),
        (errors.Forbidden, -32003),
        (errors.NotFound, -32004),
        (errors.Conflict, -32009),
        (errors.RateLimited, -32029),
        (errors.StoreError, -32603),
    ],
)
def test_every_error_derives_from_the_root_and_carries_its_code(
    cls: type[errors.ApflowError], code: int
) -> None:
    error = cls()
    assert isinstance(error, errors.ApflowError)
    assert error.rpc_code == code
    assert str(error) == (cls.__doc__ or "").strip()


def test_an_error_message_names_its_field_once() -> None:
    assert str(errors.InvalidParams("hour 25 is out of range 0-23", field="schedule_expression")) \
        == "schedule_expression: hour 25 is out of range 0-23"
    assert str(errors.InvalidParams("timezone: unknown", field="timezone")) == "timezone: unknown"


def test_only_terminal_run_states_are_finished() -> None:
    assert not RunState.QUEUED.finished
    assert not RunState.RUNNING.finished
    assert all(s.finished for s in RunState if s not in (RunState.QUEUED, RunState.RUNNING))
