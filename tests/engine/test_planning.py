"""The planner: what becomes of due slots and run requests, at fixed instants (no sleeping)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from apflow.domain.enums import (
    CatchUp,
    OccurrenceOutcome,
    OnOverlap,
    RetryBackoff,
    RunState,
    ScheduleType,
    Trigger,
)
from apflow.domain.errors import Conflict, InvalidParams
from apflow.domain.models import Run, Task
from apflow.domain.plans import Plan, TaskLoad
from apflow.engine.planning import (
    MAX_RETRY_DELAY_SECONDS,
    MAX_SLOTS_PER_PLAN,
    ON_TIME_TOLERANCE,
    plan_due,
    plan_manual,
    plan_retry,
    retry_delay,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
IDLE = TaskLoad(queued=0, running=0)
BUSY = TaskLoad(queued=0, running=1)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def every_minute(**fields: object) -> Task:
    """An interval task (60 s) anchored at T0 - 1 min, so its slots are whole minutes."""
    base = Task(id="t1", name="job", created_at=T0 - minutes(60), updated_at=T0 - minutes(60),
                schedule_type=ScheduleType.INTERVAL, schedule_expression="60",
                schedule_enabled=True, schedule_anchor_at=T0 - minutes(1), next_run_at=T0,
                executor={"type": "command", "command": "true"})
    return replace(base, **fields)  # type: ignore[arg-type]


def ids() -> itertools.count[int]:
    return itertools.count(1)


def plan(task: Task, now: datetime, load: TaskLoad = IDLE) -> Plan:
    counter = ids()
    return plan_due(task, load, now, lambda: f"r{next(counter)}")


def outcomes(p: Plan) -> list[tuple[datetime, OccurrenceOutcome]]:
    return [(o.scheduled_for, o.outcome) for o in p.occurrences]


# on time --------------------------------------------------------------------------------------


def test_a_slot_due_now_fires_one_scheduled_run_and_advances_from_the_slot() -> None:
    p = plan(every_minute(), T0 + timedelta(milliseconds=3))
    assert outcomes(p) == [(T0, OccurrenceOutcome.FIRED)]
    (run,) = p.runs
    assert (run.state, run.trigger, run.scheduled_for, run.not_before) == (
        RunState.QUEUED, Trigger.SCHEDULE, T0, T0)
    assert p.occurrences[0].run_id == run.id
    assert p.advance is not None
    assert p.advance.next_run_at == T0 + minutes(1)  # from the slot, not from now
    assert (p.advance.run_count, p.advance.last_run_at, p.advance.schedule_enabled) == (
        1, T0, True)


def test_a_task_not_yet_due_gets_an_empty_plan() -> None:
    p = plan(every_minute(), T0 - timedelta(milliseconds=1))
    assert p == Plan(task_id="t1")


def test_a_disabled_schedule_gets_an_empty_plan() -> None:
    assert plan(every_minute(schedule_enabled=False), T0 + minutes(5)) == Plan(task_id="t1")


def test_the_run_belongs_to_the_task_owner_and_is_triggered_by_the_system() -> None:
    (run,) = plan(every_minute(user_id="alice"), T0).runs
    assert (run.user_id, run.triggered_by, run.attempt) == ("alice", "system", 1)


# catch_up -------------------------------------------------------------------------------------


def test_latest_fires_the_newest_missed_slot_and_coalesces_the_older_ones() -> None:
    p = plan(every_minute(catch_up=CatchUp.LATEST), T0 + minutes(3) + timedelta(seconds=10))
    assert outcomes(p) == [
        (T0, OccurrenceOutcome.COALESCED),
        (T0 + minutes(1), OccurrenceOutcome.COALESCED),
        (T0 + minutes(2), OccurrenceOutcome.COALESCED),
        (T0 + minutes(3), OccurrenceOutcome.FIRED),
    ]
    (run,) = p.runs
    assert (run.trigger, run.scheduled_for) == (Trigger.CATCH_UP, T0 + minutes(3))
    assert p.advance is not None
    assert p.advance.next_run_at == T0 + minutes(4)
    assert p.advance.run_count == 1


def test_latest_labels_a_single_late_slot_catch_up() -> None:
    late = T0 + ON_TIME_TOLERANCE + timedelta(seconds=1)
    task = every_minute(schedule_type=ScheduleType.DAILY, schedule_expression="09:00")
    (run,) = plan(task, late).runs
    assert run.trigger is Trigger.CATCH_UP


def test_all_fires_every_missed_slot_as_catch_up_and_the_on_time_one_as_schedule() -> None:
    p = plan(every_minute(catch_up=CatchUp.ALL), T0 + minutes(3) + timedelta(seconds=1))
    assert [o.outcome for o in p.occurrences] == [OccurrenceOutcome.FIRED] * 4
    assert [r.trigger for r in p.runs] == [Trigger.CATCH_UP] * 3 + [Trigger.SCHEDULE]
    assert [r.scheduled_for for r in p.runs] == [T0 + minutes(i) for i in range(4)]
    assert p.advance is not None and p.advance.run_count == 4


def test_all_stops_at_max_catch_up_runs_and_ledgers_older_slots_missed() -> None:
    task = every_minute(catch_up=CatchUp.ALL, max_catch_up_runs=2)
    p = plan(task, T0 + minutes(4) + timedelta(seconds=30))  # slot T0+4 is late
    assert outcomes(p) == [
        (T0, OccurrenceOutcome.MISSED),
        (T0 + minutes(1), OccurrenceOutcome.MISSED),
        (T0 + minutes(2), OccurrenceOutcome.MISSED),
        (T0 + minutes(3), OccurrenceOutcome.FIRED),
        (T0 + minutes(4), OccurrenceOutcome.FIRED),
    ]
    assert [r.trigger for r in p.runs] == [Trigger.CATCH_UP, Trigger.CATCH_UP]


def test_all_with_max_catch_up_runs_zero_still_fires_the_on_time_slot() -> None:
    task = every_minute(catch_up=CatchUp.ALL, max_catch_up_runs=0)
    p = plan(task, T0 + minutes(2) + timedelta(seconds=1))
    assert outcomes(p)[-1] == (T0 + minutes(2), OccurrenceOutcome.FIRED)
    assert [o.outcome for o in p.occurrences[:-1]] == [OccurrenceOutcome.MISSED] * 2
    assert [r.trigger for r in p.runs] == [Trigger.SCHEDULE]


def test_skip_ledgers_missed_slots_and_fires_only_the_on_time_one() -> None:
    p = plan(every_minute(catch_up=CatchUp.SKIP), T0 + minutes(2) + timedelta(seconds=1))
    assert outcomes(p) == [
        (T0, OccurrenceOutcome.MISSED),
        (T0 + minutes(1), OccurrenceOutcome.MISSED),
        (T0 + minutes(2), OccurrenceOutcome.FIRED),
    ]
    assert [r.trigger for r in p.runs] == [Trigger.SCHEDULE]


def test_skip_fires_nothing_when_even_the_newest_slot_is_late() -> None:
    p = plan(every_minute(catch_up=CatchUp.SKIP), T0 + minutes(2) + timedelta(seconds=30))
    assert {o.outcome for o in p.occurrences} == {OccurrenceOutcome.MISSED}
    assert p.runs == ()
    assert p.advance is not None
    assert p.advance.next_run_at == T0 + minutes(3)
    assert p.advance.run_count == 0


def test_a_long_backlog_is_ledgered_in_bounded_chunks_and_the_task_stays_due() -> None:
    task = every_minute(schedule_expression="1", schedule_anchor_at=T0 - timedelta(seconds=1))
    now = T0 + timedelta(seconds=5 * MAX_SLOTS_PER_PLAN)
    p = plan(task, now)
    assert len(p.occurrences) == MAX_SLOTS_PER_PLAN
    assert {o.outcome for o in p.occurrences} == {OccurrenceOutcome.COALESCED}
    assert p.runs == ()
    assert p.advance is not None and p.advance.next_run_at is not None
    assert p.advance.next_run_at <= now and p.advance.schedule_enabled
    # Planning again from where it stopped eventually fires the newest slot.
    while p.runs == ():
        task = replace(task, next_run_at=p.advance.next_run_at)
        p = plan(task, now)
        assert p.advance is not None
    assert [r.scheduled_for for r in p.runs] == [now]


def test_catch_up_all_backlog_keeps_the_newest_slots_for_firing() -> None:
    task = every_minute(schedule_expression="1", schedule_anchor_at=T0 - timedelta(seconds=1),
                        catch_up=CatchUp.ALL, max_catch_up_runs=3)
    now = T0 + timedelta(seconds=2 * MAX_SLOTS_PER_PLAN)
    fired: list[datetime] = []
    p = plan(task, now)
    while p.advance is not None and p.advance.next_run_at is not None \
            and p.advance.next_run_at <= now:
        fired += [r.scheduled_for for r in p.runs if r.scheduled_for]
        task = replace(task, next_run_at=p.advance.next_run_at)
        p = plan(task, now)
    fired += [r.scheduled_for for r in p.runs if r.scheduled_for]
    assert fired == [now - timedelta(seconds=i) for i in (3, 2, 1, 0)]


# overlap -------------------------------------------------------------------------------------


def test_queue_queues_behind_a_running_run() -> None:
    p = plan(every_minute(on_overlap=OnOverlap.QUEUE), T0, BUSY)
    assert [r.state for r in p.runs] == [RunState.QUEUED]
    assert outcomes(p) == [(T0, OccurrenceOutcome.FIRED)]


def test_queue_past_queue_max_records_a_skipped_run_with_queue_full() -> None:
    task = every_minute(on_overlap=OnOverlap.QUEUE, queue_max=2)
    p = plan(task, T0, TaskLoad(queued=2, running=1))
    (run,) = p.runs
    assert (run.state, run.end_reason, run.finished_at) == (RunState.SKIPPED, "queue_full", T0)
    assert outcomes(p) == [(T0, OccurrenceOutcome.QUEUE_FULL)]
    assert p.occurrences[0].run_id == run.id
    assert p.advance is not None and p.advance.run_count == 0  # a refused slot is no run


def test_queue_max_counts_runs_planned_in_the_same_catch_up() -> None:
    task = every_minute(on_overlap=OnOverlap.QUEUE, queue_max=1, catch_up=CatchUp.ALL)
    p = plan(task, T0 + minutes(2) + timedelta(seconds=1), BUSY)
    assert [o.outcome for o in p.occurrences] == [
        OccurrenceOutcome.FIRED, OccurrenceOutcome.QUEUE_FULL, OccurrenceOutcome.QUEUE_FULL]


def test_skip_records_a_skipped_run_with_overlap_while_one_is_active() -> None:
    p = plan(every_minute(on_overlap=OnOverlap.SKIP), T0, TaskLoad(queued=1, running=0))
    (run,) = p.runs
    assert (run.state, run.end_reason) == (RunState.SKIPPED, "overlap")
    assert outcomes(p) == [(T0, OccurrenceOutcome.SKIPPED_OVERLAP)]


def test_skip_fires_when_max_concurrent_leaves_room() -> None:
    p = plan(every_minute(on_overlap=OnOverlap.SKIP, max_concurrent=2), T0, BUSY)
    assert [r.state for r in p.runs] == [RunState.QUEUED]


def test_forbid_skips_a_scheduled_slot_while_busy() -> None:
    p = plan(every_minute(on_overlap=OnOverlap.FORBID), T0, BUSY)
    assert outcomes(p) == [(T0, OccurrenceOutcome.SKIPPED_OVERLAP)]
    assert p.runs[0].end_reason == "overlap"


def test_terminate_queues_the_new_run_and_asks_the_running_one_to_stop() -> None:
    p = plan(every_minute(on_overlap=OnOverlap.TERMINATE), T0, BUSY)
    assert [r.state for r in p.runs] == [RunState.QUEUED]
    assert p.terminate_running


def test_terminate_leaves_an_idle_task_alone() -> None:
    assert not plan(every_minute(on_overlap=OnOverlap.TERMINATE), T0).terminate_running


# end of a schedule ---------------------------------------------------------------------------


def test_reaching_max_runs_disables_the_schedule_at_planning_time() -> None:
    p = plan(every_minute(max_runs=3, run_count=2), T0)
    assert p.advance is not None
    assert (p.advance.run_count, p.advance.schedule_enabled, p.advance.next_run_at) == (
        3, False, None)


def test_slots_past_max_runs_in_one_catch_up_are_missed() -> None:
    task = every_minute(max_runs=2, catch_up=CatchUp.ALL)
    p = plan(task, T0 + minutes(3) + timedelta(seconds=1))
    assert [o.outcome for o in p.occurrences] == [OccurrenceOutcome.FIRED] * 2 + [
        OccurrenceOutcome.MISSED] * 2
    assert p.advance is not None and not p.advance.schedule_enabled


def test_skipped_overlaps_do_not_count_towards_max_runs() -> None:
    p = plan(every_minute(max_runs=1, on_overlap=OnOverlap.SKIP), T0, BUSY)
    assert p.advance is not None
    assert (p.advance.run_count, p.advance.schedule_enabled) == (0, True)


def test_the_last_slot_before_end_at_disables_the_schedule() -> None:
    task = every_minute(schedule_end_at=T0 + timedelta(seconds=30))
    p = plan(task, T0)
    assert p.advance is not None
    assert (p.advance.next_run_at, p.advance.schedule_enabled) == (None, False)
    assert len(p.runs) == 1


def test_a_slot_equal_to_end_at_still_fires() -> None:
    p = plan(every_minute(schedule_end_at=T0), T0)
    assert len(p.runs) == 1


def test_a_pending_slot_past_a_moved_end_at_is_not_fired_and_disables_the_schedule() -> None:
    p = plan(every_minute(schedule_end_at=T0 - minutes(5)), T0)
    assert (p.runs, p.occurrences) == ((), ())
    assert p.advance is not None
    assert (p.advance.next_run_at, p.advance.schedule_enabled) == (None, False)


def test_a_once_schedule_disables_itself_after_its_slot() -> None:
    task = every_minute(schedule_type=ScheduleType.ONCE, schedule_expression=T0.isoformat())
    p = plan(task, T0 + timedelta(milliseconds=2))
    assert [r.trigger for r in p.runs] == [Trigger.SCHEDULE]
    assert p.advance is not None
    assert (p.advance.next_run_at, p.advance.schedule_enabled, p.advance.run_count) == (
        None, False, 1)


def test_a_once_schedule_missed_under_skip_disables_itself_without_a_run() -> None:
    task = every_minute(schedule_type=ScheduleType.ONCE, schedule_expression=T0.isoformat(),
                        catch_up=CatchUp.SKIP)
    p = plan(task, T0 + minutes(10))
    assert p.runs == () and outcomes(p) == [(T0, OccurrenceOutcome.MISSED)]
    assert p.advance is not None and not p.advance.schedule_enabled


# jitter and calendars -------------------------------------------------------------------------


def test_jitter_delays_the_start_but_not_the_slot() -> None:
    (run,) = plan(every_minute(jitter_seconds=30), T0).runs
    assert run.scheduled_for == T0
    assert T0 <= run.not_before < T0 + timedelta(seconds=30)
    (again,) = plan(every_minute(jitter_seconds=30), T0).runs
    assert again.not_before == run.not_before  # the same on every node


def test_daily_catch_up_across_a_dst_change_counts_calendar_days() -> None:
    # Europe/Berlin springs forward on 2026-03-29; the 09:00 slots stay at 09:00 local.
    task = every_minute(schedule_type=ScheduleType.DAILY, schedule_expression="09:00",
                        timezone="Europe/Berlin", catch_up=CatchUp.ALL,
                        next_run_at=datetime(2026, 3, 28, 8, 0, tzinfo=UTC))
    p = plan(task, datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
    assert [r.scheduled_for for r in p.runs] == [
        datetime(2026, 3, 28, 8, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 7, 0, tzinfo=UTC)]
    assert p.advance is not None
    assert p.advance.next_run_at == datetime(2026, 3, 31, 7, 0, tzinfo=UTC)


# manual runs ---------------------------------------------------------------------------------


def manual(task: Task, load: TaskLoad = IDLE, variables: dict[str, str] | None = None,
           trigger: Trigger = Trigger.MANUAL) -> Plan:
    return plan_manual(task, load, T0, trigger, variables, "alice", "m1")


def test_a_manual_run_is_queued_now_with_its_variables_and_no_ledger_row() -> None:
    p = manual(every_minute(), variables={"GREETING": "hi"})
    (run,) = p.runs
    assert (run.id, run.state, run.trigger, run.triggered_by) == (
        "m1", RunState.QUEUED, Trigger.MANUAL, "alice")
    assert (run.not_before, run.scheduled_for, dict(run.variables)) == (
        T0, None, {"GREETING": "hi"})
    assert p.occurrences == () and p.advance is None


def test_forbid_refuses_a_manual_run_while_busy_with_conflict() -> None:
    with pytest.raises(Conflict) as caught:
        manual(every_minute(on_overlap=OnOverlap.FORBID), BUSY)
    assert caught.value.rpc_code == -32009


def test_forbid_allows_a_manual_run_when_idle() -> None:
    assert manual(every_minute(on_overlap=OnOverlap.FORBID)).runs[0].state is RunState.QUEUED


def test_skip_records_a_manual_run_skipped_while_busy() -> None:
    (run,) = manual(every_minute(on_overlap=OnOverlap.SKIP), BUSY, trigger=Trigger.WEBHOOK).runs
    assert (run.state, run.end_reason, run.trigger) == (
        RunState.SKIPPED, "overlap", Trigger.WEBHOOK)


def test_a_full_queue_records_a_manual_run_skipped_queue_full() -> None:
    task = every_minute(queue_max=0)
    (run,) = manual(task, BUSY).runs
    assert (run.state, run.end_reason) == (RunState.SKIPPED, "queue_full")


def test_terminate_manual_run_asks_running_runs_to_stop() -> None:
    assert manual(every_minute(on_overlap=OnOverlap.TERMINATE), BUSY).terminate_running


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PATH", "BASH_ENV", "1ABC", "A-B", ""])
def test_variables_that_could_hijack_the_process_are_refused(name: str) -> None:
    with pytest.raises(InvalidParams, match="variables"):
        manual(every_minute(), variables={name: "x"})


# retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("backoff", "delays"), [
    (RetryBackoff.CONSTANT, [10, 10, 10, 10]),
    (RetryBackoff.LINEAR, [10, 20, 30, 40]),
    (RetryBackoff.EXPONENTIAL, [10, 20, 40, 80]),
])
def test_retry_delay_follows_the_backoff(backoff: RetryBackoff, delays: list[float]) -> None:
    task = every_minute(retry_delay_seconds=10, retry_backoff=backoff)
    assert [retry_delay(task, attempt) for attempt in (1, 2, 3, 4)] == delays


def test_exponential_backoff_is_capped() -> None:
    task = every_minute(retry_delay_seconds=10, retry_backoff=RetryBackoff.EXPONENTIAL)
    assert retry_delay(task, 500) == MAX_RETRY_DELAY_SECONDS
    long = every_minute(retry_delay_seconds=7200, retry_backoff=RetryBackoff.EXPONENTIAL)
    assert retry_delay(long, 3) == 7200  # the cap never undercuts the configured delay


def finished_run(state: RunState, attempt: int = 1) -> Run:
    return Run(id="r1", task_id="t1", trigger=Trigger.SCHEDULE, state=state, queued_at=T0,
               not_before=T0, attempt=attempt, scheduled_for=T0, finished_at=T0,
               variables={"A": "1"}, triggered_by="bob", user_id="alice")


@pytest.mark.parametrize("state", [RunState.FAILED, RunState.TIMED_OUT, RunState.CRASHED])
def test_failed_timed_out_and_crashed_runs_are_retried_after_the_delay(state: RunState) -> None:
    task = every_minute(retry_limit=2, retry_delay_seconds=5)
    retry = plan_retry(task, finished_run(state), T0, "r2")
    assert retry is not None
    assert (retry.trigger, retry.attempt, retry.retry_of, retry.not_before) == (
        Trigger.RETRY, 2, "r1", T0 + timedelta(seconds=5))
    assert (retry.scheduled_for, dict(retry.variables), retry.triggered_by) == (
        T0, {"A": "1"}, "bob")


@pytest.mark.parametrize("state", [RunState.SUCCEEDED, RunState.CANCELLED, RunState.SKIPPED])
def test_other_outcomes_are_not_retried(state: RunState) -> None:
    assert plan_retry(every_minute(retry_limit=3), finished_run(state), T0, "r2") is None


def test_retries_stop_at_retry_limit() -> None:
    task = every_minute(retry_limit=2)
    assert plan_retry(task, finished_run(RunState.FAILED, attempt=2), T0, "r") is not None
    assert plan_retry(task, finished_run(RunState.FAILED, attempt=3), T0, "r") is None
