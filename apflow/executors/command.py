"""The "command" executor: `/bin/sh -c <command>` in its own process group.

The whole process group is the unit of work, as a container is for Kubernetes and a
control group for systemd: stop() signals the group (SIGTERM, then SIGKILL after the grace
period) and returns only when no member is left, and when the shell exits on its own, members
it left behind (`cmd &`) are stopped the same way, so no run leaves processes behind.

A command that is one path-qualified program with plain words (`/usr/bin/backup --full`) is
exec'd directly: for such a command `sh -c` would do nothing but exec it, and skipping the
shell halves the cost of a short run. Anything else (builtins, PATH lookups, quotes,
variables, redirections, pipes) goes through the shell, and so does a program that cannot
be exec'd, so errors read exactly as the shell reports them (exit 126/127).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping
from typing import Any

from apflow.domain.enums import RunState
from apflow.domain.errors import ExecutorError
from apflow.executors.base import ExecutionResult, LogSink, RunContext
from apflow.executors.specs import env_map, optional_str, required_str

SHELL = "/bin/sh"
READ_SIZE = 64 * 1024
BASE_ENV_KEYS = ("PATH", "HOME", "LANG")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
GROUP_POLL_SECONDS = 0.02
EXIT_POLL_SECONDS = 0.05
# After SIGKILL the kernel needs a moment to tear processes down; past this, stop() gives up.
KILL_WAIT_SECONDS = 5.0
EXIT_HINTS = {126: "command not executable", 127: "command not found"}
# A path-qualified program followed by words the shell would pass through unchanged.
_PLAIN_WORD = r"[A-Za-z0-9_./:@%+,=-]+"
_DIRECT = re.compile(rf"[A-Za-z0-9_.:@%+,-]*/{_PLAIN_WORD}(?: +{_PLAIN_WORD})*")


def direct_argv(command: str) -> list[str] | None:
    """The argv to exec without a shell, when the shell would only exec it; else None."""
    text = command.strip()
    if not _DIRECT.fullmatch(text) or "=" in text.split(" ", 1)[0]:
        return None
    return text.split()


def base_environment() -> dict[str, str]:
    """The few variables a command inherits from apflow itself (nothing secret)."""
    env = {key: os.environ[key] for key in BASE_ENV_KEYS if key in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def describe_exit(returncode: int) -> tuple[int, str | None]:
    """(exit code, error) for a return code; a signal death reads as 128+N, like a shell."""
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return 128 + number, f"killed by signal {name}"
    if returncode == 0:
        return 0, None
    hint = EXIT_HINTS.get(returncode)
    return returncode, f"exit code {returncode}: {hint}" if hint else f"exit code {returncode}"


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in process group `pgid`.

    Zombies are ignored: an orphan killed here is reaped by PID 1, which in a container may
    never do it, and a zombie runs nothing. The signal probe comes first: an empty group (the
    usual case once a command has exited) answers at once, without reading /proc.
    """
    if not _group_signalable(pgid):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return _group_signalable(pgid)
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _group_signalable(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send `signum` to the group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class CommandExecution:
    """One running command and its process group."""

    def __init__(self, process: asyncio.subprocess.Process, log: LogSink,
                 grace_seconds: float) -> None:
        self._process = process
        self._pgid = process.pid  # start_new_session: the shell leads its own group
        self._log = log
        self._grace = grace_seconds
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(process.stdout, "stdout")),
            asyncio.create_task(self._pump(process.stderr, "stderr")),
        ]
        self._ending: asyncio.Task[None] | None = None
        self._result: asyncio.Task[ExecutionResult] | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    async def _pump(self, reader: asyncio.StreamReader, stream: str) -> None:
        """Copy one pipe to the log; if the log fails, keep draining the pipe (a full pipe
        would block the process) and raise the failure at the end."""
        failure: Exception | None = None
        while data := await reader.read(READ_SIZE):
            if failure is None:
                try:
                    await self._log.write(stream, data)
                except Exception as exc:  # raised below, once the process is done writing
                    failure = exc
        if failure is not None:
            raise failure

    async def wait(self) -> ExecutionResult:
        """Wait for the shell to exit, stop what it left behind, collect its output."""
        if self._result is None:
            self._result = asyncio.ensure_future(self._finish())
        return await asyncio.shield(self._result)

    async def _exited(self, waiter: asyncio.Future[int]) -> int:
        """The shell's return code, as soon as it exits.

        Process.wait() also waits for the pipes to close, which a process left in the
        background may never do; the return code itself is known as soon as the shell is
        reaped, so poll it while wait() is pending.
        """
        while self._process.returncode is None and not waiter.done():
            await asyncio.wait({waiter}, timeout=EXIT_POLL_SECONDS)
        returncode = self._process.returncode
        if returncode is None:
            returncode = await waiter
        return returncode

    async def _finish(self) -> ExecutionResult:
        waiter = asyncio.ensure_future(self._process.wait())
        returncode = await self._exited(waiter)
        if group_alive(self._pgid):
            await self._log.write("system", "apflow: the command exited but left processes "
                                            "in its group running; stopping them\n")
            await self._end_group(self._grace)
        await asyncio.gather(*self._pumps, waiter)
        exit_code, error = describe_exit(returncode)
        state = RunState.SUCCEEDED if returncode == 0 else RunState.FAILED
        return ExecutionResult(state=state, exit_code=exit_code, error=error)

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM to the group, SIGKILL after `grace_seconds`; return when all are gone."""
        await self._end_group(grace_seconds)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_WAIT_SECONDS):
                await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _end_group(self, grace_seconds: float) -> None:
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._terminate(grace_seconds))
        await asyncio.shield(self._ending)

    async def _terminate(self, grace_seconds: float) -> None:
        signal_group(self._pgid, signal.SIGTERM)
        if await self._gone_within(grace_seconds):
            return
        signal_group(self._pgid, signal.SIGKILL)
        if not await self._gone_within(KILL_WAIT_SECONDS):
            raise ExecutorError(f"process group {self._pgid} survived SIGKILL")

    async def _gone_within(self, seconds: float) -> bool:
        """Wait until the shell is reaped and its group is empty; False on time out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(seconds, 0.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._process.wait()
        while self._process.returncode is not None and group_alive(self._pgid):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(GROUP_POLL_SECONDS)
        return self._process.returncode is not None


class CommandExecutor:
    """Runs `command` with /bin/sh in a fresh process group."""

    type_name = "command"

    def validate(self, spec: Mapping[str, Any]) -> None:
        required_str(spec, "command")
        optional_str(spec, "cwd")
        env_map(spec)

    async def start(self, spec: Mapping[str, Any], ctx: RunContext) -> CommandExecution:
        self.validate(spec)
        command = required_str(spec, "command")
        cwd = optional_str(spec, "cwd")
        env = {**base_environment(), **env_map(spec), **ctx.env}  # ctx.env wins
        argv = direct_argv(command)
        process = None
        if argv is not None:
            with contextlib.suppress(OSError):  # the shell below reports it as it would
                process = await spawn(argv, cwd, env)
        try:
            if process is None:
                process = await spawn([SHELL, "-c", command], cwd, env)
        except OSError as exc:  # uvloop does not name the file: look at the directory
            if cwd is not None and (exc.filename == cwd or not os.access(cwd, os.X_OK)):
                raise ExecutorError(f"working directory '{cwd}' cannot be used: "
                                    f"{exc.strerror or exc}") from exc
            raise ExecutorError(f"could not start {SHELL}: {exc.strerror or exc}") from exc
        return CommandExecution(process, ctx.log, ctx.graceful_stop_seconds)


async def spawn(argv: list[str], cwd: str | None,
                env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start argv as the leader of a new process group, output piped, no input."""
    return await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, start_new_session=True, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
