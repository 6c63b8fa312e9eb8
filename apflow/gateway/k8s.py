"""A Kubernetes CronJob that triggers a task through apflow's signed webhook.

Mapping and image requirements are in docs/external-schedulers.md. The signing key comes
from a Kubernetes Secret through `secretKeyRef`; it is never written into the manifest.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

import yaml

from apflow.domain.enums import CatchUp, OnOverlap
from apflow.domain.errors import InvalidParams
from apflow.domain.models import Task
from apflow.gateway.cron_export import task_cron_line, trigger_url
from apflow.gateway.signing import SECRET_ENV, URL_ENV, busybox_script

API_VERSION = "batch/v1"
MAX_NAME = 52  # a CronJob name: the Jobs it creates append 11 characters, up to 63
_HASH_CHARS = 8
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# The webhook only queues a run: apflow applies on_overlap to it either way. The policy
# keeps trigger pods from piling up the same way.
CONCURRENCY = {
    OnOverlap.QUEUE: "Allow",
    OnOverlap.SKIP: "Forbid",
    OnOverlap.FORBID: "Forbid",
    OnOverlap.TERMINATE: "Replace",
}
# Seconds after a missed time the controller may still start the job. 60 covers its
# 10-second sync; 3600 catches up after an hour's outage and stays under Kubernetes' limit
# of 100 missed times even for an every-minute schedule.
STARTING_DEADLINE = {CatchUp.SKIP: 60, CatchUp.LATEST: 3600, CatchUp.ALL: 3600}


def kubernetes_cronjob(task: Task, *, webhook_url: str,
                       secret_name: str = "apflow-webhook",  # noqa: S107 (a name, no secret)
                       secret_key: str = "secret",  # noqa: S107 (the key's name in the Secret)
                       namespace: str = "default",
                       image: str = "curlimages/curl:8.10.1") -> str:
    """The CronJob manifest (YAML) for one task; InvalidParams if cron cannot express it."""
    _check_names(namespace, secret_name, secret_key, image)
    schedule = task_cron_line(task)
    url = trigger_url(webhook_url, task.id)
    name = cronjob_name(task)
    manifest = {
        "apiVersion": API_VERSION, "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(),
                     "annotations": {"apflow/task-id": task.id, "apflow/task-name": task.name}},
        "spec": _cronjob_spec(task, schedule, _pod(url, secret_name, secret_key, image)),
    }
    header = f"# apflow task {task.id!r}: triggers {url} on {schedule!r} ({task.timezone})\n"
    return header + yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                              width=100)


def cronjob_name(task: Task) -> str:
    """A DNS-1123 name, at most 52 characters: the task name's slug and a task-id hash."""
    digest = hashlib.sha256(task.id.encode()).hexdigest()[:_HASH_CHARS]
    ascii_name = unicodedata.normalize("NFKD", task.name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "task"
    return f"{slug[:MAX_NAME - _HASH_CHARS - 1].rstrip('-')}-{digest}"


def _check_names(namespace: str, secret_name: str, secret_key: str, image: str) -> None:
    if not _LABEL.match(namespace) or len(namespace) > 63:
        raise InvalidParams("must be a DNS-1123 label (a-z, 0-9, '-')", field="namespace")
    if not all(_LABEL.match(part) for part in secret_name.split(".")) or len(secret_name) > 253:
        raise InvalidParams("must be a DNS-1123 subdomain", field="secret_name")
    if not _SECRET_KEY.match(secret_key) or len(secret_key) > 253:
        raise InvalidParams("may contain only letters, digits, '-', '_' and '.'",
                            field="secret_key")
    if not image or any(char.isspace() for char in image):
        raise InvalidParams("must be an image reference", field="image")


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "apflow-trigger", "app.kubernetes.io/managed-by": "apflow"}


def _cronjob_spec(task: Task, schedule: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "schedule": schedule,
        "timeZone": task.timezone,  # Kubernetes >= 1.27
        "concurrencyPolicy": CONCURRENCY[task.on_overlap],
        "startingDeadlineSeconds": STARTING_DEADLINE[task.catch_up],
        "suspend": not task.schedule_enabled,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {
            "backoffLimit": 2,  # a retried pod signs anew: the webhook refuses replays
            "activeDeadlineSeconds": 120,
            "template": {"metadata": {"labels": _labels()}, "spec": pod},
        }},
    }


def _pod(url: str, secret_name: str, secret_key: str, image: str) -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "trigger",
            "image": image,
            "command": ["/bin/sh", "-c", busybox_script()],
            "env": [
                {"name": URL_ENV, "value": url},
                {"name": SECRET_ENV, "valueFrom": {
                    "secretKeyRef": {"name": secret_name, "key": secret_key}}},
            ],
            "securityContext": {"allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                          "limits": {"memory": "64Mi"}},
        }],
    }


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (the script) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
