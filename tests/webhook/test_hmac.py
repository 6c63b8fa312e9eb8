"""HMAC-signed webhook calls: what is accepted, and every way a signature is refused.

Each refusal also proves that nothing was queued.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.webhook.conftest import GLOBAL_SECRET, Gateway, GatewayFactory, sign


async def test_a_valid_signature_queues_a_webhook_run(gw: Gateway) -> None:
    task = await gw.create("hook", user="alice")
    answer = await gw.trigger(task["id"])
    assert answer.status == 202, answer.body
    assert answer.body["state"] == "queued"
    assert answer.body["task_id"] == task["id"]
    runs = await gw.runs(task["id"])
    assert [(run.id, run.trigger.value, run.triggered_by) for run in runs] == [
        (answer.body["run_id"], "webhook", "alice")]


async def test_an_empty_body_is_accepted(gw: Gateway) -> None:
    task = await gw.create()
    assert (await gw.trigger(task["id"], b"")).status == 202


async def test_variables_in_the_body_reach_the_run(gw: Gateway) -> None:
    task = await gw.create()
    body = json.dumps({"variables": {"REGION": "eu", "N": "3"}}).encode()
    answer = await gw.trigger(task["id"], body)
    assert answer.status == 202, answer.body
    (run,) = await gw.runs(task["id"])
    assert dict(run.variables) == {"REGION": "eu", "N": "3"}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"not json", b"\xff\xfe",
                                  b'{"variables": {"A": 1}}', b'{"variables": [1]}',
                                  b'{"variables": "A=1"}', b"NaN"])
async def test_a_body_that_is_not_an_object_of_string_variables_is_400(
        gw: Gateway, body: bytes) -> None:
    task = await gw.create()
    answer = await gw.trigger(task["id"], body)
    assert answer.status == 400, answer.body
    assert answer.body["error"]["code"] == 400
    assert await gw.runs() == []


async def test_a_forged_signature_is_refused(gw: Gateway) -> None:
    task = await gw.create()
    headers = gw.signed(b"{}", secret="not-the-secret")
    answer = await gw.post(task["id"], b"{}", headers)
    assert (answer.status, answer.message) == (401, "signature does not match")
    assert answer.body == {"error": {"code": 401, "message": "signature does not match"}}
    assert await gw.runs() == []


async def test_a_truncated_signature_is_refused(gw: Gateway) -> None:
    task = await gw.create()
    headers = gw.signed(b"{}")
    headers["X-Webhook-Signature"] = headers["X-Webhook-Signature"][:63]
    answer = await gw.post(task["id"], b"{}", headers)
    assert answer.status == 401
    assert "64 lowercase hex digits" in answer.message
    assert await gw.runs() == []


async def test_a_signature_is_accepted_once(gw: Gateway) -> None:
    task = await gw.create()
    headers = gw.signed(b"{}")
    assert (await gw.post(task["id"], b"{}", headers)).status == 202
    replay = await gw.post(task["id"], b"{}", headers)
    assert (replay.status, replay.message) == (401, "signature already used")
    assert len(await gw.runs()) == 1


async def test_a_body_re_encoded_after_signing_is_refused(gw: Gateway) -> None:
    task = await gw.create()
    signed_body = b'{"variables": {"A": "1"}}'
    headers = gw.signed(signed_body)
    for sent in (b'{"variables":{"A":"1"}}', b'{"variables": {"A": "1"}}\n',
                 b' {"variables": {"A": "1"}}'):
        answer = await gw.post(task["id"], sent, headers)
        assert (answer.status, answer.message) == (401, "signature does not match"), sent
    assert await gw.runs() == []
    assert (await gw.post(task["id"], signed_body, headers)).status == 202


@pytest.mark.parametrize("shape", ["upper", "prefixed", "hex-prefixed", "long"])
async def test_a_signature_in_another_shape_is_refused(gw: Gateway, shape: str) -> None:
    task = await gw.create()
    headers = gw.signed(b"{}")
    good = headers["X-Webhook-Signature"]
    headers["X-Webhook-Signature"] = {"upper": good.upper(), "prefixed": f"sha256={good}",
                                      "hex-prefixed": f"0x{good}", "long": good + "00"}[shape]
    answer = await gw.post(task["id"], b"{}", headers)
    assert answer.status == 401
    assert answer.message.startswith("X-Webhook-Signature must be 64 lowercase hex digits")
    assert await gw.runs() == []


@pytest.mark.parametrize(("offset", "reason"), [
    (-301, "X-Webhook-Timestamp is too old (more than 300 s ago)"),
    (301, "X-Webhook-Timestamp is in the future (more than 300 s ahead)"),
])
async def test_a_timestamp_outside_the_tolerance_is_refused(gw: Gateway, offset: int,
                                                            reason: str) -> None:
    task = await gw.create()
    answer = await gw.post(task["id"], b"{}", gw.signed(b"{}", stamp=gw.stamp(offset)))
    assert (answer.status, answer.message) == (401, reason)
    assert await gw.runs() == []


@pytest.mark.parametrize("offset", [-300, 300])
async def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted(gw: Gateway,
                                                                    offset: int) -> None:
    task = await gw.create()
    answer = await gw.post(task["id"], b"{}", gw.signed(b"{}", stamp=gw.stamp(offset)))
    assert answer.status == 202, answer.body


@pytest.mark.parametrize("stamp", ["1717416000.5", "-1717416000", "+1717416000", "abc", "",
                                   "1717416000000000", "\uff12\uff10\uff12\uff14"])
async def test_a_timestamp_that_is_not_whole_unix_seconds_is_refused(gw: Gateway,
                                                                     stamp: str) -> None:
    task = await gw.create()
    headers = {"X-Webhook-Timestamp": stamp,
               "X-Webhook-Signature": sign(GLOBAL_SECRET, stamp, b"{}")}
    answer = await gw.post(task["id"], b"{}", headers)
    assert (answer.status, answer.message) == (
        401, "X-Webhook-Timestamp must be the unix time in whole seconds")
    assert await gw.runs() == []


async def test_a_call_without_credentials_is_refused(gw: Gateway) -> None:
    task = await gw.create()
    answer = await gw.post(task["id"], b"{}", {})
    assert answer.status == 401
    assert answer.message == "missing X-Webhook-Signature header (or a Bearer token)"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert await gw.runs() == []


async def test_a_signature_without_its_timestamp_is_refused(gw: Gateway) -> None:
    task = await gw.create()
    headers = gw.signed(b"{}")
    del headers["X-Webhook-Timestamp"]
    answer = await gw.post(task["id"], b"{}", headers)
    assert (answer.status, answer.message) == (401, "missing X-Webhook-Timestamp header")
    assert await gw.runs() == []


async def test_without_any_secret_signing_is_not_configured(
        make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(secret=None)
    task = await gw.create()
    answer = await gw.trigger(task["id"])
    assert (answer.status, answer.message) == (401, "webhook signing is not configured")
    assert await gw.runs() == []


async def test_a_task_secret_overrides_the_global_one(gw: Gateway) -> None:
    task = await gw.create(webhook_secret="the-task-secret-5678")
    refused = await gw.trigger(task["id"], secret=GLOBAL_SECRET)
    assert (refused.status, refused.message) == (401, "signature does not match")
    accepted = await gw.trigger(task["id"], secret="the-task-secret-5678")
    assert accepted.status == 202, accepted.body


async def test_a_task_secret_works_without_a_global_one(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(secret=None)
    task = await gw.create(webhook_secret="the-task-secret-5678")
    assert (await gw.trigger(task["id"], secret="the-task-secret-5678")).status == 202


async def test_a_signed_call_for_an_unknown_task_is_404(gw: Gateway) -> None:
    answer = await gw.trigger("no-such-task")
    assert answer.status == 404
    assert answer.body == {"error": {"code": 404, "message": "task no-such-task not found"}}


async def test_an_unsigned_call_cannot_tell_an_unknown_task_from_a_known_one(
        gw: Gateway) -> None:
    task = await gw.create()
    unknown = await gw.post("no-such-task", b"{}", gw.signed(b"{}", secret="guess"))
    known = await gw.post(task["id"], b"{}", gw.signed(b"{}", secret="guess"))
    assert (unknown.status, unknown.body) == (known.status, known.body)
    assert unknown.status == 401


async def test_a_task_with_api_trigger_false_is_403(gw: Gateway) -> None:
    task = await gw.create(api_trigger=False)
    answer = await gw.trigger(task["id"])
    assert answer.status == 403
    assert "api_trigger false" in answer.message
    assert await gw.runs() == []


async def test_the_overlap_policy_applies_to_webhook_runs(gw: Gateway) -> None:
    task = await gw.create(on_overlap="skip")
    first = await gw.trigger(task["id"])
    second = await gw.trigger(task["id"], b'{"nonce": "2"}')
    assert first.body["state"] == "queued"
    assert (second.status, second.body["state"], second.body["end_reason"]) == (
        202, "skipped", "overlap")


async def test_two_calls_in_one_second_differ_by_a_nonce_in_the_body(gw: Gateway) -> None:
    task = await gw.create()
    for nonce in ("a", "b"):
        answer = await gw.trigger(task["id"], json.dumps({"nonce": nonce}).encode())
        assert answer.status == 202, answer.body
    assert len(await gw.runs()) == 2


async def test_forbid_overlap_answers_409(gw: Gateway) -> None:
    task = await gw.create(on_overlap="forbid")
    assert (await gw.trigger(task["id"])).status == 202
    assert (await gw.trigger(task["id"], b'{"nonce": "2"}')).status == 409


async def test_refusals_are_logged_without_secret_or_signature(
        gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    task = await gw.create(webhook_secret="the-task-secret-5678")
    headers = gw.signed(b"{}", secret=GLOBAL_SECRET)
    with caplog.at_level(logging.INFO, logger="apflow"):
        assert (await gw.post(task["id"], b"{}", headers)).status == 401
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "webhook_refused"]
    assert record.reason == "signature does not match"  # type: ignore[attr-defined]
    assert record.task_id == task["id"]  # type: ignore[attr-defined]
    assert record.client_ip == "127.0.0.1"  # type: ignore[attr-defined]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in ("the-task-secret-5678", GLOBAL_SECRET, headers["X-Webhook-Signature"]):
        assert secret not in logged
