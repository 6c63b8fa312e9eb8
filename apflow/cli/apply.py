"""`apflow apply FILE`: declarative tasks from a YAML file (tasks.apply).

The file is a mapping with a `tasks:` list of task definitions (the fields of tasks.create;
`source:` optionally names the set, default: the file's name). `${NAME}` in an `env` value
is replaced by the variable NAME of this command's environment, so secrets stay out of the
file. An error names the file and the line of the definition it is about.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click
import yaml

from apflow.cli.backend import Backend
from apflow.cli.context import format_option, session
from apflow.cli.errors import EXIT_BAD_INPUT, CliError
from apflow.cli.output import emit
from apflow.domain.errors import InvalidParams

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TASK_INDEX = re.compile(r"^tasks\[(\d+)\]")
MAX_FILE_BYTES = 1024 * 1024


def load_file(path: Path) -> tuple[dict[str, Any], list[int]]:
    """The parsed file and the line (1-based) of each task definition."""
    try:
        text = path.read_bytes()[:MAX_FILE_BYTES + 1].decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read it: {exc}", EXIT_BAD_INPUT) from exc
    if len(text) > MAX_FILE_BYTES:
        raise CliError(f"{path}: larger than {MAX_FILE_BYTES} bytes", EXIT_BAD_INPUT)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CliError(f"{path}{where}: {problem}", EXIT_BAD_INPUT) from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise CliError(f"{path}:1: expected a mapping with a 'tasks:' list", EXIT_BAD_INPUT)
    return data, task_lines(node)


def task_lines(node: Any) -> list[int]:
    """Line of each item of the top-level `tasks` sequence."""
    for key, value in getattr(node, "value", []):
        if getattr(key, "value", None) == "tasks" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def resolve_env(tasks: list[Any], path: Path, lines: list[int]) -> None:
    """Replace ${NAME} in env values by this process's environment (missing: an error)."""
    for index, task in enumerate(tasks):
        env = task.get("env") if isinstance(task, dict) else None
        if not isinstance(env, dict):
            continue
        for key, value in env.items():
            if isinstance(value, str):
                env[key] = expand(value, f"{path}:{_line(lines, index)}: env.{key}")


def expand(value: str, where: str) -> str:
    """`value` with each ${NAME} replaced by the environment's NAME (missing: an error)."""
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise CliError(f"{where} refers to ${{{name}}}, which is not set in this "
                           "environment", EXIT_BAD_INPUT)
        return os.environ[name]
    return _REFERENCE.sub(lookup, value)


def _line(lines: list[int], index: int) -> int:
    return lines[index] if 0 <= index < len(lines) else 1


def located(error: InvalidParams, path: Path, lines: list[int]) -> CliError:
    """The service's error with the file and line of the definition it names."""
    found = _TASK_INDEX.match(error.message)
    line = _line(lines, int(found.group(1))) if found else 1
    return CliError(f"{path}:{line}: {error.message}", EXIT_BAD_INPUT)


def plan_text(result: Any) -> str:
    """`+ create`, `~ update (fields)`, `- delete`, `= unchanged`, one task per line."""
    lines = [f"+ {name}" for name in result.get("create", [])]
    lines += [f"~ {item['name']} ({', '.join(item['fields'])})"
              for item in result.get("update", [])]
    lines += [f"- {name}" for name in result.get("delete", [])]
    lines += [f"= {name}" for name in result.get("unchanged", [])]
    verb = "would change" if result.get("dry_run") else "changed"
    changed = sum(len(result.get(k, [])) for k in ("create", "update", "delete"))
    return "\n".join([*lines, f"{verb} {changed} task(s) of source {result.get('source')}"])


@click.command(name="apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--source", default=None,
              help="Name of this set of tasks (default: the file's `source:`, else its name).")
@format_option
@click.pass_context
def apply(ctx: click.Context, file: Path, dry_run: bool, source: str | None) -> None:
    """Create, update and delete tasks to match FILE (YAML); hand-made tasks are never touched.
    """
    data, lines = load_file(file)
    tasks: list[Any] = data["tasks"]
    resolve_env(tasks, file, lines)
    params = {"source": source or str(data.get("source") or file.name), "tasks": tasks,
              "dry_run": dry_run}

    async def run(backend: Backend) -> Any:
        try:
            return await backend.call("tasks.apply", params)
        except InvalidParams as exc:
            raise located(exc, file, lines) from None

    emit(ctx, session(ctx, run), plan_text)
