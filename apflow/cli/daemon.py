"""`scheduler start --background`: a detached re-exec, a log file and a pid file.

Re-executing (`python -m apflow.cli.main ... scheduler start`) in a new session rather than
double-forking keeps the child free of the parent's event loop and open handles. The child
writes the pid file itself once its engine runs and signals are handled, so a pid file
always names a process that will drain on SIGTERM; it removes the file when it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from apflow.cli.errors import EXIT_FAILURE, EXIT_NOT_FOUND, CliError
from apflow.config import Config, default_home

PID_FILE_NAME = "scheduler.pid"
LOG_FILE_NAME = "scheduler.log"
READY_TIMEOUT = 30.0
POLL_SECONDS = 0.1


def state_dir(config: Config) -> Path:
    """The directory of the config file: where the pid and log files go."""
    return config.path.resolve().parent if config.path is not None else default_home()


def pid_file(config: Config) -> Path:
    """Where a background scheduler records its pid."""
    return state_dir(config) / PID_FILE_NAME


def log_file(config: Config) -> Path:
    """Where a background scheduler's output goes (appended)."""
    return state_dir(config) / LOG_FILE_NAME


def live_pid(path: Path) -> int | None:
    """The pid in `path` if that process is alive, else None."""
    try:
        pid = int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists and has not exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    """Whether `pid` has exited but not been reaped (where /proc tells; else False)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def start_detached(args: Sequence[str], pidfile: Path, logfile: Path,
                   timeout: float = READY_TIMEOUT) -> int:
    """Start `apflow <args> --pid-file <pidfile>` detached; return its pid once it is ready."""
    running = live_pid(pidfile)
    if running is not None:
        raise CliError(f"a scheduler is already running (pid {running}, {pidfile})")
    pidfile.unlink(missing_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "apflow.cli.main", *args, "--pid-file", str(pidfile)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    return wait_ready(child, pidfile, logfile, timeout)


def wait_ready(child: subprocess.Popen[bytes], pidfile: Path, logfile: Path,
               timeout: float) -> int:
    """Wait until the child has written its pid file; fail if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live_pid(pidfile) == child.pid:
            child.returncode = 0  # detached on purpose: never waited for by this process
            return child.pid
        code = child.poll()
        if code is not None:
            raise CliError(f"the scheduler exited at start (code {code}): "
                           f"{last_line(logfile)} (see {logfile})", EXIT_FAILURE)
        time.sleep(POLL_SECONDS)
    os.kill(child.pid, signal.SIGTERM)
    raise CliError(f"the scheduler was not ready within {timeout:.0f} s (see {logfile})")


def last_line(path: Path) -> str:
    """The last non-empty line of a log file ("" if none)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def write_pid_file(path: Path) -> None:
    """Record this process's pid atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
    tmp.replace(path)


def remove_pid_file(path: Path) -> None:
    """Remove the pid file if it still names this process."""
    try:
        if int(path.read_text(encoding="utf-8").strip()) == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def stop_detached(pidfile: Path, timeout: float) -> int:
    """SIGTERM the scheduler named by `pidfile` and wait for it to drain; return its pid."""
    pid = live_pid(pidfile)
    if pid is None:
        raise CliError(f"no scheduler is running ({pidfile} names no live process)",
                       EXIT_NOT_FOUND)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live_pid(pidfile) != pid:
            return pid
        time.sleep(POLL_SECONDS)
    raise CliError(f"the scheduler (pid {pid}) is still draining after {timeout:.0f} s")
