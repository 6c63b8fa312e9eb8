"""`apflow scheduler start` as a real process: it fires due schedules and runs them, and
SIGTERM drains running work before it exits 0. `--background` detaches with a pid file."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from apflow.cli import daemon
from tests.cli.helpers import (
    Cli,
    clean_env,
    one_error_line,
    run_apflow,
    start_apflow,
    wait_until,
)


def test_scheduler_fires_a_due_task_then_drains_and_exits_0_on_sigterm(
        apflow: Cli, home: Path, tmp_path: Path,
        processes: list[subprocess.Popen[str]]) -> None:
    fired = tmp_path / "fired"
    task = apflow.json("tasks", "create", "--name", "tick", "--schedule-type", "interval",
                       "--schedule-expression", "1", "--schedule-enabled",
                       "--command", f"echo tick >> {fired}")
    apflow.ok("tasks", "scheduled", "init", task["id"])
    proc = start_apflow("scheduler", "start", "--poll-interval", "1", env=clean_env(home))
    processes.append(proc)
    wait_until(fired.exists, 20, "the first scheduled run", alive=proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    runs = apflow.json("runs", "list", "--task-id", task["id"])["runs"]
    assert runs and all(r["trigger"] in ("schedule", "catch_up") for r in runs)
    assert not [r for r in runs if r["state"] in ("running", "crashed")]


def test_sigterm_lets_a_running_run_finish(apflow: Cli, home: Path, tmp_path: Path,
                                           processes: list[subprocess.Popen[str]]) -> None:
    started, done = tmp_path / "started", tmp_path / "done"
    task = apflow.json("tasks", "create", "--name", "slow", "--graceful-stop-seconds", "10",
                       "--command", f"touch {started}; sleep 1; touch {done}")
    proc = start_apflow("scheduler", "start", env=clean_env(home))
    processes.append(proc)
    run = apflow.json("tasks", "run", task["id"])
    wait_until(started.exists, 20, "the run to start", alive=proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert done.exists()
    assert apflow.json("runs", "show", run["id"])["state"] == "succeeded"


def test_background_prints_the_pid_and_stop_drains_it(home: Path) -> None:
    env = clean_env(home)
    started = run_apflow("scheduler", "start", "--background", env=env)
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.strip())
    try:
        assert daemon.process_alive(pid)
        assert (home / "scheduler.pid").read_text().strip() == str(pid)
        again = run_apflow("scheduler", "start", "--background", env=env)
        assert again.returncode == 1
        assert str(pid) in one_error_line(again.stderr)
        stopped = run_apflow("scheduler", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        wait_until(lambda: not daemon.process_alive(pid), 10, "the scheduler to exit")
        assert not (home / "scheduler.pid").exists()
        assert "scheduler running" in (home / "scheduler.log").read_text()
    finally:
        if daemon.process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_stop_without_a_running_scheduler_is_exit_4(home: Path) -> None:
    result = run_apflow("scheduler", "stop", env=clean_env(home))
    assert result.returncode == 4
    one_error_line(result.stderr)
