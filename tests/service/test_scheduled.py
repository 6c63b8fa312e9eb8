"""tasks.scheduled.*, tasks.skip and the ledger through the service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apflow.clock import FakeClock
from apflow.domain.errors import Conflict, InvalidParams
from tests.service.conftest import START, Caller


async def daily(caller: Caller, **extra: object) -> dict[str, object]:
    task: dict[str, object] = await caller(
        "tasks.create", name="daily", schedule_type="daily", schedule_expression="09:00",
        schedule_enabled=True, **extra)
    return task


async def test_init_from_time_sets_first_slot_strictly_after(alice: Caller) -> None:
    task = await daily(alice)
    done = await alice("tasks.scheduled.init", task_id=task["id"],
                       from_time="2026-05-01T09:00:00Z")
    assert done["next_run_at"] == "2026-05-02T09:00:00+00:00"


async def test_init_of_interval_anchors_at_from_time(alice: Caller) -> None:
    task = await alice("tasks.create", name="i", schedule_type="interval",
                       schedule_expression="90", schedule_enabled=True)
    done = await alice("tasks.scheduled.init", task_id=task["id"],
                       from_time="2026-05-01T00:00:00+02:00")
    assert done["next_run_at"] == "2026-04-30T22:01:30+00:00"


async def test_init_of_unscheduled_task_is_refused(alice: Caller) -> None:
    task = await alice("tasks.create", name="plain")
    with pytest.raises(InvalidParams, match="task_id"):
        await alice("tasks.scheduled.init", task_id=task["id"])


async def test_due_lists_only_tasks_whose_time_has_come(alice: Caller, clock: FakeClock) -> None:
    task = await daily(alice)
    assert (await alice("tasks.scheduled.due"))["tasks"] == []
    clock.advance(25 * 3600)
    due = await alice("tasks.scheduled.due")
    assert [t["id"] for t in due["tasks"]] == [task["id"]]


async def test_complete_counts_the_slot_and_moves_on(alice: Caller, clock: FakeClock) -> None:
    task = await daily(alice)
    clock.set(START + timedelta(days=1, minutes=5))  # 08:05 the next day: yesterday's 09:00 was due
    done = await alice("tasks.scheduled.complete", task_id=task["id"], result={"rows": 3})
    assert done["run_count"] == 1
    assert done["status"] == "completed"
    assert done["result"] == {"rows": 3}
    assert done["next_run_at"] == "2026-03-03T09:00:00+00:00"
    ledger = await alice("tasks.occurrences.list", task_id=task["id"])
    assert [(o["scheduled_for"], o["outcome"]) for o in ledger["occurrences"]] == [
        ("2026-03-02T09:00:00+00:00", "fired")]


async def test_complete_with_failure_records_error(alice: Caller, clock: FakeClock) -> None:
    task = await daily(alice)
    clock.advance(26 * 3600)
    done = await alice("tasks.scheduled.complete", task_id=task["id"], success=False,
                       error="disk full")
    assert (done["status"], done["error"]) == ("failed", "disk full")


async def test_list_shows_enabled_unless_all(alice: Caller) -> None:
    await daily(alice)
    off = await alice("tasks.create", name="off", schedule_type="cron",
                      schedule_expression="0 * * * *")
    await alice("tasks.create", name="plain")
    enabled = await alice("tasks.scheduled.list")
    assert [t["name"] for t in enabled["tasks"]] == ["daily"]
    everything = await alice("tasks.scheduled.list", enabled_only=False)
    assert {t["name"] for t in everything["tasks"]} == {"daily", "off"}
    crons = await alice("tasks.scheduled.list", enabled_only=False, schedule_type="cron")
    assert [t["id"] for t in crons["tasks"]] == [off["id"]]


async def test_preview_flags_dst_shift(alice: Caller) -> None:
    result = await alice("tasks.scheduled.preview", schedule_type="daily",
                         schedule_expression="02:30", timezone="Europe/Berlin", count=3,
                         from_time="2026-03-27T12:00:00Z")
    items = result["occurrences"]
    assert [i["at"] for i in items] == ["2026-03-28T01:30:00+00:00",
                                        "2026-03-29T01:00:00+00:00",
                                        "2026-03-30T00:30:00+00:00"]
    assert [i["dst_shifted"] for i in items] == [False, True, False]


@pytest.mark.parametrize(("params", "field"), [
    ({"schedule_type": "daily", "schedule_expression": "25:00"}, "schedule_expression"),
    ({"schedule_type": "cron", "schedule_expression": "* * *"}, "schedule_expression"),
    ({"schedule_type": "daily", "schedule_expression": "09:00", "timezone": "Nowhere"},
     "timezone"),
    ({"schedule_type": "daily", "schedule_expression": "09:00", "count": 0}, "count"),
    ({"schedule_type": "daily", "schedule_expression": "09:00", "count": 5000}, "count"),
    ({"schedule_type": "daily", "schedule_expression": "09:00", "from_time": 12}, "from_time"),
    ({"schedule_expression": "09:00"}, "schedule_type"),
])
async def test_preview_bad_params(alice: Caller, params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParams, match=field):
        await alice("tasks.scheduled.preview", **params)


async def test_skip_ledgers_the_next_slots_with_who_and_why(alice: Caller) -> None:
    task = await daily(alice)
    result = await alice("tasks.skip", task_id=task["id"], count=2, reason="holiday")
    assert result["skipped"] == ["2026-03-02T09:00:00+00:00", "2026-03-03T09:00:00+00:00"]
    assert result["next_run_at"] == "2026-03-04T09:00:00+00:00"
    ledger = await alice("tasks.occurrences.list", task_id=task["id"], outcome="skipped")
    rows = ledger["occurrences"]
    assert len(rows) == 2
    assert all(r["requested_by"] == "alice" and "holiday" in r["detail"] for r in rows)


async def test_skip_of_paused_task_is_a_conflict(alice: Caller) -> None:
    task = await daily(alice)
    await alice("tasks.pause", task_id=task["id"])
    with pytest.raises(Conflict):
        await alice("tasks.skip", task_id=task["id"])


async def test_status_reports_counts(admin: Caller, alice: Caller, clock: FakeClock) -> None:
    await daily(alice)
    clock.advance(2 * 86400)
    status = await admin("scheduler.status")
    assert status["scheduled_tasks"] == 1
    assert status["due_tasks"] == 1
    assert status["node"] is None
    assert status["runs"]["queued"] == 0
    assert "nodes" in status
    assert "nodes" not in await alice("scheduler.status")


async def test_status_flags_runs_going_twice_as_long_as_usual(
        admin: Caller, alice: Caller, service: object, clock: FakeClock) -> None:
    from datetime import timedelta as td

    from apflow.domain.enums import RunState, Trigger
    from apflow.domain.models import Run
    from apflow.service import Service

    assert isinstance(service, Service)
    task = await alice("tasks.create", name="etl")
    t0 = clock.now()
    history = [Run(id=f"old{i}", task_id=task["id"], trigger=Trigger.MANUAL,
                   state=RunState.SUCCEEDED, queued_at=t0, not_before=t0, started_at=t0,
                   finished_at=t0 + td(seconds=10), user_id="alice") for i in range(3)]
    await service.store.insert_runs(history)
    await service.store.insert_runs([Run(
        id="now", task_id=task["id"], trigger=Trigger.MANUAL, state=RunState.QUEUED,
        queued_at=t0, not_before=t0, user_id="alice")])
    await service.store.claim_runs(t0, "n1", limit=1, lease_seconds=3600)
    clock.advance(15)
    assert (await admin("scheduler.status"))["degraded_runs"] == []
    clock.advance(10)
    flagged = (await alice("scheduler.status"))["degraded_runs"]
    assert [(f["run_id"], f["usual_seconds"]) for f in flagged] == [("now", 10.0)]
