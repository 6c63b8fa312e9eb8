"""Task use cases: create, read, update, delete, list, tree, pause, resume."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apflow.clock import FakeClock
from apflow.domain.enums import TaskStatus
from apflow.domain.errors import Conflict, Forbidden, InvalidParams, NotFound, UnknownMethod
from apflow.domain.models import Task
from apflow.store.base import TaskOutcome
from apflow.store.sqlstore import SqlStore
from tests.service.conftest import START, Caller

RACES = 2  # fewer than the service's attempts

COMMAND = {"type": "command", "command": "echo hi"}


async def test_create_returns_every_contract_field(alice: Caller) -> None:
    task = await alice("tasks.create", name="report", executor=COMMAND, inputs={"a": 1})
    for field in ("id", "name", "description", "user_id", "parent_id", "dependencies", "status",
                  "executor", "inputs", "result", "error", "progress", "created_at",
                  "updated_at", "schedule_type", "schedule_expression", "timezone",
                  "schedule_enabled", "schedule_start_at", "schedule_end_at", "max_runs",
                  "run_count", "last_run_at", "next_run_at", "catch_up", "max_catch_up_runs",
                  "jitter_seconds", "timeout_seconds", "graceful_stop_seconds", "retry_limit",
                  "retry_delay_seconds", "retry_backoff", "max_concurrent", "on_overlap",
                  "queue_max", "api_trigger", "env"):
        assert field in task, field
    assert task["user_id"] == "alice"
    assert task["status"] == "pending"
    assert task["timezone"] == "UTC"
    assert task["created_at"] == START.isoformat()


async def test_enabled_daily_schedule_gets_its_next_run_in_its_timezone(alice: Caller) -> None:
    task = await alice("tasks.create", name="d", schedule_type="daily",
                       schedule_expression="09:00", timezone="Europe/Berlin",
                       schedule_enabled=True)
    # 08:00 UTC is 09:00 Berlin (CET): strictly after now, so tomorrow.
    assert task["next_run_at"] == "2026-03-03T08:00:00+00:00"


async def test_disabled_schedule_has_no_next_run(alice: Caller) -> None:
    task = await alice("tasks.create", name="d", schedule_type="cron",
                       schedule_expression="0 9 * * *")
    assert task["schedule_enabled"] is False
    assert task["next_run_at"] is None


async def test_interval_is_anchored_when_enabled(alice: Caller) -> None:
    task = await alice("tasks.create", name="i", schedule_type="interval",
                       schedule_expression="3600", schedule_enabled=True)
    assert task["next_run_at"] == (START + timedelta(hours=1)).isoformat()


async def test_update_of_schedule_recomputes_next_run(alice: Caller) -> None:
    task = await alice("tasks.create", name="t")
    updated = await alice("tasks.update", task_id=task["id"], schedule_type="daily",
                          schedule_expression="09:00", schedule_enabled=True,
                          timezone="Europe/Berlin")
    assert updated["next_run_at"] == "2026-03-03T08:00:00+00:00"
    again = await alice("tasks.update", task_id=task["id"], schedule_expression="10:00")
    assert again["next_run_at"] == "2026-03-02T09:00:00+00:00"


async def test_update_of_other_fields_keeps_next_run(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", schedule_type="interval",
                       schedule_expression="60", schedule_enabled=True)
    updated = await alice("tasks.update", task_id=task["id"], description="new words")
    assert updated["next_run_at"] == task["next_run_at"]
    assert updated["description"] == "new words"


async def test_past_once_schedule_is_disabled_not_left_pending(alice: Caller) -> None:
    task = await alice("tasks.create", name="o", schedule_type="once",
                       schedule_expression="2020-01-01T00:00:00Z", schedule_enabled=True)
    assert task["next_run_at"] is None
    assert task["schedule_enabled"] is False


@pytest.mark.parametrize(("params", "field"), [
    ({"name": 5}, "name"),
    ({"name": ""}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"name": "x" * 300}, "name"),
    ({"name": "t", "schedule_type": "hourly"}, "schedule_type"),
    ({"name": "t", "schedule_type": "cron", "schedule_expression": "61 * * * *"},
     "schedule_expression"),
    ({"name": "t", "schedule_type": "daily", "schedule_expression": "09:00",
      "timezone": "Mars/Olympus"}, "timezone"),
    ({"name": "t", "schedule_enabled": True}, "schedule_enabled"),
    ({"name": "t", "schedule_type": "daily"}, "schedule_expression"),
    ({"name": "t", "max_concurrent": 0}, "max_concurrent"),
    ({"name": "t", "max_concurrent": True}, "max_concurrent"),
    ({"name": "t", "retry_limit": "3"}, "retry_limit"),
    ({"name": "t", "timeout_seconds": 0}, "timeout_seconds"),
    ({"name": "t", "on_overlap": "explode"}, "on_overlap"),
    ({"name": "t", "env": {"A": 1}}, "env.A"),
    ({"name": "t", "env": []}, "env"),
    ({"name": "t", "inputs": "text"}, "inputs"),
    ({"name": "t", "executor": "echo"}, "executor"),
    ({"name": "t", "executor": {"type": "teleport"}}, "executor.type"),
    ({"name": "t", "schedule_start_at": "2026-01-01T00:00:00"}, "schedule_start_at"),
    ({"name": "t", "schedule_start_at": "yesterday"}, "schedule_start_at"),
    ({"name": "t", "colour": "red"}, "colour"),
    ({"name": "t", "status": "completed"}, "status"),
    ({"name": "t", "next_run_at": "2026-01-01T00:00:00Z"}, "next_run_at"),
    ({"name": "t", "dependencies": "abc"}, "dependencies"),
    ({"name": "t", "parent_id": "nope"}, "parent_id"),
])
async def test_bad_create_params_name_the_field_and_store_nothing(
        alice: Caller, params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        await alice("tasks.create", **params)
    assert caught.value.message.startswith(f"{field}:") or field in caught.value.message
    assert (await alice("tasks.list"))["total"] == 0


async def test_missing_name_is_refused(alice: Caller) -> None:
    with pytest.raises(InvalidParams, match="name: is required"):
        await alice("tasks.create")


async def test_positional_params_are_refused(service: object, alice: Caller) -> None:
    with pytest.raises(InvalidParams, match="object of named fields"):
        await alice.service.call("tasks.get", ["abc"], alice.principal)


async def test_unknown_method(alice: Caller) -> None:
    with pytest.raises(UnknownMethod):
        await alice("tasks.explode")


async def test_duplicate_id_is_a_conflict(alice: Caller) -> None:
    await alice("tasks.create", id="fixed-id", name="a")
    with pytest.raises(Conflict):
        await alice("tasks.create", id="fixed-id", name="b")


async def test_get_of_missing_task_is_not_found(alice: Caller) -> None:
    with pytest.raises(NotFound):
        await alice("tasks.get", task_id="nope")


async def test_users_are_kept_apart(alice: Caller, bob: Caller, admin: Caller) -> None:
    task = await alice("tasks.create", name="mine", schedule_type="interval",
                       schedule_expression="60", schedule_enabled=True)
    for method, extra in (("tasks.get", {}), ("tasks.update", {"name": "x"}),
                          ("tasks.delete", {}), ("tasks.pause", {}), ("tasks.resume", {}),
                          ("tasks.tree", {}), ("tasks.run", {}), ("tasks.skip", {}),
                          ("tasks.scheduled.init", {}), ("tasks.scheduled.complete", {}),
                          ("tasks.occurrences.list", {})):
        with pytest.raises(NotFound, match=f"task {task['id']} not found"):
            await bob(method, task_id=task["id"], **extra)
    assert (await bob("tasks.list"))["tasks"] == []
    assert (await bob("tasks.list", user_id="alice"))["tasks"] == []
    assert (await bob("tasks.scheduled.list"))["tasks"] == []
    assert (await admin("tasks.get", task_id=task["id"]))["name"] == "mine"
    assert (await admin("tasks.list"))["total"] == 1
    assert (await alice("tasks.get", task_id=task["id"]))["name"] == "mine"


async def test_only_admins_create_for_others(alice: Caller, admin: Caller) -> None:
    with pytest.raises(Forbidden):
        await alice("tasks.create", name="x", user_id="bob")
    made = await admin("tasks.create", name="x", user_id="bob")
    assert made["user_id"] == "bob"


async def test_list_filters_limit_and_offset(alice: Caller, clock: FakeClock) -> None:
    for index in range(5):
        await alice("tasks.create", name=f"t{index}")
        clock.advance(1)  # oldest first: created_at orders them
    page = await alice("tasks.list", limit=2, offset=1)
    assert [t["name"] for t in page["tasks"]] == ["t1", "t2"]
    assert page["total"] == 5
    assert (await alice("tasks.list", status="completed"))["total"] == 0
    with pytest.raises(InvalidParams, match="limit"):
        await alice("tasks.list", limit=0)
    with pytest.raises(InvalidParams, match="status"):
        await alice("tasks.list", status="weird")


async def test_tree_and_delete_of_subtree(alice: Caller, admin: Caller,
                                          clock: FakeClock) -> None:
    root = await alice("tasks.create", name="root")
    one = await alice("tasks.create", name="one", parent_id=root["id"])
    clock.advance(1)
    two = await alice("tasks.create", name="two", parent_id=root["id"],
                      dependencies=[one["id"]])
    await alice("tasks.create", name="leaf", parent_id=two["id"])
    tree = await alice("tasks.tree", task_id=root["id"])
    assert [c["name"] for c in tree["children"]] == ["one", "two"]
    assert tree["children"][1]["children"][0]["name"] == "leaf"
    deleted = await alice("tasks.delete", task_id=root["id"])
    assert deleted["deleted"] == 4
    assert (await admin("tasks.list"))["total"] == 0


async def test_dependencies_must_be_siblings_without_cycles(alice: Caller) -> None:
    root = await alice("tasks.create", name="root")
    one = await alice("tasks.create", name="one", parent_id=root["id"])
    two = await alice("tasks.create", name="two", parent_id=root["id"],
                      dependencies=[one["id"]])
    stranger = await alice("tasks.create", name="stranger")
    with pytest.raises(InvalidParams, match="not a sibling"):
        await alice("tasks.create", name="x", parent_id=root["id"],
                    dependencies=[stranger["id"]])
    with pytest.raises(InvalidParams, match="cycle"):
        await alice("tasks.update", task_id=one["id"], dependencies=[two["id"]])
    with pytest.raises(InvalidParams, match="itself"):
        await alice("tasks.update", task_id=one["id"], parent_id=one["id"])


async def test_parent_of_another_user_is_refused(alice: Caller, bob: Caller) -> None:
    theirs = await bob("tasks.create", name="bobs")
    with pytest.raises(InvalidParams, match="parent_id"):
        await alice("tasks.create", name="x", parent_id=theirs["id"])


async def test_pause_and_resume_ledger_the_slots_slept_through(alice: Caller,
                                                               clock: FakeClock) -> None:
    task = await alice("tasks.create", name="i", schedule_type="interval",
                       schedule_expression="600", schedule_enabled=True)
    paused = await alice("tasks.pause", task_id=task["id"])
    assert paused["schedule_enabled"] is False
    clock.advance(3600 + 60)  # six 10-minute slots pass
    resumed = await alice("tasks.resume", task_id=task["id"])
    assert resumed["schedule_enabled"] is True
    assert resumed["next_run_at"] == (START + timedelta(minutes=70)).isoformat()
    ledger = await alice("tasks.occurrences.list", task_id=task["id"])
    assert [row["outcome"] for row in ledger["occurrences"]] == ["paused"] * 6


async def test_pause_of_unscheduled_task_is_a_conflict(alice: Caller) -> None:
    task = await alice("tasks.create", name="plain")
    with pytest.raises(Conflict):
        await alice("tasks.pause", task_id=task["id"])


async def test_env_secrets_are_masked_when_read_back(alice: Caller) -> None:
    task = await alice("tasks.create", name="s", env={"DB_PASSWORD": "hunter22", "MODE": "x"})
    assert task["env"] == {"DB_PASSWORD": "****", "MODE": "x"}


async def test_sending_a_masked_env_back_keeps_the_secret(alice: Caller, service: object) -> None:
    from apflow.service import Service

    assert isinstance(service, Service)
    task = await alice("tasks.create", name="s", env={"API_TOKEN": "abcd1234"})
    await alice("tasks.update", task_id=task["id"], env={**task["env"], "MODE": "y"})
    stored = await service.store.get_task(task["id"])
    assert dict(stored.env) == {"API_TOKEN": "abcd1234", "MODE": "y"}


async def test_webhook_secret_is_never_returned(alice: Caller) -> None:
    task = await alice("tasks.create", name="w", webhook_secret="s3cret-s3cret-s3cret")
    assert "webhook_secret" not in task
    assert task["webhook_secret_set"] is True
    with pytest.raises(InvalidParams, match="webhook_secret"):
        await alice("tasks.create", name="w", webhook_secret="short")


@pytest.mark.parametrize(("params", "field"), [
    ({"inputs": {"a": {"b": "x\x00y"}}}, "inputs.a.b"),
    ({"inputs": {"list": ["ok", "\x00"]}}, "inputs.list[1]"),
    ({"executor": {"type": "command", "command": "echo", "env": {"K\x00": "v"}}},
     "executor.env"),
])
async def test_nul_nested_in_json_fields_is_refused_naming_it(
        alice: Caller, params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        await alice("tasks.create", name="n", **params)
    assert caught.value.message.startswith(f"{field}:")


async def test_a_change_racing_the_engines_status_write_is_read_again_and_keeps_both(
        alice: Caller, store: SqlStore, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    task = await alice("tasks.create", name="i", schedule_type="interval",
                       schedule_expression="600", schedule_enabled=True)
    read = store.get_task
    races: list[str] = []

    async def read_then_engine_writes(task_id: str) -> Task:
        found = await read(task_id)
        if len(races) < RACES:  # a run's status lands between the read and the write
            clock.advance(1)
            await store.set_task_outcomes(
                [TaskOutcome(task_id, TaskStatus.IN_PROGRESS, progress=0.5)], clock.now())
            races.append(task_id)
        return found

    monkeypatch.setattr(store, "get_task", read_then_engine_writes)
    paused = await alice("tasks.pause", task_id=task["id"])
    assert paused["schedule_enabled"] is False and len(races) == RACES
    assert (paused["status"], paused["progress"]) == ("in_progress", 0.5)  # the engine's kept
    races.clear()
    renamed = await alice("tasks.update", task_id=task["id"], name="j")
    assert renamed["name"] == "j" and len(races) == RACES


async def test_a_change_that_keeps_losing_the_race_is_a_conflict(
        alice: Caller, store: SqlStore, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    task = await alice("tasks.create", name="busy")
    read = store.get_task

    async def read_then_engine_writes(task_id: str) -> Task:
        found = await read(task_id)
        clock.advance(1)
        await store.set_task_outcomes([TaskOutcome(task_id, TaskStatus.IN_PROGRESS)],
                                      clock.now())
        return found

    monkeypatch.setattr(store, "get_task", read_then_engine_writes)
    with pytest.raises(Conflict, match="changed since it was read"):
        await alice("tasks.update", task_id=task["id"], name="never")
    assert (await read(task["id"])).name == "busy"
