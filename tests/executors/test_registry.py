"""The executor registry: lookup by type and validation of a task's executor field."""

from __future__ import annotations

import pytest

from apflow.domain.errors import InvalidParams
from apflow.executors.registry import ExecutorRegistry, default_registry


def test_the_default_registry_knows_the_four_standard_types() -> None:
    assert default_registry().types == ("command", "docker", "http", "python")


def test_each_default_registry_has_its_own_executor_instances() -> None:
    assert default_registry().get("python") is not default_registry().get("python")


def test_an_unknown_type_names_the_field_and_the_known_types() -> None:
    with pytest.raises(InvalidParams) as caught:
        default_registry().get("x")
    assert caught.value.field == "executor.type"
    assert str(caught.value) == ("executor.type: unknown executor type 'x' "
                                 "(known: command, docker, http, python)")


def test_no_executor_is_a_grouping_task_and_valid() -> None:
    default_registry().validate(None)


@pytest.mark.parametrize("spec", ["echo hi", ["command"], 3])
def test_an_executor_that_is_not_an_object_is_refused(spec: object) -> None:
    with pytest.raises(InvalidParams) as caught:
        default_registry().validate(spec)  # type: ignore[arg-type]
    assert caught.value.field == "executor"


@pytest.mark.parametrize("spec", [{}, {"type": 3}, {"type": "cron"}])
def test_a_missing_or_unknown_type_names_executor_type(spec: dict[str, object]) -> None:
    with pytest.raises(InvalidParams) as caught:
        default_registry().validate(spec)
    assert caught.value.field == "executor.type"


def test_validate_delegates_to_the_executor() -> None:
    registry = default_registry()
    registry.validate({"type": "command", "command": "true"})
    with pytest.raises(InvalidParams, match=r"^executor\.command: "):
        registry.validate({"type": "command"})


def test_register_replaces_an_executor_of_the_same_type() -> None:
    registry = ExecutorRegistry()
    standard = default_registry()
    registry.register(standard.get("command"))
    assert registry.types == ("command",)
    assert registry.get("command") is standard.get("command")
