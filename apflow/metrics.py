"""Prometheus metrics of one process: the engine's events, the webhook's refusals, and the
queue as the store sees it at scrape time. Each app has its own registry (no globals), so
several apps in one process (tests) never mix their counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from apflow.domain.enums import RunState
from apflow.domain.models import Run

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Lateness of scheduled runs: apflow aims at milliseconds, so the buckets start there.
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0)


class Metrics:
    """The counters, histogram and gauges; also the engine's Observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter("apflow_runs", "Runs finished, by task and final state.",
                            ["task_id", "state"], registry=self.registry)
        self.started = Counter("apflow_runs_started", "Runs claimed and started, by trigger.",
                               ["trigger"], registry=self.registry)
        self.lateness = Histogram(
            "apflow_run_lateness_seconds",
            "Start of a scheduled run minus its due time (slot plus jitter).",
            buckets=LATENESS_BUCKETS, registry=self.registry)
        self.heartbeats = Counter("apflow_node_heartbeats", "Heartbeats written by this node.",
                                  ["node"], registry=self.registry)
        self.loop_errors = Counter("apflow_loop_errors",
                                   "Failed turns of the engine's loops.", ["loop"],
                                   registry=self.registry)
        self.store_errors = Counter("apflow_store_errors",
                                    "Loop turns that failed because of the store.", ["loop"],
                                    registry=self.registry)
        self.webhook_refusals = Counter("apflow_webhook_refusals",
                                        "Webhook calls refused, by reason.", ["reason"],
                                        registry=self.registry)
        self.queue_depth = Gauge("apflow_queue_depth", "Runs queued (all nodes).",
                                 registry=self.registry)
        self.running = Gauge("apflow_runs_running", "Runs running (all nodes).",
                             registry=self.registry)
        self.running_here = Gauge("apflow_runs_running_here", "Runs running on this node.",
                                  registry=self.registry)

    # Observer ---------------------------------------------------------------------------

    def run_started(self, run: Run, lateness_seconds: float | None) -> None:
        self.started.labels(run.trigger.value).inc()
        if lateness_seconds is not None:
            self.lateness.observe(max(lateness_seconds, 0.0))

    def run_finished(self, run: Run) -> None:
        self.runs.labels(run.task_id, run.state.value).inc()

    def heartbeat(self, node: str) -> None:
        self.heartbeats.labels(node).inc()

    def loop_error(self, loop: str, store: bool) -> None:
        self.loop_errors.labels(loop).inc()
        if store:
            self.store_errors.labels(loop).inc()

    # the edges --------------------------------------------------------------------------

    def webhook_refused(self, reason: str) -> None:
        """A webhook call was refused (`reason`: a short, fixed word, never a message)."""
        self.webhook_refusals.labels(reason).inc()

    def render(self, counts: dict[RunState, int] | None, running_here: int) -> bytes:
        """The text exposition, with the gauges set from the store's counts of now (None:
        the store did not answer; the queue gauges keep their last values)."""
        if counts is not None:
            self.queue_depth.set(counts.get(RunState.QUEUED, 0))
            self.running.set(counts.get(RunState.RUNNING, 0))
        self.running_here.set(running_here)
        return generate_latest(self.registry)
