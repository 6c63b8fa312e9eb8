"""Shared fixtures: the real PostgreSQL server and dockerd that scripts/test starts, and the
chromium it installs.

Without them a test that needs one is skipped, so `pytest` alone still runs the rest.
Under CI=true such a skip is a failure: CI must never go green without having run them.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

REAL_SERVER_MARKERS = ("postgres", "docker", "browser")
FIXTURE_MARKERS = {"postgres_server_dsn": "postgres", "docker_host": "docker",
                   "chromium_path": "browser"}
CHROMIUM = "/usr/bin/chromium"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_server_dsn() -> str:
    """DSN of the throwaway PostgreSQL server (superuser, trust auth, 127.0.0.1)."""
    dsn = os.environ.get("APFLOW_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("APFLOW_TEST_POSTGRES_DSN is not set: run the suite with scripts/test")
    return dsn


@pytest.fixture(scope="session")
def docker_host() -> tuple[str, str]:
    """(DOCKER_HOST of the private dockerd, name of the local busybox image)."""
    host = os.environ.get("DOCKER_HOST")
    image = os.environ.get("APFLOW_TEST_DOCKER_IMAGE")
    if not host or not image:
        pytest.skip(
            "DOCKER_HOST or APFLOW_TEST_DOCKER_IMAGE is not set: run the suite with "
            "scripts/test (it says why when dockerd cannot run on this machine)"
        )
    return host, image


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, which the browser tests drive (Playwright never downloads one)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: run the suite with scripts/test (it installs it)")
    return CHROMIUM


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a real-server fixture carries its marker, even if it forgot it."""
    for item in items:
        fixturenames = getattr(item, "fixturenames", ())
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in fixturenames and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI=true, a skipped postgres, docker or browser test is reported as failed."""
    report = yield
    if not (_in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return report
    needs = [m for m in REAL_SERVER_MARKERS if item.get_closest_marker(m) is not None]
    if needs:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, but this test needs {' and '.join(needs)}, "
            f"which CI must provide: {reason}"
        )
    return report
