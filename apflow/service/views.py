"""Domain objects as the JSON the API returns (DESIGN.md sections 3 and 4).

Secrets never leave through a read: values of secret-looking keys in `env` (and in an
executor's `env` and `headers`) come back as "****".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from apflow.domain.models import LogChunk, Node, Occurrence, Run, Task
from apflow.masking import is_secret_key
from apflow.schedules import PreviewItem

MASK = "****"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return None if value is None else value.isoformat()


def masked_map(values: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with values of secret-looking keys replaced."""
    return {key: MASK if is_secret_key(str(key)) and value else value
            for key, value in values.items()}


def masked_executor(executor: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The executor spec with secret env values and headers masked."""
    if executor is None:
        return None
    shown = dict(executor)
    for key in ("env", "headers"):
        inner = shown.get(key)
        if isinstance(inner, Mapping):
            shown[key] = masked_map(inner)
    return shown


def task_view(task: Task) -> dict[str, Any]:
    """A task's JSON."""
    return {
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "user_id": task.user_id,
        "parent_id": task.parent_id,
        "dependencies": list(task.dependencies),
        "status": task.status.value,
        "executor": masked_executor(task.executor),
        "inputs": dict(task.inputs),
        "result": task.result,
        "error": task.error,
        "progress": task.progress,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "schedule_type": task.schedule_type.value if task.schedule_type else None,
        "schedule_expression": task.schedule_expression,
        "timezone": task.timezone,
        "schedule_enabled": task.schedule_enabled,
        "schedule_start_at": iso(task.schedule_start_at),
        "schedule_end_at": iso(task.schedule_end_at),
        "max_runs": task.max_runs,
        "run_count": task.run_count,
        "last_run_at": iso(task.last_run_at),
        "next_run_at": iso(task.next_run_at),
        "catch_up": task.catch_up.value,
        "max_catch_up_runs": task.max_catch_up_runs,
        "jitter_seconds": task.jitter_seconds,
        "timeout_seconds": task.timeout_seconds,
        "graceful_stop_seconds": task.graceful_stop_seconds,
        "retry_limit": task.retry_limit,
        "retry_delay_seconds": task.retry_delay_seconds,
        "retry_backoff": task.retry_backoff.value,
        "max_concurrent": task.max_concurrent,
        "on_overlap": task.on_overlap.value,
        "queue_max": task.queue_max,
        "api_trigger": task.api_trigger,
        "env": masked_map(task.env),
        "webhook_secret_set": task.webhook_secret is not None,  # the secret is never returned
        "exclusion_calendar": task.exclusion_calendar,
        "notify_on_failure": task.notify_on_failure,
        "notify_on_success": task.notify_on_success,
        "keep_runs": task.keep_runs,
        "keep_for_seconds": task.keep_for_seconds,
    }


def run_view(run: Run) -> dict[str, Any]:
    """A run's JSON."""
    return {
        "id": run.id,
        "task_id": run.task_id,
        "trigger": run.trigger.value,
        "state": run.state.value,
        "end_reason": run.end_reason,
        "scheduled_for": iso(run.scheduled_for),
        "queued_at": iso(run.queued_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "exit_code": run.exit_code,
        "attempt": run.attempt,
        "error": run.error,
        "node": run.node,
        "triggered_by": run.triggered_by,
        "user_id": run.user_id,
        "variables": masked_map(run.variables),
        "result": run.result,
        "parent_run_id": run.parent_run_id,
        "retry_of": run.retry_of,
    }


def occurrence_view(occurrence: Occurrence) -> dict[str, Any]:
    """A ledger row's JSON."""
    return {
        "task_id": occurrence.task_id,
        "scheduled_for": iso(occurrence.scheduled_for),
        "outcome": occurrence.outcome.value,
        "recorded_at": iso(occurrence.recorded_at),
        "run_id": occurrence.run_id,
        "detail": occurrence.detail,
        "requested_by": occurrence.requested_by,
    }


def chunk_view(chunk: LogChunk) -> dict[str, Any]:
    """A log chunk's JSON."""
    return {"seq": chunk.seq, "at": iso(chunk.at), "stream": chunk.stream, "text": chunk.text}


def preview_view(item: PreviewItem) -> dict[str, Any]:
    """One previewed instant, flagged where a DST shift moved it."""
    return {"at": iso(item.at), "local": iso(item.local), "dst_shifted": item.dst_shifted,
            "note": item.note}


def node_view(node: Node) -> dict[str, Any]:
    """A node's JSON."""
    return {"id": node.id, "host": node.host, "pid": node.pid, "state": node.state,
            "started_at": iso(node.started_at), "heartbeat_at": iso(node.heartbeat_at),
            "running": node.running}
