"""JSON-RPC 2.0 over POST /tasks: single calls, batches, notifications, and the error codes
of the protocol (-32700, -32600, -32601, -32602) and of the domain; never HTTP 500, never a
traceback in an answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from apflow.api.keys import STORE
from apflow.api.rpc import MAX_BATCH, MAX_DEPTH
from apflow.clock import SystemClock
from apflow.config import ApiConfig
from tests.api.conftest import Api, ApiFactory


def request(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        body["params"] = params
    return body


def notification(method: str, params: Any = None) -> dict[str, Any]:
    body = request(method, params)
    del body["id"]
    return body


def assert_error(answer: Any, code: int, request_id: Any = None) -> str:
    """`answer` is one JSON-RPC error object with this code and id; its message."""
    assert isinstance(answer, dict), answer
    assert answer["jsonrpc"] == "2.0"
    assert answer["id"] == request_id
    assert "result" not in answer
    assert answer["error"]["code"] == code, answer
    message = str(answer["error"]["message"])
    assert "Traceback" not in message
    return message


# single calls ------------------------------------------------------------------------------


async def test_a_call_answers_its_result_with_its_id(api: Api) -> None:
    status, answer = await api.post(request("tasks.list", {}, "abc-1"), headers=api.headers())
    assert status == 200
    assert answer == {"jsonrpc": "2.0", "id": "abc-1",
                      "result": {"tasks": [], "total": 0, "limit": 100, "offset": 0}}


async def test_params_may_be_omitted(api: Api) -> None:
    status, answer = await api.post(request("tasks.list"), headers=api.headers())
    assert status == 200 and answer["result"]["total"] == 0


async def test_a_null_id_is_an_id_and_gets_an_answer(api: Api) -> None:
    status, answer = await api.post(request("tasks.list", request_id=None),
                                    headers=api.headers())
    assert status == 200 and answer["id"] is None and "result" in answer


@pytest.mark.parametrize("path", ["/tasks", "/tasks/"])
async def test_both_paths_serve_json_rpc(api: Api, path: str) -> None:
    status, answer = await api.post(request("tasks.list"), headers=api.headers(), path=path)
    assert status == 200 and "result" in answer


async def test_the_content_type_is_not_required_but_the_answer_is_json(api: Api) -> None:
    headers = {**api.headers(), "Content-Type": "text/plain"}
    async with api.client.post("/tasks", data=b'{"jsonrpc":"2.0","method":"tasks.list",'
                               b'"id":7}', headers=headers) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert (await response.json())["id"] == 7


async def test_get_is_405(api: Api) -> None:
    async with api.client.get("/tasks", headers=api.headers()) as response:
        assert response.status == 405


# notifications -----------------------------------------------------------------------------


async def test_a_notification_runs_and_gets_204(api: Api) -> None:
    status, answer = await api.post(notification("tasks.create", {"name": "quiet"}),
                                    headers=api.headers())
    assert (status, answer) == (204, None)
    listed = await api.call("tasks.list")
    assert [task["name"] for task in listed["tasks"]] == ["quiet"]


async def test_a_failing_notification_still_gets_nothing(api: Api) -> None:
    status, answer = await api.post(notification("tasks.get", {"task_id": "nope"}),
                                    headers=api.headers())
    assert (status, answer) == (204, None)


async def test_a_batch_of_notifications_gets_204(api: Api) -> None:
    batch = [notification("tasks.create", {"name": f"n{i}"}) for i in range(3)]
    status, answer = await api.post(batch, headers=api.headers())
    assert (status, answer) == (204, None)
    assert (await api.call("tasks.list"))["total"] == 3


# batches -----------------------------------------------------------------------------------


async def test_a_batch_answers_every_call_in_request_order(api: Api) -> None:
    n = 20
    batch = [request("tasks.create", {"name": f"task {i}"}, i) for i in range(n)]
    status, answer = await api.post(batch, headers=api.headers())
    assert status == 200
    assert [item["id"] for item in answer] == list(range(n))
    assert [item["result"]["name"] for item in answer] == [f"task {i}" for i in range(n)]
    assert (await api.call("tasks.list"))["total"] == n


async def test_a_batch_leaves_out_notifications_and_keeps_errors_in_place(api: Api) -> None:
    batch = [
        request("tasks.create", {"name": "a"}, "first"),
        notification("tasks.create", {"name": "b"}),
        request("tasks.get", {"task_id": "missing"}, "second"),
        request("no.such.method", {}, "third"),
    ]
    status, answer = await api.post(batch, headers=api.headers())
    assert status == 200
    assert [item["id"] for item in answer] == ["first", "second", "third"]
    assert answer[0]["result"]["name"] == "a"
    assert_error(answer[1], -32004, "second")
    assert_error(answer[2], -32601, "third")


async def test_batch_members_run_concurrently(make_api: ApiFactory) -> None:
    """A log follow waits until its run ends; the cancel after it in the same batch can end
    the run only if the members run at the same time (in turn, the follow would wait its
    whole 20 s timeout, and the sleep 30 run would still be running)."""
    api = await make_api(clock=SystemClock(), run_engine=True)
    task = await api.create("sleeper", executor={"type": "command", "command": "sleep 30"})
    run = await api.call("tasks.run", {"task_id": task["id"]})
    await wait_for_state(api, run["id"], "running")
    batch = [request("tasks.runs.logs", {"run_id": run["id"], "follow": True, "timeout": 20},
                     "follow"),
             request("tasks.runs.cancel", {"run_id": run["id"]}, "cancel")]
    started = time.monotonic()
    status, answer = await api.post(batch, headers=api.headers())
    elapsed = time.monotonic() - started
    assert status == 200, answer
    assert [item["id"] for item in answer] == ["follow", "cancel"]
    assert "result" in answer[0] and "result" in answer[1], answer
    assert elapsed < 10, f"the batch took {elapsed:.1f} s: its members ran one after another"
    assert (await wait_for_state(api, run["id"], "cancelled"))["state"] == "cancelled"


async def wait_for_state(api: Api, run_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        run: dict[str, Any] = await api.call("tasks.runs.get", {"run_id": run_id})
        if run["state"] == state:
            return run
        assert time.monotonic() < deadline, f"run still {run['state']}, not {state}"
        await asyncio.sleep(0.05)


async def test_an_empty_batch_is_one_invalid_request(api: Api) -> None:
    status, answer = await api.post([], headers=api.headers())
    assert status == 200
    assert "empty" in assert_error(answer, -32600)


async def test_a_batch_over_the_limit_is_one_invalid_request(api: Api) -> None:
    batch = [request("tasks.list", {}, i) for i in range(MAX_BATCH + 1)]
    status, answer = await api.post(batch, headers=api.headers())
    assert status == 200
    assert_error(answer, -32600)


async def test_invalid_members_of_a_batch_get_their_own_errors(api: Api) -> None:
    batch = [1, "x", {"jsonrpc": "2.0", "method": "tasks.list", "id": 5}, {"foo": "bar"}]
    status, answer = await api.post(batch, headers=api.headers())
    assert status == 200 and len(answer) == 4
    assert_error(answer[0], -32600)
    assert_error(answer[1], -32600)
    assert answer[2]["id"] == 5 and "result" in answer[2]
    assert_error(answer[3], -32600)


# parse errors and invalid requests ---------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"", b"{", b"{'jsonrpc': '2.0'}", b'{"jsonrpc":"2.0","method":"tasks.list","id":1,}',
    b"\xff\xfe{}", b'{"jsonrpc":"2.0","method":"tasks.list","id":NaN}',
    b'{"jsonrpc":"2.0","method":"tasks.list","id":1e999}',
    b'["\\ud800"]', b"\xef\xbb\xbf{}", b"[" * 100_000 + b"]" * 100_000,
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b'{"id": ' + b"9" * 5000 + b"}",
], ids=["empty", "truncated", "single-quotes", "trailing-comma", "not-utf8", "nan",
        "infinite", "lone-surrogate", "bom", "deep", "over-max-depth", "huge-int"])
async def test_a_body_that_is_not_json_is_a_parse_error(api: Api, body: bytes) -> None:
    status, answer = await api.post(body, headers=api.headers())
    assert status == 200
    assert_error(answer, -32700)


async def test_a_paired_surrogate_escape_is_fine(api: Api) -> None:
    body = b'{"jsonrpc":"2.0","method":"tasks.create","id":1,"params":{"name":"\\ud83d\\ude00"}}'
    status, answer = await api.post(body, headers=api.headers())
    assert status == 200 and answer["result"]["name"] == "\U0001f600"


@pytest.mark.parametrize("body", [42, '"tasks.list"', None, True, {}])
async def test_a_request_that_is_not_an_object_is_invalid(api: Api, body: Any) -> None:
    status, answer = await api.post(body, headers=api.headers())
    assert status == 200
    assert_error(answer, -32600)


@pytest.mark.parametrize(("body", "request_id"), [
    ({"method": "tasks.list", "id": 1}, 1),
    ({"jsonrpc": "1.0", "method": "tasks.list", "id": 1}, 1),
    ({"jsonrpc": 2.0, "method": "tasks.list", "id": 1}, 1),
    ({"jsonrpc": "2.0", "id": 1}, 1),
    ({"jsonrpc": "2.0", "method": 42, "id": 1}, 1),
    ({"jsonrpc": "2.0", "method": None, "id": 1}, 1),
    ({"jsonrpc": "2.0", "method": "tasks.list", "id": True}, None),
    ({"jsonrpc": "2.0", "method": "tasks.list", "id": {"a": 1}}, None),
    ({"jsonrpc": "2.0", "method": "tasks.list", "id": [1]}, None),
    ({"jsonrpc": "2.0", "method": "tasks.list"} | {"jsonrpc": "3"}, None),
], ids=["no-jsonrpc", "jsonrpc-1.0", "jsonrpc-number", "no-method", "method-number",
        "method-null", "id-bool", "id-object", "id-array", "notification-wrong-version"])
async def test_a_wrong_shape_is_an_invalid_request(api: Api, body: dict[str, Any],
                                                   request_id: Any) -> None:
    status, answer = await api.post(body, headers=api.headers())
    assert status == 200
    assert_error(answer, -32600, request_id)


async def test_an_unknown_method_is_32601(api: Api) -> None:
    status, answer = await api.post(request("tasks.nope"), headers=api.headers())
    assert status == 200
    assert "tasks.nope" in assert_error(answer, -32601, 1)


@pytest.mark.parametrize("params", [["t1"], 42, "x", True])
async def test_params_that_are_not_an_object_are_32602(api: Api, params: Any) -> None:
    status, answer = await api.post(request("tasks.get", params), headers=api.headers())
    assert status == 200
    assert "params" in assert_error(answer, -32602, 1)


@pytest.mark.parametrize(("params", "field"), [
    ({"name": 42}, "name"),
    ({"name": "x", "schedule_type": "cron", "schedule_expression": "61 * * * *"},
     "schedule_expression"),
    ({"name": "x", "timezone": "Mars/Olympus", "schedule_type": "daily",
      "schedule_expression": "09:00"}, "timezone"),
    ({"name": "x", "max_concurrent": "many"}, "max_concurrent"),
    ({"name": "x", "colour": "blue"}, "colour"),
])
async def test_invalid_params_name_the_field(api: Api, params: dict[str, Any],
                                             field: str) -> None:
    error = await api.error("tasks.create", params)
    assert error.code == -32602
    assert field in error.message


async def test_domain_errors_keep_their_codes(api: Api) -> None:
    await api.create("one", id="fixed-id")
    assert (await api.error("tasks.create", {"name": "two", "id": "fixed-id"})).code == -32009
    assert (await api.error("tasks.get", {"task_id": "absent"})).code == -32004
    forbidden = await api.error("tasks.create", {"name": "x", "user_id": "bob"})
    assert forbidden.code == -32003


async def test_an_internal_failure_is_32603_without_details(make_api: ApiFactory) -> None:
    api = await make_api()
    await api.app[STORE].close()  # the database goes away under a running server
    answer = await api.rpc("tasks.list", {})
    assert answer["error"] == {"code": -32603, "message": "Internal error"}


# body size ---------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(make_api: ApiFactory) -> None:
    api = await make_api(api=ApiConfig(max_body_bytes=2048))
    body = request("tasks.create", {"name": "x", "description": "d" * 4096})
    status, answer = await api.post(body, headers=api.headers())
    assert status == 413
    assert_error(answer, -32600)


async def test_a_chunked_body_over_the_limit_is_413(make_api: ApiFactory) -> None:
    api = await make_api(api=ApiConfig(max_body_bytes=2048))

    async def chunks() -> Any:
        yield b'{"jsonrpc":"2.0","method":"tasks.create","id":1,"params":{"name":"x",'
        for _ in range(10):
            yield b'"description":"' + b"d" * 1000 + b'",'
        yield b'"z":1}}'

    async with api.client.post("/tasks", data=chunks(), headers=api.headers()) as response:
        assert response.status == 413
        assert_error(await response.json(), -32600)
    assert (await api.call("tasks.list"))["total"] == 0


async def test_a_body_at_the_limit_is_served(make_api: ApiFactory) -> None:
    api = await make_api(api=ApiConfig(max_body_bytes=2048))
    text = '{"jsonrpc":"2.0","method":"tasks.list","id":1}'
    body = text + " " * (2048 - len(text))
    status, answer = await api.post(body, headers=api.headers())
    assert status == 200 and "result" in answer


async def test_health_still_answers_after_errors(api: Api) -> None:
    for body in (b"{", b"[]", b"\xff"):
        await api.post(body, headers=api.headers())
    async with api.client.get("/health") as response:
        assert response.status == 200

