"""Helpers of the CLI tests: the in-process CLI, the entry point, ports, bounded waits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from apflow.cli.main import cli

APFLOW_BIN = Path(sys.executable).parent / "apflow"


@dataclass
class Cli:
    """The CLI, in-process."""

    runner: CliRunner

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        """Stdout of a command that must succeed."""
        result = self(*args)
        assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        """The parsed `-f json` output of a command that must succeed."""
        return json.loads(self.ok("-f", "json", *args))


def one_error_line(stderr: str) -> str:
    """The single `error: ...` line of a failed command (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without APFLOW_*, plus APFLOW_HOME=home and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APFLOW_")}
    env["APFLOW_HOME"] = str(home)
    env.update(extra)
    return env


def jwt_secret_of(home: Path) -> str:
    """The jwt_secret written into home's generated config."""
    for line in (home / "config.cli.yaml").read_text().splitlines():
        if line.startswith("jwt_secret:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no jwt_secret in the config")


def run_apflow(*args: str, env: dict[str, str],
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed entry point, to completion."""
    return subprocess.run([str(APFLOW_BIN), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def start_apflow(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """The installed entry point, left running (stop it with stop_process)."""
    return subprocess.Popen([str(APFLOW_BIN), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               alive: subprocess.Popen[str] | None = None) -> None:
    """Poll `check` every 50 ms until true; fail after `timeout` s or if `alive` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and alive.poll() is not None:
            err = alive.stderr.read() if alive.stderr else ""
            raise AssertionError(f"process exited ({alive.returncode}) before {what}: {err}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def health_ok(port: int) -> bool:
    """Whether /health answers 200 on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[str], timeout: float = 20) -> int:
    """Kill a process the test started if it is still running; return its exit code."""
    if proc.poll() is None:
        proc.kill()
    return proc.wait(timeout=timeout)
