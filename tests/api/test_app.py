"""The app factory: with `run_engine` the API and this node's engine share one event loop, so a
run asked for over HTTP is executed by the same process; without it runs stay queued for
whichever node runs an engine."""

from __future__ import annotations

from apflow.api.keys import ENGINE, SERVICE
from apflow.clock import SystemClock
from tests.api.conftest import ApiFactory
from tests.api.test_rpc_protocol import wait_for_state


async def test_with_run_engine_a_run_asked_for_over_http_is_executed(
        make_api: ApiFactory) -> None:
    api = await make_api(clock=SystemClock(), run_engine=True)
    engine = api.app[ENGINE]
    assert engine is not None
    assert api.app[SERVICE].engine is engine
    task = await api.create("hello", executor={"type": "command", "command": "echo served"})
    run = await api.call("tasks.run", {"task_id": task["id"]})
    finished = await wait_for_state(api, run["id"], "succeeded")
    assert finished["node"] == engine.node_id
    logs = await api.call("tasks.runs.logs", {"run_id": run["id"]})
    assert "served" in logs["text"]


async def test_without_run_engine_a_run_is_only_queued(make_api: ApiFactory) -> None:
    api = await make_api(clock=SystemClock())
    assert api.app[ENGINE] is None
    task = await api.create("hello", executor={"type": "command", "command": "echo served"})
    run = await api.call("tasks.run", {"task_id": task["id"]})
    assert run["state"] == "queued"
    assert (await api.call("tasks.runs.get", {"run_id": run["id"]}))["state"] == "queued"
