"""`apflow apply FILE`: the YAML side of tasks.apply (lines in errors, ${VAR} in env)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import Cli, one_error_line

FILE = """\
source: ops
tasks:
  - name: backup
    executor: {type: command, command: /usr/bin/backup}
    schedule_type: daily
    schedule_expression: "02:00"
    schedule_enabled: true
    env:
      DB_PASSWORD: ${BACKUP_DB_PASSWORD}
  - name: report
    executor: {type: command, command: /usr/bin/report}
"""


@pytest.fixture
def tasks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BACKUP_DB_PASSWORD", "s3cret-value")
    path = tmp_path / "ops.yaml"
    path.write_text(FILE)
    return path


def test_apply_creates_then_reapplying_changes_nothing(apflow: Cli, tasks_file: Path) -> None:
    assert apflow.ok("apply", str(tasks_file)).splitlines() == [
        "+ backup", "+ report", "changed 2 task(s) of source ops"]
    again = apflow.json("apply", str(tasks_file))
    assert (again["create"], again["update"], again["delete"]) == ([], [], [])
    listed = apflow.json("tasks", "list")["tasks"]
    backup = next(t for t in listed if t["name"] == "backup")
    assert backup["env"] == {"DB_PASSWORD": "****"}


def test_dry_run_changes_nothing(apflow: Cli, tasks_file: Path) -> None:
    text = apflow.ok("apply", str(tasks_file), "--dry-run")
    assert text.splitlines()[-1] == "would change 2 task(s) of source ops"
    assert apflow.json("tasks", "list")["tasks"] == []


def test_a_bad_definition_is_reported_with_its_line(apflow: Cli, tasks_file: Path) -> None:
    tasks_file.write_text(FILE + "    retry_limit: lots\n")
    result = apflow("apply", str(tasks_file))
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith(f"error: {tasks_file}:10: tasks[1]")
    assert apflow.json("tasks", "list")["tasks"] == []


def test_a_yaml_error_names_the_line(apflow: Cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("tasks:\n  - name: a\n    executor: {type: command\n")
    result = apflow("apply", str(path))
    assert result.exit_code == 2
    assert f"{path}:" in one_error_line(result.stderr)


def test_a_missing_variable_is_refused(apflow: Cli, tasks_file: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKUP_DB_PASSWORD")
    result = apflow("apply", str(tasks_file))
    assert result.exit_code == 2
    assert "${BACKUP_DB_PASSWORD}" in one_error_line(result.stderr)
    assert apflow.json("tasks", "list")["tasks"] == []
