"""Child processes of the HTTP benchmarks: stopping a server, minting a token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if it lingers (by this process's own child, never by name)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def token_for(env: Mapping[str, str]) -> str:
    """`apflow token --user bench` in the environment `env` (its APFLOW_HOME's config)."""
    result = subprocess.run([sys.executable, "-m", "apflow.cli.main", "token", "--user",
                             "bench"], env=dict(env), capture_output=True, text=True,
                            check=True, timeout=60)
    return result.stdout.strip()
