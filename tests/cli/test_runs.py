"""Running a task from the CLI and reading its record and logs, without any server:
`tasks run --wait` makes this process the node that executes the run."""

from __future__ import annotations

import json

from tests.cli.helpers import Cli, one_error_line


def test_run_wait_executes_here_and_prints_the_outcome(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "hello",
                       "--command", 'echo "hello $GREETING"')
    result = apflow("-f", "json", "tasks", "run", task["id"], "--var", "GREETING=world",
                    "--wait")
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)
    assert (run["state"], run["exit_code"], run["trigger"]) == ("succeeded", 0, "manual")
    assert apflow.ok("runs", "logs", run["id"]) == "hello world\n"


def test_run_wait_exits_1_with_one_line_when_the_run_fails(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "bad", "--command", "exit 3")
    result = apflow("tasks", "run", task["id"], "--wait")
    assert result.exit_code == 1
    assert "failed" in one_error_line(result.stderr)
    assert any(line.split() == ["exit_code", "3"] for line in result.stdout.splitlines())


def test_run_without_wait_queues_and_cancel_cancels(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "later", "--command", "true")
    run = apflow.json("tasks", "run", task["id"])
    assert run["state"] == "queued"
    assert apflow.json("runs", "cancel", run["id"])["state"] == "cancelled"
    assert apflow.json("runs", "show", run["id"])["state"] == "cancelled"


def test_runs_list_filters_by_task_and_state(apflow: Cli) -> None:
    a = apflow.json("tasks", "create", "--name", "a", "--command", "true")
    b = apflow.json("tasks", "create", "--name", "b", "--command", "true")
    ran = apflow.json("tasks", "run", a["id"], "--wait")
    queued = apflow.json("tasks", "run", b["id"])
    assert [r["id"] for r in apflow.json("runs", "list", "--task-id", a["id"])["runs"]] == [
        ran["id"]]
    only_queued = apflow.json("runs", "list", "--state", "queued")["runs"]
    assert [r["id"] for r in only_queued] == [queued["id"]]
    table = apflow.ok("runs", "list")
    assert table.splitlines()[0].split()[:4] == ["ID", "TASK", "TRIGGER", "STATE"]


def test_logs_follow_returns_once_the_run_has_finished(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "lines",
                       "--command", "echo one; echo two >&2; echo three")
    run = apflow.json("tasks", "run", task["id"], "--wait")
    text = apflow.ok("runs", "logs", run["id"], "--follow")
    # Two pipes: lines of one stream keep their order; across streams, arrival decides.
    assert sorted(text.splitlines()) == ["one", "three", "two"]
    assert text.index("one") < text.index("three")
    chunks = [json.loads(line) for line in
              apflow.ok("-f", "json", "runs", "logs", run["id"]).splitlines()]
    assert "".join(c["text"] for c in chunks) == text
    assert {c["stream"] for c in chunks if "two" in c["text"]} == {"stderr"}


def test_an_unknown_run_is_exit_4(apflow: Cli) -> None:
    result = apflow("runs", "show", "no-such-run")
    assert result.exit_code == 4
    one_error_line(result.stderr)
