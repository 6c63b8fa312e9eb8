"""Task trees: the root's run drives its descendants.

Running a task with children resets every descendant to pending, then runs the children
of each task in dependency order (independent siblings in parallel), each child as its
own Run row (parent_run_id = the root run), and finally the task's own executor, if it
has one. A child that does not succeed fails its parent; its dependants are not started
(recorded as skipped runs, end_reason dependency_failed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apflow.domain.enums import RunState, TaskStatus, Trigger
from apflow.domain.models import Run, Task
from apflow.engine.attempt import describe
from apflow.engine.ids import new_run_id
from apflow.engine.planning import retry_delay, should_retry
from apflow.engine.runs import (
    END_DEPENDENCY_FAILED,
    END_TIMEOUT,
    STOP_CANCELLED,
    STOP_TREE,
    ActiveRun,
    Outcome,
    failed,
    shorten,
    stopped_outcome,
)
from apflow.engine.status import STATUS_OF_RUN_STATE
from apflow.engine.waiting import wait_event
from apflow.store.base import TaskOutcome

if TYPE_CHECKING:
    from apflow.engine.dispatcher import Dispatcher

logger = logging.getLogger(__name__)


# pure checks ----------------------------------------------------------------------------------


def children_index(tasks: Sequence[Task]) -> dict[str, list[Task]]:
    """Children of every task in a subtree, in the order the store returned them."""
    index: dict[str, list[Task]] = {task.id: [] for task in tasks}
    for task in tasks[1:]:
        if task.parent_id in index:
            index[task.parent_id].append(task)
    return index


def tree_problem(tasks: Sequence[Task]) -> str | None:
    """Why a subtree cannot run (a dependency outside its siblings, or a cycle), or None."""
    for siblings in children_index(tasks).values():
        ids = {task.id for task in siblings}
        for task in siblings:
            strangers = [dep for dep in task.dependencies if dep not in ids]
            if strangers:
                return (f"task {task.id}: dependency {strangers[0]} is not a sibling "
                        "(dependencies name tasks with the same parent)")
        cycle = dependency_cycle(siblings)
        if cycle:
            return f"dependency cycle among tasks {', '.join(cycle)}"
    return None


def dependency_cycle(siblings: Sequence[Task]) -> list[str]:
    """Ids of siblings caught in a dependency cycle (Kahn's algorithm leaves them over)."""
    waiting = {task.id: set(task.dependencies) for task in siblings}
    ready = [tid for tid, deps in waiting.items() if not deps]
    while ready:
        done = ready.pop()
        del waiting[done]
        for tid, deps in waiting.items():
            if done in deps:
                deps.discard(done)
                if not deps and tid not in ready:
                    ready.append(tid)
    return sorted(waiting)


def child_failure(task: Task, run: Run | None) -> str:
    """The parent's error naming the child that did not succeed."""
    if run is None:
        return f"child task {task.name!r} ({task.id}) was not recorded"
    detail = f": {run.error}" if run.error else ""
    return shorten(f"child task {task.name!r} ({task.id}) {run.state.value}{detail}")


# driving --------------------------------------------------------------------------------------


@dataclass
class _Tree:
    """One tree run: the root's run and who is whose child."""

    root: ActiveRun
    children: dict[str, list[Task]] = field(default_factory=dict)


class TreeDriver:
    """Runs the descendants of a tree's root run on this node."""

    def __init__(self, host: Dispatcher) -> None:
        self._host = host

    async def drive(self, root: ActiveRun) -> Outcome:
        """Reset the descendants, run them, then the root's own executor."""
        host = self._host
        assert root.task is not None
        tasks = await host.store.subtree(root.task.id)
        problem = tree_problem(tasks)
        if problem:
            return failed(problem)
        await host.store.reset_tasks([task.id for task in tasks[1:]], host.clock.now())
        host.release_slot(root)  # children take slots of their own; waiting needs none
        tree = _Tree(root=root, children=children_index(tasks))
        limit = root.task.timeout_seconds
        if limit is None or limit <= 0:
            return await self._run_node(root, tree)
        return await self._within(root, tree, limit)

    async def _within(self, root: ActiveRun, tree: _Tree, limit: float) -> Outcome:
        """Run the tree, stopping it when the root's timeout_seconds pass."""
        work = asyncio.ensure_future(self._run_node(root, tree))
        done, _ = await asyncio.wait({work}, timeout=limit)
        if work in done:
            return work.result()
        root.request_stop(END_TIMEOUT)
        await work
        return Outcome(state=RunState.TIMED_OUT, end_reason=END_TIMEOUT,
                       error=f"task tree timed out after {limit:g} s")

    async def _run_node(self, active: ActiveRun, tree: _Tree) -> Outcome:
        """Children first, in dependency order; then the task's own executor."""
        task = active.task
        assert task is not None
        kids = tree.children.get(task.id, [])
        if kids:
            failure = await self._run_children(active, kids, tree)
            if failure is not None:
                return failure
        if active.stop_reason is not None:
            return stopped_outcome(active.stop_reason)
        if task.executor is None:
            return Outcome(state=RunState.SUCCEEDED) if kids else \
                failed("nothing to run: the task has no executor and no children")
        if not active.holds_slot:
            if not await self._slot_unless_stopped(active):
                return stopped_outcome(active.stop_reason or STOP_TREE)
            active.holds_slot = True
        try:
            return await self._host.attempts.perform(active)
        finally:
            self._host.release_slot(active)

    async def _slot_unless_stopped(self, stopper: ActiveRun) -> bool:
        """Wait for an execution slot; False (holding none) if `stopper` is asked to stop
        first, so a stopped tree never waits for, or starts, a child on a full node."""
        if stopper.stop_reason is not None:
            return False
        capacity = self._host.capacity
        acquiring = asyncio.ensure_future(capacity.acquire())
        stopped = asyncio.ensure_future(stopper.stop_requested.wait())
        try:
            await asyncio.wait({acquiring, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            acquiring.cancel()  # a slot handed over meanwhile is passed on by acquire()
            await asyncio.wait({acquiring})
        if acquiring.cancelled():
            return False
        if stopper.stop_reason is not None:
            capacity.release()
            return False
        return True

    async def _run_children(self, parent: ActiveRun, kids: list[Task],
                            tree: _Tree) -> Outcome | None:
        """Run siblings as their dependencies allow; the first failure, or None."""
        loop = asyncio.get_running_loop()
        results: dict[str, asyncio.Future[Run | None]] = {k.id: loop.create_future()
                                                          for k in kids}
        await asyncio.gather(*(self._child_when_ready(parent, kid, tree, results)
                               for kid in kids))
        if parent.stop_reason is not None:
            return stopped_outcome(parent.stop_reason)
        for kid in kids:
            run = results[kid.id].result()
            if run is None or run.state is not RunState.SUCCEEDED:
                return failed(child_failure(kid, run))
        return None

    async def _child_when_ready(self, parent: ActiveRun, kid: Task, tree: _Tree,
                                results: dict[str, asyncio.Future[Run | None]]) -> None:
        run: Run | None = None
        try:
            blocker = await self._failed_dependency(kid, results)
            if blocker is not None:
                run = await self._not_started(parent, kid, tree, END_DEPENDENCY_FAILED,
                                              f"not started: dependency {blocker} "
                                              "did not succeed")
            elif parent.stop_reason is not None:
                run = await self._not_started(parent, kid, tree, STOP_TREE,
                                              "not started: the task tree was stopped")
            else:
                run = await self._run_child(parent, kid, tree)
        except Exception as exc:  # one child's engine failure fails it, not the loop
            logger.exception("tree child failed inside the engine", extra={
                "action": "tree_child_error", "task_id": kid.id, "error": describe(exc)})
        finally:
            results[kid.id].set_result(run)

    @staticmethod
    async def _failed_dependency(kid: Task,
                                 results: dict[str, asyncio.Future[Run | None]]) -> str | None:
        for dep in kid.dependencies:
            run = await asyncio.shield(results[dep])
            if run is None or run.state is not RunState.SUCCEEDED:
                return dep
        return None

    async def _run_child(self, parent: ActiveRun, kid: Task, tree: _Tree) -> Run | None:
        """Every attempt of one child, retried by its own policy; the last recorded run."""
        attempt, retry_of = 1, None
        while True:
            run = await self._attempt_child(parent, kid, tree, attempt, retry_of)
            if run is None or parent.stop_reason is not None or not should_retry(kid, run) \
                    or run.cancel_requested == STOP_CANCELLED:
                return run
            delay = retry_delay(kid, attempt)
            if await wait_event(parent.stop_requested, delay):
                return run
            attempt, retry_of = attempt + 1, run.id

    async def _attempt_child(self, parent: ActiveRun, kid: Task, tree: _Tree, attempt: int,
                             retry_of: str | None) -> Run | None:
        host = self._host
        leaf = kid.executor is not None and not tree.children.get(kid.id)
        # A slot before the row, so started_at is true.
        if leaf and not await self._slot_unless_stopped(parent):
            return await self._not_started(parent, kid, tree, STOP_TREE,
                                           "not started: the task tree was stopped")
        active = ActiveRun(run=await self._insert_child(tree, kid, attempt, retry_of),
                           task=kid, holds_slot=leaf)
        parent.add_child(active)
        host.register(active)
        host.status.started(kid.id)
        try:
            outcome = await self._run_node(active, tree)
        except Exception as exc:  # recorded on the child's run
            outcome = failed(f"internal error: {describe(exc)}")
        finally:
            host.release_slot(active)
            parent.children.remove(active)
        try:
            run = await host.record(active, outcome)
        finally:
            host.forget(active)
        if run is not None:
            await self._post_status(kid, run)
        return run

    async def _insert_child(self, tree: _Tree, kid: Task, attempt: int,
                            retry_of: str | None) -> Run:
        host = self._host
        root = tree.root.run
        now = host.clock.now()
        run = Run(id=new_run_id(), task_id=kid.id,
                  trigger=root.trigger if attempt == 1 else Trigger.RETRY,
                  state=RunState.RUNNING, queued_at=now, not_before=now, started_at=now,
                  attempt=attempt, scheduled_for=root.scheduled_for, node=host.node_id,
                  triggered_by=root.triggered_by, user_id=kid.user_id,
                  variables=dict(root.variables), parent_run_id=root.id, retry_of=retry_of,
                  lease_expires_at=host.leases.until(host.settings.lease_seconds))
        await host.store.insert_runs([run])
        logger.info("tree child started", extra={
            "action": "run_started", "run_id": run.id, "task_id": kid.id,
            "parent_run_id": root.id, "attempt": attempt})
        return run

    async def _not_started(self, parent: ActiveRun, kid: Task, tree: _Tree, reason: str,
                           message: str) -> Run:
        """Record a child that will not run this time, so history and status say why."""
        host = self._host
        root = tree.root.run
        now = host.clock.now()
        run = Run(id=new_run_id(), task_id=kid.id, trigger=root.trigger,
                  state=RunState.SKIPPED, queued_at=now, not_before=now, finished_at=now,
                  scheduled_for=root.scheduled_for, end_reason=reason, error=message,
                  node=host.node_id, triggered_by=root.triggered_by, user_id=kid.user_id,
                  variables=dict(root.variables), parent_run_id=root.id)
        await host.store.insert_runs([run])
        await host.status.post(TaskOutcome(kid.id, TaskStatus.CANCELLED, error=message))
        logger.info("tree child not started", extra={
            "action": "run_skipped", "run_id": run.id, "task_id": kid.id, "reason": reason})
        return run

    async def _post_status(self, kid: Task, run: Run) -> None:
        succeeded = run.state is RunState.SUCCEEDED
        await self._host.status.post(TaskOutcome(
            kid.id, STATUS_OF_RUN_STATE[run.state], result=run.result,
            error=None if succeeded else run.error, progress=1.0 if succeeded else None))
