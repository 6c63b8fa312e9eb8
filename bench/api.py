"""HTTP API throughput: JSON-RPC `tasks.get` and `tasks.create` per second against a real
`apflow serve` (API and engine, SQLite default), and the same load against a bare aiohttp
handler answering a fixed small JSON body, the ceiling for any aiohttp app on this machine.

Three processes: this one generates the load (one aiohttp ClientSession, CONNECTIONS
keep-alive connections, each sending its next request when the last is answered), the
server under test is a second, and the bare server a third, started only while measured.
Rounds alternate the three measures so a machine slowing down hurts them alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench._processes import stop, token_for
from bench._report import Row, section

ROUNDS = 5
SECONDS = 2.0  # per measure per round
WARM_UP = 0.5
CONNECTIONS = 16
TARGET_SHARE = 0.40  # tasks.get must reach 40% of the bare handler's rate
READY = re.compile(r"apflow serving on (http://\S+)")
BARE_BODY = b'{"jsonrpc":"2.0","result":{"ok":true},"id":1}'


@dataclass(frozen=True)
class Target:
    """Where to send what."""

    url: str
    body: bytes
    headers: dict[str, str]


# the servers --------------------------------------------------------------------------------


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APFLOW_")}
    env["APFLOW_HOME"] = str(home)
    return env


@contextmanager
def apflow_serve(home: Path) -> Iterator[str]:
    """`apflow serve --port 0` on a fresh SQLite home; its base URL."""
    env = clean_env(home)
    log = home / "serve.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "apflow.cli.main", "serve", "--port",
                                 "0"], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield wait_for_line(proc, log, READY)
    finally:
        stop(proc)


@contextmanager
def bare_server() -> Iterator[str]:
    """This module's bare aiohttp handler in a process of its own; its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.api", "bare-server"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = READY.search(line)
        if match is None:
            raise RuntimeError(f"the bare server did not start: {line!r}")
        yield match.group(1)
    finally:
        stop(proc)


def wait_for_line(proc: subprocess.Popen[bytes], log: Path, pattern: re.Pattern[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text())
        if match:
            return match.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"apflow serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError("apflow serve did not start within 30 s")


def serve_bare() -> None:
    """The ceiling: POST /tasks reads the body and answers a fixed small JSON document."""
    from aiohttp import web

    from apflow.runtime import run as run_node_loop

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=BARE_BODY, content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/tasks", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"apflow serving on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    run_node_loop(run())  # the event loop `apflow serve` runs on: a fair ceiling


# the load -----------------------------------------------------------------------------------


def rpc_body(method: str, params: dict[str, object]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params,
                       "id": 1}).encode()


async def requests_per_second(session: aiohttp.ClientSession, target: Target,
                              seconds: float) -> float:
    """CONNECTIONS clients, each posting back to back for `seconds`; answers per second."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds

    async def client() -> int:
        answered = 0
        while loop.time() < stop_at:
            async with session.post(target.url, data=target.body,
                                    headers=target.headers) as response:
                payload = await response.read()
            if response.status != 200 or b'"result"' not in payload:
                raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
            answered += 1
        return answered

    started = time.perf_counter()
    counts = await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    return sum(counts) / (time.perf_counter() - started)


async def prepare(session: aiohttp.ClientSession, api_url: str,
                  token: str) -> tuple[Target, Target]:
    """A task to read, and the tasks.get and tasks.create targets."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{api_url}/tasks"
    create = rpc_body("tasks.create", {"name": "bench", "description": "benchmark task",
                                       "executor": {"type": "command", "command": "true"}})
    async with session.post(url, data=create, headers=headers) as response:
        task_id = (await response.json())["result"]["id"]
    get = Target(url, rpc_body("tasks.get", {"task_id": task_id}), headers)
    return get, Target(url, create, headers)


async def measure(api_url: str, bare_url: str, token: str) -> dict[str, list[float]]:
    """ROUNDS rounds of the three measures; their rates."""
    rates: dict[str, list[float]] = {"bare": [], "get": [], "create": []}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        get, create = await prepare(session, api_url, token)
        bare = Target(f"{bare_url}/tasks", rpc_body("tasks.get", {"task_id": "x"}),
                      {"Content-Type": "application/json"})
        targets = {"bare": bare, "get": get, "create": create}
        for target in targets.values():
            await requests_per_second(session, target, WARM_UP)
        for _ in range(ROUNDS):
            for name, target in targets.items():
                rates[name].append(await requests_per_second(session, target, SECONDS))
    return rates


def rows_of(rates: dict[str, list[float]]) -> list[Row]:
    shares = [get / bare for get, bare in zip(rates["get"], rates["bare"], strict=True)]
    return [
        Row("bare aiohttp handler (fixed small JSON)", rates["bare"], "req/s",
            "ceiling for any aiohttp app here"),
        Row("`tasks.get` (JWT auth, JSON-RPC, SQLite read)", rates["get"], "req/s", "—"),
        Row("`tasks.get` ÷ bare handler, per round", [100 * s for s in shares], "%",
            f"target ≥ {TARGET_SHARE:.0%}"),
        Row("`tasks.create` (JWT auth, JSON-RPC, SQLite write)", rates["create"], "req/s",
            "—"),
    ]


def main() -> None:
    if sys.argv[1:] == ["bare-server"]:
        serve_bare()
        return
    with tempfile.TemporaryDirectory(prefix="apflow-bench-api-") as directory:
        home = Path(directory)
        token = token_for(clean_env(home))  # writes the config (and its jwt_secret) first
        with apflow_serve(home) as api_url, bare_server() as bare_url:
            rates = asyncio.run(measure(api_url, bare_url, token))
    notes = (f"Load: one aiohttp client process, {CONNECTIONS} keep-alive connections, "
             f"{SECONDS:g} s per measure per round, {ROUNDS} rounds alternating the three "
             "measures; the servers are `apflow serve` (API and engine on one event loop, "
             "SQLite) and a bare aiohttp app, each a process of its own on the same machine "
             "as the client.")
    print(section("HTTP API: JSON-RPC requests per second", rows_of(rates), notes))


if __name__ == "__main__":
    main()
