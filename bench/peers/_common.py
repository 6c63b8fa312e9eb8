"""Shared by the peer drivers: arguments, the in-body recorder and the JSON line they print.

Every driver is run as `python bench/peers/<peer>.py WORKLOAD DSN COUNT SPREAD CONCURRENCY`
(WORKLOAD is `throughput` or `lateness`) on an empty database, and prints one JSON line.
Both workloads are measured inside the job body with `time.time()`, the same way for
every system: throughput is COUNT over the time from the worker's start to the last body;
lateness is body start minus the job's due instant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

SETUP_MARGIN_SECONDS = 2.0


@dataclass(frozen=True)
class Args:
    workload: str
    dsn: str
    count: int
    spread: float
    concurrency: int


def parse() -> Args:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=("throughput", "lateness"))
    parser.add_argument("dsn")
    parser.add_argument("count", type=int)
    parser.add_argument("spread", type=float)
    parser.add_argument("concurrency", type=int)
    ns = parser.parse_args()
    return Args(ns.workload, ns.dsn, ns.count, ns.spread, ns.concurrency)


@dataclass
class Recorder:
    """Body start times and the due instant of each body, set done when all have run."""

    expected: int
    hits: list[tuple[float, float]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def hit(self, due: float) -> None:
        self.hits.append((time.time(), due))
        if len(self.hits) >= self.expected:
            self.done.set()

    async def wait(self, within: float) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), within)
        except TimeoutError:
            raise TimeoutError(f"{len(self.hits)} of {self.expected} jobs ran "
                               f"within {within} s") from None


def due_instants(args: Args) -> list[float]:
    """Lateness: COUNT instants spread evenly over SPREAD s, from a margin after now."""
    first = time.time() + SETUP_MARGIN_SECONDS
    step = args.spread / args.count
    return [first + i * step for i in range(args.count)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def emit(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def report(args: Args, recorder: Recorder, began: float = 0.0, **extra: Any) -> None:
    """Print the JSON line of the workload measured."""
    if args.workload == "throughput":
        seconds = max(t for t, _ in recorder.hits) - began
        emit({"workload": "throughput", "jobs": len(recorder.hits), "seconds": seconds,
              "jobs_per_s": len(recorder.hits) / seconds, **extra})
    else:
        late = [(t - due) * 1000 for t, due in recorder.hits]
        emit({"workload": "lateness", "jobs": len(late), "p50_ms": percentile(late, 0.5),
              "p99_ms": percentile(late, 0.99), "max_ms": max(late), **extra})
