"""Fuzzing POST /tasks: whatever arrives, the answer is HTTP 200/204/401/413 with a
well-formed JSON-RPC body, never -32603 (an unexpected exception), the server keeps serving
/health, and a call that failed left the stored tasks as they were.

The server runs in a thread of its own (a real aiohttp site on 127.0.0.1, on SQLite and on
the throwaway PostgreSQL server, no engine, so nothing a fuzzed task says is ever executed);
hypothesis drives a plain keep-alive HTTP client from the test thread. Bounded so the module
takes well under a minute.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from apflow.api.app import create_app
from apflow.api.auth import issue_token
from apflow.clock import FakeClock
from apflow.config import Config
from apflow.service import METHOD_NAMES
from tests.api.conftest import SECRET, T0
from tests.pgdb import admin_sql, database_dsn, outside_loop

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
STATUSES = {200, 204, 401, 413}
INTERNAL_ERROR = -32603
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


# the server, in a thread --------------------------------------------------------------------


@dataclass
class ServedApp:
    """An app served by a thread's event loop; stop() ends it."""

    config: Config
    port: int = 0
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fuzzed-api", daemon=True)
        self._thread.start()
        assert self._ready.wait(20), "the server did not start"
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(create_app(self.config, clock=FakeClock(T0)), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            address = runner.addresses[0]
            self.port = int(address[1])
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(20)


@dataclass
class Client:
    """A keep-alive HTTP client with the fuzzing user's and an admin's tokens."""

    port: int
    user_token: str
    admin_token: str
    conn: http.client.HTTPConnection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None,
                headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, ConnectionError):
            # the server closed the connection after answering (e.g. a 413 with the body
            # unread): nothing was executed, so reconnecting and asking again is safe
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()

    def post(self, body: bytes, *, admin: bool = False) -> tuple[int, Any]:
        token = self.admin_token if admin else self.user_token
        status, raw = self.request("POST", "/tasks", body, {
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        return status, (json.loads(raw) if raw else None)

    def call(self, method: str, params: dict[str, Any], *, admin: bool = False) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
        status, answer = self.post(body.encode(), admin=admin)
        assert status == 200 and "result" in answer, answer
        return answer["result"]

    def healthy(self) -> bool:
        status, _ = self.request("GET", "/health", None, {})
        return status == 200

    def stored_tasks(self) -> list[dict[str, Any]]:
        """Every task, as the admin sees it."""
        result = self.call("tasks.list", {"limit": 1000}, admin=True)
        tasks: list[dict[str, Any]] = result["tasks"]
        return tasks


@dataclass
class Fuzzed:
    client: Client
    task_id: str
    others_task_id: str
    run_id: str


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite file, or a fresh database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'apflow.db'}"
        return
    server = request.getfixturevalue("postgres_server_dsn")
    template = request.getfixturevalue("api_pg_template")
    name = f"apflow_fuzz_{uuid.uuid4().hex[:8]}"
    outside_loop(admin_sql(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield database_dsn(server, name)
    finally:
        outside_loop(admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def fuzzed(database_url: str) -> Iterator[Fuzzed]:
    """The served app with a task of the fuzzing user's, one of another user's, and a run."""
    config = Config(database_url=database_url, jwt_secret=SECRET)
    served = ServedApp(config)
    served.start()
    now = T0.timestamp()
    client = Client(served.port, issue_token(SECRET, "fuzzer", now=now),
                    issue_token(SECRET, "root", "admin", now=now))
    try:
        mine = client.call("tasks.create", {
            "name": "mine", "executor": {"type": "command", "command": "true"},
            "schedule_type": "daily", "schedule_expression": "09:00",
            "schedule_enabled": True})
        theirs = client.call("tasks.create", {"name": "theirs", "user_id": "other"},
                             admin=True)
        run = client.call("tasks.run", {"task_id": mine["id"]})
        yield Fuzzed(client, mine["id"], theirs["id"], run["id"])
    finally:
        client.conn.close()
        served.stop()


# what every answer must look like -----------------------------------------------------------


def check_answer(status: int, answer: Any) -> list[dict[str, Any]]:
    """A well-formed answer; its response objects."""
    assert status in STATUSES, (status, answer)
    if status == 204:
        assert answer is None
        return []
    objects = answer if isinstance(answer, list) else [answer]
    assert objects, answer
    for item in objects:
        assert isinstance(item, dict), answer
        assert item.get("jsonrpc") == "2.0", item
        assert "id" in item, item
        assert ("result" in item) != ("error" in item), item
        if "error" in item:
            error = item["error"]
            assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
            assert error["code"] != INTERNAL_ERROR, item
            assert "Traceback" not in error["message"]
    if status in (401, 413):
        assert len(objects) == 1 and "error" in objects[0]
    return objects


def post_and_check(fuzzed: Fuzzed, body: bytes) -> list[dict[str, Any]]:
    """POST `body`: a well-formed answer, a still healthy server, and stored tasks unchanged
    unless some call succeeded."""
    before = fuzzed.client.stored_tasks()
    status, answer = fuzzed.client.post(body)
    objects = check_answer(status, answer)
    for item in objects:  # shown by --hypothesis-show-statistics
        event(f"HTTP {status}: " + (f"error {item['error']['code']}" if "error" in item
                                     else "result"))
    assert fuzzed.client.healthy()
    if not any("result" in item for item in objects) and status != 204:
        assert fuzzed.client.stored_tasks() == before
    return objects


# strategies ---------------------------------------------------------------------------------


HUGE = 100_000
SPECIAL_STRINGS = [
    "", " ", "\x00", "a\x00b", "x" * HUGE, "\x00" * HUGE, "é" * (HUGE // 2), "名前\u202e",
    "\U0001f600" * 10, "\n\r\t", "../../etc/passwd", "'; DROP TABLE tasks; --", "%s%n",
    "2024-01-15T09:00:00Z", "2024-01-15T09:00:00", "0 9 * * 1-5", "@every 1s", "09:00",
    "25:00", "Europe/Paris", "Mars/Olympus", "UTC", "cron", "daily", "once", "interval",
    "command", "admin", "null", "true", "-1", "1e999",
]
SPECIAL_VALUES: list[Any] = [
    0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 0.5, -0.0, True, False,
    None, [], {}, [0] * 10_000, ["a"] * 5_000, {"k": "v" * 1000},
    {"type": "command", "command": "true"}, {"type": "docker"}, {"type": "nope"},
    {"type": "python", "name": "\x00"}, {f"key{i}": i for i in range(2000)},
    {"k": "\x00"}, {"\x00": 1}, ["\x00"], {"type": "command", "command": "a\x00b"},
    {"type": "command", "command": "true", "env": {"A": "\x00"}}, {"A\x00": "b"},
    {"k": 2**70}, {"k": [1e308, -1e308]},
]
KNOWN_FIELDS = [
    "task_id", "run_id", "id", "name", "description", "executor", "inputs", "user_id",
    "parent_id", "dependencies", "schedule_type", "schedule_expression", "timezone",
    "schedule_enabled", "schedule_start_at", "schedule_end_at", "max_runs", "catch_up",
    "max_catch_up_runs", "jitter_seconds", "timeout_seconds", "graceful_stop_seconds",
    "retry_limit", "retry_delay_seconds", "retry_backoff", "max_concurrent", "on_overlap",
    "queue_max", "api_trigger", "env", "status", "limit", "offset", "roots_only", "follow",
    "timeout", "after_seq", "variables", "count", "from_time", "state", "trigger",
    "parent_run_id", "result", "error", "progress", "run_count", "next_run_at",
]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": [value]}
    return value


def json_values() -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
               | st.floats(allow_nan=False, allow_infinity=False))
    return st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                        | st.dictionaries(st.text(max_size=8), children, max_size=4),
                        max_leaves=12)


def param_values(fuzzed_ids: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(json_values(), st.sampled_from(SPECIAL_STRINGS),
                     st.sampled_from(SPECIAL_VALUES), st.sampled_from(fuzzed_ids),
                     st.integers(1, 40).map(nested),
                     st.lists(st.sampled_from(fuzzed_ids), max_size=3))


def param_names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(max_size=20),
                     st.sampled_from(["\x00", "名前", "x" * 1000, "", "__proto__"]))


def rpc_ids() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(), st.text(max_size=10), st.none())


# the tests ----------------------------------------------------------------------------------


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b'{"jsonrpc":"2.0","method":"tasks.list",' + b),
    st.binary(max_size=200).map(lambda b: b'[{"jsonrpc":"2.0","id":1,"method":"' + b),
))
def test_any_bytes_get_a_well_formed_answer(fuzzed: Fuzzed, body: bytes) -> None:
    post_and_check(fuzzed, body)


@FUZZ
@given(value=json_values())
def test_any_json_value_gets_a_well_formed_answer(fuzzed: Fuzzed, value: Any) -> None:
    post_and_check(fuzzed, json.dumps(value).encode())


def request_shapes() -> st.SearchStrategy[dict[str, Any]]:
    """Request objects with each member present or not, right or wrong."""
    right_version = st.just("2.0")
    return st.fixed_dictionaries({}, optional={
        "jsonrpc": st.one_of(right_version, right_version, right_version, json_values()),
        "method": st.one_of(st.sampled_from(METHOD_NAMES), st.text(max_size=30),
                            json_values()),
        "id": st.one_of(rpc_ids(), json_values()),
        "params": st.one_of(st.dictionaries(param_names(), json_values(), max_size=4),
                            json_values()),
        "extra": json_values(),
    })


@FUZZ
@given(payload=st.one_of(request_shapes(), st.lists(request_shapes(), min_size=0, max_size=6)))
def test_wrong_json_rpc_shapes_get_protocol_errors(fuzzed: Fuzzed,
                                                   payload: dict[str, Any] | list[Any]) -> None:
    post_and_check(fuzzed, json.dumps(payload).encode())


@FUZZ
@given(data=st.data())
def test_wrong_params_for_every_method_change_nothing(fuzzed: Fuzzed,
                                                      data: st.DataObject) -> None:
    ids = [fuzzed.task_id, fuzzed.others_task_id, fuzzed.run_id]
    method = data.draw(st.sampled_from(METHOD_NAMES), label="method")
    params = data.draw(st.dictionaries(param_names(), param_values(ids), max_size=5),
                       label="params")
    request = {"jsonrpc": "2.0", "method": method, "params": params,
               "id": data.draw(rpc_ids(), label="id")}
    post_and_check(fuzzed, json.dumps(request).encode())


@FUZZ
@given(data=st.data())
def test_one_field_of_a_valid_create_gone_wrong_is_refused(fuzzed: Fuzzed,
                                                           data: st.DataObject) -> None:
    ids = [fuzzed.task_id, fuzzed.others_task_id, fuzzed.run_id]
    params: dict[str, Any] = {
        "name": "fuzzed", "executor": {"type": "command", "command": "true"},
        "schedule_type": "daily", "schedule_expression": "09:00", "timezone": "UTC"}
    field_name = data.draw(st.sampled_from(KNOWN_FIELDS), label="field")
    params[field_name] = data.draw(param_values(ids), label="value")
    request = {"jsonrpc": "2.0", "method": "tasks.create", "params": params, "id": 1}
    post_and_check(fuzzed, json.dumps(request).encode())
