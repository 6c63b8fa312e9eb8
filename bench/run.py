"""Run benchmark sections and collect their markdown into bench/results.md.

Usage (through scripts/bench, which also starts the servers the sections need):
    python -m bench.run [section ...]      run them (default: every section, sorted)
    python -m bench.run --needs [section]  print the servers they need (postgres, docker)
    python -m bench.run --list [section]   print the section names

A section is a module bench/<name>.py whose main() prints one markdown section. It may
declare NEEDS = ("postgres", "docker"); it then reads APFLOW_TEST_POSTGRES_DSN, or
DOCKER_HOST and APFLOW_TEST_DOCKER_IMAGE, from the environment.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results.md"
NOT_SECTIONS = {"run"}
# Reserved for the comparison with peer schedulers: only run when named.
PEERS = "peers"
NEED_ENV = {
    "postgres": ("APFLOW_TEST_POSTGRES_DSN",),
    "docker": ("DOCKER_HOST", "APFLOW_TEST_DOCKER_IMAGE"),
}


class UsageError(Exception):
    """A section name that is not a section."""


def available_sections() -> list[str]:
    """Every section module, sorted; private helpers (_name.py) and run.py excluded."""
    names = (path.stem for path in BENCH_DIR.glob("*.py"))
    return sorted(n for n in names if not n.startswith("_") and n not in NOT_SECTIONS)


def select_sections(requested: Sequence[str]) -> list[str]:
    """The requested sections in the given order, or all but `peers` when none are named."""
    available = available_sections()
    if not requested:
        return [name for name in available if name != PEERS]
    for name in requested:
        if name == PEERS and name not in available:
            raise UsageError("'peers' is reserved for the peer comparison, not written yet")
        if name not in available:
            raise UsageError(f"no section {name!r}; sections: {', '.join(available)}")
    return list(requested)


def section_needs(name: str) -> tuple[str, ...]:
    """The literal NEEDS tuple of a section, read without importing it."""
    tree = ast.parse((BENCH_DIR / f"{name}.py").read_text(), filename=f"{name}.py")
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "NEEDS" for target in node.targets
        ):
            needs = ast.literal_eval(node.value)
            unknown = set(needs) - NEED_ENV.keys()
            if unknown:
                raise UsageError(f"{name}: unknown NEEDS {sorted(unknown)}")
            return tuple(needs)
    return ()


def missing_servers(needs: Sequence[str]) -> list[str]:
    return [need for need in needs if not all(os.environ.get(v) for v in NEED_ENV[need])]


def run_section(name: str) -> tuple[str, int]:
    """Run `python -m bench.<name>`, echoing its output; return (markdown, exit code)."""
    missing = missing_servers(section_needs(name))
    if missing:
        text = f"## {name}\n\nNot run: needs {' and '.join(missing)}, unavailable here.\n"
        print(text, flush=True)
        return text, 0
    process = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = process.wait()
    text = "".join(lines)
    if code != 0:
        failure = f"\n**Section `{name}` failed (exit {code}).**\n"
        print(failure, flush=True)
        text += failure
    return text, code


def _git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return revision


def results_header(sections: Sequence[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["scripts/bench", *sections])
    return f"# apflow benchmark results\n\n`{command}` at {_git_revision()}, {when}.\n\n"


def run_all(sections: Sequence[str], requested: Sequence[str]) -> int:
    """Run the sections one after another; results.md is rewritten after each one."""
    document = results_header(requested)
    worst = 0
    for name in sections:
        text, code = run_section(name)
        document += text + "\n"
        RESULTS.write_text(document)
        worst = worst or code
    print(f"results written to {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="print the section names")
    mode.add_argument("--needs", action="store_true", help="print the servers they need")
    parser.add_argument("sections", nargs="*", help="default: every section but 'peers'")
    args = parser.parse_args(argv)
    try:
        sections = select_sections(args.sections)
        if args.list:
            print("\n".join(sections))
        elif args.needs:
            print(" ".join(sorted({need for name in sections for need in section_needs(name)})))
        else:
            return run_all(sections, args.sections)
    except UsageError as error:
        print(f"scripts/bench: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
