"""The dashboard in a real browser: Debian's chromium driven by Playwright, against the real app
with its engine on 127.0.0.1, over SQLite.

With APFLOW_SCREENSHOTS=1 the tests also save the screenshots the docs show
(docs/dashboard.png, docs/dashboard-task.png).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import BrowserContext, Dialog, Page, async_playwright, expect

from apflow.api.app import create_app
from apflow.api.auth import issue_token
from apflow.clock import SystemClock
from apflow.config import Config

pytestmark = pytest.mark.browser

SECRET = "dashboard-test-secret-" + "0123456789abcdef" * 4
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
XSS_NAME = "<img src=x onerror=alert(1)>"


@functools.cache
def token(user: str, role: str = "user") -> str:
    """One token per user for the module: the same string wherever a test compares it."""
    return issue_token(SECRET, user, role, 3600)


@dataclass
class Dashboard:
    """The running app, a JSON-RPC client for it, and a browser context."""

    url: str
    http: aiohttp.ClientSession
    browser: BrowserContext
    dialogs: list[str]
    csp_violations: list[str]

    async def call(self, method: str, params: dict[str, Any], user: str = "alice") -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        headers = {"Authorization": f"Bearer {token(user)}"}
        async with self.http.post(f"{self.url}/tasks", data=json.dumps(body),
                                  headers=headers) as response:
            answer = await response.json()
        assert "error" not in answer, answer
        return answer["result"]

    async def create(self, name: str, user: str = "alice", **fields: Any) -> dict[str, Any]:
        params = {"name": name, "executor": {"type": "command", "command": "echo dashboard-ok"},
                  "schedule_type": "daily", "schedule_expression": "09:00",
                  "timezone": "Europe/Paris", "schedule_enabled": True, **fields}
        task: dict[str, Any] = await self.call("tasks.create", params, user)
        return task

    async def open(self, user: str = "alice") -> Page:
        """A new tab signed in through the URL fragment; any dialog fails the test."""
        page = await self.browser.new_page()

        async def refuse(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", refuse)
        page.on("console", lambda message: self.csp_violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        await page.goto(f"{self.url}/#token={token(user)}")
        await expect(page.locator("#schedules")).to_be_visible()
        return page


@pytest.fixture
async def dashboard(tmp_path: Path, chromium_path: str) -> AsyncIterator[Dashboard]:
    config = Config(database_url=f"sqlite:///{tmp_path / 'apflow.db'}", jwt_secret=SECRET)
    app = create_app(config, clock=SystemClock(), run_engine=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http, async_playwright() as playwright:
            browser = await playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=chromium_path,
                headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 720})
            browser.set_default_timeout(15_000)
            dashboard = Dashboard(f"http://{host}:{port}", http, browser, [], [])
            try:
                yield dashboard
            finally:
                await browser.close()
            assert dashboard.dialogs == [], f"a dialog opened: {dashboard.dialogs}"
            assert dashboard.csp_violations == [], dashboard.csp_violations
    finally:
        await runner.cleanup()


def row_of(page: Page, name: str) -> Any:
    return page.locator("#task-rows tr").filter(has=page.get_by_role("button", name=name,
                                                                      exact=True))


async def screenshot(page: Page, name: str) -> None:
    if os.environ.get("APFLOW_SCREENSHOTS") == "1":
        await page.screenshot(path=str(DOCS / name), full_page=True)


async def test_the_fragment_token_moves_to_session_storage(dashboard: Dashboard) -> None:
    page = await dashboard.open("alice")
    assert "#" not in page.url and "token" not in page.url
    stored = await page.evaluate("sessionStorage.getItem('apflow.token')")
    assert stored == token("alice")
    await expect(page.locator("#whoami")).to_have_text("alice (user)")


async def test_the_page_is_served_with_a_strict_policy(dashboard: Dashboard) -> None:
    async with dashboard.http.get(dashboard.url + "/") as page:
        assert page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "<script>" not in await page.text()  # no inline script: only /static/app.js
    async with dashboard.http.get(dashboard.url + "/static/app.js") as script:
        assert script.content_type == "text/javascript"
    async with dashboard.http.get(dashboard.url + "/static/..%2Fapp.py") as escape:
        assert escape.status == 404


async def test_a_listed_task_runs_now_and_shows_its_log(dashboard: Dashboard) -> None:
    task = await dashboard.create("nightly report", description="sends the report")
    await dashboard.create("weekday digest", schedule_type="cron",
                           schedule_expression="0 9 * * 1-5", timezone="America/New_York")
    await dashboard.create("cache cleanup", schedule_type="interval",
                           schedule_expression="3600", timezone="UTC", schedule_enabled=False)
    page = await dashboard.open("alice")
    row = row_of(page, "nightly report")
    await expect(row).to_contain_text("daily at 09:00")
    await expect(row).to_contain_text("Europe/Paris")
    await expect(row).to_contain_text(task["next_run_at"])
    await expect(row_of(page, "weekday digest")).to_contain_text("cron 0 9 * * 1-5")
    await expect(row_of(page, "cache cleanup")).to_contain_text("every 3600 s")

    await row.get_by_role("button", name="nightly report").click()
    await page.get_by_role("button", name="Run now").click()
    await expect(page.locator("#log-text")).to_contain_text("dashboard-ok")
    run_row = page.locator("#run-rows tr").first
    await expect(run_row).to_have_attribute("data-state", "succeeded")
    await expect(run_row).to_contain_text("manual")
    await screenshot(page, "dashboard-task.png")

    await page.get_by_role("button", name="All tasks").click()
    await expect(row_of(page, "nightly report")).to_contain_text("succeeded")
    await screenshot(page, "dashboard.png")


async def test_a_task_name_with_markup_renders_as_text(dashboard: Dashboard) -> None:
    await dashboard.create(XSS_NAME, description="<b>bold?</b>")
    page = await dashboard.open("alice")
    link = page.locator("#task-rows .task-link")
    await expect(link).to_have_text(XSS_NAME)
    await expect(page.locator("#task-rows img")).to_have_count(0)
    await link.click()
    await expect(page.locator("#task-name")).to_have_text(XSS_NAME)
    await expect(page.locator("#task-description")).to_have_text("<b>bold?</b>")
    await expect(page.locator("#task img, #task b")).to_have_count(0)
    assert dashboard.dialogs == []


async def test_a_user_sees_only_their_own_tasks(dashboard: Dashboard) -> None:
    await dashboard.create("alice's task", user="alice")
    await dashboard.create("bob's task", user="bob")
    page = await dashboard.open("bob")
    await expect(row_of(page, "bob's task")).to_have_count(1)
    await expect(page.locator("#task-rows tr")).to_have_count(1)


async def test_pause_and_resume_toggle(dashboard: Dashboard) -> None:
    await dashboard.create("toggled")
    page = await dashboard.open("alice")
    await page.get_by_role("button", name="toggled").click()
    pause, resume = page.get_by_role("button", name="Pause"), page.get_by_role("button",
                                                                                name="Resume")
    await expect(resume).to_be_hidden()
    await pause.click()
    await expect(resume).to_be_visible()
    await expect(pause).to_be_hidden()
    await resume.click()
    await expect(pause).to_be_visible()
    await page.get_by_role("button", name="All tasks").click()
    await expect(row_of(page, "toggled").locator("td").last).to_have_text("yes")


async def test_no_run_now_without_api_trigger(dashboard: Dashboard) -> None:
    await dashboard.create("schedule only", api_trigger=False)
    page = await dashboard.open("alice")
    await page.get_by_role("button", name="schedule only").click()
    await expect(page.locator("#task-name")).to_have_text("schedule only")
    await expect(page.get_by_role("button", name="Run now")).to_be_hidden()


async def test_a_refused_token_returns_to_sign_in(dashboard: Dashboard) -> None:
    page = await dashboard.browser.new_page()
    await page.goto(f"{dashboard.url}/#token=not-a-jwt")
    await expect(page.locator("#sign-in")).to_be_visible()
    await expect(page.locator("#message")).to_contain_text("Signed out")
    await page.locator("#token-input").fill(token("alice"))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#schedules")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('apflow.token')") is None
