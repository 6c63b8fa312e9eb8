"""kubernetes_cronjob: the manifest, its mapping, the cron line, and its signing script run."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import yaml

from apflow.domain.enums import CatchUp, OnOverlap
from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.gateway.cron_export import task_cron_line
from apflow.gateway.k8s import MAX_NAME, cronjob_name, kubernetes_cronjob
from apflow.schedules import ScheduleSpec, iter_fires

MakeTask = Callable[..., Task]
URL = "https://apflow.example.com"
SECRET = "k8s-s3cret-value-never-inline"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
BUSYBOX_TOOLS = ("sh", "od", "tr", "cut", "sha256sum", "date")


def manifest(item: Task, **options: Any) -> dict[str, Any]:
    loaded = yaml.safe_load(kubernetes_cronjob(item, webhook_url=URL, **options))
    assert isinstance(loaded, dict)
    return loaded


def container(document: dict[str, Any]) -> dict[str, Any]:
    (only,) = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_the_manifest_is_a_batch_v1_cronjob_in_the_tasks_zone(task_factory: MakeTask) -> None:
    document = manifest(task_factory("cron", "0 9 * * 1-5", "Europe/Berlin"),
                        namespace="jobs")
    assert (document["apiVersion"], document["kind"]) == ("batch/v1", "CronJob")
    assert document["metadata"]["namespace"] == "jobs"
    assert document["spec"]["schedule"] == "0 9 * * 1-5"
    assert document["spec"]["timeZone"] == "Europe/Berlin"
    pod = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"


def test_the_container_calls_the_tasks_webhook(task_factory: MakeTask) -> None:
    env = {var["name"]: var for var in container(manifest(task_factory(
        "daily", "09:00", id="a/b c")))["env"]}
    assert env["APFLOW_WEBHOOK_URL"]["value"] == URL + "/webhook/trigger/a%2Fb%20c"


def test_the_secret_comes_from_a_kubernetes_secret_and_is_never_inlined(
        task_factory: MakeTask) -> None:
    item = task_factory("daily", "09:00", webhook_secret=SECRET, env={"TOKEN": SECRET})
    text = kubernetes_cronjob(item, webhook_url=URL, secret_name="hooks", secret_key="hmac")
    assert SECRET not in text
    env = {var["name"]: var for var in container(yaml.safe_load(text))["env"]}
    assert env["APFLOW_WEBHOOK_SECRET"] == {
        "name": "APFLOW_WEBHOOK_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "hooks", "key": "hmac"}}}


@pytest.mark.parametrize("name", [
    "Nightly report", "ÜBER-lange Aufgabe mit sehr vielen Wörtern, die kein Ende nehmen will",
    "!!!", "", "a--b__c..d", "x" * 300])
def test_the_name_is_dns_1123_and_at_most_52_characters(task_factory: MakeTask,
                                                        name: str) -> None:
    generated = cronjob_name(task_factory("daily", "09:00", name=name))
    assert DNS_1123.match(generated) and len(generated) <= MAX_NAME


def test_tasks_with_the_same_name_get_different_names(task_factory: MakeTask) -> None:
    first = cronjob_name(task_factory("daily", "09:00", id="1", name="report"))
    second = cronjob_name(task_factory("daily", "09:00", id="2", name="report"))
    assert first != second and first.startswith("report-")
    assert first == cronjob_name(task_factory("daily", "09:00", id="1", name="report"))


@pytest.mark.parametrize(("overlap", "policy"), [
    (OnOverlap.QUEUE, "Allow"), (OnOverlap.SKIP, "Forbid"),
    (OnOverlap.FORBID, "Forbid"), (OnOverlap.TERMINATE, "Replace")])
def test_on_overlap_maps_to_the_concurrency_policy(task_factory: MakeTask,
                                                    overlap: OnOverlap, policy: str) -> None:
    spec = manifest(task_factory("daily", "09:00", on_overlap=overlap))["spec"]
    assert spec["concurrencyPolicy"] == policy


@pytest.mark.parametrize(("catch_up", "seconds"), [
    (CatchUp.SKIP, 60), (CatchUp.LATEST, 3600), (CatchUp.ALL, 3600)])
def test_catch_up_maps_to_the_starting_deadline(task_factory: MakeTask, catch_up: CatchUp,
                                                seconds: int) -> None:
    spec = manifest(task_factory("daily", "09:00", catch_up=catch_up))["spec"]
    assert spec["startingDeadlineSeconds"] == seconds


def test_a_paused_schedule_becomes_a_suspended_cronjob(task_factory: MakeTask) -> None:
    assert manifest(task_factory("daily", "09:00", schedule_enabled=False))["spec"]["suspend"]
    assert not manifest(task_factory("daily", "09:00"))["spec"]["suspend"]


def test_job_history_is_kept_short(task_factory: MakeTask) -> None:
    spec = manifest(task_factory("daily", "09:00"))["spec"]
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)


@pytest.mark.parametrize(("kind", "expression", "fields", "message"), [
    ("interval", "90", {}, "schedule_type: interval 90 s cannot be expressed as a cron line"),
    ("cron", "@every 1m30s", {}, "schedule_type: @every 1m30s = 90 s cannot be expressed"),
    ("interval", "7200", {"timezone": "Europe/Berlin"},
     "schedule_type: interval 7200 s cannot be expressed"),  # DST breaks the 2-hour grid
    ("interval", "3600", {"schedule_anchor_at": datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)},
     "schedule_type: interval 3600 s cannot be expressed"),
    ("once", "2030-01-01T00:00:00Z", {}, "schedule_type: once cannot be expressed"),
    ("cron", "0 9 */2 * 1", {}, "schedule_expression: '0 9 */2 * 1' cannot be expressed"),
    ("daily", "09:00", {"max_runs": 3}, "max_runs: cron cannot stop after a number of runs"),
    ("daily", "09:00", {"schedule_end_at": datetime(2030, 1, 1, tzinfo=UTC)},
     "schedule_end_at: cron cannot stop at an end date"),
    ("daily", "09:00", {"api_trigger": False}, "api_trigger: is false"),
])
def test_a_schedule_cron_cannot_express_is_refused_saying_why(
        task_factory: MakeTask, kind: str, expression: str, fields: dict[str, Any],
        message: str) -> None:
    fields = {"schedule_anchor_at": datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC), **fields}
    zone = fields.pop("timezone", "UTC")
    with pytest.raises(InvalidParams) as raised:
        kubernetes_cronjob(task_factory(kind, expression, zone, **fields), webhook_url=URL)
    assert raised.value.message.startswith(message)


@pytest.mark.parametrize(("option", "value"), [
    ("namespace", "Not_Valid"), ("secret_name", "UPPER"), ("secret_key", "a/b"),
    ("image", "bad image"), ("webhook_url", "ftp://x"), ("webhook_url", "https://u:p@h/")])
def test_invalid_options_are_refused_naming_the_option(task_factory: MakeTask, option: str,
                                                       value: str) -> None:
    options: dict[str, Any] = {"webhook_url": URL, option: value}
    with pytest.raises(InvalidParams, match=f"^{option}: "):
        kubernetes_cronjob(task_factory("daily", "09:00"), **options)


ROUND_TRIP = [
    ("cron", "*/15 * * * *", "Europe/Berlin"),
    ("cron", "0 9 * * 1-5", "America/New_York"),
    ("cron", "@hourly", "Australia/Lord_Howe"),
    ("cron", "30 2 * * *", "Europe/Berlin"),
    ("cron", "0 0 29 2 *", "UTC"),
    ("cron", "@every 30m", "Europe/Berlin"),
    ("cron", "@every 2h", "UTC"),
    ("daily", "02:30", "Europe/Berlin"),
    ("daily", "01:30", "America/New_York"),
    ("weekly", "1,3,5 09:00", "Australia/Sydney"),
    ("weekly", "7 02:30", "Europe/Berlin"),
    ("monthly", "31 09:00", "Europe/Berlin"),
    ("interval", "900", "Australia/Lord_Howe"),
    ("interval", "3600", "America/New_York"),
    ("interval", "21600", "Asia/Tokyo"),
]


@pytest.mark.parametrize(("kind", "expression", "zone"), ROUND_TRIP)
@pytest.mark.parametrize("after", [datetime(2024, 3, 9, tzinfo=UTC),
                                   datetime(2024, 10, 25, tzinfo=UTC)])
def test_the_cron_line_parsed_back_gives_the_same_100_fires(
        task_factory: MakeTask, kind: str, expression: str, zone: str,
        after: datetime) -> None:
    anchor = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    item = task_factory(kind, expression, zone, schedule_anchor_at=anchor)
    line = manifest(item)["spec"]["schedule"]
    assert line == task_cron_line(item)
    ours = ScheduleSpec(item.schedule_type, expression, zone,  # type: ignore[arg-type]
                        anchor=anchor)
    back = ScheduleSpec("cron", line, zone)  # type: ignore[arg-type]
    assert list(islice(iter_fires(ours, after), 100)) == list(islice(iter_fires(back, after),
                                                                      100))


# the signing script, run for real -----------------------------------------------------------

def script_of(item: Task) -> str:
    command = container(manifest(item))["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    return str(command[2])


def busybox_path(tmp_path: Path) -> str:
    """A PATH with busybox's applets and curl only, like the curlimages/curl image."""
    directory = tmp_path / "bin"
    directory.mkdir()
    busybox = shutil.which("busybox")
    assert busybox is not None
    for tool in BUSYBOX_TOOLS:
        (directory / tool).symlink_to(busybox)
    curl = shutil.which("curl")
    assert curl is not None
    (directory / "curl").symlink_to(curl)
    return str(directory)


async def run_script(shell: list[str], script: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *shell, "-c", script, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.parametrize("shell", ["dash", "busybox"])
@pytest.mark.parametrize("secret", [SECRET, "ü€ 'quoted' \"$HOME\" `x`", "6" * 70])
async def test_the_script_signs_the_request_as_the_webhook_expects(
        task_factory: MakeTask, webhook_receiver: Any, need_tools: Callable[..., None],
        tmp_path: Path, shell: str, secret: str) -> None:
    need_tools("curl", "busybox" if shell == "busybox" else "sh")
    item = task_factory("daily", "09:00", id="t-42")
    url = container(manifest(item))["env"][0]["value"].replace(URL, webhook_receiver.base_url)
    path = busybox_path(tmp_path) if shell == "busybox" else os.environ["PATH"]
    command = [str(shutil.which("busybox")), "sh"] if shell == "busybox" else ["sh"]
    env = {"PATH": path, "APFLOW_WEBHOOK_SECRET": secret, "APFLOW_WEBHOOK_URL": url}
    code, output = await run_script(command, script_of(item), env)
    assert code == 0, output
    (request,) = webhook_receiver.requests
    assert request.path == "/webhook/trigger/t-42"
    assert request.body == b"{}"
    assert abs(int(request.headers["X-Webhook-Timestamp"]) - time.time()) < 30
    assert webhook_receiver.signature_ok(request, secret)


async def test_the_script_refuses_to_run_without_a_secret(
        task_factory: MakeTask, webhook_receiver: Any, need_tools: Callable[..., None]) -> None:
    need_tools("curl", "sh")
    env = {"PATH": os.environ["PATH"], "APFLOW_WEBHOOK_SECRET": "",
           "APFLOW_WEBHOOK_URL": webhook_receiver.base_url + "/webhook/trigger/x"}
    code, output = await run_script(["sh"], script_of(task_factory("daily", "09:00")), env)
    assert code != 0 and "APFLOW_WEBHOOK_SECRET" in output
    assert webhook_receiver.requests == []


def test_the_script_keeps_the_secret_off_every_command_line(task_factory: MakeTask) -> None:
    script = script_of(task_factory("daily", "09:00"))
    # The key only ever goes to the printf builtin, whose output is piped: never an argument
    # of an external program.
    uses = [line for line in script.splitlines() if "APFLOW_WEBHOOK_SECRET" in line]
    assert uses and all(re.search(r"printf '%s' \"\$APFLOW_WEBHOOK_SECRET\" \|", line)
                        or line.startswith(': "${APFLOW_WEBHOOK_SECRET:?') for line in uses)
    assert "openssl" not in script


def test_the_first_fire_after_applying_matches_apflows(task_factory: MakeTask) -> None:
    # start_at is not carried over: a CronJob fires from when it is applied.
    item = task_factory("daily", "09:00", "Europe/Berlin")
    now = datetime(2024, 3, 30, 12, tzinfo=UTC)
    back = ScheduleSpec("cron", task_cron_line(item), "Europe/Berlin")  # type: ignore[arg-type]
    assert next(iter_fires(back, now)) == now + timedelta(hours=19)
