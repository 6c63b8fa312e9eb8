"""tasks.apply: declarative tasks reconciled by name within one source."""

from __future__ import annotations

from typing import Any

import pytest

from apflow.domain.errors import InvalidParams
from tests.service.conftest import Caller

BACKUP = {"name": "backup", "executor": {"type": "command", "command": "/usr/bin/backup"},
          "schedule_type": "daily", "schedule_expression": "02:00", "schedule_enabled": True}
REPORT = {"name": "report", "executor": {"type": "command", "command": "/usr/bin/report"}}


async def apply(caller: Caller, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = await caller("tasks.apply", source="ops.yaml", tasks=tasks,
                                          **extra)
    return result


async def test_first_apply_creates_and_a_second_changes_nothing(alice: Caller) -> None:
    first = await apply(alice, [BACKUP, REPORT])
    assert first["create"] == ["backup", "report"]
    listed = (await alice("tasks.list"))["tasks"]
    assert {t["name"] for t in listed} == {"backup", "report"}
    assert all(t["next_run_at"] for t in listed if t["name"] == "backup")
    again = await apply(alice, [BACKUP, REPORT])
    assert (again["create"], again["update"], again["delete"]) == ([], [], [])
    assert again["unchanged"] == ["backup", "report"]
    assert [t["updated_at"] for t in (await alice("tasks.list"))["tasks"]] == \
        [t["updated_at"] for t in listed]


async def test_changed_fields_update_and_removed_ones_return_to_defaults(alice: Caller) -> None:
    await apply(alice, [{**BACKUP, "retry_limit": 3}])
    result = await apply(alice, [{**BACKUP, "schedule_expression": "03:00"}])
    assert result["update"] == [{"name": "backup",
                                 "fields": ["schedule_expression", "retry_limit"]}]
    task = (await alice("tasks.list"))["tasks"][0]
    assert (task["schedule_expression"], task["retry_limit"]) == ("03:00", 0)
    assert task["next_run_at"].endswith("03:00:00+00:00")


async def test_tasks_dropped_from_the_file_are_deleted_but_hand_made_ones_stay(
        alice: Caller) -> None:
    await alice("tasks.create", name="hand-made")
    await apply(alice, [BACKUP, REPORT])
    result = await apply(alice, [REPORT])
    assert result["delete"] == ["backup"]
    assert {t["name"] for t in (await alice("tasks.list"))["tasks"]} == {"hand-made", "report"}


async def test_a_name_taken_by_a_hand_made_task_is_refused(alice: Caller) -> None:
    await alice("tasks.create", name="backup")
    with pytest.raises(InvalidParams, match=r"tasks\[0\].name"):
        await apply(alice, [BACKUP])
    assert (await alice("tasks.list"))["total"] == 1


async def test_dry_run_shows_the_plan_and_writes_nothing(alice: Caller) -> None:
    result = await apply(alice, [BACKUP], dry_run=True)
    assert result["create"] == ["backup"] and result["dry_run"] is True
    assert (await alice("tasks.list"))["total"] == 0


@pytest.mark.parametrize(("tasks", "field"), [
    ([{"executor": {"type": "command", "command": "x"}}], "tasks[0].name"),
    ([REPORT, {**REPORT}], "tasks[1].name"),
    ([{**BACKUP, "schedule_expression": "25:00"}], "tasks"),
    ([{**REPORT, "retry_limit": "many"}], "tasks[0]"),
    ([{**REPORT, "parent_id": "x"}], "tasks[0]"),
    (["not an object"], "tasks[0]"),
])
async def test_a_bad_definition_names_it_and_changes_nothing(
        alice: Caller, tasks: list[Any], field: str) -> None:
    await apply(alice, [REPORT])
    with pytest.raises(InvalidParams) as caught:
        await apply(alice, tasks)
    assert caught.value.message.startswith(field)
    assert [t["name"] for t in (await alice("tasks.list"))["tasks"]] == ["report"]


async def test_sources_and_users_are_kept_apart(alice: Caller, bob: Caller) -> None:
    await apply(alice, [REPORT])
    await bob("tasks.apply", source="ops.yaml", tasks=[REPORT])
    result = await alice("tasks.apply", source="other.yaml", tasks=[])
    assert result["delete"] == []
    assert (await bob("tasks.list"))["total"] == 1
