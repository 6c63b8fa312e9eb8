"""`apflow scheduler export-ical | export-crontab | export-k8s`, in-process (CliRunner) on a
temp APFLOW_HOME with its SQLite database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.cli.helpers import Cli, one_error_line

CRON = ("--schedule-type", "cron", "--schedule-expression", "0 9 * * 1-5",
        "--timezone", "Europe/Berlin", "--schedule-enabled", "--command", "true")


@pytest.fixture
def apflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on an empty temp home (no APFLOW_* of this machine leaks in)."""
    for key in list(os.environ):
        if key.startswith("APFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("APFLOW_HOME", str(tmp_path / "home"))
    return Cli(CliRunner())


def create(apflow: Cli, name: str, *args: str) -> str:
    task_id: str = apflow.json("tasks", "create", "--name", name, *args)["id"]
    return task_id


def test_export_ical_writes_the_calendar_file(apflow: Cli, tmp_path: Path) -> None:
    task_id = create(apflow, "report", *CRON)
    target = tmp_path / "apflow.ics"
    result = apflow("scheduler", "export-ical", "-o", str(target), "--name", "Ops")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == f"wrote 1 task(s) to {target}"
    content = target.read_bytes()
    assert content.startswith(b"BEGIN:VCALENDAR\r\n") and content.endswith(b"END:VCALENDAR\r\n")
    assert f"UID:{task_id}@apflow".encode() in content
    assert b"X-WR-CALNAME:Ops" in content
    assert b"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" in content


def test_export_ical_prints_to_stdout_without_o(apflow: Cli) -> None:
    create(apflow, "report", *CRON)
    out = apflow.ok("scheduler", "export-ical")
    assert out.startswith("BEGIN:VCALENDAR") and "SUMMARY:report" in out


def test_export_crontab_writes_one_signed_line_per_task(apflow: Cli, tmp_path: Path) -> None:
    task_id = create(apflow, "report", *CRON)
    target = tmp_path / "apflow.cron"
    result = apflow("scheduler", "export-crontab", "--webhook-url-base",
                    "https://apflow.example.com", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    text = target.read_text()
    assert "CRON_TZ=Europe/Berlin" in text
    (line,) = [row for row in text.splitlines() if row.startswith("0 9 * * 1-5 ")]
    assert f"https://apflow.example.com/webhook/trigger/{task_id}" in line
    assert "X-Webhook-Signature" in line


def test_export_crontab_defaults_to_the_configured_listener(apflow: Cli) -> None:
    task_id = create(apflow, "report", *CRON)
    out = apflow.ok("scheduler", "export-crontab")
    assert f"http://127.0.0.1:8000/webhook/trigger/{task_id}" in out


def test_export_crontab_fails_naming_the_field_of_an_unexportable_task(apflow: Cli) -> None:
    create(apflow, "report", *CRON)
    poll = create(apflow, "poll", "--schedule-type", "interval", "--schedule-expression", "90",
                  "--schedule-enabled", "--command", "true")
    result = apflow("scheduler", "export-crontab")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert line.startswith(f"error: task {poll} (poll): schedule_type: interval 90 s cannot")
    assert result.stdout == ""


def test_export_crontab_can_skip_unexportable_tasks(apflow: Cli) -> None:
    create(apflow, "report", *CRON)
    poll = create(apflow, "poll", "--schedule-type", "interval", "--schedule-expression", "90",
                  "--schedule-enabled", "--command", "true")
    result = apflow("scheduler", "export-crontab", "--skip-unexportable")
    assert result.exit_code == 0, result.stderr
    assert f"warning: skipped task {poll} (poll): schedule_type:" in result.stderr
    assert f"# skipped: poll (task {poll}): schedule_type:" in result.stdout
    assert "0 9 * * 1-5 " in result.stdout


def test_an_interval_on_the_grid_is_exported(apflow: Cli) -> None:
    create(apflow, "quarterly", "--schedule-type", "interval", "--schedule-expression", "900",
           "--schedule-start-at", "2024-01-01T00:00:00Z", "--schedule-enabled",
           "--command", "true")
    assert "*/15 * * * * " in apflow.ok("scheduler", "export-crontab")


def test_export_k8s_writes_a_cronjob_manifest(apflow: Cli, tmp_path: Path) -> None:
    task_id = create(apflow, "Nightly Report", *CRON)
    target = tmp_path / "cronjob.yaml"
    result = apflow("scheduler", "export-k8s", task_id, "--webhook-url-base",
                    "https://apflow.example.com", "--namespace", "jobs", "--secret-name",
                    "hook-key", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    manifest = yaml.safe_load(target.read_text())
    assert manifest["kind"] == "CronJob"
    assert manifest["metadata"]["namespace"] == "jobs"
    assert manifest["spec"]["schedule"] == "0 9 * * 1-5"
    assert manifest["spec"]["timeZone"] == "Europe/Berlin"
    container = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert env["APFLOW_WEBHOOK_URL"]["value"] == (
        f"https://apflow.example.com/webhook/trigger/{task_id}")
    assert env["APFLOW_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "hook-key"


def test_export_k8s_of_an_unexportable_task_is_exit_2_naming_the_field(apflow: Cli) -> None:
    task_id = create(apflow, "once", "--schedule-type", "once", "--schedule-expression",
                     "2030-01-15T09:00:00Z", "--schedule-enabled", "--command", "true")
    result = apflow("scheduler", "export-k8s", task_id)
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith(
        "error: schedule_type: once cannot be expressed as a cron line")


def test_export_k8s_of_an_unknown_task_is_exit_4(apflow: Cli) -> None:
    result = apflow("scheduler", "export-k8s", "missing")
    assert result.exit_code == 4
    one_error_line(result.stderr)


def test_feed_token_is_issued_and_revoked_from_the_cli(apflow: Cli) -> None:
    issued = apflow.json("scheduler", "feed-token")
    assert issued["feed_path"].endswith(issued["token"])
    assert apflow.json("scheduler", "feed-token", "--revoke")["revoked"] is True
    assert apflow.json("scheduler", "feed-token", "--revoke")["revoked"] is False
