"""`?async=false` waits for the run (an engine in the app runs it for real), and the JSON-RPC
method tasks.webhook.trigger does the same for a caller with a JWT."""

from __future__ import annotations

import pytest

from apflow.clock import SystemClock
from tests.webhook.conftest import Gateway, GatewayFactory, RpcError


@pytest.fixture
async def engine_gw(make_gateway: GatewayFactory) -> Gateway:
    """The app with its engine running, on the wall clock."""
    return await make_gateway(clock=SystemClock(), run_engine=True)


async def test_async_false_answers_200_with_the_finished_run(engine_gw: Gateway) -> None:
    task = await engine_gw.create(executor={"type": "command", "command": "exit 0"})
    answer = await engine_gw.trigger(task["id"], query="async=false")
    assert answer.status == 200, answer.body
    assert (answer.body["state"], answer.body["finished"]) == ("succeeded", True)
    assert answer.body["run"]["exit_code"] == 0
    assert answer.body["run"]["trigger"] == "webhook"
    assert answer.body["children"] == []


async def test_async_false_reports_a_failed_run(engine_gw: Gateway) -> None:
    task = await engine_gw.create(executor={"type": "command", "command": "exit 3"})
    answer = await engine_gw.trigger(task["id"], query="async=false")
    assert answer.status == 200
    assert (answer.body["state"], answer.body["run"]["exit_code"]) == ("failed", 3)


async def test_async_false_on_a_tree_lists_the_child_runs(engine_gw: Gateway) -> None:
    root = await engine_gw.create("root", executor=None)
    first = await engine_gw.create("first", parent_id=root["id"])
    second = await engine_gw.create("second", parent_id=root["id"],
                                    dependencies=[first["id"]])
    answer = await engine_gw.trigger(root["id"], query="async=false")
    assert answer.status == 200, answer.body
    assert answer.body["state"] == "succeeded"
    children = {child["task_id"]: child["state"] for child in answer.body["children"]}
    assert children == {first["id"]: "succeeded", second["id"]: "succeeded"}
    assert {child["parent_run_id"] for child in answer.body["children"]} == {
        answer.body["run_id"]}


async def test_async_true_is_the_default_and_answers_202(engine_gw: Gateway) -> None:
    task = await engine_gw.create()
    for query in ("", "async=true"):
        answer = await engine_gw.trigger(task["id"], query=query,
                                         body=f'{{"nonce": "{query}"}}'.encode())
        assert (answer.status, answer.body["trigger"]) == (202, "webhook"), answer.body


async def test_an_async_value_that_is_not_a_boolean_is_400(gw: Gateway) -> None:
    task = await gw.create()
    answer = await gw.trigger(task["id"], query="async=later")
    assert (answer.status, answer.message) == (400, "async: must be true or false")
    assert await gw.runs() == []


# JSON-RPC -------------------------------------------------------------------------------------


async def test_rpc_webhook_trigger_queues_a_webhook_run_as_the_caller(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    result = await gw.call("tasks.webhook.trigger",
                           {"task_id": task["id"], "variables": {"A": "1"}}, user="alice")
    assert (result["state"], result["trigger"]) == ("queued", "webhook")
    (run,) = await gw.runs()
    assert (run.id, run.triggered_by, dict(run.variables)) == (result["run_id"], "alice",
                                                               {"A": "1"})


async def test_rpc_webhook_trigger_waits_when_async_execution_is_false(
        engine_gw: Gateway) -> None:
    task = await engine_gw.create()
    result = await engine_gw.call("tasks.webhook.trigger",
                                  {"task_id": task["id"], "async_execution": False})
    assert (result["state"], result["finished"]) == ("succeeded", True)


async def test_rpc_webhook_trigger_hides_someone_elses_task(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    with pytest.raises(RpcError) as error:
        await gw.call("tasks.webhook.trigger", {"task_id": task["id"]}, user="bob")
    assert error.value.code == -32004
    assert await gw.runs() == []


async def test_rpc_webhook_trigger_refuses_api_trigger_false(gw: Gateway) -> None:
    task = await gw.create(api_trigger=False)
    with pytest.raises(RpcError) as error:
        await gw.call("tasks.webhook.trigger", {"task_id": task["id"]})
    assert error.value.code == -32003


@pytest.mark.parametrize(("params", "field"), [
    ({"async_execution": "no"}, "async_execution"),
    ({"variables": {"A": 1}}, "variables.A"),
    ({"wait": True}, "wait"),
])
async def test_rpc_webhook_trigger_checks_its_params(gw: Gateway, params: dict[str, object],
                                                    field: str) -> None:
    task = await gw.create()
    with pytest.raises(RpcError) as error:
        await gw.call("tasks.webhook.trigger", {"task_id": task["id"], **params})
    assert error.value.code == -32602
    assert error.value.message.startswith(f"{field}:")
