"""What the engine reports as it works (for metrics): a protocol, and one that ignores it all.

The engine calls these synchronously on its hot paths; implementations must be cheap and
must not raise (apflow/metrics.py counts in memory).
"""

from __future__ import annotations

from typing import Protocol

from apflow.domain.models import Run


class Observer(Protocol):
    """Events of one node's engine."""

    def run_started(self, run: Run, lateness_seconds: float | None) -> None:
        """A run was claimed; lateness = start minus its due time (scheduled runs only)."""

    def run_finished(self, run: Run) -> None:
        """A run's outcome was recorded."""

    def heartbeat(self, node: str) -> None:
        """This node wrote its heartbeat."""

    def loop_error(self, loop: str, store: bool) -> None:
        """A loop turn failed (`store`: the store raised or was unreachable)."""


class NullObserver:
    """Ignores every event."""

    def run_started(self, run: Run, lateness_seconds: float | None) -> None:
        return None

    def run_finished(self, run: Run) -> None:
        return None

    def heartbeat(self, node: str) -> None:
        return None

    def loop_error(self, loop: str, store: bool) -> None:
        return None


class Observers:
    """Tells every one of several observers (metrics and notifications, say)."""

    def __init__(self, *observers: Observer) -> None:
        self._observers = observers

    def run_started(self, run: Run, lateness_seconds: float | None) -> None:
        for observer in self._observers:
            observer.run_started(run, lateness_seconds)

    def run_finished(self, run: Run) -> None:
        for observer in self._observers:
            observer.run_finished(run)

    def heartbeat(self, node: str) -> None:
        for observer in self._observers:
            observer.heartbeat(node)

    def loop_error(self, loop: str, store: bool) -> None:
        for observer in self._observers:
            observer.loop_error(loop, store)
