"""GET /health: is this node serving, and can it reach its database."""

from __future__ import annotations

import logging

from aiohttp import web

from apflow.api.keys import CLOCK, STORE
from apflow.domain.errors import ApflowError
from apflow.store.base import TaskFilter

logger = logging.getLogger(__name__)


async def health(request: web.Request) -> web.Response:
    """200 when the database answers, 503 (with the reason, no secrets) when it does not."""
    store = request.app[STORE]
    now = request.app[CLOCK].now()
    try:
        await store.count_tasks(TaskFilter())
    except ApflowError as exc:
        logger.warning("health check failed", extra={"action": "health_degraded",
                                                     "error": exc.message})
        return web.json_response(
            {"status": "degraded", "database": "unreachable", "time": now.isoformat()},
            status=503,
        )
    return web.json_response(
        {"status": "ok", "database": store.dialect, "time": now.isoformat()}
    )
