"""Executors: command, http, docker and python; `register_executor` (alias `executor`) makes a
Python function runnable as `{"type": "python", "name": ...}`."""

from apflow.executors.python import register_executor

executor = register_executor

__all__ = ["executor", "register_executor"]
