"""Run notifications: a JSON POST (generic webhook) or a Slack-compatible message when a run
of a task that asked for it ends.

The engine tells the Notifier that a run finished (it is an engine Observer); everything
after that happens in background tasks: reading the task, building the payload, delivering
with retries. A receiver that is down or slow never delays or fails a run. Payloads carry
the task, the run id, state, trigger, timestamps and the run's error as stored (already
masked), never logs, inputs, env or variables. A failed run notifies once its retries are
over (a run that will be retried says nothing yet).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from apflow.config import NotifiersConfig
from apflow.domain.enums import RunState
from apflow.domain.errors import NotFound
from apflow.domain.models import Run, Task
from apflow.engine.planning import should_retry
from apflow.service.views import iso
from apflow.store.base import Store

logger = logging.getLogger(__name__)

FAILURES = frozenset({RunState.FAILED, RunState.TIMED_OUT, RunState.CRASHED})
MAX_PENDING = 1000  # deliveries in flight; past it new ones are dropped (and logged)
FIRST_RETRY_SECONDS = 0.5
CLOSE_GRACE_SECONDS = 5.0


def payload(task: Task, run: Run) -> dict[str, Any]:
    """What a notification says: no logs, inputs, env or variables."""
    return {
        "event": "run_succeeded" if run.state is RunState.SUCCEEDED else "run_failed",
        "task": {"id": task.id, "name": task.name, "user_id": task.user_id},
        "run": {"id": run.id, "state": run.state.value, "trigger": run.trigger.value,
                "attempt": run.attempt, "end_reason": run.end_reason,
                "exit_code": run.exit_code, "error": run.error,
                "scheduled_for": iso(run.scheduled_for), "queued_at": iso(run.queued_at),
                "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
                "node": run.node},
    }


def slack_text(body: dict[str, Any]) -> dict[str, str]:
    """The same news as one Slack message."""
    run, task = body["run"], body["task"]
    mark = ":white_check_mark:" if run["state"] == "succeeded" else ":x:"
    text = f"{mark} apflow: task *{task['name']}* run `{run['id']}` {run['state']}"
    if run["error"]:
        text += f": {run['error']}"
    return {"text": text}


def where(url: str) -> str:
    """A URL as it may be logged: scheme and host only (webhook URLs carry secrets)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def wanted(task: Task, run: Run) -> bool:
    """Does this run's end call for a notification?"""
    if run.state is RunState.SUCCEEDED:
        return task.notify_on_success
    if run.state in FAILURES:
        return task.notify_on_failure and not should_retry(task, run)
    return False


class Notifier:
    """An engine Observer that notifies; only run_finished does anything."""

    def __init__(self, store: Store, config: NotifiersConfig) -> None:
        self._store = store
        self._config = config
        self._pending: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def run_started(self, run: Run, lateness_seconds: float | None) -> None:
        return None

    def heartbeat(self, node: str) -> None:
        return None

    def loop_error(self, loop: str, store: bool) -> None:
        return None

    def run_finished(self, run: Run) -> None:
        if run.state in FAILURES or run.state is RunState.SUCCEEDED:
            self._spawn(self._consider(run))

    def _spawn(self, work: Any) -> None:
        if len(self._pending) >= MAX_PENDING:
            work.close()
            logger.warning("notification dropped", extra={"action": "notify_dropped",
                                                           "pending": len(self._pending)})
            return
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _consider(self, run: Run) -> None:
        try:
            task = await self._store.get_task(run.task_id)
        except NotFound:
            return  # deleted meanwhile
        except Exception as exc:
            logger.warning("notification skipped", extra={
                "action": "notify_failed", "run_id": run.id, "error": str(exc)[:200]})
            return
        if not wanted(task, run):
            return
        body = payload(task, run)
        for url in self._config.webhook_urls:
            self._spawn(self._deliver(url, body, run.id))
        for url in self._config.slack_urls:
            self._spawn(self._deliver(url, slack_text(body), run.id))

    async def _deliver(self, url: str, body: dict[str, Any], run_id: str) -> None:
        data = json.dumps(body).encode()
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        error = ""
        for attempt in range(self._config.retries + 1):
            if attempt:
                await asyncio.sleep(FIRST_RETRY_SECONDS * 2 ** (attempt - 1))
            try:
                async with self._client().post(
                        url, data=data, timeout=timeout,
                        headers={"Content-Type": "application/json"}) as response:
                    if 200 <= response.status < 300:
                        logger.info("notification sent", extra={
                            "action": "notify_sent", "run_id": run_id, "to": where(url)})
                        return
                    error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = type(exc).__name__
        logger.warning("notification not delivered", extra={
            "action": "notify_failed", "run_id": run_id, "to": where(url), "error": error,
            "attempts": self._config.retries + 1})

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Give deliveries in flight a moment, then stop them and close the client."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=CLOSE_GRACE_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
