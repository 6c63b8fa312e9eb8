"""The private dockerd that scripts/test starts runs containers from the local busybox image."""

from __future__ import annotations

import aiodocker
import pytest

pytestmark = pytest.mark.docker


async def test_the_busybox_image_runs_echo(docker_host: tuple[str, str]) -> None:
    host, image = docker_host
    async with aiodocker.Docker(url=host) as docker:
        container = await docker.containers.run(
            config={"Image": image, "Cmd": ["echo", "hi"], "HostConfig": {"NetworkMode": "none"}}
        )
        try:
            status = await container.wait()
            output = await container.log(stdout=True, stderr=True)
        finally:
            await container.delete(force=True)
    assert status["StatusCode"] == 0
    assert "".join(output).strip() == "hi"
