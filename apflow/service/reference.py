"""The JSON-RPC reference (docs/reference.md), generated from the method table.

Each method's summary is its handler's docstring; its params are declared in PARAMS, and a
test runs every method and checks that the fields it reads are exactly the ones declared
here, so the reference cannot drift from the code. Regenerate with
`python -m apflow.service.reference > docs/reference.md` (a test fails until you do).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from apflow.service.service import METHODS
from apflow.service.taskfields import FIELD_RULES


@dataclass(frozen=True)
class Param:
    """One field of a method's params."""

    name: str
    kind: str
    required: bool = False
    note: str = ""


def _task_fields(required_name: bool) -> tuple[Param, ...]:
    return tuple(Param(name, "see DESIGN.md §3", required_name and name == "name")
                 for name in FIELD_RULES)


TASK_ID = Param("task_id", "string", True)
RUN_ID = Param("run_id", "string", True)
PAGE = (Param("limit", "integer", note="1-1000, default 100"),
        Param("offset", "integer", note="default 0"))
CALENDAR = (Param("calendar_name", "string", note="default apflow"),
            Param("enabled_only", "boolean", note="default true"),
            Param("limit", "integer", note="tasks, 1-10000, default 1000"),
            Param("user_id", "string", note="admins only"),
            Param("horizon_days", "integer", note="1-3660, default 30"))

PARAMS: dict[str, tuple[Param, ...]] = {
    "tasks.create": (Param("id", "string", note="default: a new UUID"),
                     *_task_fields(required_name=True)),
    "tasks.get": (TASK_ID,),
    "tasks.update": (TASK_ID, *_task_fields(required_name=False)),
    "tasks.delete": (TASK_ID,),
    "tasks.list": (Param("status", "string", note="pending|in_progress|completed|failed|"
                                                   "cancelled"),
                   Param("user_id", "string", note="admins: any user; users: their own"),
                   Param("parent_id", "string"), Param("roots_only", "boolean"),
                   Param("name", "string", note="exact name"), *PAGE),
    "tasks.tree": (TASK_ID,),
    "tasks.pause": (TASK_ID,),
    "tasks.resume": (TASK_ID,),
    "tasks.run": (TASK_ID, Param("variables", "object of strings",
                                 note="reach the run's environment")),
    "tasks.runs.list": (Param("task_id", "string"), Param("user_id", "string"),
                        Param("state", "string"), Param("trigger", "string"),
                        Param("parent_run_id", "string"), *PAGE),
    "tasks.runs.get": (RUN_ID,),
    "tasks.runs.logs": (RUN_ID, Param("after_seq", "integer", note="default -1"),
                        Param("limit", "integer", note="chunks, 1-5000, default 1000"),
                        Param("follow", "boolean", note="wait for new output"),
                        Param("timeout", "number", note="seconds, 0-60, default 30")),
    "tasks.runs.cancel": (RUN_ID,),
    "tasks.skip": (TASK_ID, Param("count", "integer", note="1-1000, default 1"),
                   Param("reason", "string")),
    "tasks.occurrences.list": (TASK_ID, Param("outcome", "string"),
                               Param("since", "date-time"), Param("until", "date-time"),
                               *PAGE),
    "tasks.scheduled.list": (Param("enabled_only", "boolean", note="default true"),
                             Param("user_id", "string"), Param("status", "string"),
                             Param("schedule_type", "string"), *PAGE),
    "tasks.scheduled.due": (Param("limit", "integer", note="1-1000, default 100"),
                            Param("user_id", "string")),
    "tasks.scheduled.init": (TASK_ID, Param("from_time", "date-time", note="default now")),
    "tasks.scheduled.complete": (TASK_ID, Param("success", "boolean", note="default true"),
                                 Param("result", "any JSON"), Param("error", "string")),
    "tasks.scheduled.preview": (Param("schedule_type", "string", True),
                                Param("schedule_expression", "string", True),
                                Param("timezone", "string", note="default UTC"),
                                Param("count", "integer", note="1-1000, default 10"),
                                Param("from_time", "date-time", note="default now"),
                                Param("schedule_start_at", "date-time"),
                                Param("schedule_end_at", "date-time"),
                                Param("max_runs", "integer")),
    "tasks.scheduled.export-ical": CALENDAR,
    "tasks.apply": (Param("source", "string", True), Param("tasks", "array of tasks", True),
                    Param("dry_run", "boolean", note="default false")),
    "tasks.scheduled.feed-token": (Param("user_id", "string", note="admins only"),),
    "tasks.scheduled.feed-token.revoke": (Param("user_id", "string", note="admins only"),),
    "tasks.webhook.trigger": (TASK_ID, Param("variables", "object of strings"),
                              Param("async_execution", "boolean", note="default true")),
    "scheduler.status": (),
}


def render_reference() -> str:
    """docs/reference.md."""
    lines = ["# JSON-RPC method reference", "",
             "Generated from `apflow/service/` by `python -m apflow.service.reference`; do "
             "not edit by hand. Semantics: [tasks.md](tasks.md); transport, auth and error "
             "codes: [api.md](api.md).", ""]
    for name in METHODS:
        lines += [f"## `{name}`", "", inspect.getdoc(METHODS[name]) or "", ""]
        params = PARAMS[name]
        if not params:
            lines += ["No params.", ""]
            continue
        lines += ["| param | type | required | notes |", "|---|---|---|---|"]
        lines += [f"| `{p.name}` | {p.kind} | {'yes' if p.required else ''} | {p.note} |"
                  for p in params]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_reference(), end="")
