"""CLI tests run the real command line against a temp APFLOW_HOME (config + SQLite file).

`apflow` runs it in-process with click's CliRunner (fast); tests that need the entry point,
exit codes, signals or a real server start `.venv/bin/apflow` as a subprocess. Nothing here
reads or writes ~/.apflow: every APFLOW_* variable is replaced for the test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.helpers import Cli, stop_process


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty APFLOW_HOME; the config and database appear there on first use."""
    for key in list(os.environ):
        if key.startswith("APFLOW_"):
            monkeypatch.delenv(key)
    path = tmp_path / "apflow-home"
    monkeypatch.setenv("APFLOW_HOME", str(path))
    return path


@pytest.fixture
def apflow(home: Path) -> Cli:
    """The CLI on the temp home, in this process."""
    return Cli(CliRunner())


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at the end are killed (by their PID)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop_process(proc)
