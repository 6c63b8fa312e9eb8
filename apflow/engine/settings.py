"""Engine settings: the scheduler.* and logs.* keys the engine reads, with their defaults."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from apflow.config import Config


@dataclass(frozen=True)
class EngineSettings:
    """How one node schedules and runs work."""

    poll_interval: float = 60.0  # upper bound of any sleep; wake-ups normally come sooner
    max_concurrent: int = 10  # runs executing at once on this node
    default_timeout: float = 3600.0  # scheduler.timeout, for tasks without timeout_seconds
    user_id: str | None = None  # only fire and claim this user's tasks
    logs_max_size: int = 10 * 1024 * 1024
    logs_on_full: str = "drop_old"
    lease_seconds: float = 30.0
    heartbeat_interval: float = 5.0
    fire_batch: int = 500  # schedules locked per fire_due round
    keep_runs: int | None = None  # retention.keep_runs: finished runs kept per task
    keep_for: int | None = None  # retention.keep_for: seconds finished runs and ledger stay
    retention_interval: float = 60.0  # seconds between pruning passes

    @classmethod
    def from_config(cls, config: Config) -> EngineSettings:
        """Settings from a loaded config.cli.yaml."""
        sched = config.scheduler
        return cls(poll_interval=sched.poll_interval, max_concurrent=sched.max_concurrent,
                   default_timeout=sched.timeout, user_id=sched.user_id,
                   logs_max_size=config.logs.max_size, logs_on_full=config.logs.on_full,
                   lease_seconds=sched.lease_seconds,
                   heartbeat_interval=min(5.0, sched.lease_seconds / 3),
                   keep_runs=config.retention.keep_runs, keep_for=config.retention.keep_for)


def default_node_id(config: Config | None = None) -> str:
    """scheduler.node_id if configured, else the host name."""
    if config is not None and config.scheduler.node_id:
        return config.scheduler.node_id
    return socket.gethostname()
