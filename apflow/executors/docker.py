"""The "docker" executor: one throw-away container per run, removed afterwards.

The container gets no network unless the task asks for one (`network_mode` defaults to
"none"): a scheduled job is often written once and run unattended for years, and a container
that cannot reach anything cannot leak or be abused over the network. Tasks that need it say
"bridge", "host", a network name or "container:<id>" (share another container's network).

Images are never pulled: an image that is not on the Docker host fails the run with
"image 'x' not found" (pull or build it beforehand; pulling on the hot path would make run
start times depend on a registry).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError

from apflow.domain.enums import RunState
from apflow.domain.errors import ExecutorError, InvalidParams
from apflow.executors.base import ExecutionResult, LogSink, RunContext
from apflow.executors.specs import env_map, field_name, optional_str, required_str

DEFAULT_NETWORK_MODE = "none"
# After the container has exited, how long its log streams get to deliver the rest.
LOG_DRAIN_SECONDS = 5.0
CLEANUP_SECONDS = 30.0
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")


def container_name(run_id: str) -> str:
    return "apflow-" + _NAME_CHARS.sub("-", run_id)


def command_of(spec: Mapping[str, Any]) -> list[str] | None:
    """The container command: a list as given, a string through /bin/sh -c, else the image's."""
    value = spec.get("command")
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return ["/bin/sh", "-c", value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidParams("must be a non-empty string or a non-empty list of strings",
                        field=field_name("command"))


def network_mode_of(spec: Mapping[str, Any]) -> str:
    mode = optional_str(spec, "network_mode") or DEFAULT_NETWORK_MODE
    if mode.startswith("container:") and not mode.removeprefix("container:").strip():
        raise InvalidParams("container: needs a container name or id",
                            field=field_name("network_mode"))
    return mode


def container_config(spec: Mapping[str, Any], ctx: RunContext) -> dict[str, Any]:
    env = {**env_map(spec), **ctx.env}  # ctx.env (task env, variables, APFLOW_*) wins
    config: dict[str, Any] = {
        "Image": required_str(spec, "image"),
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Labels": {"apflow.run_id": ctx.run.id, "apflow.task_id": ctx.task.id},
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False, "Tty": False,
        "HostConfig": {"NetworkMode": network_mode_of(spec)},
    }
    command = command_of(spec)
    if command is not None:
        config["Cmd"] = command
    return config


def docker_message(exc: DockerError) -> str:
    return str(exc.message).strip().splitlines()[0] if exc.message else f"status {exc.status}"


def connect(docker_host: str | None) -> aiodocker.Docker:
    """A client for `docker_host`, else DOCKER_HOST, else the local socket.

    DOCKER_HOST is passed explicitly: aiodocker would otherwise let a Docker CLI context
    (~/.docker) win over it, unlike the docker CLI itself.
    """
    url = docker_host or os.environ.get("DOCKER_HOST") or None
    try:
        return aiodocker.Docker(url=url)
    except (AssertionError, ValueError, DockerError) as exc:
        raise ExecutorError("no Docker host: set DOCKER_HOST or executor.docker_host") from exc


class DockerExecution:
    """One running container; it is removed when the run ends, however it ends."""

    def __init__(self, docker: aiodocker.Docker, container: DockerContainer,
                 log: LogSink) -> None:
        self._docker = docker
        self._container = container
        self._pumps = [asyncio.create_task(self._pump(log, "stdout")),
                       asyncio.create_task(self._pump(log, "stderr"))]
        self._exit: asyncio.Task[ExecutionResult] = asyncio.create_task(self._wait_exit())
        self._cleanup: asyncio.Task[None] | None = None

    @property
    def container_id(self) -> str:
        return str(self._container.id)

    async def _pump(self, log: LogSink, stream: str) -> None:
        lines = self._container.log(stdout=stream == "stdout", stderr=stream == "stderr",
                                    follow=True)
        async for text in lines:
            await log.write(stream, text)

    async def _wait_exit(self) -> ExecutionResult:
        status = await self._container.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOG_DRAIN_SECONDS):
                await asyncio.gather(*self._pumps, return_exceptions=True)
        code = int(status.get("StatusCode", -1))
        error = (status.get("Error") or {}).get("Message") or None
        if code == 0 and not error:
            return ExecutionResult(state=RunState.SUCCEEDED, exit_code=0)
        return ExecutionResult(state=RunState.FAILED, exit_code=code,
                               error=error or f"exit code {code}")

    async def wait(self) -> ExecutionResult:
        try:
            return await asyncio.shield(self._exit)
        finally:
            if self._exit.done():
                await self._remove()

    async def stop(self, grace_seconds: float) -> None:
        """`docker stop -t grace` (SIGTERM, SIGKILL after grace), then remove the container."""
        try:
            await self._container.stop(t=max(math.ceil(grace_seconds), 0))
        except DockerError as exc:
            if exc.status not in (304, 404):  # 304: already stopped; 404: already gone
                raise ExecutorError(f"docker stop failed: {docker_message(exc)}") from exc
        with contextlib.suppress(Exception):
            async with asyncio.timeout(LOG_DRAIN_SECONDS):
                await asyncio.shield(self._exit)
        await self._remove()

    async def _remove(self) -> None:
        if self._cleanup is None:
            self._cleanup = asyncio.ensure_future(self._remove_once())
        await asyncio.shield(self._cleanup)

    async def _remove_once(self) -> None:
        try:
            async with asyncio.timeout(CLEANUP_SECONDS):
                with contextlib.suppress(DockerError):  # 404: removed meanwhile
                    await self._container.delete(force=True)
        finally:
            for pump in self._pumps:
                pump.cancel()
            self._exit.cancel()  # only if still waiting (a failed remove must not hang wait)
            await asyncio.gather(*self._pumps, self._exit, return_exceptions=True)
            await self._docker.close()


class DockerExecutor:
    """Runs each run in a new container of `image` on the Docker host of DOCKER_HOST."""

    type_name = "docker"

    def validate(self, spec: Mapping[str, Any]) -> None:
        required_str(spec, "image")
        command_of(spec)
        env_map(spec)
        network_mode_of(spec)
        optional_str(spec, "docker_host")

    async def start(self, spec: Mapping[str, Any], ctx: RunContext) -> DockerExecution:
        self.validate(spec)
        docker = connect(optional_str(spec, "docker_host"))
        try:
            container = await self._create(docker, spec, ctx)
            try:
                await container.start()
            except DockerError as exc:
                with contextlib.suppress(DockerError):
                    await container.delete(force=True)
                raise ExecutorError(f"cannot start container: {docker_message(exc)}") from exc
        except BaseException:
            await docker.close()
            raise
        return DockerExecution(docker, container, ctx.log)

    @staticmethod
    async def _create(docker: aiodocker.Docker, spec: Mapping[str, Any],
                      ctx: RunContext) -> DockerContainer:
        image = required_str(spec, "image")
        try:
            return await docker.containers.create(container_config(spec, ctx),
                                                  name=container_name(ctx.run.id))
        except DockerError as exc:
            if exc.status == 404 and "image" in docker_message(exc).lower():
                raise ExecutorError(f"image '{image}' not found") from exc
            raise ExecutorError(f"cannot create container: {docker_message(exc)}") from exc
        except (OSError, aiohttp.ClientError) as exc:
            raise ExecutorError(f"cannot reach Docker at {docker.docker_host}: {exc}") from exc
