"""Every failure is one line on stderr (`error: ...`) and an exit code saying which kind:
2 bad input, 3 denied, 4 not found, 1 anything else. Bad configuration changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from apflow.cli import context
from tests.cli.helpers import Cli, free_port, one_error_line


@pytest.mark.parametrize(("args", "needle"), [
    (["tasks", "create"], "Missing option '--name'"),
    (["tasks", "create", "--name", "x", "--inputs", "{bad"], "--inputs"),
    (["tasks", "create", "--name", "x", "--inputs", "[1]"], "JSON object"),
    (["tasks", "create", "--name", "x", "--env", "NOEQUALS"], "KEY=VALUE"),
    (["tasks", "create", "--name", "x", "--command", "a", "--executor", "{}"], "not both"),
    (["tasks", "create", "--name", "x", "--schedule-type", "hourly"], "--schedule-type"),
    (["tasks", "update", "t1"], "nothing to update"),
    (["tasks", "scheduled", "init", "t1", "--from-time", "2025-01-01T09:00:00"], "offset"),
    (["tasks", "scheduled", "init", "t1", "--from-time", "tomorrow"], "ISO 8601"),
    (["tasks", "nosuch"], "No such command"),
    (["--format", "xml", "tasks", "list"], "--format"),
])
def test_bad_usage_is_one_line_and_exit_2(apflow: Cli, args: list[str], needle: str) -> None:
    result = apflow(*args)
    assert result.exit_code == 2
    assert needle in one_error_line(result.stderr)
    assert result.stdout == ""


def test_a_config_that_is_not_yaml_is_named_and_nothing_is_created(apflow: Cli,
                                                                    tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("api: [\n")
    result = apflow("--config", str(config), "tasks", "list")
    assert result.exit_code == 2
    assert "not valid YAML" in one_error_line(result.stderr)
    assert config.read_text() == "api: [\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_an_unknown_config_key_is_named(apflow: Cli, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("jwt_secret: 0123456789abcdef0123\nschedular:\n  poll_interval: 5\n")
    result = apflow("--config", str(config), "scheduler", "list")
    assert result.exit_code == 2
    assert "schedular" in one_error_line(result.stderr)


def test_a_wrong_database_url_is_named_and_creates_nothing(
        apflow: Cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APFLOW_DATABASE_URL", "mysql://db/apflow")
    result = apflow("tasks", "list")
    assert result.exit_code == 2
    assert "database_url" in one_error_line(result.stderr)
    assert not list(home.glob("*.db"))


def test_an_unreachable_database_is_one_line_without_the_password(
        apflow: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://apflow:hunter2@127.0.0.1:{free_port()}/apflow"
    monkeypatch.setenv("APFLOW_DATABASE_URL", url)
    result = apflow("tasks", "list")
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "cannot connect" in line
    assert "hunter2" not in result.stderr


def test_an_unknown_task_is_exit_4(apflow: Cli) -> None:
    result = apflow("tasks", "get", "no-such-task")
    assert result.exit_code == 4
    assert "no-such-task" in one_error_line(result.stderr)


def test_an_invalid_field_is_exit_2_and_named(apflow: Cli) -> None:
    result = apflow("tasks", "create", "--name", "x", "--schedule-type", "daily",
                    "--schedule-expression", "25:00")
    assert result.exit_code == 2
    assert "schedule_expression" in one_error_line(result.stderr)


def boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_an_unexpected_error_is_one_line(apflow: Cli,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "connect", boom)
    result = apflow("tasks", "list")
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == "error: unexpected RuntimeError: boom"


def test_verbose_shows_the_traceback_of_an_unexpected_error(
        apflow: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "connect", boom)
    result = apflow("-v", "tasks", "list")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().endswith("error: unexpected RuntimeError: boom")


def test_declining_the_delete_prompt_deletes_nothing(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "keep me")
    result = apflow("tasks", "delete", task["id"], input="n\n")
    assert result.exit_code == 1
    assert "aborted" in result.stderr
    assert apflow.json("tasks", "get", task["id"])["name"] == "keep me"
