"""The seed's quick start, as a user types it: create, schedule daily in a zone, initialise,
list, see it due, check the scheduler; in tables by default and in JSON for scripts."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.cli.helpers import Cli


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_quick_start_schedules_a_daily_task_in_its_timezone(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "Daily Report",
                       "--inputs", '{"report_type": "summary"}')
    assert task["name"] == "Daily Report"
    assert task["inputs"] == {"report_type": "summary"}

    updated = apflow.json("tasks", "update", task["id"], "--schedule-type", "daily",
                          "--schedule-expression", "09:00", "--timezone", "Europe/Paris",
                          "--schedule-enabled")
    assert (updated["schedule_type"], updated["schedule_expression"], updated["timezone"],
            updated["schedule_enabled"]) == ("daily", "09:00", "Europe/Paris", True)

    # 09:00 in Paris is 08:00 UTC in winter: the first slot after midnight UTC.
    inited = apflow.json("tasks", "scheduled", "init", task["id"],
                         "--from-time", "2025-01-15T00:00:00Z")
    assert instant(inited["next_run_at"]) == datetime(2025, 1, 15, 8, 0, tzinfo=UTC)

    listed = apflow.json("scheduler", "list")
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]

    due = apflow.json("tasks", "scheduled", "due")  # 2025-01-15 08:00 has passed
    assert [t["id"] for t in due["tasks"]] == [task["id"]]

    status = apflow.json("scheduler", "status")
    assert isinstance(status, dict) and status


def test_quick_start_tables_read_as_aligned_columns(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "Daily Report", "--schedule-type",
                       "daily", "--schedule-expression", "09:00", "--timezone",
                       "Europe/Paris", "--schedule-enabled")
    lines = apflow.ok("scheduler", "list").splitlines()
    header, row = lines[0], lines[1]
    assert header.split() == ["ID", "NAME", "TYPE", "EXPRESSION", "TIMEZONE", "ENABLED",
                              "STATUS", "NEXT", "RUN", "LAST", "RUN", "RUNS"]
    assert row.startswith(task["id"])
    assert row.index("Daily Report") == header.index("NAME")
    assert row.index("Europe/Paris") == header.index("TIMEZONE")
    assert "daily 09:00 (Europe/Paris)" in apflow.ok("tasks", "list")


def test_disabled_schedules_are_listed_only_with_all(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "off", "--schedule-type", "cron",
                       "--schedule-expression", "0 9 * * 1-5", "--schedule-disabled")
    assert apflow.json("scheduler", "list")["tasks"] == []
    assert [t["id"] for t in apflow.json("scheduler", "list", "--all")["tasks"]] == [task["id"]]
    assert apflow.json("scheduler", "list", "--all", "--type", "daily")["tasks"] == []


def test_format_may_follow_the_command(apflow: Cli) -> None:
    apflow.ok("tasks", "create", "--name", "a")
    listed = apflow.json("tasks", "list")
    assert listed == __import__("json").loads(apflow.ok("tasks", "list", "-f", "json"))
