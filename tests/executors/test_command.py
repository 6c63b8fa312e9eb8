"""The command executor: /bin/sh -c in its own process group, stopped as a whole."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from apflow.domain.enums import RunState
from apflow.domain.errors import ExecutorError, InvalidParams
from apflow.executors.base import RunContext
from apflow.executors.command import CommandExecution, CommandExecutor, group_alive
from tests.executors.conftest import collector, finish, make_ctx


async def start(command: str, ctx: RunContext | None = None, **spec: Any) -> CommandExecution:
    return await CommandExecutor().start({"type": "command", "command": command, **spec},
                                         ctx or make_ctx())


async def run(command: str, ctx: RunContext | None = None, **spec: Any) -> tuple[Any, str]:
    ctx = ctx or make_ctx()
    result = await finish(await start(command, ctx, **spec))
    return result, collector(ctx).text


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != b"Z":
                members.append(int(entry))
    return members


async def wait_for_members(pgid: int, count: int) -> list[int]:
    async with asyncio.timeout(10):
        while len(members := group_members(pgid)) < count:
            await asyncio.sleep(0.02)
    return members


async def test_a_command_that_exits_zero_succeeds_with_its_output() -> None:
    result, text = await run("echo hello")
    assert result.state is RunState.SUCCEEDED and result.exit_code == 0
    assert result.error is None and text == "hello\n"


async def test_stdout_and_stderr_are_both_recorded_by_stream() -> None:
    ctx = make_ctx()
    await finish(await start("echo out; echo err >&2", ctx))
    assert collector(ctx).of("stdout") == "out\n" and collector(ctx).of("stderr") == "err\n"


async def test_output_is_recorded_in_order_of_arrival() -> None:
    ctx = make_ctx()
    await finish(await start("echo 1; sleep 0.2; echo 2 >&2; sleep 0.2; echo 3", ctx))
    assert collector(ctx).writes == [("stdout", "1\n"), ("stderr", "2\n"), ("stdout", "3\n")]


async def test_a_nonzero_exit_fails_with_the_exit_code() -> None:
    result, _ = await run("exit 3")
    assert result.state is RunState.FAILED and result.exit_code == 3
    assert result.error == "exit code 3"


async def test_a_command_that_is_not_found_exits_127() -> None:
    result, text = await run("no-such-command-apflow")
    assert result.exit_code == 127 and result.error == "exit code 127: command not found"
    assert "not found" in text


async def test_a_megabyte_of_output_is_recorded_completely() -> None:
    result, text = await run("head -c 1048576 /dev/zero | tr '\\0' x")
    assert result.state is RunState.SUCCEEDED and text == "x" * 1048576


async def test_stdin_is_empty() -> None:
    result, text = await run("cat; echo end")
    assert result.state is RunState.SUCCEEDED and text == "end\n"


async def test_the_environment_is_minimal_plus_spec_env_plus_run_env(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APFLOW_TEST_LEAK", "leaked")
    ctx = make_ctx(env={"FROM_RUN": "run", "BOTH": "run-wins", "APFLOW_RUN_ID": "run0001"})
    _, text = await run("env", ctx, env={"FROM_SPEC": "spec", "BOTH": "spec"})
    env = dict(line.split("=", 1) for line in text.splitlines())
    assert env["FROM_SPEC"] == "spec" and env["FROM_RUN"] == "run"
    assert env["BOTH"] == "run-wins" and env["APFLOW_RUN_ID"] == "run0001"
    assert env["PATH"] == os.environ["PATH"]
    assert "APFLOW_TEST_LEAK" not in env


async def test_the_command_runs_in_cwd(tmp_path: Path) -> None:
    _, text = await run("pwd", cwd=str(tmp_path))
    assert text.strip() == str(tmp_path)


async def test_a_missing_cwd_is_a_start_failure(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match=r"working directory .* cannot be used"):
        await start("true", cwd=str(tmp_path / "missing"))


async def test_the_command_leads_its_own_process_group() -> None:
    execution = await start("sleep 0.1")
    assert os.getpgid(execution.pid) == execution.pid != os.getpgid(0)
    await finish(execution)


async def test_stop_terminates_the_whole_group() -> None:
    execution = await start("sleep 100 & sleep 100")
    members = await wait_for_members(execution.pid, 3)
    async with asyncio.timeout(10):
        await execution.stop(5)
    assert not group_alive(execution.pid)
    assert not any(Path(f"/proc/{pid}").exists() and pid in group_members(execution.pid)
                   for pid in members)
    result = await finish(execution)
    assert result.state is RunState.FAILED and result.error == "killed by signal SIGTERM"
    assert result.exit_code == 143


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    execution = await start("trap '' TERM; sleep 100 & sleep 100")
    await wait_for_members(execution.pid, 3)
    started = time.monotonic()
    async with asyncio.timeout(10):
        await execution.stop(0.5)
    assert time.monotonic() - started >= 0.5
    assert not group_alive(execution.pid)
    assert (await finish(execution)).error == "killed by signal SIGKILL"


async def test_a_command_that_handles_sigterm_stops_within_the_grace_period() -> None:
    ctx = make_ctx()
    execution = await start("trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done", ctx)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    async with asyncio.timeout(10):
        await execution.stop(5)
    assert time.monotonic() - started < 2
    result = await finish(execution)
    assert result.exit_code == 0 and "bye" in collector(ctx).text


async def test_processes_left_behind_by_a_finished_command_are_stopped() -> None:
    ctx = make_ctx(grace=0.5)
    execution = await start("sleep 100 & echo started", ctx)
    result = await finish(execution, 10)
    assert result.state is RunState.SUCCEEDED
    assert not group_alive(execution.pid)
    assert "left processes" in collector(ctx).of("system")


async def test_stop_after_the_command_ended_returns_at_once() -> None:
    execution = await start("true")
    await finish(execution)
    async with asyncio.timeout(2):
        await execution.stop(5)


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "executor.command"),
    ({"command": ""}, "executor.command"),
    ({"command": ["echo"]}, "executor.command"),
    ({"command": "x", "cwd": 3}, "executor.cwd"),
    ({"command": "x", "env": ["A=1"]}, "executor.env"),
    ({"command": "x", "env": {"A": 1}}, "executor.env"),
    ({"command": "x", "env": {"A=B": "1"}}, "executor.env"),
])
def test_a_bad_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        CommandExecutor().validate({"type": "command", **spec})
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("command", "argv"), [
    ("/bin/true", ["/bin/true"]),
    ("  /usr/bin/env -i  A=1 ", ["/usr/bin/env", "-i", "A=1"]),
    ("./backup.sh --full", ["./backup.sh", "--full"]),
    ("true", None),  # a builtin or a PATH lookup: the shell decides
    ("echo hi", None),
    ("/bin/echo $HOME", None),
    ("/bin/echo 'a b'", None),
    ("/bin/true; /bin/false", None),
    ("/bin/true > /dev/null", None),
    ("/bin/sleep 1 &", None),
    ("A=1 /bin/true", None),
    ("/bin/ls *", None),
])
def test_only_plain_path_qualified_commands_skip_the_shell(command: str,
                                                           argv: list[str] | None) -> None:
    from apflow.executors.command import direct_argv

    assert direct_argv(command) == argv


async def test_a_direct_program_that_is_missing_reads_as_the_shell_says(
        ctx: RunContext) -> None:
    execution = await CommandExecutor().start({"command": "/no/such/program --x"}, ctx)
    result = await finish(execution)
    assert (result.state, result.exit_code) == (RunState.FAILED, 127)
    assert "not found" in collector(ctx).of("stderr")


async def test_a_direct_program_gets_the_env_and_its_own_group(ctx: RunContext) -> None:
    ctx = make_ctx(env={"APFLOW_RUN_ID": "r1"})
    execution = await CommandExecutor().start({"command": "/usr/bin/env"}, ctx)
    result = await finish(execution)
    assert result.state is RunState.SUCCEEDED
    assert "APFLOW_RUN_ID=r1" in collector(ctx).of("stdout")
