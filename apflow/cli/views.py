"""How each kind of result reads as text: which columns, which order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apflow.cli.output import Column, details, table


def schedule_cell(task: Mapping[str, Any]) -> str:
    """`daily 09:00 (Europe/Paris)`, or empty for an unscheduled task."""
    kind = task.get("schedule_type")
    if not kind:
        return ""
    zone = task.get("timezone") or "UTC"
    return f"{kind} {task.get('schedule_expression') or ''} ({zone})"


TASK_COLUMNS: list[Column] = [
    ("ID", "id"), ("NAME", "name"), ("STATUS", "status"), ("SCHEDULE", schedule_cell),
    ("ENABLED", "schedule_enabled"), ("NEXT RUN", "next_run_at"), ("USER", "user_id"),
]
SCHEDULED_COLUMNS: list[Column] = [
    ("ID", "id"), ("NAME", "name"), ("TYPE", "schedule_type"),
    ("EXPRESSION", "schedule_expression"), ("TIMEZONE", "timezone"),
    ("ENABLED", "schedule_enabled"), ("STATUS", "status"), ("NEXT RUN", "next_run_at"),
    ("LAST RUN", "last_run_at"), ("RUNS", "run_count"),
]
RUN_COLUMNS: list[Column] = [
    ("ID", "id"), ("TASK", "task_id"), ("TRIGGER", "trigger"), ("STATE", "state"),
    ("SCHEDULED FOR", "scheduled_for"), ("STARTED", "started_at"),
    ("FINISHED", "finished_at"), ("EXIT", "exit_code"), ("ERROR", "error"),
]
OCCURRENCE_COLUMNS: list[Column] = [
    ("SCHEDULED FOR", "scheduled_for"), ("OUTCOME", "outcome"), ("RUN", "run_id"),
    ("DETAIL", "detail"),
]


def items(result: Any, key: str) -> list[Mapping[str, Any]]:
    """The list inside a list result: the result itself, or its `key` member."""
    found = result.get(key, []) if isinstance(result, Mapping) else result
    return [item for item in found if isinstance(item, Mapping)] if found else []


def list_footer(result: Any, shown: int) -> str:
    """`3 of 10` when the result says how many there are in all."""
    total = result.get("total") if isinstance(result, Mapping) else None
    return f"\n{shown} of {total}" if isinstance(total, int) and total > shown else ""


def task_detail(task: Any) -> str:
    """Every field of one task, one per line."""
    return details(task) if isinstance(task, Mapping) else str(task)


def task_list(result: Any) -> str:
    """One line per task."""
    rows = items(result, "tasks")
    return table(rows, TASK_COLUMNS, empty="(no tasks)") + list_footer(result, len(rows))


def scheduled_list(result: Any) -> str:
    """One line per scheduled task, schedule first."""
    rows = items(result, "tasks")
    return table(rows, SCHEDULED_COLUMNS, empty="(no scheduled tasks)") + \
        list_footer(result, len(rows))


def run_detail(run: Any) -> str:
    """Every field of one run, one per line."""
    return details(run) if isinstance(run, Mapping) else str(run)


def run_list(result: Any) -> str:
    """One line per run, newest first."""
    rows = items(result, "runs")
    return table(rows, RUN_COLUMNS, empty="(no runs)") + list_footer(result, len(rows))


def occurrence_list(result: Any) -> str:
    """One line per ledger row: each due slot and what became of it."""
    rows = items(result, "occurrences")
    return table(rows, OCCURRENCE_COLUMNS, empty="(no occurrences)") + \
        list_footer(result, len(rows))


def preview(result: Any) -> str:
    """The coming slots, one per line: UTC instant, local time, and any DST note."""
    slots = items(result, "occurrences")
    return "\n".join(preview_line(slot) for slot in slots) if slots else "(no slots)"


def preview_line(slot: Mapping[str, Any]) -> str:
    """`2026-03-29T01:00:00+00:00  2026-03-29T03:00:00+02:00  DST: ...`."""
    line = f"{slot.get('at')}  {slot.get('local')}"
    return f"{line}  DST: {slot.get('note')}" if slot.get("dst_shifted") or slot.get("note") \
        else line


def tree(node: Any, depth: int = 0) -> str:
    """The task tree, children indented under their parent."""
    if not isinstance(node, Mapping):
        return str(node)
    task = node.get("task", node)
    lines = [f"{'  ' * depth}{task.get('name')}  [{task.get('id')}]  {task.get('status')}"]
    children: Sequence[Any] = node.get("children") or []
    lines.extend(tree(child, depth + 1) for child in children)
    return "\n".join(lines)


def status(result: Any) -> str:
    """scheduler.status as key/value lines."""
    return details(result) if isinstance(result, Mapping) else str(result)
