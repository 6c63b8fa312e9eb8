"""The installed `apflow` entry point: exit codes and one-line errors in a real process."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import clean_env, one_error_line, run_apflow


def test_help_lists_the_command_groups(tmp_path: Path) -> None:
    result = run_apflow("--help", env=clean_env(tmp_path))
    assert result.returncode == 0
    for group in ("tasks", "runs", "scheduler", "serve", "token"):
        assert f"  {group}" in result.stdout


def test_exit_codes_of_a_real_process(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    created = run_apflow("tasks", "create", "--name", "x", "--command", "true", env=env)
    assert created.returncode == 0, created.stderr
    assert run_apflow("tasks", "list", env=env).returncode == 0
    usage = run_apflow("tasks", "create", env=env)
    assert usage.returncode == 2
    one_error_line(usage.stderr)
    missing = run_apflow("runs", "show", "nope", env=env)
    assert missing.returncode == 4
    one_error_line(missing.stderr)


def test_a_broken_config_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("database_url: [unclosed\n")
    result = run_apflow("--config", str(config), "tasks", "list", env=clean_env(tmp_path))
    assert result.returncode == 2
    assert "not valid YAML" in one_error_line(result.stderr)
