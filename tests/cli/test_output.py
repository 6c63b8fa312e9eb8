"""Table and key/value rendering: aligned, one line per row, nothing lost silently."""

from __future__ import annotations

from apflow.cli.output import cell_text, details, flatten, table
from apflow.cli.views import schedule_cell, task_list, tree


def test_table_pads_every_column_to_its_widest_cell() -> None:
    rows = [{"id": "a", "name": "short"}, {"id": "bbbbbb", "name": "x"}]
    lines = table(rows, [("ID", "id"), ("NAME", "name")]).splitlines()
    assert lines == ["ID      NAME", "a       short", "bbbbbb  x"]


def test_table_of_nothing_says_so() -> None:
    assert table([], [("ID", "id")], empty="(no tasks)") == "(no tasks)"


def test_cells_are_one_line_and_shortened() -> None:
    assert cell_text("two\nlines") == "two lines"
    assert cell_text(None) == ""
    assert cell_text(True) == "yes"
    assert cell_text({"type": "command"}) == '{"type":"command"}'
    long = cell_text("x" * 100, limit=10)
    assert len(long) == 10 and long.endswith("…")


def test_details_flattens_nested_objects_into_dotted_keys() -> None:
    record = {"id": "t1", "executor": {"type": "command", "command": "echo hi"}, "env": {}}
    assert flatten(record) == {"id": "t1", "executor.type": "command",
                               "executor.command": "echo hi", "env": {}}
    lines = details(record).splitlines()
    assert lines[0] == "id                t1"
    assert "executor.command  echo hi" in lines


def test_task_list_shows_the_schedule_with_its_zone_and_the_total() -> None:
    task = {"id": "t1", "name": "Daily Report", "status": "pending", "schedule_type": "daily",
            "schedule_expression": "09:00", "timezone": "Europe/Paris",
            "schedule_enabled": True, "next_run_at": "2025-01-02T08:00:00+00:00"}
    assert schedule_cell(task) == "daily 09:00 (Europe/Paris)"
    text = task_list({"tasks": [task], "total": 3})
    assert "daily 09:00 (Europe/Paris)" in text.splitlines()[1]
    assert text.endswith("1 of 3")


def test_tree_indents_children_under_their_parent() -> None:
    node = {"task": {"id": "p", "name": "parent", "status": "pending"},
            "children": [{"task": {"id": "c", "name": "child", "status": "completed"},
                          "children": []}]}
    assert tree(node).splitlines() == ["parent  [p]  pending", "  child  [c]  completed"]
