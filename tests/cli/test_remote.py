"""`--api-url`: the same commands and the same output through a real `apflow serve`
(JSON-RPC over HTTP on 127.0.0.1, an admin JWT made from jwt_secret)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.helpers import (
    Cli,
    clean_env,
    free_port,
    health_ok,
    one_error_line,
    start_apflow,
    stop_process,
    wait_until,
)


@dataclass
class Server:
    home: Path
    url: str
    proc: subprocess.Popen[str]


def start_server(home: Path) -> Server:
    """`apflow serve` on a free port, once /health answers (at most 20 s)."""
    port = free_port()
    proc = start_apflow("serve", "--port", str(port), env=clean_env(home))
    wait_until(lambda: health_ok(port), 20, "/health", alive=proc)
    return Server(home, f"http://127.0.0.1:{port}", proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module's tests, killed by its PID at the end."""
    running = start_server(tmp_path_factory.mktemp("served"))
    yield running
    stop_process(running.proc)


@pytest.fixture
def local(server: Server, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on the server's home and database, without --api-url."""
    monkeypatch.setenv("APFLOW_HOME", str(server.home))
    for name in ("APFLOW_CONFIG", "APFLOW_DATABASE_URL", "APFLOW_ADMIN_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return Cli(CliRunner())


def test_remote_and_local_print_the_same(local: Cli, server: Server) -> None:
    created = local.json("--api-url", server.url, "tasks", "create", "--name", "remote one",
                         "--schedule-type", "daily", "--schedule-expression", "09:00",
                         "--schedule-enabled")
    for args in (["tasks", "get", created["id"]], ["-f", "json", "tasks", "get", created["id"]],
                 ["scheduler", "list"]):
        assert local.ok("--api-url", server.url, *args) == local.ok(*args)


def test_remote_run_wait_is_executed_by_the_server(local: Cli, server: Server) -> None:
    task = local.json("--api-url", server.url, "tasks", "create", "--name", "hi",
                      "--command", "echo served")
    run = local.json("--api-url", server.url, "tasks", "run", task["id"], "--wait")
    assert run["state"] == "succeeded"
    assert run["node"] and "-cli-" not in run["node"]
    assert local.ok("--api-url", server.url, "runs", "logs", run["id"]) == "served\n"


def test_remote_errors_keep_their_exit_codes(local: Cli, server: Server) -> None:
    missing = local("--api-url", server.url, "tasks", "get", "no-such-task")
    assert missing.exit_code == 4
    one_error_line(missing.stderr)
    bad = local("--api-url", server.url, "tasks", "create", "--name", "x",
                "--schedule-type", "daily", "--schedule-expression", "25:00")
    assert bad.exit_code == 2
    assert "schedule_expression" in one_error_line(bad.stderr)


def test_a_wrong_admin_token_is_refused_with_exit_3(local: Cli, server: Server,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APFLOW_ADMIN_AUTH_TOKEN", "not-a-jwt")
    result = local("--api-url", server.url, "tasks", "list")
    assert result.exit_code == 3
    one_error_line(result.stderr)


def test_an_unreachable_api_is_one_line(local: Cli) -> None:
    result = local("--api-url", f"http://127.0.0.1:{free_port()}", "tasks", "list")
    assert result.exit_code == 1
    assert "cannot reach the API" in one_error_line(result.stderr)


def test_api_url_from_the_config_file(local: Cli, server: Server, tmp_path: Path) -> None:
    config = tmp_path / "client.yaml"
    secret = next(line for line in (server.home / "config.cli.yaml").read_text().splitlines()
                  if line.startswith("jwt_secret:"))
    config.write_text(f"{secret}\napi_url: {server.url}\n"
                      f"database_url: sqlite:///{tmp_path / 'unused.db'}\n")
    listed = json.loads(local.ok("--config", str(config), "-f", "json", "tasks", "list"))
    assert listed["tasks"]  # the server's tasks, not the empty unused.db
    assert not (tmp_path / "unused.db").exists()


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    running = start_server(tmp_path / "home")
    try:
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(timeout=20) == 0
        assert "Traceback" not in (running.proc.stderr.read() if running.proc.stderr else "")
    finally:
        stop_process(running.proc)
