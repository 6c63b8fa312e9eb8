"""Issue 4 end to end: tasks created and run over HTTP JSON-RPC by an app that runs its engine,
with real processes, a real HTTP target, real containers and registered Python functions.
Every wait is bounded; the clock is the system clock (runs really happen)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from apflow.clock import SystemClock
from apflow.executors import register_executor
from apflow.executors.base import RunContext
from tests.api.conftest import Api, ApiFactory

FINISHED = {"succeeded", "failed", "timed_out", "cancelled", "crashed", "skipped"}


@register_executor("e2e_sum")
async def add_numbers(ctx: RunContext) -> Any:
    """Adds inputs["a"] and inputs["b"]."""
    return {"sum": ctx.inputs["a"] + ctx.inputs["b"]}


@register_executor("e2e_explode")
def explode(ctx: RunContext) -> Any:
    """Always fails (a sync function: it runs in a thread)."""
    raise ValueError("the reactor is on fire")


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    return await make_api(clock=SystemClock(), run_engine=True)


async def finished(api: Api, run_id: str, seconds: float = 20) -> dict[str, Any]:
    """The run once it has finished (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        run: dict[str, Any] = await api.call("tasks.runs.get", {"run_id": run_id})
        if run["state"] in FINISHED:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['state']}"
        await asyncio.sleep(0.05)


async def run_task(api: Api, seconds: float = 20, variables: dict[str, str] | None = None,
                   **fields: Any) -> dict[str, Any]:
    """Create a task with `fields`, run it now, return the finished run."""
    task = await api.call("tasks.create", {"name": "e2e", **fields})
    params: dict[str, Any] = {"task_id": task["id"]}
    if variables:
        params["variables"] = variables
    run = await api.call("tasks.run", params)
    return await finished(api, run["id"], seconds)


async def logs(api: Api, run_id: str) -> str:
    page = await api.call("tasks.runs.logs", {"run_id": run_id})
    return str(page["text"])


def command(text: str) -> dict[str, str]:
    return {"type": "command", "command": text}


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError):
        return False


# command ----------------------------------------------------------------------------------


async def test_env_variables_and_apflow_values_reach_the_process(api: Api) -> None:
    run = await run_task(
        api, executor=command('echo "$GREETING $WHO $APFLOW_RUN_ID $APFLOW_TRIGGER '
                              '$APFLOW_ATTEMPT $DB_PASSWORD"'),
        env={"GREETING": "hi", "APFLOW_RUN_ID": "forged", "DB_PASSWORD": "hunter2hunter2"},
        variables={"WHO": "bob"})
    assert run["state"] == "succeeded" and run["exit_code"] == 0
    assert await logs(api, run["id"]) == f"hi bob {run['id']} manual 1 ****\n"


async def test_a_timeout_stops_the_whole_process_group(api: Api, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    run = await run_task(api, executor=command(f"sleep 30 & echo $! > {pid_file}; sleep 30"),
                         timeout_seconds=0.5, graceful_stop_seconds=0.5)
    assert run["state"] == "timed_out"
    child = int(pid_file.read_text())
    assert not alive(child), "the background child survived the timeout"


async def test_a_cancelled_run_is_stopped_and_never_retried(api: Api) -> None:
    task = await api.call("tasks.create", {"name": "long", "executor": command("sleep 30"),
                                           "retry_limit": 2, "retry_delay_seconds": 0})
    run = await api.call("tasks.run", {"task_id": task["id"]})
    deadline = time.monotonic() + 10
    while (await api.call("tasks.runs.get", {"run_id": run["id"]}))["state"] != "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await api.call("tasks.runs.cancel", {"run_id": run["id"]})
    done = await finished(api, run["id"])
    assert done["state"] == "cancelled"
    await asyncio.sleep(0.3)
    runs = (await api.call("tasks.runs.list", {"task_id": task["id"]}))["runs"]
    assert [r["id"] for r in runs] == [run["id"]]


async def test_failed_runs_are_retried_up_to_the_limit(api: Api) -> None:
    task = await api.call("tasks.create", {"name": "flaky", "executor": command("exit 3"),
                                           "retry_limit": 2, "retry_delay_seconds": 0.05,
                                           "retry_backoff": "exponential"})
    await api.call("tasks.run", {"task_id": task["id"]})
    deadline = time.monotonic() + 20
    while True:
        runs = (await api.call("tasks.runs.list", {"task_id": task["id"]}))["runs"]
        if len(runs) == 3 and all(r["state"] in FINISHED for r in runs):
            break
        assert time.monotonic() < deadline, runs
        await asyncio.sleep(0.05)
    oldest_first = sorted(runs, key=lambda r: r["attempt"])
    assert [(r["attempt"], r["trigger"], r["state"], r["exit_code"]) for r in oldest_first] == [
        (1, "manual", "failed", 3), (2, "retry", "failed", 3), (3, "retry", "failed", 3)]
    assert (await api.call("tasks.get", {"task_id": task["id"]}))["status"] == "failed"


async def test_a_missing_command_fails_and_the_engine_keeps_going(api: Api) -> None:
    missing = await run_task(api, executor=command("no-such-program-anywhere"))
    assert (missing["state"], missing["exit_code"]) == ("failed", 127)
    assert "not found" in missing["error"]
    fine = await run_task(api, executor=command("echo still here"))
    assert fine["state"] == "succeeded"


async def test_logs_follow_streams_lines_of_a_live_run(api: Api) -> None:
    task = await api.call("tasks.create", {
        "name": "slow", "executor": command("echo first; sleep 0.5; echo second")})
    run = await api.call("tasks.run", {"task_id": task["id"]})
    seen, after = "", -1
    deadline = time.monotonic() + 15
    while "second" not in seen:
        assert time.monotonic() < deadline, seen
        page = await api.call("tasks.runs.logs", {"run_id": run["id"], "after_seq": after,
                                                  "follow": True, "timeout": 5})
        seen += page["text"]
        after = page["next_seq"]
    assert seen == "first\nsecond\n"


# policies ---------------------------------------------------------------------------------


async def test_forbid_refuses_a_manual_run_while_one_is_active(api: Api) -> None:
    task = await api.call("tasks.create", {"name": "solo", "executor": command("sleep 5"),
                                           "on_overlap": "forbid"})
    first = await api.call("tasks.run", {"task_id": task["id"]})
    error = await api.error("tasks.run", {"task_id": task["id"]})
    assert error.code == -32009
    await api.call("tasks.runs.cancel", {"run_id": first["id"]})


async def test_skip_records_the_overlapping_run_as_skipped(api: Api) -> None:
    task = await api.call("tasks.create", {"name": "one-at-a-time",
                                           "executor": command("sleep 5"), "on_overlap": "skip"})
    first = await api.call("tasks.run", {"task_id": task["id"]})
    second = await api.call("tasks.run", {"task_id": task["id"]})
    assert (second["state"], second["end_reason"]) == ("skipped", "overlap")
    await api.call("tasks.runs.cancel", {"run_id": first["id"]})


async def test_api_trigger_false_is_forbidden_over_the_api(api: Api) -> None:
    task = await api.call("tasks.create", {"name": "schedule-only",
                                           "executor": command("true"), "api_trigger": False})
    error = await api.error("tasks.run", {"task_id": task["id"]})
    assert error.code == -32003


async def test_a_schedule_fires_on_time_and_is_ledgered(api: Api) -> None:
    task = await api.call("tasks.create", {"name": "every-second",
                                           "executor": command("true"),
                                           "schedule_type": "interval",
                                           "schedule_expression": "1", "schedule_enabled": True})
    deadline = time.monotonic() + 15
    while True:
        runs = (await api.call("tasks.runs.list", {"task_id": task["id"]}))["runs"]
        done = [r for r in runs if r["state"] == "succeeded"]
        if len(done) >= 2:
            break
        assert time.monotonic() < deadline, runs
        await asyncio.sleep(0.1)
    await api.call("tasks.pause", {"task_id": task["id"]})
    assert all(r["trigger"] == "schedule" for r in done)
    for run in done:
        started = run["started_at"]
        assert started is not None and run["scheduled_for"] is not None
    ledger = (await api.call("tasks.occurrences.list", {"task_id": task["id"]}))["occurrences"]
    fired = {o["run_id"] for o in ledger if o["outcome"] == "fired"}
    assert {r["id"] for r in done} <= fired


# task trees -------------------------------------------------------------------------------


async def test_a_tree_runs_in_dependency_order_and_a_failed_child_fails_it(api: Api) -> None:
    root = await api.call("tasks.create", {"name": "pipeline"})
    extract = await api.call("tasks.create", {"name": "extract", "parent_id": root["id"],
                                              "executor": command("echo extract")})
    load = await api.call("tasks.create", {"name": "load", "parent_id": root["id"],
                                           "dependencies": [extract["id"]],
                                           "executor": command("exit 1")})
    report = await api.call("tasks.create", {"name": "report", "parent_id": root["id"],
                                             "dependencies": [load["id"]],
                                             "executor": command("echo report")})
    run = await api.call("tasks.run", {"task_id": root["id"]})
    done = await finished(api, run["id"])
    assert done["state"] == "failed"
    assert "load" in done["error"]
    children = (await api.call("tasks.runs.list", {"parent_run_id": run["id"]}))["runs"]
    by_task = {r["task_id"]: r for r in children}
    assert by_task[extract["id"]]["state"] == "succeeded"
    assert by_task[load["id"]]["state"] == "failed"
    # A dependant of the failed child is never started: no run, or one that never ran.
    assert report["id"] not in by_task or by_task[report["id"]]["started_at"] is None
    tree = await api.call("tasks.tree", {"task_id": root["id"]})
    statuses = {c["name"]: c["status"] for c in tree["children"]}
    assert statuses["extract"] == "completed" and statuses["load"] == "failed"
    assert statuses["report"] == "cancelled"


# http, python, docker ---------------------------------------------------------------------


@pytest.fixture
async def target() -> AsyncIterator[str]:
    """A real HTTP server on 127.0.0.1 answering /ok with JSON and /created with 201."""
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.headers.get("X-Who", "")})

    async def created(request: web.Request) -> web.Response:
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_post("/created", created)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def test_http_runs_succeed_fail_on_status_and_on_refusal(api: Api, target: str) -> None:
    ok = await run_task(api, executor={"type": "http", "method": "GET", "url": f"{target}/ok",
                                       "headers": {"X-Who": "apflow"}})
    assert ok["state"] == "succeeded"
    assert ok["result"]["status"] == 200 and ok["result"]["body"] == {"hello": "apflow"}
    wrong = await run_task(api, executor={"type": "http", "method": "POST",
                                          "url": f"{target}/created", "expected_status": 200})
    assert wrong["state"] == "failed" and "201" in wrong["error"]
    refused = await run_task(api, executor={"type": "http", "url": "http://127.0.0.1:1/"})
    assert refused["state"] == "failed" and refused["error"]


async def test_python_executors_return_results_and_fail_with_short_errors(api: Api) -> None:
    summed = await run_task(api, executor={"type": "python", "name": "e2e_sum"},
                            inputs={"a": 2, "b": 40})
    assert (summed["state"], summed["result"]) == ("succeeded", {"sum": 42})
    failed = await run_task(api, executor={"type": "python", "name": "e2e_explode"})
    assert failed["state"] == "failed"
    assert failed["error"] == "ValueError: the reactor is on fire"


@pytest.mark.docker
async def test_docker_runs_a_one_off_container_and_removes_it(
        api: Api, docker_host: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    host, image = docker_host
    monkeypatch.setenv("DOCKER_HOST", host)
    run = await run_task(api, 60, executor={"type": "docker", "image": image,
                                            "command": ["sh", "-c", "echo in-box $WHERE"],
                                            "env": {"WHERE": "container"}})
    assert run["state"] == "succeeded", run
    assert "in-box container" in await logs(api, run["id"])
    missing = await run_task(api, 60, executor={"type": "docker",
                                                "image": "apflow-no-such-image:never"})
    assert missing["state"] == "failed" and "not found" in missing["error"]
