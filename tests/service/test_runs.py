"""tasks.run and tasks.runs.* through the service, without an engine in this process:
runs are queued in the store for whichever node runs the loops."""

from __future__ import annotations

import pytest

from apflow.domain.errors import Conflict, Forbidden, InvalidParams, NotFound
from tests.service.conftest import Caller

COMMAND = {"type": "command", "command": "true"}


async def test_run_queues_a_manual_run(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND)
    run = await alice("tasks.run", task_id=task["id"], variables={"WHO": "me"})
    assert (run["state"], run["trigger"], run["triggered_by"]) == ("queued", "manual", "alice")
    assert run["variables"] == {"WHO": "me"}
    listed = await alice("tasks.runs.list", task_id=task["id"])
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    assert (await alice("tasks.runs.get", run_id=run["id"]))["id"] == run["id"]


async def test_run_refused_when_api_trigger_is_false(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND, api_trigger=False)
    with pytest.raises(Forbidden):
        await alice("tasks.run", task_id=task["id"])


async def test_forbid_overlap_refuses_a_second_manual_run(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND, on_overlap="forbid")
    await alice("tasks.run", task_id=task["id"])
    with pytest.raises(Conflict):
        await alice("tasks.run", task_id=task["id"])


async def test_bad_variables_are_refused(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND)
    with pytest.raises(InvalidParams, match="variables"):
        await alice("tasks.run", task_id=task["id"], variables={"A": 1})
    with pytest.raises(InvalidParams, match="variables"):
        await alice("tasks.run", task_id=task["id"], variables={"LD_PRELOAD": "/x.so"})
    assert (await alice("tasks.runs.list", task_id=task["id"]))["runs"] == []


async def test_cancel_of_queued_run_and_again(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND)
    run = await alice("tasks.run", task_id=task["id"])
    cancelled = await alice("tasks.runs.cancel", run_id=run["id"])
    assert cancelled["state"] == "cancelled"
    with pytest.raises(Conflict):
        await alice("tasks.runs.cancel", run_id=run["id"])


async def test_runs_of_others_are_not_found(alice: Caller, bob: Caller, admin: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND)
    run = await alice("tasks.run", task_id=task["id"])
    for method in ("tasks.runs.get", "tasks.runs.cancel", "tasks.runs.logs"):
        with pytest.raises(NotFound):
            await bob(method, run_id=run["id"])
    assert (await bob("tasks.runs.list"))["runs"] == []
    assert len((await admin("tasks.runs.list"))["runs"]) == 1


async def test_history_of_deleted_task_stays_readable_to_admins(alice: Caller,
                                                                admin: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND)
    run = await alice("tasks.run", task_id=task["id"])
    deleted = await alice("tasks.delete", task_id=task["id"])
    assert deleted["cancelled_runs"] == [run["id"]]
    seen = await admin("tasks.runs.get", run_id=run["id"])
    assert seen["state"] == "cancelled"
    assert (await admin("tasks.occurrences.list", task_id=task["id"]))["occurrences"] == []


async def test_logs_of_a_run_without_output(alice: Caller) -> None:
    task = await alice("tasks.create", name="t", executor=COMMAND)
    run = await alice("tasks.run", task_id=task["id"])
    page = await alice("tasks.runs.logs", run_id=run["id"])
    assert page["chunks"] == [] and page["next_seq"] == -1 and page["finished"] is False
    with pytest.raises(InvalidParams, match="after_seq"):
        await alice("tasks.runs.logs", run_id=run["id"], after_seq="x")
