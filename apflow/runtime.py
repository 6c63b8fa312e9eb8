"""Process-wide settings of a long-running node (`apflow serve`, `apflow scheduler start`):
its event loop and its garbage collector.

The event loop is uvloop's (libuv, written in C) when uvloop is installed, as it is with
apflow on Linux and macOS: a node schedules a handful of callbacks, futures and tasks per
run, and on asyncio's own loop that bookkeeping was about a fifth of a burst (a burst of
10,000 queued runs on PostgreSQL: about 7,500 runs/s on asyncio's loop, 8,500 on uvloop,
same machine). APFLOW_EVENT_LOOP=asyncio keeps asyncio's loop.

CPython's cyclic garbage collector runs a young-generation pass every 700 net allocations by
default and, every 100 of those, a full pass over every live object. A node starting runs by
the thousand allocates a few dozen objects per run (the run, its asyncio task, futures, log
sink), so the default spends a fifth to a third of a burst's time collecting
(`scripts/bench engine` measures it). Nearly everything a node allocates is freed by
reference counting anyway; cycles are rare and small. So: collect the young generation every
50,000 allocations, and freeze what start-up allocated (modules, configuration) so full
passes never walk it again.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

GC_THRESHOLDS = (50_000, 20, 50)
EVENT_LOOP_VARIABLE = "APFLOW_EVENT_LOOP"  # "asyncio": asyncio's own loop even with uvloop

T = TypeVar("T")


def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """uvloop's policy if it is installed and not declined, else asyncio's default."""
    if os.environ.get(EVENT_LOOP_VARIABLE, "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # a platform without it (Windows): asyncio's loop
            pass
        else:
            policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
            return policy
    return asyncio.DefaultEventLoopPolicy()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on the node's event loop (event_loop_policy)."""
    with asyncio.Runner(loop_factory=event_loop_policy().new_event_loop) as runner:
        return runner.run(main)


def tune_garbage_collector() -> None:
    """Collect cycles less often, and leave what exists now out of every later pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
