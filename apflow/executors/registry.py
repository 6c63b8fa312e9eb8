"""The executor types a node knows, by type name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apflow.domain.errors import InvalidParams
from apflow.executors.base import Executor
from apflow.executors.command import CommandExecutor
from apflow.executors.docker import DockerExecutor
from apflow.executors.http import HttpExecutor
from apflow.executors.python import PythonExecutor


class ExecutorRegistry:
    """Executors by `type_name`; validates task executor specs."""

    def __init__(self) -> None:
        self._executors: dict[str, Executor] = {}

    def register(self, executor: Executor) -> None:
        """Add (or replace) the executor for its type_name."""
        self._executors[executor.type_name] = executor

    @property
    def types(self) -> tuple[str, ...]:
        """Known type names, sorted."""
        return tuple(sorted(self._executors))

    def get(self, type_name: str) -> Executor:
        """The executor for `type_name`; InvalidParams (field executor.type) if unknown."""
        executor = self._executors.get(type_name)
        if executor is None:
            known = ", ".join(self.types)
            raise InvalidParams(f"unknown executor type '{type_name}' (known: {known})",
                                field="executor.type")
        return executor

    def validate(self, spec: Mapping[str, Any] | None) -> None:
        """Check a task's `executor` field; None is a grouping task and is fine."""
        if spec is None:
            return
        if not isinstance(spec, Mapping):
            raise InvalidParams("must be an object with a 'type'", field="executor")
        type_name = spec.get("type")
        if type_name is None:
            raise InvalidParams(f"is required (one of: {', '.join(self.types)})",
                                field="executor.type")
        if not isinstance(type_name, str):
            raise InvalidParams("must be a string", field="executor.type")
        self.get(type_name).validate(spec)


def default_registry() -> ExecutorRegistry:
    """A registry with fresh instances of the standard executors."""
    registry = ExecutorRegistry()
    for executor in (CommandExecutor(), DockerExecutor(), HttpExecutor(), PythonExecutor()):
        registry.register(executor)
    return registry
