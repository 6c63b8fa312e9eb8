"""Bare asyncio: how many `/bin/true` processes per second this machine can spawn and reap.

This is the ceiling for the command executor: apflow cannot run shell tasks faster than
asyncio can start processes, so other sections compare their run rates to these numbers.
"""

from __future__ import annotations

import asyncio
import time

from bench._report import Row, section

ROUNDS = 5
SPAWNS = 200


async def _spawn_and_reap() -> None:
    process = await asyncio.create_subprocess_exec("/bin/true")
    await process.wait()


async def _sequential_rate() -> float:
    started = time.perf_counter()
    for _ in range(SPAWNS):
        await _spawn_and_reap()
    return SPAWNS / (time.perf_counter() - started)


async def _concurrent_rate() -> float:
    started = time.perf_counter()
    await asyncio.gather(*(_spawn_and_reap() for _ in range(SPAWNS)))
    return SPAWNS / (time.perf_counter() - started)


async def _measure() -> list[Row]:
    await _spawn_and_reap()  # warm-up: the child watcher and page cache
    sequential = [await _sequential_rate() for _ in range(ROUNDS)]
    concurrent = [await _concurrent_rate() for _ in range(ROUNDS)]
    return [
        Row(
            f"spawn + wait `/bin/true`, one at a time ({SPAWNS} per round)",
            sequential,
            "runs/s",
            "ceiling for one task's back-to-back runs",
        ),
        Row(
            f"spawn + wait `/bin/true`, {SPAWNS} at once",
            concurrent,
            "runs/s",
            "ceiling for the dispatcher's command runs/s",
        ),
    ]


def main() -> None:
    rows = asyncio.run(_measure())
    print(section("asyncio subprocess baseline", rows))


if __name__ == "__main__":
    main()
