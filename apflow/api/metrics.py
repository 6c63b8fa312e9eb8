"""GET /metrics: Prometheus text format (apflow/metrics.py says what is counted).

Unauthenticated, like most exporters: it shows counts and task ids, no names, inputs or
secrets, and apflow binds to 127.0.0.1 unless told otherwise. A store that cannot be
reached leaves the queue gauges at their last values; the counters are still served.
"""

from __future__ import annotations

import logging

from aiohttp import web

from apflow.api.keys import ENGINE, METRICS, STORE
from apflow.domain.enums import RunState
from apflow.domain.errors import ApflowError
from apflow.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)


async def metrics(request: web.Request) -> web.Response:
    """The exposition of this process's metrics."""
    counts: dict[RunState, int] | None = None
    try:
        counts = await request.app[STORE].count_runs_by_state()
    except ApflowError as exc:
        logger.warning("metrics without queue counts", extra={
            "action": "metrics_degraded", "error": exc.message})
    engine = request.app.get(ENGINE)
    running_here = engine.dispatcher.running_count() if engine is not None else 0
    body = request.app[METRICS].render(counts, running_here)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
