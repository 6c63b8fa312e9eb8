"""`apflow tasks ...`: every command changes or shows what it says, through the service."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.cli.helpers import Cli


def test_create_with_the_command_shortcut_env_and_policies(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "backup", "--command", "echo hi",
                       "--env", "TARGET=/srv", "--env", "MODE=full", "--timeout-seconds",
                       "30", "--retry-limit", "2", "--max-concurrent", "3", "--on-overlap",
                       "skip", "--catch-up", "all", "--user-id", "alice")
    assert task["executor"] == {"type": "command", "command": "echo hi"}
    assert task["env"] == {"TARGET": "/srv", "MODE": "full"}
    assert (task["timeout_seconds"], task["retry_limit"], task["max_concurrent"],
            task["on_overlap"], task["catch_up"], task["user_id"]) == (
        30, 2, 3, "skip", "all", "alice")
    assert apflow.json("tasks", "get", task["id"]) == task


def test_get_in_a_table_shows_each_field_on_its_own_line(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "report", "--command", "true")
    text = apflow.ok("tasks", "get", task["id"])
    assert text.splitlines()[0].split() == ["id", task["id"]]
    assert any(line.split() == ["executor.command", "true"] for line in text.splitlines())


def test_update_changes_only_the_fields_given(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "a", "--description", "first",
                       "--retry-limit", "1")
    updated = apflow.json("tasks", "update", task["id"], "--description", "second")
    assert (updated["name"], updated["description"], updated["retry_limit"]) == (
        "a", "second", 1)


def test_list_filters_by_user_and_pages(apflow: Cli) -> None:
    ids = [apflow.json("tasks", "create", "--name", f"t{i}", "--user-id", "bob")["id"]
           for i in range(3)]
    apflow.ok("tasks", "create", "--name", "other", "--user-id", "carol")
    page = apflow.json("tasks", "list", "--user-id", "bob", "--limit", "2", "--offset", "1")
    assert [t["id"] for t in page["tasks"]] == ids[1:]


def test_tree_shows_children_and_delete_removes_the_subtree(apflow: Cli) -> None:
    parent = apflow.json("tasks", "create", "--name", "pipeline")
    child = apflow.json("tasks", "create", "--name", "extract", "--parent-id", parent["id"],
                        "--command", "true")
    lines = apflow.ok("tasks", "tree", parent["id"]).splitlines()
    assert lines[0].startswith("pipeline")
    assert lines[1].startswith("  extract") and child["id"] in lines[1]
    apflow.ok("tasks", "delete", parent["id"], "--yes")
    assert apflow("tasks", "get", child["id"]).exit_code == 4


def test_pause_and_resume_toggle_the_schedule(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "p", "--schedule-type", "interval",
                       "--schedule-expression", "3600", "--schedule-enabled")
    assert apflow.json("tasks", "pause", task["id"])["schedule_enabled"] is False
    assert apflow.json("tasks", "resume", task["id"])["schedule_enabled"] is True


def test_skip_moves_next_run_past_the_skipped_slots_and_ledgers_them(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "s", "--schedule-type", "daily",
                       "--schedule-expression", "09:00", "--schedule-enabled")
    first = apflow.json("tasks", "scheduled", "init", task["id"])["next_run_at"]
    skipped = apflow.json("tasks", "skip", task["id"], "--count", "2", "--reason", "holiday")
    gap = datetime.fromisoformat(skipped["next_run_at"]) - datetime.fromisoformat(first)
    assert gap.days == 2
    ledger = apflow.json("tasks", "occurrences", task["id"])
    assert [o["outcome"] for o in ledger["occurrences"]] == ["skipped", "skipped"]


def test_preview_lists_the_coming_slots_without_creating_a_task(apflow: Cli) -> None:
    text = apflow.ok("tasks", "scheduled", "preview", "--schedule-type", "weekly",
                     "--schedule-expression", "1,3 09:00", "--count", "3",
                     "--from-time", "2025-01-06T10:00:00Z")  # a Monday, after 09:00
    slots = [datetime.fromisoformat(line.split()[0]) for line in text.splitlines()]
    assert slots == [datetime(2025, 1, 8, 9, tzinfo=UTC), datetime(2025, 1, 13, 9, tzinfo=UTC),
                     datetime(2025, 1, 15, 9, tzinfo=UTC)]
    assert apflow.json("tasks", "list")["tasks"] == []


def test_scheduled_complete_advances_next_run(apflow: Cli) -> None:
    task = apflow.json("tasks", "create", "--name", "ext", "--schedule-type", "interval",
                       "--schedule-expression", "60", "--schedule-enabled")
    before = apflow.json("tasks", "scheduled", "init", task["id"],
                         "--from-time", "2025-01-01T00:00:00Z")["next_run_at"]
    after = apflow.json("tasks", "scheduled", "complete", task["id"])
    assert datetime.fromisoformat(after["next_run_at"]) > datetime.fromisoformat(before)
