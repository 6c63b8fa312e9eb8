"""Webhook gateway throughput: HMAC-signed `POST /webhook/trigger/{task_id}` calls accepted
and queued per second, against a server on SQLite (create_app with the webhook routes, no
engine: the measure is the gateway and the queue write, not the runs' processes).

Two processes: this one generates the load (one aiohttp ClientSession, CONNECTIONS
keep-alive connections, each sending its next call when the last is answered; every call
signs a fresh body, since a replayed signature is refused), the server is the other. Rounds
alternate the gateway without and with a rate limit (one more shared-store write per call).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from bench._processes import stop, token_for
from bench._report import Row, section

ROUNDS = 5
SECONDS = 2.0  # per measure per round
WARM_UP = 0.5
CONNECTIONS = 32
TASKS = 32
TARGET = 1500.0  # accepted calls per second on 2 cores
SECRET = "bench-webhook-secret-0123456789"
READY = re.compile(r"apflow serving on (http://\S+)")
MEASURES = {"plain": "0", "rate_limited": "1000000000"}


# the server -----------------------------------------------------------------------------------


def serve(rate_limit: str) -> None:
    """create_app (webhook routes included) on 127.0.0.1:0; prints its URL, runs till killed."""
    from aiohttp import web

    from apflow.api.app import create_app
    from apflow.config import load_config
    from apflow.runtime import run as run_node_loop

    os.environ["APFLOW_WEBHOOK_RATE_LIMIT"] = rate_limit

    async def run() -> None:
        app = create_app(load_config())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"apflow serving on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    run_node_loop(run())  # the event loop `apflow serve` runs on


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APFLOW_")}
    env["APFLOW_HOME"] = str(home)
    env["APFLOW_WEBHOOK_SECRET"] = SECRET
    return env


@contextmanager
def server(home: Path, rate_limit: str) -> Iterator[str]:
    """The gateway server in a process of its own; its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.webhook", "serve", rate_limit],
                            env=clean_env(home), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = READY.search(line)
        if match is None:
            raise RuntimeError(f"the webhook server did not start: {line!r}")
        yield match.group(1)
    finally:
        stop(proc)


# the load -------------------------------------------------------------------------------------


async def create_tasks(session: aiohttp.ClientSession, url: str, token: str) -> list[str]:
    """TASKS tasks whose queue holds every call of the benchmark."""
    ids = []
    for n in range(TASKS):
        body = {"jsonrpc": "2.0", "id": n, "method": "tasks.create", "params": {
            "name": f"bench-{n}", "executor": {"type": "command", "command": "true"},
            "queue_max": 100_000}}
        async with session.post(f"{url}/tasks", json=body,
                                headers={"Authorization": f"Bearer {token}"}) as response:
            ids.append((await response.json())["result"]["id"])
    return ids


async def calls_per_second(session: aiohttp.ClientSession, url: str, task_ids: list[str],
                           seconds: float, counter: Iterator[int]) -> float:
    """CONNECTIONS clients, each posting signed calls back to back; 202s per second."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds
    key = SECRET.encode()

    async def client(index: int) -> int:
        path = f"{url}/webhook/trigger/{task_ids[index % len(task_ids)]}"
        accepted = 0
        while loop.time() < stop_at:
            body = b'{"nonce":%d}' % next(counter)
            stamp = str(int(time.time()))
            signature = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers = {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": signature,
                       "Content-Type": "application/json"}
            async with session.post(path, data=body, headers=headers) as response:
                payload = await response.read()
            if response.status != 202:
                raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
            accepted += 1
        return accepted

    started = time.perf_counter()
    counts = await asyncio.gather(*(client(i) for i in range(CONNECTIONS)))
    return sum(counts) / (time.perf_counter() - started)


async def measure(urls: dict[str, str], token: str) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in urls}
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS * len(urls))
    async with aiohttp.ClientSession(connector=connector) as session:
        ids = {name: await create_tasks(session, url, token) for name, url in urls.items()}
        for name, url in urls.items():
            await calls_per_second(session, url, ids[name], WARM_UP, counter)
        for _ in range(ROUNDS):
            for name, url in urls.items():
                rates[name].append(await calls_per_second(session, url, ids[name], SECONDS,
                                                          counter))
    return rates


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
        return
    with tempfile.TemporaryDirectory(prefix="apflow-bench-webhook-") as directory:
        homes = {name: Path(directory) / name for name in MEASURES}
        tokens = {name: token_for(clean_env(home)) for name, home in homes.items()}
        with server(homes["plain"], MEASURES["plain"]) as plain, \
                server(homes["rate_limited"], MEASURES["rate_limited"]) as limited:
            plain_rates = asyncio.run(measure({"plain": plain}, tokens["plain"]))
            limited_rates = asyncio.run(measure({"rate_limited": limited},
                                                tokens["rate_limited"]))
    rows = [
        Row("signed webhook calls accepted and queued (HMAC, replay check)",
            plain_rates["plain"], "calls/s", f"target ≥ {TARGET:,.0f} calls/s on 2 cores"),
        Row("the same with webhook.rate_limit on (one more shared counter write)",
            limited_rates["rate_limited"], "calls/s", "—"),
    ]
    notes = (f"Load: one aiohttp client process, {CONNECTIONS} keep-alive connections spread "
             f"over {TASKS} tasks, a fresh timestamp and signature per call, {SECONDS:g} s per "
             f"measure, {ROUNDS} rounds; the server is create_app plus the webhook routes on "
             "SQLite (no engine), a process of its own on the same machine as the client.")
    print(section("Webhook gateway: signed triggers per second", rows, notes))


if __name__ == "__main__":
    main()
