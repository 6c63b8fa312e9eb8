"""`apflow serve`: answers /health on the embedded SQLite default, stops cleanly, and
refuses bad configuration with one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

APFLOW = [sys.executable, "-m", "apflow.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APFLOW_")}
    env["APFLOW_HOME"] = str(home)
    env.update(extra)
    return env


def get_health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            body: dict[str, object] = json.loads(resp.read())
            return body
    except OSError:
        return None


def wait_for_health(port: int, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        body = get_health(port)
        if body is not None:
            return body
        time.sleep(0.1)
    raise AssertionError("apflow serve did not answer /health in 20 s")


def test_serve_answers_health_on_sqlite_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*APFLOW, "serve", "--port", str(port)], env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = wait_for_health(port, proc)
        assert body["status"] == "ok"
        assert body["database"] == "sqlite"
        assert (tmp_path / "apflow.db").exists()
        assert (tmp_path / "config.cli.yaml").stat().st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")


def test_serve_binds_loopback_by_default(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*APFLOW, "serve", "--port", str(port)], env=env_for(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_health(port, proc)
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True, check=False).stdout
        local_addresses = [line.split()[3] for line in out.splitlines()]
        if local_addresses:  # ss is there: every listener is on 127.0.0.1 only
            assert all(a == f"127.0.0.1:{port}" for a in local_addresses), out
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*APFLOW, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_a_config_that_is_not_yaml_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("api: [\n")
    result = run_cli("serve", "--config", str(config), env=env_for(tmp_path))
    assert_one_line_error(result, "not valid YAML")
    assert result.returncode == 2
    assert config.read_text() == "api: [\n"
    assert not (tmp_path / "apflow.db").exists()


def test_an_unknown_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("jwt_secret: 0123456789abcdef0123\nschedular:\n  poll_interval: 5\n")
    assert_one_line_error(run_cli("serve", "--config", str(config), env=env_for(tmp_path)),
                          "schedular")


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://apflow:hunter2@127.0.0.1:{free_port()}/apflow"
    result = run_cli("serve", "--port", str(free_port()),
                     env=env_for(tmp_path, APFLOW_DATABASE_URL=url))
    assert_one_line_error(result, "cannot connect")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:", "not a url"])
def test_a_wrong_database_url_is_named(tmp_path: Path, url: str) -> None:
    result = run_cli("serve", env=env_for(tmp_path, APFLOW_DATABASE_URL=url))
    assert_one_line_error(result, "database_url")


def test_token_prints_an_hs256_jwt_with_the_role(tmp_path: Path) -> None:
    import jwt

    env = env_for(tmp_path)
    result = run_cli("token", "--user", "alice", "--role", "admin", "--ttl", "60", env=env)
    assert result.returncode == 0, result.stderr
    secret = next(line.split(": ", 1)[1] for line in
                  (tmp_path / "config.cli.yaml").read_text().splitlines()
                  if line.startswith("jwt_secret:"))
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("alice", "admin")
    assert 0 < claims["exp"] - time.time() <= 61
