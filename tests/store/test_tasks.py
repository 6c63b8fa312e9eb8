"""Task rows: create, read, replace, delete, filter, trees, due schedules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from apflow.domain.enums import (
    CatchUp,
    OccurrenceOutcome,
    OnOverlap,
    RetryBackoff,
    RunState,
    ScheduleType,
    TaskStatus,
)
from apflow.domain.errors import Conflict, InvalidParams, NotFound
from apflow.store.base import OccurrenceFilter, RunFilter, TaskFilter, TaskHead, TaskOutcome
from apflow.store.sqlstore import SqlStore
from tests.store.builders import T0, a_run, a_schedule, a_slot, a_task, at

EVERY_FIELD = a_task(
    "full", name="nightly backup", created_at=at(-3600), updated_at=at(-60),
    description="copies /srv", user_id="alice", dependencies=("a", "b"),
    status=TaskStatus.IN_PROGRESS, executor={"type": "command", "command": "echo hi",
                                             "env": {"X": "1"}},
    inputs={"n": 3, "nested": {"list": [1, "two", None, True]}}, result={"ok": [1.5]},
    error="boom", progress=0.25, schedule_type=ScheduleType.CRON,
    schedule_expression="0 9 * * 1-5", timezone="Europe/Berlin", schedule_enabled=True,
    schedule_start_at=at(0), schedule_end_at=at(86400), schedule_anchor_at=at(1),
    max_runs=10, run_count=2, last_run_at=at(-60), next_run_at=at(60),
    catch_up=CatchUp.ALL, max_catch_up_runs=7, jitter_seconds=3, timeout_seconds=12.5,
    graceful_stop_seconds=2.0, retry_limit=4, retry_delay_seconds=1.5,
    retry_backoff=RetryBackoff.EXPONENTIAL, max_concurrent=3, on_overlap=OnOverlap.SKIP,
    queue_max=9, api_trigger=False, env={"TOKEN": "s3cret"}, webhook_secret="hook",
    exclusion_calendar="holidays", notify_on_failure=True, notify_on_success=True,
    source="apply:file.yaml", keep_runs=50, keep_for_seconds=3600,
)


async def test_a_task_with_every_field_set_reads_back_equal(store: SqlStore) -> None:
    created = await store.create_task(EVERY_FIELD)
    assert created == EVERY_FIELD
    assert await store.get_task("full") == EVERY_FIELD


async def test_a_task_with_defaults_reads_back_equal(store: SqlStore) -> None:
    await store.create_task(a_task("plain"))
    assert await store.get_task("plain") == a_task("plain")


async def test_datetimes_come_back_as_the_same_instant_in_utc(store: SqlStore) -> None:
    berlin = timezone(timedelta(hours=2))
    await store.create_task(a_task(created_at=datetime(2024, 3, 1, 11, 0, 0, 123456, berlin)))
    created_at = (await store.get_task("t1")).created_at
    assert created_at == datetime(2024, 3, 1, 9, 0, 0, 123456, UTC)
    assert created_at.utcoffset() == timedelta(0)


async def test_creating_an_existing_id_is_a_conflict(store: SqlStore) -> None:
    await store.create_task(a_task())
    with pytest.raises(Conflict, match="t1 already exists"):
        await store.create_task(a_task(name="again"))


async def test_a_child_of_an_unknown_parent_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="parent_id"):
        await store.create_task(a_task("child", parent_id="nobody"))


async def test_a_value_that_is_not_json_is_invalid_params(store: SqlStore) -> None:
    with pytest.raises(InvalidParams):
        await store.create_task(a_task(inputs={"when": object()}))


async def test_getting_an_unknown_task_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="nope"):
        await store.get_task("nope")


async def test_get_tasks_returns_the_existing_ones_only(store: SqlStore) -> None:
    for task_id in ("a", "b", "c"):
        await store.create_task(a_task(task_id))
    found = await store.get_tasks(["c", "a", "missing"])
    assert sorted(task.id for task in found) == ["a", "c"]
    assert await store.get_tasks([]) == []


async def test_update_replaces_every_column(store: SqlStore) -> None:
    await store.create_task(a_task("full"))
    updated = await store.update_task(EVERY_FIELD)
    assert updated == EVERY_FIELD
    assert await store.get_task("full") == EVERY_FIELD


async def test_update_with_the_read_updated_at_succeeds(store: SqlStore) -> None:
    original = await store.create_task(a_task())
    changed = replace(original, name="renamed", updated_at=at(5))
    assert await store.update_task(changed, expected_updated_at=original.updated_at) == changed


async def test_update_with_a_stale_updated_at_is_a_conflict_and_writes_nothing(
        store: SqlStore) -> None:
    await store.create_task(a_task())
    with pytest.raises(Conflict, match="changed since it was read"):
        await store.update_task(a_task(name="late", updated_at=at(9)),
                                expected_updated_at=at(-1))
    assert (await store.get_task("t1")).name == "t1"


async def test_updating_an_unknown_task_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.update_task(a_task("ghost"))
    with pytest.raises(NotFound):
        await store.update_task(a_task("ghost"), expected_updated_at=T0)


async def test_delete_keeps_runs_and_past_ledger_but_drops_slots_not_yet_fired(
        store: SqlStore) -> None:
    await store.create_task(a_schedule("t1", next_run_at=at(120)))
    await store.insert_runs([a_run("r1", "t1", state=RunState.SUCCEEDED)])
    await store.record_occurrences([
        a_slot("t1", at(60), "r1"),  # fired already
        a_slot("t1", at(120), outcome=OccurrenceOutcome.SKIPPED, recorded_at=at(0)),
        a_slot("t1", at(180), outcome=OccurrenceOutcome.SKIPPED, recorded_at=at(0)),
    ])
    assert await store.delete_tasks(["t1"]) == 1
    with pytest.raises(NotFound):
        await store.get_task("t1")
    assert [run.id for run in await store.list_runs(RunFilter(task_id="t1"))] == ["r1"]
    ledger = await store.list_occurrences(OccurrenceFilter(task_id="t1"))
    assert [row.scheduled_for for row in ledger] == [at(60)]


async def test_delete_counts_deleted_rows_and_ignores_unknown_ids(store: SqlStore) -> None:
    await store.create_task(a_task("a"))
    await store.create_task(a_task("b"))
    assert await store.delete_tasks(["a", "b", "zzz"]) == 2
    assert await store.delete_tasks([]) == 0


async def test_deleting_a_parent_without_its_children_is_a_conflict(store: SqlStore) -> None:
    await store.create_task(a_task("root"))
    await store.create_task(a_task("leaf", parent_id="root"))
    with pytest.raises(Conflict):
        await store.delete_tasks(["root"])
    assert await store.delete_tasks(["root", "leaf"]) == 2


FILTER_CASES: list[tuple[str, TaskFilter, list[str]]] = [
    ("everything", TaskFilter(), ["root", "cron", "child", "other"]),
    ("user_id", TaskFilter(user_id="bob"), ["other"]),
    ("status", TaskFilter(status=TaskStatus.FAILED), ["child"]),
    ("schedule_type", TaskFilter(schedule_type=ScheduleType.CRON), ["cron"]),
    ("schedule_enabled true", TaskFilter(schedule_enabled=True), ["cron"]),
    ("schedule_enabled false", TaskFilter(schedule_enabled=False), ["root", "child", "other"]),
    ("scheduled_only", TaskFilter(scheduled_only=True), ["cron", "other"]),
    ("parent_id", TaskFilter(parent_id="root"), ["child"]),
    ("roots_only", TaskFilter(roots_only=True), ["root", "cron", "other"]),
    ("name", TaskFilter(name="the cron"), ["cron"]),
    ("source", TaskFilter(source="apply:x"), ["other"]),
    ("combined", TaskFilter(user_id="alice", roots_only=True, scheduled_only=True), ["cron"]),
]


async def _filter_fixture(store: SqlStore) -> None:
    await store.create_task(a_task("root", user_id="alice", created_at=at(1)))
    await store.create_task(a_task("cron", name="the cron", user_id="alice", created_at=at(2),
                                   schedule_type=ScheduleType.CRON,
                                   schedule_expression="* * * * *", schedule_enabled=True))
    await store.create_task(a_task("child", parent_id="root", user_id="alice",
                                   status=TaskStatus.FAILED, created_at=at(3)))
    await store.create_task(a_task("other", user_id="bob", source="apply:x", created_at=at(4),
                                   schedule_type=ScheduleType.DAILY,
                                   schedule_expression="09:00"))


@pytest.mark.parametrize(("case", "flt", "expected"), FILTER_CASES,
                         ids=[case for case, _, _ in FILTER_CASES])
async def test_list_and_count_tasks_apply_each_filter_field(
        store: SqlStore, case: str, flt: TaskFilter, expected: list[str]) -> None:
    await _filter_fixture(store)
    assert [task.id for task in await store.list_tasks(flt)] == expected
    assert await store.count_tasks(flt) == len(expected)


async def test_list_tasks_is_oldest_first_and_pages(store: SqlStore) -> None:
    for index, task_id in enumerate(["c", "a", "b", "d"]):
        await store.create_task(a_task(task_id, created_at=at(index // 2)))
    assert [t.id for t in await store.list_tasks(TaskFilter())] == ["a", "c", "b", "d"]
    page = await store.list_tasks(TaskFilter(), limit=2, offset=1)
    assert [t.id for t in page] == ["c", "b"]


async def test_set_task_outcome_changes_only_the_outcome_fields(store: SqlStore) -> None:
    await store.create_task(replace(EVERY_FIELD, progress=0.5))
    await store.set_task_outcome("full", at(100), status=TaskStatus.COMPLETED,
                                 result={"rows": 3}, error=None)
    task = await store.get_task("full")
    assert (task.status, task.result, task.error, task.progress, task.updated_at) == (
        TaskStatus.COMPLETED, {"rows": 3}, None, 0.5, at(100))
    assert replace(task, status=EVERY_FIELD.status, result=EVERY_FIELD.result,
                   error=EVERY_FIELD.error, progress=EVERY_FIELD.progress,
                   updated_at=EVERY_FIELD.updated_at) == EVERY_FIELD
    await store.set_task_outcome("full", at(101), status=TaskStatus.IN_PROGRESS, progress=0.75)
    assert (await store.get_task("full")).progress == 0.75


async def test_set_task_outcome_of_a_missing_task_is_ignored(store: SqlStore) -> None:
    await store.set_task_outcome("gone", at(1), status=TaskStatus.FAILED, error="x")


async def test_set_task_outcomes_writes_each_outcome_field(store: SqlStore) -> None:
    await store.create_task(a_task("a", progress=0.5))
    await store.create_task(a_task("b", error="old"))
    await store.set_task_outcomes([
        TaskOutcome("a", TaskStatus.COMPLETED, result={"rows": 3}),
        TaskOutcome("b", TaskStatus.FAILED, error="exit code 2", progress=1.0),
    ], at(100))
    a, b = await store.get_task("a"), await store.get_task("b")
    assert (a.status, a.result, a.error, a.progress, a.updated_at) == (
        TaskStatus.COMPLETED, {"rows": 3}, None, 0.5, at(100))
    assert (b.status, b.result, b.error, b.progress, b.updated_at) == (
        TaskStatus.FAILED, None, "exit code 2", 1.0, at(100))


async def test_set_task_outcomes_applies_a_task_listed_twice_in_order(store: SqlStore) -> None:
    await store.create_task(a_task("a"))
    await store.set_task_outcomes([TaskOutcome("a", TaskStatus.IN_PROGRESS),
                                   TaskOutcome("a", TaskStatus.COMPLETED, result=1)], at(1))
    a = await store.get_task("a")
    assert (a.status, a.result) == (TaskStatus.COMPLETED, 1)


async def test_set_task_outcomes_keeps_the_last_progress_given_for_a_task(
        store: SqlStore) -> None:
    await store.create_task(a_task("a", progress=0.1))
    await store.set_task_outcomes([TaskOutcome("a", TaskStatus.IN_PROGRESS, progress=0.5),
                                   TaskOutcome("a", TaskStatus.FAILED, error="boom")], at(1))
    a = await store.get_task("a")
    assert (a.status, a.error, a.progress) == (TaskStatus.FAILED, "boom", 0.5)


async def test_set_task_outcomes_ignores_missing_tasks_and_empty_batches(
        store: SqlStore) -> None:
    await store.create_task(a_task("a"))
    await store.set_task_outcomes([], at(1))
    await store.set_task_outcomes([TaskOutcome("gone", TaskStatus.FAILED),
                                   TaskOutcome("a", TaskStatus.CANCELLED)], at(2))
    assert (await store.get_task("a")).status is TaskStatus.CANCELLED


async def test_set_task_outcomes_is_one_transaction(store: SqlStore) -> None:
    await store.create_task(a_task("a"))
    await store.create_task(a_task("b"))
    with pytest.raises(InvalidParams):
        await store.set_task_outcomes([TaskOutcome("a", TaskStatus.COMPLETED),
                                       TaskOutcome("b", TaskStatus.COMPLETED,
                                                   result=object())], at(1))
    assert (await store.get_task("a")).status is TaskStatus.PENDING


async def test_task_heads_give_version_and_children_of_the_listed_tasks(
        store: SqlStore) -> None:
    for task in (a_task("root"), a_task("mid", parent_id="root"),
                 a_task("leaf", parent_id="mid"), a_task("alone"),
                 a_task("other"), a_task("other_child", parent_id="other")):
        await store.create_task(task)
    await store.set_task_outcomes([TaskOutcome("alone", TaskStatus.COMPLETED)], at(5))
    heads = await store.task_heads(["root", "mid", "leaf", "alone", "unknown"])
    assert heads == {
        "root": TaskHead("root", T0, True), "mid": TaskHead("mid", T0, True),
        "leaf": TaskHead("leaf", T0, False), "alone": TaskHead("alone", at(5), False)}
    assert await store.task_heads([]) == {}


async def test_reset_tasks_sets_them_pending_and_clears_the_outcome(store: SqlStore) -> None:
    await store.create_task(a_task("a", status=TaskStatus.FAILED, result=[1], error="e",
                                   progress=1.0))
    await store.create_task(a_task("b", status=TaskStatus.COMPLETED))
    await store.reset_tasks(["a"], at(7))
    a, b = await store.get_task("a"), await store.get_task("b")
    assert (a.status, a.result, a.error, a.progress, a.updated_at) == (
        TaskStatus.PENDING, None, None, 0.0, at(7))
    assert b.status is TaskStatus.COMPLETED


async def test_subtree_lists_a_parent_before_its_children(store: SqlStore) -> None:
    await store.create_task(a_task("root", created_at=at(5)))
    await store.create_task(a_task("b", parent_id="root", created_at=at(1)))
    await store.create_task(a_task("a", parent_id="root", created_at=at(2)))
    await store.create_task(a_task("b1", parent_id="b", created_at=at(0)))
    await store.create_task(a_task("elsewhere"))
    assert [t.id for t in await store.subtree("root")] == ["root", "b", "a", "b1"]
    assert [t.id for t in await store.subtree("b")] == ["b", "b1"]


async def test_subtree_of_an_unknown_task_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.subtree("nope")


async def test_due_tasks_are_enabled_schedules_due_now_earliest_first(store: SqlStore) -> None:
    await store.create_task(a_schedule("late", next_run_at=at(30)))
    await store.create_task(a_schedule("early", next_run_at=at(-30), user_id="bob"))
    await store.create_task(a_schedule("future", next_run_at=at(31)))
    await store.create_task(a_schedule("paused", next_run_at=at(0), schedule_enabled=False))
    assert [t.id for t in await store.due_tasks(at(30))] == ["early", "late"]
    assert [t.id for t in await store.due_tasks(at(30), limit=1)] == ["early"]
    assert [t.id for t in await store.due_tasks(at(30), user_id="bob")] == ["early"]


async def test_next_due_at_is_the_earliest_enabled_schedule(store: SqlStore) -> None:
    assert await store.next_due_at() is None
    await store.create_task(a_schedule("a", next_run_at=at(50)))
    await store.create_task(a_schedule("b", next_run_at=at(40)))
    await store.create_task(a_schedule("c", next_run_at=at(10), schedule_enabled=False))
    assert await store.next_due_at() == at(40)


NAIVE = datetime(2024, 3, 1, 9, 0)  # a timestamp without an offset: refused

NAIVE_CALLS: dict[str, Any] = {
    "due_tasks": lambda s: s.due_tasks(NAIVE),
    "fire_due": lambda s: s.fire_due(NAIVE, lambda task, load: None),
    "apply_to_task": lambda s: s.apply_to_task("t1", NAIVE, lambda task, load: None),
    "claim_runs": lambda s: s.claim_runs(NAIVE, "n", limit=1, lease_seconds=1),
    "cancel_run": lambda s: s.cancel_run("r", NAIVE),
    "crash_runs_of_node": lambda s: s.crash_runs_of_node("n", NAIVE),
    "heartbeat_runs": lambda s: s.heartbeat_runs("n", ["r"], at(0), NAIVE),
    "set_task_outcome": lambda s: s.set_task_outcome("t1", NAIVE, status=TaskStatus.FAILED),
    "reset_tasks": lambda s: s.reset_tasks(["t1"], NAIVE),
    "set_task_outcomes": lambda s: s.set_task_outcomes(
        [TaskOutcome("t1", TaskStatus.FAILED)], NAIVE),
    "update_task": lambda s: s.update_task(a_task(), expected_updated_at=NAIVE),
    "list_occurrences": lambda s: s.list_occurrences(OccurrenceFilter(since=NAIVE)),
    "remember_signature": lambda s: s.remember_signature("d", NAIVE, at(1)),
    "rate_limit_hit": lambda s: s.rate_limit_hit("k", NAIVE, at(0)),
}


@pytest.mark.parametrize("call", NAIVE_CALLS.values(), ids=NAIVE_CALLS.keys())
async def test_a_naive_datetime_is_refused(store: SqlStore, call: Any) -> None:
    await store.create_task(a_schedule("t1"))
    with pytest.raises(InvalidParams, match="naive"):
        await call(store)
