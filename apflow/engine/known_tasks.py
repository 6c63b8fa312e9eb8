"""Tasks this node already holds: the dispatcher need not read them again to start a run.

The scheduler reads each due task in full when it fires its slots, and the runs it queues are
usually claimed by this same node moments later. The dispatcher then reads only each claimed
run's task head (id, updated_at, children) and reuses the copy the scheduler had, provided the
row still carries the updated_at the firing wrote: any later change (an edit through any node,
a status write) makes it read the task again. So a run never starts from an outdated task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from apflow.domain.models import Task
from apflow.store.base import TaskHead

# Copies kept at most (the oldest go first): a burst of this many due tasks is served from
# memory; beyond it the dispatcher reads tasks as it always could.
MAX_COPIES = 20_000


class KnownTasks:
    """Copies of tasks, each with the updated_at its row had when the copy was current."""

    def __init__(self, limit: int = MAX_COPIES) -> None:
        self._limit = limit
        self._copies: dict[str, tuple[Task, datetime]] = {}

    def remember(self, tasks: Iterable[Task], updated_at: datetime) -> None:
        """`tasks` as read, whose rows were then written with `updated_at` (the firing's
        schedule advance); only the scheduling fields differ, which a run does not use."""
        copies = self._copies
        for task in tasks:
            copies.pop(task.id, None)  # re-inserted at the end: the newest
            copies[task.id] = (task, updated_at)
        if len(copies) > self._limit:
            for task_id in list(copies)[:len(copies) - self._limit]:
                del copies[task_id]

    def current(self, heads: Mapping[str, TaskHead]) -> dict[str, Task]:
        """The copies whose row is unchanged since (by the heads read just now)."""
        found: dict[str, Task] = {}
        for task_id, head in heads.items():
            copy = self._copies.get(task_id)
            if copy is not None and copy[1] == head.updated_at:
                found[task_id] = copy[0]
        return found

    def __len__(self) -> int:
        return len(self._copies)
