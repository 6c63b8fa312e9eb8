"""Pure planning: what to write when slots fall due or a run is asked for.

Nothing here reads a clock or touches the store: the caller passes `now` and the task's
live load, and gets back a Plan (or a retry Run) to apply atomically.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from apflow.domain.enums import (
    CatchUp,
    OccurrenceOutcome,
    OnOverlap,
    RetryBackoff,
    RunState,
    Trigger,
)
from apflow.domain.errors import Conflict, InvalidParams
from apflow.domain.models import Occurrence, Run, Task
from apflow.domain.plans import Plan, ScheduleAdvance, TaskLoad
from apflow.engine.exclusions import ExclusionLookup
from apflow.schedules import ScheduleSpec, jitter_offset, next_fire, slots_between

# A slot this close behind `now` counts as on time: the scheduler woke for it, it was not
# missed. It only decides the trigger label, and whether catch_up=skip still fires it.
ON_TIME_TOLERANCE = timedelta(seconds=5)
# Bounds the slots one plan enumerates, so years of downtime on a 1 s interval cannot
# build one giant transaction; the rest is handled by the next fire_due round.
MAX_SLOTS_PER_PLAN = 1000
# Exponential backoff stops growing here unless retry_delay_seconds itself is longer.
MAX_RETRY_DELAY_SECONDS = 3600.0
RETRIABLE_STATES = frozenset({RunState.FAILED, RunState.TIMED_OUT, RunState.CRASHED})

END_OVERLAP = "overlap"
END_QUEUE_FULL = "queue_full"

_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that change how the loader or the shell behaves: a trigger must not smuggle code in.
_FORBIDDEN_VARIABLES = frozenset({"PATH", "IFS", "BASH_ENV", "ENV", "SHELLOPTS", "PS4"})
_FORBIDDEN_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_")

RunIdFactory = Callable[[], str]


class Admission(Enum):
    """What the overlap policy makes of one more run of a task."""

    QUEUE = "queue"
    SKIP_OVERLAP = "skip_overlap"
    QUEUE_FULL = "queue_full"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Verdict:
    """The overlap policy's answer, and whether running runs must make room."""

    admission: Admission
    terminate_running: bool = False


@dataclass(frozen=True)
class SlotChoice:
    """One due slot and what catch-up made of it (a trigger if it fires, else an outcome)."""

    slot: datetime
    trigger: Trigger | None = None
    outcome: OccurrenceOutcome | None = None
    detail: str | None = None


# schedule arithmetic ------------------------------------------------------------------------


def slot_spec(task: Task) -> ScheduleSpec:
    """The task's schedule without max_runs: the planner counts fired runs itself."""
    if task.schedule_type is None or task.schedule_expression is None:
        raise InvalidParams("the task has no schedule", field="schedule_type")
    return ScheduleSpec(
        schedule_type=task.schedule_type,
        expression=task.schedule_expression,
        timezone=task.timezone,
        start_at=task.schedule_start_at,
        end_at=task.schedule_end_at,
        max_runs=None,
        anchor=task.schedule_anchor_at,
    )


def is_due(task: Task, now: datetime) -> bool:
    """True if the task's schedule has a slot at or before `now`."""
    return task.schedule_enabled and task.next_run_at is not None and task.next_run_at <= now


def due_slots(spec: ScheduleSpec, first: datetime, now: datetime) -> tuple[list[datetime], bool]:
    """Every due slot from `first` up to `now` (bounded), and whether more were left out."""
    rest = slots_between(spec, first, now, limit=MAX_SLOTS_PER_PLAN)
    return [first, *rest], len(rest) >= MAX_SLOTS_PER_PLAN


def firing_window(task: Task) -> int:
    """How many of the newest due slots catch-up may still fire."""
    if task.catch_up is CatchUp.ALL:
        return max(task.max_catch_up_runs, 0) + 1
    return 1


# catch-up -------------------------------------------------------------------------------------


def choose_slots(task: Task, slots: list[datetime], now: datetime) -> list[SlotChoice]:
    """Apply catch_up to the due slots (oldest first): which fire, which are only ledgered."""
    newest = slots[-1]
    on_time = now - newest <= ON_TIME_TOLERANCE
    older = slots[:-1]
    if task.catch_up is CatchUp.SKIP:
        choices = [_missed(slot, "catch_up=skip") for slot in older]
        if on_time:
            return [*choices, SlotChoice(newest, trigger=Trigger.SCHEDULE)]
        return [*choices, _missed(newest, "catch_up=skip")]
    if task.catch_up is CatchUp.ALL:
        return _choose_all(task, slots, on_time)
    coalesced = [SlotChoice(s, outcome=OccurrenceOutcome.COALESCED,
                            detail=f"coalesced into {newest.isoformat()}") for s in older]
    trigger = Trigger.SCHEDULE if on_time and not older else Trigger.CATCH_UP
    return [*coalesced, SlotChoice(newest, trigger=trigger)]


def _choose_all(task: Task, slots: list[datetime], on_time: bool) -> list[SlotChoice]:
    """catch_up=all: the on-time slot plus up to max_catch_up_runs missed ones fire."""
    missed = slots[:-1] if on_time else slots
    cap = max(task.max_catch_up_runs, 0)
    dropped = len(missed) - cap if len(missed) > cap else 0
    choices = [_missed(slot, f"beyond max_catch_up_runs={cap}") for slot in missed[:dropped]]
    choices += [SlotChoice(slot, trigger=Trigger.CATCH_UP) for slot in missed[dropped:]]
    if on_time:
        choices.append(SlotChoice(slots[-1], trigger=Trigger.SCHEDULE))
    return choices


def excluded_slots(task: Task, slots: list[datetime],
                   excluded: ExclusionLookup | None) -> tuple[list[SlotChoice], list[datetime]]:
    """Split due slots into those the task's exclusion calendar covers (ledgered `excluded`)
    and the rest, which catch-up then decides about."""
    if excluded is None or not task.exclusion_calendar:
        return [], slots
    covered: list[SlotChoice] = []
    rest: list[datetime] = []
    for slot in slots:
        detail = excluded(task, slot)
        if detail is None:
            rest.append(slot)
        else:
            covered.append(SlotChoice(slot, outcome=OccurrenceOutcome.EXCLUDED, detail=detail))
    return covered, rest


def _missed(slot: datetime, why: str) -> SlotChoice:
    return SlotChoice(slot, outcome=OccurrenceOutcome.MISSED, detail=why)


# overlap ----------------------------------------------------------------------------------------


def admit(task: Task, load: TaskLoad, added: int, *, manual: bool) -> Verdict:
    """Decide one more run of `task` given its live load plus `added` runs planned already."""
    active = load.active + added
    busy = active >= task.max_concurrent
    policy = task.on_overlap
    if policy is OnOverlap.QUEUE:
        full = active >= task.max_concurrent + max(task.queue_max, 0)
        return Verdict(Admission.QUEUE_FULL if full else Admission.QUEUE)
    if policy is OnOverlap.TERMINATE:
        return Verdict(Admission.QUEUE, terminate_running=busy)
    if busy and policy is OnOverlap.FORBID and manual:
        return Verdict(Admission.CONFLICT)
    return Verdict(Admission.SKIP_OVERLAP if busy else Admission.QUEUE)


def overlap_detail(task: Task, load: TaskLoad, added: int) -> str:
    """Why a run was not queued, for the ledger and the log."""
    active = load.active + added
    return (f"{active} run(s) active, max_concurrent={task.max_concurrent}, "
            f"on_overlap={task.on_overlap.value}, queue_max={task.queue_max}")


# run rows ---------------------------------------------------------------------------------------


def queued_run(task: Task, run_id: str, trigger: Trigger, now: datetime, *,
               scheduled_for: datetime | None, not_before: datetime,
               variables: Mapping[str, str] | None = None,
               triggered_by: str = "system") -> Run:
    """A new run waiting for the dispatcher."""
    return Run(id=run_id, task_id=task.id, trigger=trigger, state=RunState.QUEUED,
               queued_at=now, not_before=not_before, scheduled_for=scheduled_for,
               triggered_by=triggered_by, user_id=task.user_id,
               variables=dict(variables or {}))


def skipped_run(task: Task, run_id: str, trigger: Trigger, now: datetime, *,
                scheduled_for: datetime | None, reason: str,
                variables: Mapping[str, str] | None = None,
                triggered_by: str = "system") -> Run:
    """A run that never started, kept so the history shows why."""
    return Run(id=run_id, task_id=task.id, trigger=trigger, state=RunState.SKIPPED,
               queued_at=now, not_before=scheduled_for or now, scheduled_for=scheduled_for,
               finished_at=now, end_reason=reason, triggered_by=triggered_by,
               user_id=task.user_id, variables=dict(variables or {}))


# due slots ---------------------------------------------------------------------------------------


@dataclass
class _DueBuilder:
    """Accumulates the rows of one plan_due call."""

    task: Task
    load: TaskLoad
    now: datetime
    new_id: RunIdFactory
    occurrences: list[Occurrence]
    runs: list[Run]
    added: int = 0
    fired: int = 0
    last_fired: datetime | None = None
    terminate: bool = False

    def ledger(self, choice: SlotChoice, outcome: OccurrenceOutcome, run_id: str | None = None,
               detail: str | None = None) -> None:
        self.occurrences.append(Occurrence(
            task_id=self.task.id, scheduled_for=choice.slot, outcome=outcome,
            recorded_at=self.now, run_id=run_id, detail=detail or choice.detail))

    def fire(self, choice: SlotChoice, trigger: Trigger) -> None:
        verdict = admit(self.task, self.load, self.added, manual=False)
        if verdict.admission is Admission.QUEUE:
            self._queue(choice, trigger)
            self.terminate = self.terminate or verdict.terminate_running
            return
        full = verdict.admission is Admission.QUEUE_FULL
        reason = END_QUEUE_FULL if full else END_OVERLAP
        outcome = OccurrenceOutcome.QUEUE_FULL if full else OccurrenceOutcome.SKIPPED_OVERLAP
        run = skipped_run(self.task, self.new_id(), trigger, self.now,
                          scheduled_for=choice.slot, reason=reason)
        self.runs.append(run)
        self.ledger(choice, outcome, run.id, overlap_detail(self.task, self.load, self.added))

    def _queue(self, choice: SlotChoice, trigger: Trigger) -> None:
        jitter = jitter_offset(self.task.id, choice.slot, self.task.jitter_seconds)
        run = queued_run(self.task, self.new_id(), trigger, self.now,
                         scheduled_for=choice.slot, not_before=choice.slot + jitter)
        self.runs.append(run)
        self.ledger(choice, OccurrenceOutcome.FIRED, run.id)
        self.added += 1
        self.fired += 1
        self.last_fired = choice.slot

    def exhausted(self) -> bool:
        limit = self.task.max_runs
        return limit is not None and self.task.run_count + self.fired >= limit


def plan_due(task: Task, load: TaskLoad, now: datetime, run_id_factory: RunIdFactory, *,
             horizon: datetime | None = None, excluded: ExclusionLookup | None = None) -> Plan:
    """Plan every slot of `task` due by `horizon` (default `now`): ledger rows, queued or
    skipped runs (never to start before their slot), and the schedule's advance. Slots that
    `excluded` reports covered by the task's exclusion calendar are ledgered, not run."""
    until = now if horizon is None else max(horizon, now)
    first = task.next_run_at
    if not task.schedule_enabled or first is None or first > until:
        return Plan(task_id=task.id)  # another node fired it first, or it was paused
    if task.schedule_end_at is not None and first > task.schedule_end_at:
        return plan_ended(task)  # end_at was moved before the pending slot
    spec = slot_spec(task)
    slots, truncated = due_slots(spec, first, until)
    if truncated:
        return plan_backlog(task, slots, now)
    builder = _DueBuilder(task, load, now, run_id_factory, [], [])
    covered, open_slots = excluded_slots(task, slots, excluded)
    chosen = choose_slots(task, open_slots, now) if open_slots else []
    for choice in sorted([*covered, *chosen], key=lambda c: c.slot):
        if choice.trigger is None:
            builder.ledger(choice, choice.outcome or OccurrenceOutcome.MISSED)
        elif builder.exhausted():
            builder.ledger(choice, OccurrenceOutcome.MISSED, detail=f"max_runs={task.max_runs}")
        else:
            builder.fire(choice, choice.trigger)
    return Plan(task_id=task.id, advance=advance_after(task, spec, builder, slots[-1]),
                occurrences=tuple(builder.occurrences), runs=tuple(builder.runs),
                terminate_running=builder.terminate)


def plan_ended(task: Task) -> Plan:
    """Disable a schedule whose pending slot lies past schedule_end_at (not a slot any more)."""
    advance = ScheduleAdvance(next_run_at=None, schedule_enabled=False,
                              run_count=task.run_count, last_run_at=task.last_run_at)
    return Plan(task_id=task.id, advance=advance)


def plan_backlog(task: Task, slots: list[datetime], now: datetime) -> Plan:
    """Ledger the oldest slots of a long backlog that can no longer fire; the rest wait."""
    keep = firing_window(task)
    cut = len(slots) - keep
    outcome = OccurrenceOutcome.COALESCED if task.catch_up is CatchUp.LATEST \
        else OccurrenceOutcome.MISSED
    rows = tuple(Occurrence(task_id=task.id, scheduled_for=slot, outcome=outcome,
                            recorded_at=now, detail=f"backlog, catch_up={task.catch_up.value}")
                 for slot in slots[:cut])
    advance = ScheduleAdvance(next_run_at=slots[cut], schedule_enabled=True,
                              run_count=task.run_count, last_run_at=task.last_run_at)
    return Plan(task_id=task.id, advance=advance, occurrences=rows)


def advance_after(task: Task, spec: ScheduleSpec, builder: _DueBuilder,
                  last_slot: datetime) -> ScheduleAdvance:
    """The schedule state once every due slot up to `last_slot` was handled."""
    run_count = task.run_count + builder.fired
    last_run_at = builder.last_fired or task.last_run_at
    following = None if builder.exhausted() else next_fire(spec, last_slot)
    if following is not None and task.schedule_end_at is not None \
            and following > task.schedule_end_at:
        following = None
    return ScheduleAdvance(next_run_at=following, schedule_enabled=following is not None,
                           run_count=run_count, last_run_at=last_run_at)


# manual and webhook triggers ---------------------------------------------------------------


def check_variables(variables: Mapping[str, str]) -> None:
    """Refuse run-time variables that are not plain names or that could hijack the process."""
    for name, value in variables.items():
        field = f"variables.{name}"
        if not isinstance(name, str) or not _VARIABLE_NAME.match(name):
            raise InvalidParams("not a valid environment variable name", field=field)
        if name in _FORBIDDEN_VARIABLES or name.startswith(_FORBIDDEN_PREFIXES):
            raise InvalidParams("this variable cannot be set at run time", field=field)
        if not isinstance(value, str):
            raise InvalidParams("must be a string", field=field)


def plan_manual(task: Task, load: TaskLoad, now: datetime, trigger: Trigger,
                variables: Mapping[str, str] | None, triggered_by: str, run_id: str) -> Plan:
    """Plan a run asked for now (manual or webhook) under the task's overlap policy."""
    values = dict(variables or {})
    check_variables(values)
    verdict = admit(task, load, 0, manual=True)
    if verdict.admission is Admission.CONFLICT:
        raise Conflict(f"task {task.id} already has an active run (on_overlap=forbid)")
    if verdict.admission is Admission.QUEUE:
        run = queued_run(task, run_id, trigger, now, scheduled_for=None, not_before=now,
                         variables=values, triggered_by=triggered_by)
        return Plan(task_id=task.id, runs=(run,), terminate_running=verdict.terminate_running)
    reason = END_QUEUE_FULL if verdict.admission is Admission.QUEUE_FULL else END_OVERLAP
    run = skipped_run(task, run_id, trigger, now, scheduled_for=None, reason=reason,
                      variables=values, triggered_by=triggered_by)
    return Plan(task_id=task.id, runs=(run,))


# retries ----------------------------------------------------------------------------------------


def retry_delay(task: Task, attempt: int) -> float:
    """Seconds to wait before retrying after failed attempt number `attempt` (1-based)."""
    base = max(task.retry_delay_seconds, 0.0)
    step = max(attempt, 1)
    if task.retry_backoff is RetryBackoff.LINEAR:
        delay = base * step
    elif task.retry_backoff is RetryBackoff.EXPONENTIAL:
        delay = base * 2.0 ** min(step - 1, 62)
    else:
        delay = base
    return min(delay, max(base, MAX_RETRY_DELAY_SECONDS))


def should_retry(task: Task, run: Run) -> bool:
    """True if `run` ended in a state that is retried and the task has attempts left."""
    return run.state in RETRIABLE_STATES and run.attempt <= task.retry_limit


def plan_retry(task: Task, run: Run, now: datetime, run_id: str) -> Run | None:
    """The queued retry of a finished run, or None when the policy says stop."""
    if not should_retry(task, run):
        return None
    delay = timedelta(seconds=retry_delay(task, run.attempt))
    return Run(id=run_id, task_id=task.id, trigger=Trigger.RETRY, state=RunState.QUEUED,
               queued_at=now, not_before=now + delay, attempt=run.attempt + 1,
               scheduled_for=run.scheduled_for, triggered_by=run.triggered_by,
               user_id=run.user_id, variables=dict(run.variables),
               parent_run_id=run.parent_run_id, retry_of=run.id)
