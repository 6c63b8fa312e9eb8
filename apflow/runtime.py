"""Process-wide settings of a long-running node (`apflow serve`, `apflow scheduler start`).

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

import gc

GC_THRESHOLDS = (50_000, 20, 50)


def tune_garbage_collector() -> None:
    """Collect cycles less often, and leave what exists now out of every later pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
