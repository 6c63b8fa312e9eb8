"""A run being executed on this node, and the outcome it ends with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from apflow.domain.enums import RunState
from apflow.domain.models import Run, Task
from apflow.store.base import FinishedRun

# Why the engine stopped a run -> (state, end_reason) it is recorded with.
STOP_CANCELLED = "cancelled"  # tasks.runs.cancel
STOP_TERMINATED = "terminated"  # on_overlap=terminate made room for a newer run
STOP_SHUTDOWN = "shutdown"  # this node is stopping; the run is retried by policy
STOP_LOG_FULL = "log_full"  # logs.on_full=kill_task
STOP_TREE = "tree_stopped"  # the tree this child belongs to was stopped
END_TIMEOUT = "timeout"
END_NODE_LOST = "node_lost"
END_DEPENDENCY_FAILED = "dependency_failed"

STOPPED_AS: dict[str, tuple[RunState, str]] = {
    STOP_CANCELLED: (RunState.CANCELLED, STOP_CANCELLED),
    STOP_TERMINATED: (RunState.CANCELLED, STOP_TERMINATED),
    STOP_SHUTDOWN: (RunState.CRASHED, STOP_SHUTDOWN),
    STOP_LOG_FULL: (RunState.FAILED, STOP_LOG_FULL),
    STOP_TREE: (RunState.CANCELLED, STOP_TREE),
}
STOP_MESSAGES = {
    STOP_CANCELLED: "cancelled on request",
    STOP_TERMINATED: "terminated to make room for a newer run (on_overlap=terminate)",
    STOP_SHUTDOWN: "stopped because the node shut down",
    STOP_LOG_FULL: "stopped: the log reached logs.max_size (logs.on_full=kill_task)",
    STOP_TREE: "stopped because its task tree was stopped",
}
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Outcome:
    """How a run ended, before it is recorded."""

    state: RunState
    exit_code: int | None = None
    error: str | None = None
    end_reason: str | None = None
    result: object = None

    def finished(self, run_id: str, at: datetime) -> FinishedRun:
        """The store record of this outcome."""
        return FinishedRun(run_id=run_id, state=self.state, finished_at=at,
                           exit_code=self.exit_code, error=self.error,
                           end_reason=self.end_reason, result=self.result)


def stopped_outcome(reason: str, exit_code: int | None = None) -> Outcome:
    """The outcome of a run the engine stopped for `reason`."""
    state, end_reason = STOPPED_AS.get(reason, (RunState.CANCELLED, reason))
    return Outcome(state=state, exit_code=exit_code, end_reason=end_reason,
                   error=STOP_MESSAGES.get(reason, f"stopped: {reason}"))


def failed(error: str, end_reason: str | None = None) -> Outcome:
    """A failed outcome with a short error."""
    return Outcome(state=RunState.FAILED, error=shorten(error), end_reason=end_reason)


def shorten(text: str) -> str:
    """First lines of an error, at most MAX_ERROR_CHARS characters."""
    text = text.strip() or "failed"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 1] + "…"


@dataclass(eq=False)
class ActiveRun:
    """A run executing here: what it runs, and how to ask it to stop."""

    run: Run
    task: Task | None
    stop_reason: str | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    holds_slot: bool = False
    tree: bool = False  # the run drives its task's children
    children: list[ActiveRun] = field(default_factory=list)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    def when_stopped(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` once a stop is requested (now, if it was); returns an unsubscribe."""
        if self.stop_reason is not None:
            callback()
            return lambda: None
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
        return unsubscribe

    def request_stop(self, reason: str) -> None:
        """Ask the run (and any tree children) to stop; the first reason given wins."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_requested.set()
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener()
        for child in list(self.children):
            child.request_stop(self._reason_for_children())

    def add_child(self, child: ActiveRun) -> None:
        """Track a tree child; one that joins after a stop was requested is stopped at once."""
        self.children.append(child)
        if self.stop_reason is not None:
            child.request_stop(self._reason_for_children())

    def _reason_for_children(self) -> str:
        return STOP_SHUTDOWN if self.stop_reason == STOP_SHUTDOWN else STOP_TREE
