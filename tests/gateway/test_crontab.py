"""export_crontab: zones, comments for what cannot be exported, and a line run for real."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.gateway.crontab import export_crontab
from apflow.schedules import ScheduleSpec

MakeTask = Callable[..., Task]
BASE = "https://apflow.example.com"
SECRET = "crontab-s3cret-never-inline"
ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)


def job_lines(text: str) -> list[str]:
    """The lines cron runs: not comments, blank lines or variable settings."""
    return [line for line in text.splitlines()
            if line and not line.startswith("#") and "=" not in line.split(" ", 1)[0]]


def test_tasks_are_grouped_under_cron_tz_by_zone(task_factory: MakeTask) -> None:
    tasks = [task_factory("daily", "09:00", "Europe/Berlin", id="b1", name="berlin report"),
             task_factory("cron", "*/15 * * * *", "UTC", id="u1", name="poll"),
             task_factory("weekly", "1 07:30", "Europe/Berlin", id="b2", name="weekly")]
    text = export_crontab(tasks, webhook_url_base=BASE)
    lines = text.splitlines()
    berlin = lines.index("CRON_TZ=Europe/Berlin")
    utc = lines.index("CRON_TZ=UTC")
    assert lines[berlin + 1] == "# berlin report (task b1)"
    assert lines[berlin + 2].startswith("0 9 * * * ")
    assert lines[berlin + 3] == "# weekly (task b2)"
    assert lines[berlin + 4].startswith("30 7 * * 1 ")
    assert lines[utc + 2].startswith("*/15 * * * * ")
    assert len(job_lines(text)) == 3
    assert "SHELL=/bin/sh" in lines


def test_each_line_posts_to_the_tasks_webhook_with_percent_escaped(
        task_factory: MakeTask) -> None:
    (line,) = job_lines(export_crontab([task_factory("daily", "09:00", id="a/b")],
                                       webhook_url_base=BASE + "/"))
    assert "'https://apflow.example.com/webhook/trigger/a\\%2Fb'" in line
    assert "date +\\%s" in line
    assert "%" not in line.replace("\\%", "")  # cron would cut the command at a bare %


def test_the_secret_is_read_at_run_time_and_never_written(task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", webhook_secret=SECRET, env={"KEY": SECRET})
    text = export_crontab([item], webhook_url_base=BASE, secret_env="HOOK_KEY")
    assert SECRET not in text
    (line,) = job_lines(text)
    assert '-hmac "$HOOK_KEY"' in line and ': "${HOOK_KEY:?is not set}"' in line


def test_an_env_file_is_sourced_before_signing(task_factory: MakeTask) -> None:
    text = export_crontab([task_factory("daily", "09:00")], webhook_url_base=BASE,
                          env_file="/etc/apflow/webhook.env")
    (line,) = job_lines(text)
    assert line.startswith("0 9 * * * . '/etc/apflow/webhook.env' || exit 1; ")


@pytest.mark.parametrize(("fields", "reason"), [
    ({"schedule_type": "interval", "schedule_expression": "90"},
     "schedule_type: interval 90 s cannot be expressed as a cron line"),
    ({"schedule_type": "once", "schedule_expression": "2030-01-01T00:00:00Z"},
     "schedule_type: once cannot be expressed"),
    ({"max_runs": 4}, "max_runs: cron cannot stop after a number of runs"),
    ({"schedule_enabled": False}, "schedule_enabled: is false (the schedule is paused)"),
    ({"api_trigger": False}, "api_trigger: is false"),
])
def test_a_task_that_cannot_be_exported_gets_a_comment_saying_why(
        task_factory: MakeTask, fields: dict[str, Any], reason: str) -> None:
    values = {"schedule_type": "daily", "schedule_expression": "09:00",
              "schedule_anchor_at": ANCHOR, **fields}
    kind, expression = values.pop("schedule_type"), values.pop("schedule_expression")
    item = task_factory(kind, expression, id="t9", name="odd\njob", **values)
    text = export_crontab([item], webhook_url_base=BASE)
    assert job_lines(text) == []
    (comment,) = [line for line in text.splitlines() if line.startswith("# skipped")]
    assert comment.startswith(f"# skipped: odd job (task t9): {reason}")


def test_a_task_without_a_schedule_is_not_mentioned() -> None:
    plain = Task(id="g", name="group", created_at=ANCHOR, updated_at=ANCHOR)
    text = export_crontab([plain], webhook_url_base=BASE)
    assert "group" not in text and job_lines(text) == []


def test_without_cron_tz_only_tasks_in_crond_zone_are_exported(task_factory: MakeTask) -> None:
    tasks = [task_factory("daily", "09:00", "Europe/Berlin", id="b", name="berlin"),
             task_factory("daily", "09:00", "UTC", id="u", name="utc")]
    text = export_crontab(tasks, webhook_url_base=BASE, cron_tz=False, crond_timezone="UTC")
    assert "CRON_TZ" not in text.replace("has no CRON_TZ", "")
    assert len(job_lines(text)) == 1
    assert ("# skipped: berlin (task b): timezone: runs in Europe/Berlin, but this crond "
            "has no CRON_TZ and runs in UTC") in text


@pytest.mark.parametrize(("option", "value"), [
    ("secret_env", "NOT-A-NAME"), ("secret_env", "$(reboot)"),
    ("webhook_url_base", "apflow.example.com"), ("crond_timezone", "Mars/Olympus")])
def test_invalid_options_are_refused(option: str, value: str) -> None:
    options: dict[str, Any] = {"webhook_url_base": BASE, option: value}
    with pytest.raises(InvalidParams, match=option.replace("crond_", "")):
        export_crontab([], **options)


def test_the_cron_fields_parse_back_to_the_tasks_schedule(task_factory: MakeTask) -> None:
    item = task_factory("monthly", "1,15 06:45", "America/New_York")
    (line,) = job_lines(export_crontab([item], webhook_url_base=BASE))
    fields = " ".join(line.split()[:5])
    assert fields == "45 6 1,15 * *"
    ScheduleSpec("cron", fields, "America/New_York")  # type: ignore[arg-type]


async def test_a_line_run_by_sh_signs_the_request_as_the_webhook_expects(
        task_factory: MakeTask, webhook_receiver: Any, need_tools: Callable[..., None],
        tmp_path: Path) -> None:
    need_tools("sh", "openssl", "curl")
    env_file = tmp_path / "webhook.env"
    env_file.write_text(f"APFLOW_WEBHOOK_SECRET='{SECRET}'\n")
    text = export_crontab([task_factory("daily", "09:00", id="t-7")],
                          webhook_url_base=webhook_receiver.base_url, env_file=str(env_file))
    (line,) = job_lines(text)
    command = line.split(" ", 5)[5].replace("\\%", "%")  # what cron hands to the shell
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", command, env={"PATH": os.environ["PATH"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output
    (request,) = webhook_receiver.requests
    assert request.path == "/webhook/trigger/t-7" and request.body == b"{}"
    assert webhook_receiver.signature_ok(request, SECRET)
