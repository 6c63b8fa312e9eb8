"""The docker executor against the private dockerd of scripts/test and its busybox image."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import pytest

from apflow.domain.enums import RunState
from apflow.domain.errors import ExecutorError, InvalidParams
from apflow.executors.base import RunContext
from apflow.executors.docker import DockerExecution, DockerExecutor
from tests.executors.conftest import collector, finish, make_ctx

pytestmark = pytest.mark.docker


@pytest.fixture
def image(docker_host: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    host, name = docker_host
    monkeypatch.setenv("DOCKER_HOST", host)
    return name


@pytest.fixture
async def docker(docker_host: tuple[str, str]) -> AsyncIterator[aiodocker.Docker]:
    async with aiodocker.Docker(url=docker_host[0]) as client:
        yield client


def run_ctx(**kwargs: Any) -> RunContext:
    return make_ctx(run_id=uuid.uuid4().hex, **kwargs)


async def start(spec: dict[str, Any], ctx: RunContext) -> DockerExecution:
    return await DockerExecutor().start({"type": "docker", **spec}, ctx)


async def containers_of(docker: aiodocker.Docker, run_id: str) -> list[Any]:
    return list(await docker.containers.list(
        all=True, filters={"label": [f"apflow.run_id={run_id}"]}))


async def test_a_container_runs_and_its_output_is_recorded(
        image: str, docker: aiodocker.Docker) -> None:
    ctx = run_ctx()
    result = await finish(await start(
        {"image": image, "command": ["sh", "-c", "echo out; echo err >&2"]}, ctx))
    assert result.state is RunState.SUCCEEDED and result.exit_code == 0
    assert collector(ctx).of("stdout") == "out\n" and collector(ctx).of("stderr") == "err\n"
    assert await containers_of(docker, ctx.run.id) == []


async def test_a_string_command_runs_through_sh_and_its_exit_code_fails_the_run(
        image: str, docker: aiodocker.Docker) -> None:
    ctx = run_ctx()
    result = await finish(await start({"image": image, "command": "echo bye; exit 7"}, ctx))
    assert result.state is RunState.FAILED and result.exit_code == 7
    assert result.error == "exit code 7" and collector(ctx).text == "bye\n"
    assert await containers_of(docker, ctx.run.id) == []


async def test_the_container_gets_spec_env_and_run_env(image: str) -> None:
    ctx = run_ctx(env={"FROM_RUN": "run", "BOTH": "run-wins"})
    await finish(await start({"image": image, "command": ["env"],
                              "env": {"FROM_SPEC": "spec", "BOTH": "spec"}}, ctx))
    env = dict(line.split("=", 1) for line in collector(ctx).text.splitlines() if "=" in line)
    assert env["FROM_SPEC"] == "spec" and env["FROM_RUN"] == "run"
    assert env["BOTH"] == "run-wins"


async def test_the_container_is_named_and_labelled_after_the_run(
        image: str, docker: aiodocker.Docker) -> None:
    ctx = run_ctx()
    execution = await start({"image": image, "command": ["sleep", "30"]}, ctx)
    try:
        info = await docker.containers.container(execution.container_id).show()
        assert info["Name"] == f"/apflow-{ctx.run.id}"
        assert info["Config"]["Labels"]["apflow.task_id"] == ctx.task.id
        assert info["HostConfig"]["NetworkMode"] == "none"
    finally:
        async with asyncio.timeout(20):
            await execution.stop(0)


async def test_by_default_the_container_has_no_network(image: str) -> None:
    ctx = run_ctx()
    await finish(await start({"image": image, "command": "ls /sys/class/net"}, ctx))
    assert collector(ctx).text.split() == ["lo"]


async def test_stop_stops_and_removes_the_container(
        image: str, docker: aiodocker.Docker) -> None:
    ctx = run_ctx()
    execution = await start({"image": image, "command": ["sleep", "100"]}, ctx)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    async with asyncio.timeout(20):
        await execution.stop(1)
    assert time.monotonic() - started < 10
    assert await containers_of(docker, ctx.run.id) == []
    result = await finish(execution)
    assert result.state is RunState.FAILED


async def test_a_container_that_handles_sigterm_ends_within_the_grace_period(
        image: str) -> None:
    ctx = run_ctx()
    execution = await start({"image": image, "command":
                             "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"}, ctx)
    await asyncio.sleep(0.5)
    async with asyncio.timeout(20):
        await execution.stop(10)
    result = await finish(execution)
    assert result.exit_code == 0 and "bye" in collector(ctx).text


async def test_a_missing_image_fails_to_start_with_a_short_message(image: str) -> None:
    with pytest.raises(ExecutorError, match=r"^image 'apflow-no-such-image:1' not found$"):
        await start({"image": "apflow-no-such-image:1"}, run_ctx())


async def test_network_mode_container_shares_a_running_container_s_network(
        image: str, docker: aiodocker.Docker) -> None:
    server = await docker.containers.run(config={
        "Image": image, "HostConfig": {"NetworkMode": "none"},
        "Cmd": ["sh", "-c", "mkdir -p /www && echo shared-netns > /www/index.html"
                            " && exec httpd -f -p 127.0.0.1:8080 -h /www"]})
    try:
        fetch = ("for i in $(seq 50); do wget -q -O- http://127.0.0.1:8080/ && exit 0;"
                 " sleep 0.1; done; exit 1")
        shared = run_ctx()
        result = await finish(await start(
            {"image": image, "command": fetch, "network_mode": f"container:{server.id}"},
            shared))
        assert result.state is RunState.SUCCEEDED
        assert collector(shared).of("stdout") == "shared-netns\n"
        alone = run_ctx()
        result = await finish(await start({"image": image, "command":
                                           "wget -q -T 1 -O- http://127.0.0.1:8080/"}, alone))
        assert result.state is RunState.FAILED
    finally:
        await server.delete(force=True)


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "executor.image"),
    ({"image": ""}, "executor.image"),
    ({"image": "x", "command": 3}, "executor.command"),
    ({"image": "x", "command": [1]}, "executor.command"),
    ({"image": "x", "env": {"A": 1}}, "executor.env"),
    ({"image": "x", "network_mode": 5}, "executor.network_mode"),
    ({"image": "x", "network_mode": "container:"}, "executor.network_mode"),
    ({"image": "x", "docker_host": 1}, "executor.docker_host"),
])
def test_a_bad_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        DockerExecutor().validate({"type": "docker", **spec})
    assert caught.value.field == field
