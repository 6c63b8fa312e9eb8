"""Runs: claiming within max_concurrent, finishing, cancelling, leases, lost nodes, lists."""

from __future__ import annotations

import pytest

from apflow.domain.enums import RunState, TaskStatus, Trigger
from apflow.domain.errors import Conflict, InvalidParams, NotFound
from apflow.store.base import FinishedRun, RunFilter, TaskOutcome
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, a_task, at


async def test_claim_moves_due_queued_runs_to_running_with_a_lease(store: SqlStore) -> None:
    await store.create_task(a_task("t1", max_concurrent=5))
    await store.insert_runs([a_run("r1", not_before=at(0)), a_run("r2", not_before=at(1))])
    claimed = await store.claim_runs(at(10), "node-a", limit=10, lease_seconds=30)
    assert [run.id for run in claimed] == ["r1", "r2"]
    for run in claimed:
        assert (run.state, run.started_at, run.node, run.lease_expires_at) == (
            RunState.RUNNING, at(10), "node-a", at(40))
        assert await store.get_run(run.id) == run


async def test_claim_leaves_runs_that_are_not_due_yet(store: SqlStore) -> None:
    await store.create_task(a_task("t1", max_concurrent=5))
    await store.insert_runs([a_run("now", not_before=at(0)), a_run("later", not_before=at(60))])
    assert [r.id for r in await store.claim_runs(at(59), "n", limit=5, lease_seconds=1)] == [
        "now"]
    assert (await store.get_run("later")).state is RunState.QUEUED


async def test_claim_takes_the_oldest_not_before_first_up_to_the_limit(store: SqlStore) -> None:
    for task_id in ("a", "b", "c"):
        await store.create_task(a_task(task_id, max_concurrent=5))
    await store.insert_runs([
        a_run("c1", "c", not_before=at(3)), a_run("a1", "a", not_before=at(1)),
        a_run("b1", "b", not_before=at(2)), a_run("a2", "a", not_before=at(4))])
    first = await store.claim_runs(at(10), "n", limit=3, lease_seconds=1)
    assert [run.id for run in first] == ["a1", "b1", "c1"]
    assert [r.id for r in await store.claim_runs(at(10), "n", limit=3, lease_seconds=1)] == [
        "a2"]
    assert await store.claim_runs(at(10), "n", limit=0, lease_seconds=1) == []


async def test_claim_never_lets_a_task_pass_its_max_concurrent(store: SqlStore) -> None:
    await store.create_task(a_task("two", max_concurrent=2))
    await store.create_task(a_task("one"))
    await store.insert_runs([a_run("two-running", "two", state=RunState.RUNNING, node="x"),
                             a_run("two-a", "two", not_before=at(1)),
                             a_run("two-b", "two", not_before=at(2)),
                             a_run("one-a", "one", not_before=at(3)),
                             a_run("one-b", "one", not_before=at(4))])
    claimed = await store.claim_runs(at(10), "n", limit=10, lease_seconds=1)
    assert [run.id for run in claimed] == ["two-a", "one-a"]
    assert await store.claim_runs(at(10), "n", limit=10, lease_seconds=1) == []
    await store.finish_runs([FinishedRun("two-running", RunState.SUCCEEDED, at(11))])
    assert [r.id for r in await store.claim_runs(at(12), "n", limit=10, lease_seconds=1)] == [
        "two-b"]


async def test_a_task_whose_runs_crowd_the_queue_does_not_hide_the_others(
        store: SqlStore) -> None:
    # On PostgreSQL the claim first looks at the earliest 4 x limit + 64 queued runs only:
    # here all of them belong to "busy", which has no free slot, so "late" must still be
    # found beyond them.
    await store.create_task(a_task("busy"))
    await store.create_task(a_task("late"))
    await store.insert_runs([a_run("busy-running", "busy", state=RunState.RUNNING, node="x")])
    await store.insert_runs([a_run(f"busy-{n:03d}", "busy", not_before=at(n))
                             for n in range(100)])
    await store.insert_runs([a_run("late-1", "late", not_before=at(500))])
    claimed = await store.claim_runs(at(600), "n", limit=2, lease_seconds=1)
    assert [run.id for run in claimed] == ["late-1"]


async def test_runs_of_a_deleted_task_are_claimed_one_at_a_time(store: SqlStore) -> None:
    await store.insert_runs([a_run("o1", "gone", not_before=at(1)),
                             a_run("o2", "gone", not_before=at(2))])
    assert [r.id for r in await store.claim_runs(at(5), "n", limit=5, lease_seconds=1)] == [
        "o1"]
    assert await store.claim_runs(at(5), "n", limit=5, lease_seconds=1) == []


async def test_a_claim_brings_the_heads_of_its_runs_tasks(store: SqlStore) -> None:
    await store.create_task(a_task("parent", max_concurrent=5))
    await store.create_task(a_task("child", parent_id="parent"))
    await store.create_task(a_task("alone"))
    await store.insert_runs([a_run("p1", "parent", not_before=at(1)),
                             a_run("p2", "parent", not_before=at(2)),
                             a_run("a1", "alone", not_before=at(3)),
                             a_run("g1", "gone", not_before=at(4))])
    await store.set_task_outcomes([TaskOutcome("alone", TaskStatus.COMPLETED)], at(7))
    claimed = await store.claim_runs_with_heads(at(10), "n", limit=10, lease_seconds=1)
    assert [run.id for run in claimed.runs] == ["p1", "p2", "a1", "g1"]
    assert claimed.heads == await store.task_heads(["parent", "alone", "gone"])
    assert claimed.heads["parent"].has_children and not claimed.heads["alone"].has_children
    assert claimed.heads["alone"].updated_at == at(7)  # as the row is now
    assert "gone" not in claimed.heads  # a deleted task has no head
    assert claimed.tasks == {}  # not asked for
    nothing = await store.claim_runs_with_heads(at(10), "n", limit=10, lease_seconds=1)
    assert (nothing.runs, nothing.heads) == ([], {})


async def test_a_claim_can_bring_its_runs_tasks_whole(store: SqlStore) -> None:
    await store.create_task(a_task("two", max_concurrent=5, executor={"type": "python",
                                                                      "name": "x"}))
    await store.create_task(a_task("one", env={"A": "1"}, dependencies=("two",)))
    await store.insert_runs([a_run("t1", "two", not_before=at(1)),
                             a_run("t2", "two", not_before=at(2)),
                             a_run("o1", "one", not_before=at(3)),
                             a_run("g1", "gone", not_before=at(4))])
    claimed = await store.claim_runs_with_heads(at(10), "n", limit=10, lease_seconds=1,
                                                with_tasks=True)
    assert [run.id for run in claimed.runs] == ["t1", "t2", "o1", "g1"]
    assert claimed.tasks == {task.id: task for task in await store.get_tasks(["two", "one"])}
    assert claimed.runs == [await store.get_run(run.id) for run in claimed.runs]
    assert set(claimed.heads) == {"two", "one"}


async def test_claim_for_one_user_takes_only_that_users_runs(store: SqlStore) -> None:
    await store.create_task(a_task("mine", user_id="alice"))
    await store.create_task(a_task("theirs", user_id="bob"))
    await store.insert_runs([a_run("m", "mine", user_id="alice", not_before=at(2)),
                             a_run("t", "theirs", user_id="bob", not_before=at(1))])
    claimed = await store.claim_runs(at(5), "n", limit=5, lease_seconds=1, user_id="alice")
    assert [run.id for run in claimed] == ["m"]


async def test_next_queued_at_is_the_earliest_queued_not_before(store: SqlStore) -> None:
    assert await store.next_queued_at() is None
    await store.insert_runs([a_run("a", "t", not_before=at(30), user_id="alice"),
                             a_run("b", "t", not_before=at(20), user_id="bob"),
                             a_run("c", "t", not_before=at(10), state=RunState.RUNNING)])
    assert await store.next_queued_at() == at(20)
    assert await store.next_queued_at(user_id="alice") == at(30)


async def test_finish_records_the_outcome_of_running_runs(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1", state=RunState.RUNNING, node="n"),
                             a_run("r2", state=RunState.RUNNING, node="n")])
    finished = await store.finish_runs([
        FinishedRun("r2", RunState.FAILED, at(9), exit_code=3, error="exit 3",
                    end_reason="exit_code", result={"lines": ["a", "b"]}),
        FinishedRun("r1", RunState.SUCCEEDED, at(8), exit_code=0, result="ok"),
    ])
    assert [run.id for run in finished] == ["r2", "r1"]
    r2 = await store.get_run("r2")
    assert (r2.state, r2.finished_at, r2.exit_code, r2.error, r2.end_reason, r2.result) == (
        RunState.FAILED, at(9), 3, "exit 3", "exit_code", {"lines": ["a", "b"]})
    assert finished[0] == r2
    assert (await store.get_run("r1")).result == "ok"


async def test_finish_leaves_runs_that_are_no_longer_running(store: SqlStore) -> None:
    await store.insert_runs([a_run("crashed", state=RunState.CRASHED, finished_at=at(1)),
                             a_run("queued")])
    finished = await store.finish_runs([FinishedRun("crashed", RunState.SUCCEEDED, at(5)),
                                        FinishedRun("queued", RunState.SUCCEEDED, at(5)),
                                        FinishedRun("unknown", RunState.SUCCEEDED, at(5))])
    assert finished == []
    assert (await store.get_run("crashed")).state is RunState.CRASHED
    assert (await store.get_run("queued")).state is RunState.QUEUED


async def test_finish_refuses_a_state_that_is_not_final(store: SqlStore) -> None:
    with pytest.raises(InvalidParams, match="state"):
        await store.finish_runs([FinishedRun("r", RunState.QUEUED, at(1))])


async def test_cancelling_a_queued_run_cancels_it_at_once(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1")])
    run = await store.cancel_run("r1", at(3), reason="by alice")
    assert (run.state, run.finished_at, run.end_reason) == (RunState.CANCELLED, at(3), "by alice")
    assert await store.get_run("r1") == run


async def test_cancelling_a_running_run_asks_its_dispatcher(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1", state=RunState.RUNNING, node="n")])
    run = await store.cancel_run("r1", at(3))
    assert (run.state, run.cancel_requested, run.finished_at) == (
        RunState.RUNNING, "cancelled", None)


async def test_cancelling_a_finished_run_is_a_conflict(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1", state=RunState.SUCCEEDED, finished_at=at(1))])
    with pytest.raises(Conflict, match="already finished"):
        await store.cancel_run("r1", at(3))


async def test_cancelling_an_unknown_run_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.cancel_run("nope", at(3))


async def test_heartbeat_renews_the_nodes_leases_and_reports_cancel_requests(
        store: SqlStore) -> None:
    await store.insert_runs([
        a_run("calm", state=RunState.RUNNING, node="a", lease_expires_at=at(10)),
        a_run("asked", state=RunState.RUNNING, node="a", cancel_requested="terminated"),
        a_run("foreign", state=RunState.RUNNING, node="b", lease_expires_at=at(10)),
        a_run("done", state=RunState.SUCCEEDED, node="a", lease_expires_at=at(10)),
    ])
    asked = await store.heartbeat_runs("a", ["calm", "asked", "foreign", "done"], at(5), at(50))
    assert [run.id for run in asked] == ["asked"]
    assert (await store.get_run("calm")).lease_expires_at == at(50)
    assert (await store.get_run("foreign")).lease_expires_at == at(10)
    assert (await store.get_run("done")).lease_expires_at == at(10)
    assert await store.heartbeat_runs("a", [], at(5), at(50)) == []


async def test_crash_runs_of_node_crashes_its_running_runs_only(store: SqlStore) -> None:
    await store.insert_runs([a_run("lost", state=RunState.RUNNING, node="a"),
                             a_run("other", state=RunState.RUNNING, node="b"),
                             a_run("waiting", node="a")])
    crashed = await store.crash_runs_of_node("a", at(7))
    assert [(r.id, r.state, r.finished_at, r.end_reason) for r in crashed] == [
        ("lost", RunState.CRASHED, at(7), "node_lost")]
    assert (await store.get_run("other")).state is RunState.RUNNING
    assert (await store.get_run("waiting")).state is RunState.QUEUED


async def test_get_run_of_an_unknown_id_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.get_run("nope")


async def test_inserting_an_existing_run_id_is_a_conflict(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1")])
    with pytest.raises(Conflict):
        await store.insert_runs([a_run("r1")])


async def test_a_run_with_every_field_set_reads_back_equal(store: SqlStore) -> None:
    full = a_run("full", "t9", state=RunState.TIMED_OUT, not_before=at(2), queued_at=at(1),
                 trigger=Trigger.RETRY, attempt=3, scheduled_for=at(0), started_at=at(3),
                 finished_at=at(4), end_reason="timeout", exit_code=-9, error="killed",
                 node="n1", triggered_by="alice", user_id="alice", variables={"K": "v"},
                 result={"partial": True}, parent_run_id="tree", retry_of="r0",
                 lease_expires_at=at(30), cancel_requested="terminated")
    await store.insert_runs([full])
    assert await store.get_run("full") == full


RUN_FILTERS: list[tuple[str, RunFilter, list[str]]] = [
    ("everything", RunFilter(), ["d", "c", "b", "a"]),
    ("task_id", RunFilter(task_id="t2"), ["c"]),
    ("user_id", RunFilter(user_id="bob"), ["d"]),
    ("state", RunFilter(state=RunState.RUNNING), ["b"]),
    ("trigger", RunFilter(trigger=Trigger.WEBHOOK), ["c"]),
    ("parent_run_id", RunFilter(parent_run_id="tree"), ["a"]),
    ("node", RunFilter(node="n2"), ["d"]),
    ("combined", RunFilter(task_id="t1", state=RunState.QUEUED), ["a"]),
]


@pytest.mark.parametrize(("case", "flt", "expected"), RUN_FILTERS,
                         ids=[case for case, _, _ in RUN_FILTERS])
async def test_list_runs_applies_each_filter_field_newest_first(
        store: SqlStore, case: str, flt: RunFilter, expected: list[str]) -> None:
    await store.insert_runs([
        a_run("a", "t1", queued_at=at(1), parent_run_id="tree"),
        a_run("b", "t1", queued_at=at(2), state=RunState.RUNNING, node="n1"),
        a_run("c", "t2", queued_at=at(3), trigger=Trigger.WEBHOOK),
        a_run("d", "t3", queued_at=at(4), user_id="bob", node="n2",
              state=RunState.SUCCEEDED),
    ])
    assert [run.id for run in await store.list_runs(flt)] == expected


async def test_list_runs_pages(store: SqlStore) -> None:
    await store.insert_runs([a_run(f"r{i}", queued_at=at(i)) for i in range(5)])
    page = await store.list_runs(RunFilter(), limit=2, offset=1)
    assert [run.id for run in page] == ["r3", "r2"]


async def test_count_runs_by_state_counts_every_state(store: SqlStore) -> None:
    await store.insert_runs([a_run("a"), a_run("b"),
                             a_run("c", state=RunState.FAILED, finished_at=at(1))])
    counts = await store.count_runs_by_state()
    assert counts == {**dict.fromkeys(RunState, 0), RunState.QUEUED: 2, RunState.FAILED: 1}

