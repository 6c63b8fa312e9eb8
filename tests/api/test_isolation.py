"""Users see and touch only their own tasks and runs; to them, someone else's task does not
exist (-32004, worded as for an id nobody has). Admins see everything. Run on SQLite and on
a real PostgreSQL server, end to end over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import Api, ApiFactory, fresh_pg_database

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DAILY: dict[str, Any] = {"schedule_type": "daily", "schedule_expression": "09:00",
                         "schedule_enabled": True}


@dataclass
class Two:
    """An app where alice owns a scheduled task with one run, and bob owns a task."""

    api: Api
    alices: dict[str, Any]
    alices_run: dict[str, Any]
    bobs: dict[str, Any]


@pytest.fixture(params=BACKENDS)
async def two(request: pytest.FixtureRequest, make_api: ApiFactory) -> AsyncIterator[Two]:
    async with AsyncExitStack() as stack:
        url = None
        if request.param == "postgres":
            url = await stack.enter_async_context(fresh_pg_database(request))
        api = await make_api(database_url=url)
        stack.push_async_callback(api.client.close)  # before its database is dropped
        alices = await api.create("alice's", user="alice", **DAILY)
        run = await api.call("tasks.run", {"task_id": alices["id"]}, user="alice")
        bobs = await api.create("bob's", user="bob")
        yield Two(api, alices, run, bobs)


def not_found_text(message: str, hidden_id: str) -> str:
    """The message with the id blanked, to compare 'someone else's' with 'nobody's'."""
    return message.replace(hidden_id, "<id>")


TASK_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("tasks.get", {}),
    ("tasks.update", {"name": "mine now"}),
    ("tasks.delete", {}),
    ("tasks.pause", {}),
    ("tasks.resume", {}),
    ("tasks.run", {}),
    ("tasks.tree", {}),
    ("tasks.scheduled.init", {}),
]


@pytest.mark.parametrize(("method", "extra"), TASK_METHODS,
                         ids=[method for method, _ in TASK_METHODS])
async def test_another_users_task_is_not_found_like_a_missing_one(
        two: Two, method: str, extra: dict[str, Any]) -> None:
    theirs = await two.api.error(method, {"task_id": two.alices["id"], **extra}, user="bob")
    nobodys = await two.api.error(method, {"task_id": "no-such-task", **extra}, user="bob")
    assert theirs.code == nobodys.code == -32004
    assert not_found_text(theirs.message, two.alices["id"]) == \
        not_found_text(nobodys.message, "no-such-task")


async def test_the_owners_task_is_unchanged_by_the_refused_calls(two: Two) -> None:
    for method, extra in TASK_METHODS:
        await two.api.error(method, {"task_id": two.alices["id"], **extra}, user="bob")
    after = await two.api.call("tasks.get", {"task_id": two.alices["id"]}, user="alice")
    assert after == {**two.alices, "run_count": after["run_count"]}
    runs = await two.api.call("tasks.runs.list", {"task_id": two.alices["id"]}, user="alice")
    assert [run["id"] for run in runs["runs"]] == [two.alices_run["id"]]


@pytest.mark.parametrize("method", ["tasks.runs.get", "tasks.runs.logs", "tasks.runs.cancel"])
async def test_another_users_run_is_not_found(two: Two, method: str) -> None:
    error = await two.api.error(method, {"run_id": two.alices_run["id"]}, user="bob")
    assert error.code == -32004
    assert two.api.token("bob") not in error.message


async def test_a_user_lists_only_their_own_tasks(two: Two) -> None:
    listed = await two.api.call("tasks.list", {}, user="bob")
    assert [task["id"] for task in listed["tasks"]] == [two.bobs["id"]]
    assert listed["total"] == 1


async def test_asking_for_another_users_tasks_lists_nothing(two: Two) -> None:
    listed = await two.api.call("tasks.list", {"user_id": "alice"}, user="bob")
    assert (listed["tasks"], listed["total"]) == ([], 0)


async def test_a_user_lists_only_their_own_runs_and_schedules(two: Two) -> None:
    runs = await two.api.call("tasks.runs.list", {}, user="bob")
    assert runs["runs"] == []
    scheduled = await two.api.call("tasks.scheduled.list", {}, user="bob")
    assert two.alices["id"] not in str(scheduled)


async def test_a_user_cannot_create_or_move_a_task_into_another_users_name(two: Two) -> None:
    create = await two.api.error("tasks.create", {"name": "x", "user_id": "alice"}, user="bob")
    assert create.code == -32003
    give = await two.api.error("tasks.update", {"task_id": two.bobs["id"], "user_id": "alice"},
                               user="bob")
    assert give.code == -32003


async def test_a_user_cannot_hang_a_task_under_another_users_task(two: Two) -> None:
    error = await two.api.error("tasks.create", {"name": "x", "parent_id": two.alices["id"]},
                                user="bob")
    assert error.code == -32602 and "parent_id" in error.message


async def test_an_admin_sees_and_touches_everything(two: Two) -> None:
    listed = await two.api.call("tasks.list", {}, user="root", role="admin")
    assert {task["id"] for task in listed["tasks"]} == {two.alices["id"], two.bobs["id"]}
    only_alice = await two.api.call("tasks.list", {"user_id": "alice"}, user="root",
                                    role="admin")
    assert [task["id"] for task in only_alice["tasks"]] == [two.alices["id"]]
    got = await two.api.call("tasks.runs.get", {"run_id": two.alices_run["id"]}, user="root",
                             role="admin")
    assert got["id"] == two.alices_run["id"]
    paused = await two.api.call("tasks.pause", {"task_id": two.alices["id"]}, user="root",
                                role="admin")
    assert paused["schedule_enabled"] is False and paused["user_id"] == "alice"
    deleted = await two.api.call("tasks.delete", {"task_id": two.bobs["id"]}, user="root",
                                 role="admin")
    assert deleted["deleted_ids"] == [two.bobs["id"]]


async def test_the_same_user_id_with_another_role_is_the_same_owner(two: Two) -> None:
    got = await two.api.call("tasks.get", {"task_id": two.alices["id"]}, user="alice",
                             role="admin")
    assert got["user_id"] == "alice"
