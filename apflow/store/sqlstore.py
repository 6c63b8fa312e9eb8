"""The Store logic, written once over a `Database`; each dialect differs only in its SQL files
and its driver adapter (`sqlite.py`, `postgres.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from apflow.domain.enums import RunState, TaskStatus
from apflow.domain.errors import ChangedSinceRead, Conflict, InvalidParams, NotFound
from apflow.domain.models import LogChunk, Node, Occurrence, Run, Task
from apflow.domain.plans import Plan
from apflow.store.base import (
    Claimed,
    FinishedRun,
    OccurrenceFilter,
    Planner,
    RunFilter,
    TaskFilter,
    TaskHead,
    TaskOutcome,
)
from apflow.store.batching import Batcher
from apflow.store.database import Database, Tx
from apflow.store.feeds import FeedTokenQueries
from apflow.store.firing import (
    PlanRequest,
    apply_plans,
    insert_occurrences,
    insert_runs,
    plan_each,
    plan_in_order,
    plan_one,
    task_loads,
)
from apflow.store.migrate import schema_snapshot
from apflow.store.retention import RetentionQueries
from apflow.store.rows import (
    LOG_CHUNK,
    NODE,
    OCCURRENCE,
    RUN,
    TASK,
    Row,
    from_row,
    from_rows,
    params,
)

FINISH_WIDTH = 7  # columns of one finish_runs row
OUTCOME_WIDTH = 5  # columns of one set_task_outcomes row
FINISHED_STATES = frozenset(state for state in RunState if state.finished)


def _value(enum: Any) -> str | None:
    """An enum filter as a parameter (a member or its plain value)."""
    return None if enum is None else str(enum)


def _last_outcome_of_each_task(outcomes: Sequence[TaskOutcome]) -> list[TaskOutcome]:
    """One outcome per task with the effect of applying `outcomes` in order: the last one,
    keeping the last progress given (a None progress leaves the stored one)."""
    merged: dict[str, TaskOutcome] = {}
    for outcome in outcomes:
        earlier = merged.pop(outcome.task_id, None)
        if outcome.progress is None and earlier is not None and earlier.progress is not None:
            outcome = replace(outcome, progress=earlier.progress)
        merged[outcome.task_id] = outcome
    return list(merged.values())


def _run_order(run: Run) -> tuple[datetime, datetime, str]:
    return run.not_before, run.queued_at, run.id


SIGNATURE_PURGE_SECONDS = 60.0  # how often used webhook signatures past their window go
SIGNATURE_WIDTH = 2  # columns of one remember_signatures row


@dataclass(frozen=True)
class SignatureRequest:
    """One remember_signature call waiting in a batch (instants already encoded)."""

    digest: str
    now: datetime
    expires_at: Any


class SqlStore(FeedTokenQueries, RetentionQueries):
    """Everything of the Store protocol except connecting and change notification."""

    dialect: str

    def __init__(self, db: Database) -> None:
        self._db = db
        self._values = db.values
        self._signatures_purged_at: datetime | None = None
        # Group commit of the webhook's two writes (batching.py): concurrent calls share
        # transactions instead of queueing for the write lock one transaction at a time.
        self._applies = Batcher(self._apply_batch, self._apply_alone, name="apply_to_task")
        self._signatures = Batcher(self._remember_batch, self._remember_alone,
                                   name="remember_signature")

    # helpers -----------------------------------------------------------------------------

    def _time(self, value: datetime, name: str = "now") -> Any:
        """An instant as a parameter; InvalidParams naming `name` if it is naive."""
        return self._values.time(value, name)

    def _tasks(self, rows: Sequence[Any]) -> list[Task]:
        return from_rows(TASK, rows, self._values)

    def _task(self, row: Any) -> Task:
        return from_row(TASK, row, self._values)

    def _runs(self, rows: Sequence[Any]) -> list[Run]:
        return from_rows(RUN, rows, self._values)

    def _run(self, row: Any) -> Run:
        return from_row(RUN, row, self._values)

    # schema (not part of the Store protocol: health checks and tests) ---------------------

    async def applied_migrations(self) -> list[int]:
        """Versions of the migrations applied to this database."""
        async with self._db.read() as tx:
            return [int(row["version"]) for row in await tx.fetch("applied_migrations")]

    async def schema_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Tables, columns, indexes and constraints, comparable between two databases."""
        async with self._db.read() as tx:
            return await schema_snapshot(tx, self.dialect)

    # tasks -------------------------------------------------------------------------------

    async def create_task(self, task: Task) -> Task:
        """Insert a task. Conflict if the id exists."""
        async with self._db.statement(
                unique=Conflict(f"task {task.id} already exists"),
                foreign_key=NotFound(f"parent task {task.parent_id} not found",
                                     field="parent_id")) as tx:
            row = await tx.fetchrow("insert_task", *params(TASK, task, self._values))
        assert row is not None
        return self._task(row)

    async def get_task(self, task_id: str) -> Task:
        """Return a task. NotFound if absent."""
        async with self._db.lookup() as tx:
            row = await tx.fetchrow("get_task", task_id)
        if row is None:
            raise NotFound(f"task {task_id} not found")
        return self._task(row)

    async def get_tasks(self, task_ids: Sequence[str]) -> list[Task]:
        """Return the tasks that exist among `task_ids` (any order)."""
        if not task_ids:
            return []
        async with self._db.read() as tx:
            return self._tasks(await tx.fetch("get_tasks", self._values.ids(task_ids)))

    async def update_task(self, task: Task, *,
                          expected_updated_at: datetime | None = None) -> Task:
        """Replace a task row. NotFound if absent; Conflict if `expected_updated_at` differs."""
        expected = None if expected_updated_at is None else self._time(
            expected_updated_at, "expected_updated_at")
        async with self._db.write(foreign_key=NotFound(
                f"parent task {task.parent_id} not found", field="parent_id")) as tx:
            row = await tx.fetchrow("update_task", *params(TASK, task, self._values), expected)
            if row is None:
                await self._explain_missed_update(tx, task.id)
        assert row is not None
        return self._task(row)

    async def _explain_missed_update(self, tx: Tx, task_id: str) -> None:
        if await tx.fetchrow("get_task", task_id) is None:
            raise NotFound(f"task {task_id} not found")
        raise ChangedSinceRead(f"task {task_id} was changed since it was read")

    async def delete_tasks(self, task_ids: Sequence[str]) -> int:
        """Delete task rows and their future (not yet fired) ledger entries; runs are kept.

        Future entries are those at or after the task's next_run_at. A task whose children
        are not deleted with it is a Conflict."""
        if not task_ids:
            return 0
        ids = self._values.ids(task_ids)
        async with self._db.write(foreign_key=Conflict(
                "a task with children cannot be deleted without them")) as tx:
            await tx.execute("delete_future_occurrences", ids)
            return await tx.execute("delete_tasks", ids)

    def _task_filter(self, flt: TaskFilter) -> tuple[Any, ...]:
        return (flt.user_id, _value(flt.status), _value(flt.schedule_type),
                flt.schedule_enabled, flt.scheduled_only, flt.parent_id, flt.roots_only,
                flt.name, flt.source)

    async def list_tasks(self, flt: TaskFilter, *, limit: int = 100,
                         offset: int = 0) -> list[Task]:
        """Tasks matching `flt`, oldest first (created_at, id)."""
        async with self._db.read() as tx:
            rows = await tx.fetch("list_tasks", *self._task_filter(flt), limit, offset)
        return self._tasks(rows)

    async def count_tasks(self, flt: TaskFilter) -> int:
        """Number of tasks matching `flt`."""
        async with self._db.read() as tx:
            return int(await tx.fetchval("count_tasks", *self._task_filter(flt)))

    async def set_task_outcome(self, task_id: str, now: datetime, *, status: TaskStatus,
                               result: object = None, error: str | None = None,
                               progress: float | None = None) -> None:
        """Update only status/result/error/progress/updated_at of a task (the engine's write;
        never clobbers a concurrent definition change). A missing task is ignored."""
        async with self._db.statement() as tx:
            await tx.execute("set_task_outcome", task_id, self._time(now), str(status),
                             self._values.json(result), error, progress)

    async def set_task_outcomes(self, outcomes: Sequence[TaskOutcome], now: datetime) -> None:
        """set_task_outcome for each of `outcomes`, in order, in one transaction; missing
        tasks are ignored (a task listed twice ends with its last outcome)."""
        stamp = self._time(now)
        if not outcomes:
            return
        rows = [(o.task_id, str(o.status), self._values.json(o.result), o.error, o.progress)
                for o in _last_outcome_of_each_task(outcomes)]
        async with self._db.statement() as tx:
            await tx.execute("set_task_outcomes", *self._values.rows(rows, OUTCOME_WIDTH),
                             stamp)

    async def task_heads(self, task_ids: Sequence[str]) -> dict[str, TaskHead]:
        """Id, updated_at and whether it has children, of each existing task listed."""
        if not task_ids:
            return {}
        async with self._db.read() as tx:
            rows = await tx.fetch("task_heads", self._values.ids(task_ids))
        return {row["id"]: self._head(row["id"], row["updated_at"], row["has_children"])
                for row in rows}

    def _head(self, task_id: str, updated_at: Any, has_children: Any) -> TaskHead:
        instant = self._values.time_value(updated_at)
        assert instant is not None  # updated_at is NOT NULL
        return TaskHead(task_id, instant, bool(has_children))

    async def reset_tasks(self, task_ids: Sequence[str], now: datetime) -> None:
        """Set tasks back to pending with result, error and progress cleared (tree re-run)."""
        if not task_ids:
            return
        async with self._db.statement() as tx:
            await tx.execute("reset_tasks", self._values.ids(task_ids), self._time(now))

    async def subtree(self, task_id: str) -> list[Task]:
        """The task and all its descendants (parent before child). NotFound if absent."""
        async with self._db.read() as tx:
            rows = await tx.fetch("subtree", task_id)
        if not rows:
            raise NotFound(f"task {task_id} not found")
        return self._tasks(rows)

    async def due_tasks(self, now: datetime, *, limit: int = 100,
                        user_id: str | None = None) -> list[Task]:
        """Enabled schedules with next_run_at <= now, earliest first (read-only)."""
        async with self._db.read() as tx:
            return self._tasks(await tx.fetch("due_tasks", self._time(now), limit, user_id))

    async def next_due_at(self) -> datetime | None:
        """Earliest next_run_at among enabled schedules (the scheduler's wake-up time)."""
        async with self._db.read() as tx:
            return self._values.time_value(await tx.fetchval("next_due_at"))

    # firing ------------------------------------------------------------------------------

    async def fire_due(self, now: datetime, planner: Planner, *,
                       limit: int = 500) -> list[Plan]:
        """Lock up to `limit` due schedules, plan each and apply the plans, all in one
        transaction. A task whose planner call raises is logged and skipped."""
        stamp = self._time(now)
        async with self._db.write() as tx:
            tasks = self._tasks(await tx.fetch("lock_due_tasks", stamp, limit))
            if not tasks:
                return []
            loads = await task_loads(tx, self._values, [task.id for task in tasks])
            return await apply_plans(tx, self._values, plan_each(tasks, loads, planner), now)

    async def apply_to_task(self, task_id: str, now: datetime, planner: Planner) -> Plan:
        """Lock one task row, call `planner(task, load)` and apply the Plan atomically.
        NotFound if absent; the planner's exceptions propagate and nothing is written.

        Concurrent calls share a transaction (as if run one after another, in call order);
        a failure of one of them is that caller's alone."""
        self._time(now)
        return await self._applies.submit(PlanRequest(task_id, now, planner))

    async def _apply_alone(self, request: PlanRequest) -> Plan:
        async with self._db.write() as tx:
            row = await tx.fetchrow("lock_task", request.task_id)
            if row is None:
                raise NotFound(f"task {request.task_id} not found")
            task = self._task(row)
            loads = await task_loads(tx, self._values, [task.id])
            plan = plan_one(task, loads, request.planner)
            [applied] = await apply_plans(tx, self._values, [plan], request.now)
        return applied

    async def _apply_batch(self, requests: Sequence[PlanRequest]) -> list[Plan | Exception]:
        """Plan and apply `requests` in one transaction, all their tasks locked at once."""
        ids = self._values.ids(sorted({request.task_id for request in requests}))
        outcomes: list[Plan | Exception] = []
        async with self._db.write() as tx:
            while len(outcomes) < len(requests):
                outcomes += await self._apply_round(tx, ids, requests[len(outcomes):])
        return outcomes

    async def _apply_round(self, tx: Tx, ids: Any,
                           requests: Sequence[PlanRequest]) -> list[Plan | Exception]:
        """Plan and apply the leading requests that plan_in_order can plan without a write
        in between (usually all of them)."""
        tasks = {task.id: task for task in self._tasks(await tx.fetch("lock_tasks", ids))}
        loads = await task_loads(tx, self._values, list(tasks))
        planned = plan_in_order(requests, tasks, loads)
        plans = [(outcome, request.now) for outcome, request
                 in zip(planned, requests[:len(planned)], strict=True)
                 if isinstance(outcome, Plan)]
        applied = iter(await apply_plans(tx, self._values, [plan for plan, _ in plans],
                                         [at for _, at in plans]))
        return [next(applied) if isinstance(outcome, Plan) else outcome
                for outcome in planned]

    # runs --------------------------------------------------------------------------------

    async def claim_runs(self, now: datetime, node: str, *, limit: int,
                         lease_seconds: float, user_id: str | None = None,
                         lease_from: datetime | None = None, ahead: float = 0.0) -> list[Run]:
        """Move up to `limit` queued runs due by now + `ahead` to running, owned by `node`,
        oldest first, never past a task's max_concurrent (tasks are locked, then their runs
        recounted); started_at is each run's not_before, or now if that has passed."""
        claimed = await self.claim_runs_with_heads(
            now, node, limit=limit, lease_seconds=lease_seconds, user_id=user_id,
            lease_from=lease_from, ahead=ahead)
        return claimed.runs

    async def claim_runs_with_heads(self, now: datetime, node: str, *, limit: int,
                                    lease_seconds: float, user_id: str | None = None,
                                    lease_from: datetime | None = None,
                                    ahead: float = 0.0, with_tasks: bool = False) -> Claimed:
        """claim_runs, with the heads of the claimed runs' tasks (and with `with_tasks` the
        tasks themselves) from the same round trip."""
        if limit <= 0:
            return Claimed([], {})
        stamp = self._time(now)
        due_by = self._time(now + timedelta(seconds=max(ahead, 0.0)), "ahead")
        lease_until = self._values.time(
            (lease_from or now) + timedelta(seconds=lease_seconds), "lease_from")
        rows, tasks = await self._claim(due_by, user_id, limit, node, lease_until, stamp,
                                        with_tasks)
        heads = {row["task_id"]: self._head(row["task_id"], row["task_updated_at"],
                                            row["task_has_children"])
                 for row in rows if row["task_updated_at"] is not None}
        return Claimed(sorted(self._runs(rows), key=_run_order), heads,
                       {task.id: task for task in tasks})

    async def _claim(self, due_by: Any, user_id: str | None, limit: int, node: str,
                     lease_until: Any, now: Any,
                     with_tasks: bool) -> tuple[Sequence[Row], list[Task]]:
        """Lock the claimable tasks, then start their runs (two statements, one
        transaction: the second counts running runs after the locks were taken). Each
        row also carries its task's updated_at and whether it has children; the tasks
        (when asked for) are read in the same transaction."""
        async with self._db.write() as tx:
            locked = await tx.fetch("lock_claimable_tasks", due_by, user_id, limit)
            if not locked:
                return [], []
            rows = await tx.fetch("claim_runs", due_by, user_id, limit, node, lease_until,
                                  self._values.ids([row["task_id"] for row in locked]), now)
            if not with_tasks or not rows:
                return rows, []
            ids = sorted({row["task_id"] for row in rows})
            return rows, self._tasks(await tx.fetch("get_tasks", self._values.ids(ids)))

    async def next_queued_at(self, *, user_id: str | None = None) -> datetime | None:
        """Earliest not_before among queued runs (the dispatcher's wake-up time)."""
        async with self._db.read() as tx:
            return self._values.time_value(await tx.fetchval("next_queued_at", user_id))

    def _finish_row(self, outcome: FinishedRun) -> tuple[Any, ...]:
        if outcome.state not in FINISHED_STATES:
            raise InvalidParams(f"run {outcome.run_id}: {outcome.state!s} is not a finished "
                                "state", field="state")
        return (outcome.run_id, str(outcome.state),
                self._time(outcome.finished_at, "finished_at"), outcome.exit_code,
                outcome.error, outcome.end_reason, self._values.json(outcome.result))

    async def finish_runs(self, outcomes: Sequence[FinishedRun]) -> list[Run]:
        """Record outcomes of running runs; a run no longer running is left as it is and
        not returned. The result keeps the order of `outcomes`."""
        if not outcomes:
            return []
        rows = [self._finish_row(outcome) for outcome in outcomes]
        async with self._db.statement() as tx:
            updated = await tx.fetch("finish_runs", *self._values.rows(rows, FINISH_WIDTH))
        by_id = {run.id: run for run in self._runs(updated)}
        return [by_id.pop(o.run_id) for o in outcomes if o.run_id in by_id]

    async def cancel_run(self, run_id: str, now: datetime, *,
                         reason: str = "cancelled") -> Run:
        """A queued run becomes cancelled at once; a running one gets cancel_requested set
        (its dispatcher stops it). NotFound if absent; Conflict if already finished."""
        async with self._db.write() as tx:
            row = await tx.fetchrow("cancel_run", run_id, self._time(now), reason)
            if row is None:
                await self._explain_missed_cancel(tx, run_id)
        assert row is not None
        return self._run(row)

    async def _explain_missed_cancel(self, tx: Tx, run_id: str) -> None:
        row = await tx.fetchrow("get_run", run_id)
        if row is None:
            raise NotFound(f"run {run_id} not found")
        raise Conflict(f"run {run_id} already finished ({row['state']})")

    async def heartbeat_runs(self, node: str, run_ids: Sequence[str], now: datetime,
                             lease_until: datetime) -> list[Run]:
        """Renew the leases of `node`'s running runs; return those with cancel_requested."""
        self._time(now)
        if not run_ids:
            return []
        async with self._db.statement() as tx:
            rows = await tx.fetch("heartbeat_runs", node, self._values.ids(run_ids),
                                  self._time(lease_until, "lease_until"))
        return [run for run in self._runs(rows) if run.cancel_requested is not None]

    async def crash_runs_of_node(self, node: str, now: datetime) -> list[Run]:
        """Mark every running run owned by `node` crashed (end_reason node_lost)."""
        async with self._db.statement() as tx:
            return self._runs(await tx.fetch("crash_runs_of_node", node, self._time(now)))

    async def crash_expired_runs(self, now: datetime, expired_before: datetime) -> list[Run]:
        """Mark running runs whose lease ended before `expired_before` crashed
        (end_reason lease_expired)."""
        async with self._db.statement() as tx:
            return self._runs(await tx.fetch("crash_expired_runs", self._time(now),
                                             self._time(expired_before, "expired_before")))

    async def get_run(self, run_id: str) -> Run:
        """Return a run. NotFound if absent."""
        async with self._db.lookup() as tx:
            row = await tx.fetchrow("get_run", run_id)
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return self._run(row)

    async def list_runs(self, flt: RunFilter, *, limit: int = 100,
                        offset: int = 0) -> list[Run]:
        """Runs matching `flt`, newest first (queued_at, id)."""
        async with self._db.read() as tx:
            rows = await tx.fetch("list_runs", flt.task_id, flt.user_id, _value(flt.state),
                                  _value(flt.trigger), flt.parent_run_id, flt.node,
                                  limit, offset)
        return self._runs(rows)

    async def count_runs_by_state(self) -> dict[RunState, int]:
        """How many runs are in each state (every state present, zero included)."""
        async with self._db.read() as tx:
            rows = await tx.fetch("count_runs_by_state")
        counts = dict.fromkeys(RunState, 0)
        counts.update({RunState(row["state"]): int(row["n"]) for row in rows})
        return counts

    async def insert_runs(self, runs: Sequence[Run]) -> None:
        """Insert runs as given (retries, tree children). Conflict if an id exists."""
        async with self._db.statement(
                unique=Conflict("a run with this id already exists")) as tx:
            await insert_runs(tx, self._values, runs)

    # logs --------------------------------------------------------------------------------

    async def append_logs(self, chunks: Sequence[LogChunk]) -> None:
        """Store (already masked) log chunks. NotFound if the run is unknown."""
        if not chunks:
            return
        rows = [params(LOG_CHUNK, chunk, self._values) for chunk in chunks]
        async with self._db.write(unique=Conflict("this log chunk was already stored"),
                                  foreign_key=NotFound("run not found", field="run_id")) as tx:
            await tx.executemany("insert_log", rows)

    async def read_logs(self, run_id: str, *, after_seq: int = -1,
                        limit: int = 1000) -> list[LogChunk]:
        """A run's chunks with seq > after_seq, in order."""
        async with self._db.read() as tx:
            rows = await tx.fetch("read_logs", run_id, after_seq, limit)
        return from_rows(LOG_CHUNK, rows, self._values)

    async def delete_logs_upto(self, run_id: str, seq: int) -> None:
        """Drop a run's chunks with seq <= `seq` (log cap, drop_old)."""
        async with self._db.statement() as tx:
            await tx.execute("delete_logs_upto", run_id, seq)

    # ledger ------------------------------------------------------------------------------

    async def record_occurrences(self, occurrences: Sequence[Occurrence]) -> int:
        """Insert ledger rows, ignoring slots already recorded; returns how many were new."""
        async with self._db.write() as tx:
            return len(await insert_occurrences(tx, self._values, occurrences))

    async def list_occurrences(self, flt: OccurrenceFilter, *, limit: int = 100,
                               offset: int = 0) -> list[Occurrence]:
        """Ledger rows, newest slot first."""
        since = None if flt.since is None else self._time(flt.since, "since")
        until = None if flt.until is None else self._time(flt.until, "until")
        async with self._db.read() as tx:
            rows = await tx.fetch("list_occurrences", flt.task_id, _value(flt.outcome),
                                  since, until, limit, offset)
        return from_rows(OCCURRENCE, rows, self._values)

    # nodes -------------------------------------------------------------------------------

    async def upsert_node(self, node: Node) -> None:
        """Register or refresh a node."""
        async with self._db.write() as tx:
            await tx.execute("upsert_node", *params(NODE, node, self._values))

    async def list_nodes(self) -> list[Node]:
        """Every registered node."""
        async with self._db.read() as tx:
            rows = await tx.fetch("list_nodes")
        return from_rows(NODE, rows, self._values)

    # webhook replay and rate limits ------------------------------------------------------

    async def remember_signature(self, digest: str, now: datetime,
                                 expires_at: datetime) -> bool:
        """True if `digest` was not seen before (and is now remembered until expires_at);
        expired digests are forgotten (an expired one counts as unseen at once; the rows
        themselves are deleted at most once per SIGNATURE_PURGE_SECONDS, not on every call).

        Concurrent calls share one statement; of several carrying one digest, only the first
        may get True."""
        self._time(now)
        request = SignatureRequest(digest, now, self._time(expires_at, "expires_at"))
        return await self._signatures.submit(request)

    async def _remember_alone(self, request: SignatureRequest) -> bool:
        [new] = await self._remember_batch([request])
        if isinstance(new, Exception):
            raise new
        return new

    async def _remember_batch(self, requests: Sequence[SignatureRequest]) -> list[bool]:
        """One upsert for the batch. Its instant is the earliest of its calls: a digest
        counts as expired only if it was for every one of them (never more replays let
        through than calls one by one would)."""
        now = min(request.now for request in requests)
        stamp = self._time(now)
        first: dict[str, SignatureRequest] = {}
        for request in requests:
            first.setdefault(request.digest, request)
        rows = [(request.digest, request.expires_at) for request in first.values()]
        purge = self._signatures_purged_at is None or \
            (now - self._signatures_purged_at).total_seconds() >= SIGNATURE_PURGE_SECONDS \
            or now < self._signatures_purged_at
        async with self._db.write() as tx:
            if purge:
                await tx.execute("purge_signatures", stamp)
            new = {str(row[0]) for row in await tx.fetch(
                "remember_signatures", *self._values.rows(rows, SIGNATURE_WIDTH), stamp)}
        if purge:
            self._signatures_purged_at = now
        return [request.digest in new and first[request.digest] is request
                for request in requests]

    async def rate_limit_hit(self, key: str, window_start: datetime, now: datetime) -> int:
        """Count one request for `key` in the window starting at window_start; return the
        window's count including this one (older windows of `key` are dropped)."""
        self._time(now)
        start = self._time(window_start, "window_start")
        async with self._db.write() as tx:
            await tx.execute("purge_rate_windows", key, start)
            return int(await tx.fetchval("rate_limit_hit", key, start))
