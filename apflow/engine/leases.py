"""Lease time: heartbeats and leases stamped on the database server's clock.

Nodes judge each other by heartbeats and leases. If each used its own clock, a node whose
clock runs ahead would find healthy nodes' heartbeats old and crash their runs, and one
whose clock runs behind would write leases that everyone else reads as long expired. So
every lease instant (a heartbeat, a lease's end, the cut-off for declaring a node lost) is
this node's clock plus its offset to the database server's clock, measured at start and at
every heartbeat as the midpoint of a `clock_timestamp()` round trip. Run timestamps
(started_at, finished_at) stay on the node's clock, like the schedules they are compared with.

The offset is measured only for a wall clock on a database with a clock of its own
(PostgreSQL): SQLite lives on this machine, and a test's fake clock keeps its own time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apflow.clock import Clock
from apflow.store.base import Store

logger = logging.getLogger(__name__)

# An offset this large is worth a warning: the node's clock is not synchronised.
SKEW_WARNING = timedelta(seconds=1)


class LeaseClock:
    """This node's clock moved onto the database's clock, for lease arithmetic only."""

    def __init__(self, clock: Clock, store: Store) -> None:
        self._clock = clock
        self._store = store
        self._follow = clock.wall
        self.offset = timedelta(0)  # database clock minus this node's clock
        self._warned = False

    async def sync(self) -> None:
        """Measure the offset to the database's clock again (a failure keeps the last one)."""
        if not self._follow:
            return
        sent = self._clock.now()
        server = await self._store.database_time()
        received = self._clock.now()
        if server is None:
            self._follow = False  # no clock of its own: this machine's is the database's
            return
        self.offset = server - (sent + (received - sent) / 2)
        skewed = abs(self.offset) > SKEW_WARNING
        if skewed and not self._warned:
            logger.warning("node clock differs from the database's; leases use the database's",
                           extra={"action": "clock_skew",
                                  "offset_seconds": round(self.offset.total_seconds(), 3)})
        self._warned = skewed

    def now(self) -> datetime:
        """The database's clock now, as well as this node can tell."""
        return self._clock.now() + self.offset

    def until(self, seconds: float) -> datetime:
        """The end of a lease of `seconds` taken now."""
        return self.now() + timedelta(seconds=seconds)
