"""The other credentials, in DESIGN.md's order: a valid JWT first, then a verify hook, then
HMAC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apflow.service.webhook import (
    VerifyContext,
    VerifyHook,
    VerifyResult,
    register_webhook_verify_hook,
    unregister_webhook_verify_hook,
)
from tests.webhook.conftest import Gateway


@pytest.fixture
def hooks() -> Iterator[list[VerifyHook]]:
    """Register hooks for one test; they are unregistered afterwards."""
    registered: list[VerifyHook] = []
    yield registered
    for hook in registered:
        unregister_webhook_verify_hook(hook)


def install(hooks: list[VerifyHook], hook: VerifyHook) -> VerifyHook:
    hooks.append(register_webhook_verify_hook(hook))
    return hook


# JWT ------------------------------------------------------------------------------------------


async def test_a_jwt_triggers_the_callers_own_task_without_a_signature(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    answer = await gw.post(task["id"], b"{}", gw.bearer("alice"))
    assert answer.status == 202, answer.body
    (run,) = await gw.runs()
    assert (run.trigger.value, run.triggered_by) == ("webhook", "alice")


async def test_a_jwt_for_someone_elses_task_is_403(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    answer = await gw.post(task["id"], b"{}", gw.bearer("bob"))
    assert (answer.status, answer.message) == (403, f"task {task['id']} belongs to another user")
    assert await gw.runs() == []


async def test_an_admin_jwt_triggers_any_task(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    answer = await gw.post(task["id"], b"{}", gw.bearer("root", role="admin"))
    assert answer.status == 202
    (run,) = await gw.runs()
    assert run.triggered_by == "root"


async def test_a_jwt_wins_over_a_wrong_signature(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    headers = {**gw.signed(b"{}", secret="wrong"), **gw.bearer("alice")}
    assert (await gw.post(task["id"], b"{}", headers)).status == 202


async def test_an_invalid_jwt_alone_is_401_with_its_reason(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    answer = await gw.post(task["id"], b"{}", {"Authorization": "Bearer not.a.jwt"})
    assert (answer.status, answer.message) == (401, "malformed token")
    assert await gw.runs() == []


async def test_an_invalid_jwt_falls_through_to_a_valid_signature(gw: Gateway) -> None:
    task = await gw.create(user="alice")
    headers = {**gw.signed(b"{}"), "Authorization": "Bearer not.a.jwt"}
    assert (await gw.post(task["id"], b"{}", headers)).status == 202


async def test_a_jwt_for_an_unknown_task_is_404(gw: Gateway) -> None:
    answer = await gw.post("nope", b"{}", gw.bearer("alice"))
    assert answer.status == 404


# verify hooks ---------------------------------------------------------------------------------


async def test_a_verify_hook_accepts_a_call_without_hmac(gw: Gateway,
                                                         hooks: list[VerifyHook]) -> None:
    seen: list[VerifyContext] = []

    def hook(context: VerifyContext) -> VerifyResult:
        seen.append(context)
        return VerifyResult(valid=context.headers.get("X-Partner-Key") == "k-1")

    install(hooks, hook)
    task = await gw.create(user="alice")
    body = b'{"variables": {"A": "1"}}'
    answer = await gw.post(task["id"], body, {"X-Partner-Key": "k-1",
                                              "X-Webhook-Signature": "partner-sig"})
    assert answer.status == 202, answer.body
    (context,) = seen
    assert (context.task_id, context.body, context.signature, context.timestamp,
            context.client_ip) == (task["id"], body, "partner-sig", None, "127.0.0.1")
    (run,) = await gw.runs()
    assert (run.triggered_by, dict(run.variables)) == ("alice", {"A": "1"})


async def test_a_verify_hook_refusal_is_401_with_its_error(gw: Gateway,
                                                           hooks: list[VerifyHook]) -> None:
    install(hooks, lambda context: VerifyResult(valid=False, error="unknown partner"))
    task = await gw.create()
    answer = await gw.trigger(task["id"])  # a valid HMAC does not override the hook
    assert (answer.status, answer.message) == (
        401, "verify hook refused the call: unknown partner")
    assert await gw.runs() == []


async def test_an_async_verify_hook_can_name_the_acting_user(gw: Gateway,
                                                             hooks: list[VerifyHook]) -> None:
    async def hook(context: VerifyContext) -> VerifyResult:
        return VerifyResult(valid=True, user_id="alice")

    install(hooks, hook)
    task = await gw.create(user="alice")
    assert (await gw.post(task["id"], b"", {})).status == 202
    (run,) = await gw.runs()
    assert run.triggered_by == "alice"


async def test_a_verify_hook_user_who_does_not_own_the_task_is_403(
        gw: Gateway, hooks: list[VerifyHook]) -> None:
    install(hooks, lambda context: VerifyResult(valid=True, user_id="mallory"))
    task = await gw.create(user="alice")
    assert (await gw.post(task["id"], b"", {})).status == 403
    assert await gw.runs() == []


async def test_a_hook_returning_none_leaves_the_call_to_hmac(gw: Gateway,
                                                             hooks: list[VerifyHook]) -> None:
    install(hooks, lambda context: None)
    task = await gw.create()
    assert (await gw.trigger(task["id"])).status == 202
    assert (await gw.post(task["id"], b"", {})).status == 401


async def test_a_failing_hook_refuses_the_call(gw: Gateway, hooks: list[VerifyHook]) -> None:
    def hook(context: VerifyContext) -> VerifyResult:
        raise RuntimeError("partner directory down")

    install(hooks, hook)
    task = await gw.create()
    answer = await gw.trigger(task["id"])
    assert (answer.status, answer.message) == (
        401, "verify hook refused the call: the verify hook failed")
    assert "partner directory" not in answer.message


async def test_a_jwt_is_checked_before_the_hooks(gw: Gateway, hooks: list[VerifyHook]) -> None:
    install(hooks, lambda context: VerifyResult(valid=False, error="no"))
    task = await gw.create(user="alice")
    assert (await gw.post(task["id"], b"", gw.bearer("alice"))).status == 202
