"""GET /metrics over real HTTP: the Prometheus text format, fed by a real engine's runs."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

from apflow.clock import SystemClock
from tests.api.conftest import Api, ApiFactory
from tests.api.test_rpc_protocol import wait_for_state


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with api.client.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_runs_lateness_and_queue_are_exported(make_api: ApiFactory) -> None:
    api = await make_api(clock=SystemClock(), run_engine=True)
    ok = await api.create("ok", executor={"type": "command", "command": "true"})
    bad = await api.create("bad", executor={"type": "command", "command": "exit 2"})
    for task in (ok, bad):
        run = await api.call("tasks.run", {"task_id": task["id"]})
        await wait_for_state(api, run["id"], "succeeded" if task is ok else "failed")
    scheduled = await api.create("tick", schedule_type="interval", schedule_expression="1",
                                 schedule_enabled=True)
    deadline = time.monotonic() + 10
    while True:
        samples = await scrape(api)
        if samples.get(("apflow_run_lateness_seconds_count", ()), 0) >= 1:
            break
        assert time.monotonic() < deadline, "no scheduled run was observed"
        await asyncio.sleep(0.1)
    await api.call("tasks.pause", {"task_id": scheduled["id"]})
    assert samples[("apflow_runs_total", (("state", "succeeded"), ("task_id", ok["id"])))] == 1
    assert samples[("apflow_runs_total", (("state", "failed"), ("task_id", bad["id"])))] == 1
    assert samples[("apflow_runs_started_total", (("trigger", "manual"),))] >= 2
    assert ("apflow_queue_depth", ()) in samples and ("apflow_runs_running", ()) in samples


async def test_webhook_refusals_are_counted_by_reason(make_api: ApiFactory) -> None:
    api = await make_api()
    async with api.client.post("/webhook/trigger/nope", data=b"{}") as response:
        assert response.status == 401
    samples = await scrape(api)
    assert samples[("apflow_webhook_refusals_total", (("reason", "unauthenticated"),))] == 1
