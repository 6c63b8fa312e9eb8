"""The dispatcher end to end with real processes: retries, timeouts, cancels, overlap,
environment, masking, and faults that must end as failed runs, never as a dead loop."""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from apflow.domain.enums import (
    OnOverlap,
    RetryBackoff,
    RunState,
    ScheduleType,
    TaskStatus,
    Trigger,
)
from apflow.domain.errors import Conflict
from apflow.domain.models import Run
from apflow.engine.engine import Engine
from apflow.store import RunFilter, Store
from apflow.store.base import TaskOutcome
from tests.engine.conftest import (
    EngineFactory,
    add_schedule,
    add_task,
    finished,
    now,
    seconds,
    until,
)


async def run_once(engine: Engine, task_id: str, **variables: str) -> Run:
    run = await engine.trigger(task_id, Trigger.MANUAL, variables=variables,
                               triggered_by="tester")
    return await finished(engine, run.id)


async def log_text(store: Store, run_id: str) -> str:
    return "".join(chunk.text for chunk in await store.read_logs(run_id))


async def runs_of(store: Store, task_id: str) -> list[Run]:
    return sorted(await store.list_runs(RunFilter(task_id=task_id)),
                  key=lambda run: (run.queued_at, run.attempt))


def alive(pid: int) -> bool:
    """True if `pid` is a live process (a zombie waiting for its reaper counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def started(store: Store, run_id: str) -> Run | None:
    run = await store.get_run(run_id)
    return run if run.state is RunState.RUNNING else None


# outcomes and retries --------------------------------------------------------------------------


async def test_a_manual_run_succeeds_and_the_task_is_completed(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="echo ok")
    run = await run_once(engine, "t1")
    assert (run.state, run.trigger, run.triggered_by, run.exit_code, run.attempt) == (
        RunState.SUCCEEDED, Trigger.MANUAL, "tester", 0, 1)
    assert run.started_at is not None and run.finished_at is not None
    assert run.scheduled_for is None
    task = await store.get_task("t1")
    assert (task.status, task.error) == (TaskStatus.COMPLETED, None)


async def test_a_short_run_writes_its_task_status_once(
        store: Store, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    await add_task(store, "t1", executor={"type": "python", "name": "noop"})  # well under 50 ms
    written: list[TaskStatus] = []
    write = store.set_task_outcomes

    async def recorded(outcomes: list[TaskOutcome], at: datetime) -> None:
        written.extend(o.status for o in outcomes if o.task_id == "t1")
        await write(outcomes, at)

    monkeypatch.setattr(store, "set_task_outcomes", recorded)
    run = await run_once(engine, "t1")
    assert run.state is RunState.SUCCEEDED
    assert written == [TaskStatus.COMPLETED]  # its in_progress was replaced, not written


async def test_failures_are_retried_with_exponential_backoff(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="echo attempt $APFLOW_ATTEMPT; exit 3", retry_limit=2,
                   retry_delay_seconds=0.2, retry_backoff=RetryBackoff.EXPONENTIAL)
    first = await run_once(engine, "t1")
    runs = await until(lambda: _finished_count(store, "t1", 3))
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert [r.trigger for r in runs] == [Trigger.MANUAL, Trigger.RETRY, Trigger.RETRY]
    assert [r.retry_of for r in runs] == [None, first.id, runs[1].id]
    assert {(r.state, r.exit_code) for r in runs} == {(RunState.FAILED, 3)}
    assert "3" in (runs[0].error or "")
    gaps = [seconds(b.started_at - a.finished_at)  # type: ignore[operator]
            for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.19 and gaps[1] >= 0.39, gaps
    assert "attempt 3" in await log_text(store, runs[2].id)
    await asyncio.sleep(0.5)
    assert len(await runs_of(store, "t1")) == 3  # retry_limit=2: no fourth attempt
    assert (await store.get_task("t1")).status is TaskStatus.FAILED


async def _finished_count(store: Store, task_id: str, count: int) -> list[Run]:
    runs = await runs_of(store, task_id)
    return runs if len(runs) == count and all(r.state.finished for r in runs) else []


async def test_a_timeout_kills_the_whole_process_group(
        store: Store, engine: Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    await add_task(store, "t1", command=f"sleep 30 & echo $! > {pidfile}; wait",
                   timeout_seconds=0.5, graceful_stop_seconds=0.5)
    run = await run_once(engine, "t1")
    assert (run.state, run.end_reason) == (RunState.TIMED_OUT, "timeout")
    assert "timed out" in (run.error or "")
    assert 0.4 < seconds(run.finished_at - run.started_at) < 3  # type: ignore[operator]
    child = int(pidfile.read_text())
    await until(lambda: _dead(child), seconds=2)
    assert "timed out" in await log_text(store, run.id)


async def _dead(pid: int) -> bool:
    return not alive(pid)


async def test_a_process_ignoring_sigterm_is_killed_after_the_grace(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="trap '' TERM; sleep 30", timeout_seconds=0.3,
                   graceful_stop_seconds=0.5)
    run = await run_once(engine, "t1")
    assert run.state is RunState.TIMED_OUT
    assert 0.7 < seconds(run.finished_at - run.started_at) < 4  # type: ignore[operator]


async def test_the_scheduler_timeout_applies_when_the_task_has_none(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(default_timeout=0.3)
    await add_task(store, "t1", command="sleep 30", graceful_stop_seconds=0.2)
    assert (await run_once(engine, "t1")).state is RunState.TIMED_OUT


# cancels ----------------------------------------------------------------------------------------


async def test_cancel_stops_a_running_run_at_once_and_a_queued_one_never_starts(
        store: Store, engine: Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "shell.pid"
    await add_task(store, "t1", command=f"echo $$ > {pidfile}; sleep 30",
                   graceful_stop_seconds=1.0)
    running = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    queued = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: started(store, running.id))
    cancelled_queued = await engine.cancel(queued.id)
    assert (cancelled_queued.state, cancelled_queued.started_at) == (RunState.CANCELLED, None)
    await until(lambda: _exists(pidfile))
    began = asyncio.get_running_loop().time()
    cancelled = await engine.cancel(running.id)
    assert asyncio.get_running_loop().time() - began < 1.0
    assert (cancelled.state, cancelled.end_reason) == (RunState.CANCELLED, "cancelled")
    assert not alive(int(pidfile.read_text()))
    assert (await store.get_task("t1")).status is TaskStatus.CANCELLED
    with pytest.raises(Conflict):
        await engine.cancel(running.id)


async def _exists(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def test_cancelling_a_failing_run_ends_its_retry_chain(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="sleep 30; exit 1", retry_limit=3,
                   retry_delay_seconds=0, graceful_stop_seconds=0.5)
    run = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: started(store, run.id))
    assert (await engine.cancel(run.id)).state is RunState.CANCELLED
    await asyncio.sleep(0.5)
    assert [r.id for r in await runs_of(store, "t1")] == [run.id]


async def test_cancelling_a_queued_retry_ends_the_chain(store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="exit 1", retry_limit=3, retry_delay_seconds=30)
    first = await run_once(engine, "t1")
    retry = (await until(lambda: _queued(store, "t1")))[0]
    assert (retry.retry_of, retry.attempt) == (first.id, 2)
    assert seconds(retry.not_before - first.finished_at) >= 29  # type: ignore[operator]
    assert (await engine.cancel(retry.id)).state is RunState.CANCELLED
    await asyncio.sleep(0.3)
    assert len(await runs_of(store, "t1")) == 2


async def _queued(store: Store, task_id: str) -> list[Run]:
    return [r for r in await runs_of(store, task_id) if r.state is RunState.QUEUED]


# overlap ----------------------------------------------------------------------------------------


async def test_skip_records_an_overlapping_run_as_skipped(store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="sleep 30", on_overlap=OnOverlap.SKIP,
                   graceful_stop_seconds=0.2)
    first = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    second = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    assert (second.state, second.end_reason) == (RunState.SKIPPED, "overlap")
    assert (await store.get_run(second.id)).state is RunState.SKIPPED
    await until(lambda: started(store, first.id))


async def test_queue_waits_for_the_running_run_and_refuses_past_queue_max(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="sleep 0.3", on_overlap=OnOverlap.QUEUE, queue_max=1)
    first = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    second = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    third = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    assert (third.state, third.end_reason) == (RunState.SKIPPED, "queue_full")
    one, two = await finished(engine, first.id), await finished(engine, second.id)
    assert (one.state, two.state) == (RunState.SUCCEEDED, RunState.SUCCEEDED)
    assert two.started_at >= one.finished_at  # type: ignore[operator]
    # The queued run starts as soon as the first is recorded, not at a poll.
    assert seconds(two.started_at - one.finished_at) < 0.5  # type: ignore[operator]


async def test_terminate_stops_the_running_run_and_starts_the_new_one(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="sleep 30", on_overlap=OnOverlap.TERMINATE,
                   graceful_stop_seconds=0.5)
    old = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: started(store, old.id))
    new = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    assert new.state is RunState.QUEUED
    stopped = await finished(engine, old.id, seconds=3)
    assert (stopped.state, stopped.end_reason) == (RunState.CANCELLED, "terminated")
    await until(lambda: started(store, new.id), seconds=3)


async def test_forbid_refuses_a_manual_run_and_skips_a_slot_while_busy(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="sleep 30", on_overlap=OnOverlap.FORBID,
                   graceful_stop_seconds=0.2)
    first = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    with pytest.raises(Conflict) as refused:
        await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    assert refused.value.rpc_code == -32009
    task = await store.get_task("t1")
    await store.update_task(replace(task, schedule_type=ScheduleType.ONCE,
                                    schedule_expression=now().isoformat(),
                                    schedule_enabled=True, next_run_at=now()))
    engine.wake()
    skipped = await until(lambda: _skipped(store, "t1"))
    assert (skipped.end_reason, skipped.trigger) == ("overlap", Trigger.SCHEDULE)
    assert (await store.get_run(first.id)).state is RunState.RUNNING


async def _skipped(store: Store, task_id: str) -> Run | None:
    runs = [r for r in await runs_of(store, task_id) if r.state is RunState.SKIPPED]
    return runs[0] if runs else None


# environment and masking --------------------------------------------------------------------


async def test_run_variables_and_apflow_variables_reach_the_process_apflow_winning(
        store: Store, engine: Engine) -> None:
    await add_task(store, "t1", env={"GREETING": "from-task", "MODE": "task",
                                     "APFLOW_RUN_ID": "spoofed"},
                   command='echo "$GREETING|$MODE|$APFLOW_RUN_ID|$APFLOW_TASK_ID|'
                           '$APFLOW_TRIGGER|$APFLOW_ATTEMPT|$APFLOW_SCHEDULED_FOR"')
    run = await engine.trigger("t1", Trigger.WEBHOOK, variables={"MODE": "run-time",
                                                                  "APFLOW_TASK_ID": "spoofed"},
                               triggered_by="hook")
    run = await finished(engine, run.id)
    line = (await log_text(store, run.id)).strip().splitlines()[0]
    greeting, mode, run_id, task_id, trigger, attempt, scheduled = line.split("|")
    assert (greeting, mode, run_id, task_id, trigger, attempt) == (
        "from-task", "run-time", run.id, "t1", "webhook", "1")
    assert scheduled == run.queued_at.isoformat()


async def test_a_scheduled_run_gets_its_slot_as_apflow_scheduled_for(
        store: Store, engine: Engine) -> None:
    slot = now()
    await add_schedule(store, "t1", slot, command='echo "$APFLOW_SCHEDULED_FOR"')
    engine.wake()
    (run,) = await until(lambda: runs_of(store, "t1"))
    run = await finished(engine, run.id)
    assert (await log_text(store, run.id)).strip() == slot.isoformat()


async def test_secret_values_are_masked_in_logs_and_errors(
        store: Store, engine: Engine) -> None:
    secret = "s3cr3t-Value-42"
    await add_task(store, "t1", env={"API_TOKEN": secret},
                   command='echo "token is $API_TOKEN"; echo "$API_TOKEN" >&2; '
                           'echo "Authorization: Bearer abc.def.ghi"')
    run = await run_once(engine, "t1")
    text = await log_text(store, run.id)
    assert secret not in text and "abc.def.ghi" not in text
    assert "token is ****" in text
    await add_task(store, "t2", env={"API_TOKEN": secret},
                   executor={"type": "python", "name": "raise_env"},
                   inputs={"key": "API_TOKEN"})
    failed = await run_once(engine, "t2")
    assert failed.state is RunState.FAILED
    assert secret not in (failed.error or "") and "****" in (failed.error or "")


# faults end as failed runs ---------------------------------------------------------------------


@pytest.mark.parametrize(("executor", "state", "error_part"), [
    ({"type": "command", "command": "definitely-not-a-command-xyz"}, RunState.FAILED, "127"),
    ({"type": "python", "name": "raise_env"}, RunState.FAILED, "KeyError"),
    ({"type": "python", "name": "not-registered"}, RunState.FAILED, "not-registered"),
    ({"type": "teleport"}, RunState.FAILED, "teleport"),
    ({"type": "http", "method": "GET", "url": "http://127.0.0.1:9/"}, RunState.FAILED, ""),
    ({"type": "python", "name": "hang"}, RunState.TIMED_OUT, "timed out"),
])
async def test_a_faulty_executor_ends_as_a_failed_run_and_the_engine_carries_on(
        store: Store, engine: Engine, executor: dict[str, object], state: RunState,
        error_part: str) -> None:
    await add_task(store, "bad", executor=executor, timeout_seconds=0.3,
                   graceful_stop_seconds=0.2)
    run = await run_once(engine, "bad")
    assert run.state is state
    assert run.error and error_part in run.error and len(run.error) <= 500
    await add_task(store, "good", command="echo fine")
    assert (await run_once(engine, "good")).state is RunState.SUCCEEDED
    assert engine.status()["loops"] == {"scheduler": True, "dispatcher": True,
                                        "heartbeat": True, "retention": True}


async def test_a_deleted_task_fails_its_queued_run(store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="sleep 30", graceful_stop_seconds=0.2)
    busy = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    waiting = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    await until(lambda: started(store, busy.id))
    await store.delete_tasks(["t1"])
    await engine.cancel(busy.id)
    run = await finished(engine, waiting.id)
    assert run.state is RunState.FAILED and "no longer exists" in (run.error or "")


# logs --------------------------------------------------------------------------------------------


async def test_follow_logs_returns_output_as_it_arrives(store: Store, engine: Engine) -> None:
    await add_task(store, "t1", command="echo one; sleep 0.6; echo two")
    run = await engine.trigger("t1", Trigger.MANUAL, triggered_by="tester")
    began = asyncio.get_running_loop().time()
    first = await engine.follow_logs(run.id, -1, 5)
    assert "one" in "".join(c.text for c in first) and "two" not in "".join(
        c.text for c in first)
    assert asyncio.get_running_loop().time() - began < 0.55
    rest = await engine.follow_logs(run.id, first[-1].seq, 5)
    assert "two" in "".join(c.text for c in rest)
    await finished(engine, run.id)
    assert await engine.follow_logs(run.id, rest[-1].seq, 0.2) == []


async def test_kill_task_policy_stops_a_run_whose_log_is_full(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(logs_max_size=4096, logs_on_full="kill_task")
    await add_task(store, "t1", command="while true; do echo xxxxxxxxxxxxxxxxxxxxxxxx; done",
                   graceful_stop_seconds=0.5)
    run = await run_once(engine, "t1")
    assert (run.state, run.end_reason) == (RunState.FAILED, "log_full")
    stored = sum(len(c.text.encode()) for c in await store.read_logs(run.id, limit=10_000))
    assert stored <= 4096 + 512  # the cap, plus apflow's own notice


async def test_drop_new_keeps_the_beginning_of_a_long_log(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(logs_max_size=2048, logs_on_full="drop_new")
    await add_task(store, "t1", command="echo FIRST; for i in $(seq 2000); do echo line $i; "
                                        "done; echo LAST")
    run = await run_once(engine, "t1")
    assert run.state is RunState.SUCCEEDED
    text = await log_text(store, run.id)
    assert "FIRST" in text and "LAST" not in text
    assert len(text.encode()) <= 2048 + 512


async def test_drop_old_keeps_the_end_of_a_long_log_within_the_cap(
        store: Store, make_engine: EngineFactory) -> None:
    engine = await make_engine(logs_max_size=2048, logs_on_full="drop_old")
    await add_task(store, "t1", command="echo FIRST; for i in $(seq 2000); do echo line $i; "
                                        "done; echo LAST")
    run = await run_once(engine, "t1")
    assert run.state is RunState.SUCCEEDED
    text = await log_text(store, run.id)
    assert "LAST" in text and "FIRST" not in text
    assert len(text.encode()) <= 2048 + 512
