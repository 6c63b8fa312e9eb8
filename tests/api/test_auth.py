"""Authentication: only an unexpired HS256 JWT with a user id and a known role, or the
configured admin_auth_token, gets past POST /tasks; everything else is HTTP 401 with a
JSON-RPC -32001 error that does not repeat the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest

from apflow.api.auth import LEEWAY_SECONDS, issue_token, verify_token
from apflow.clock import FakeClock
from apflow.config import SchedulerConfig
from apflow.domain.errors import Unauthenticated
from apflow.service import Principal
from tests.api.conftest import SECRET, T0, Api, ApiFactory

LIST = {"jsonrpc": "2.0", "method": "tasks.list", "id": 1}
NOW = T0.timestamp()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes = SECRET.encode(),
              digest: Any = hashlib.sha256) -> str:
    """A token built by hand, signed with HMAC(key) whatever the header claims."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "role": "user", "iat": int(NOW),
                            "exp": int(NOW) + 3600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


async def refused(api: Api, headers: dict[str, str], body: Any = LIST) -> str:
    """POST with these headers must be 401 with one -32001 error object; its message."""
    status, answer = await api.post(body, headers=headers)
    assert status == 401, answer
    assert isinstance(answer, dict)
    assert answer["jsonrpc"] == "2.0" and answer["id"] is None
    assert answer["error"]["code"] == -32001
    message = str(answer["error"]["message"])
    token = headers.get("Authorization", "").partition(" ")[2]
    if len(token) > 8:
        assert token not in message
    return message


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# verify_token and issue_token --------------------------------------------------------------


def test_an_issued_token_verifies_to_its_subject_and_role() -> None:
    token = issue_token(SECRET, "alice", "admin", 60, now=NOW)
    assert verify_token(SECRET, token, now=T0) == Principal("alice", "admin")
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded == {"sub": "alice", "role": "admin", "iat": int(NOW), "exp": int(NOW) + 60}


def test_expiry_is_read_from_the_given_instant_with_a_small_leeway() -> None:
    token = issue_token(SECRET, "alice", ttl_seconds=60, now=NOW)
    assert verify_token(SECRET, token, now=T0 + timedelta(seconds=60 + LEEWAY_SECONDS - 1))
    with pytest.raises(Unauthenticated, match="expired"):
        verify_token(SECRET, token, now=T0 + timedelta(seconds=60 + LEEWAY_SECONDS))


def test_a_token_from_the_future_is_refused() -> None:
    token = issue_token(SECRET, "alice", now=NOW + 600)
    with pytest.raises(Unauthenticated, match="future"):
        verify_token(SECRET, token, now=T0)


@pytest.mark.parametrize("token", [
    jwt.encode(claims(), key=None, algorithm="none"),
    jwt.encode(claims(), SECRET, algorithm="HS384"),
    jwt.encode(claims(), SECRET, algorithm="HS512"),
    hand_made({"alg": "RS256", "typ": "JWT"}, claims()),
    hand_made({"alg": "ES256", "typ": "JWT"}, claims()),
    hand_made({"typ": "JWT"}, claims()),
], ids=["none", "HS384", "HS512", "RS256", "ES256", "no-alg"])
def test_only_hs256_is_accepted(token: str) -> None:
    with pytest.raises(Unauthenticated):
        verify_token(SECRET, token, now=T0)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"exp": None}, "exp"),
    ({"sub": None}, "sub"),
    ({"role": None}, "role"),
    ({"sub": ""}, "sub"),
    ({"sub": 42}, "sub"),
    ({"sub": "x" * 300}, "sub"),
    ({"role": "root"}, "role"),
    ({"role": ["admin"]}, "role"),
    ({"exp": "tomorrow"}, "exp"),
    ({"exp": True}, "exp"),
    ({"nbf": int(NOW) + 600}, "not valid yet"),
])
def test_claims_must_be_complete_and_well_typed(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        verify_token(SECRET, jwt.encode(claims(**changes), SECRET, algorithm="HS256"), now=T0)


# over HTTP ---------------------------------------------------------------------------------


async def test_a_request_without_authorization_is_401(api: Api) -> None:
    assert "missing" in await refused(api, {})


@pytest.mark.parametrize("header", [
    "Basic YWxpY2U6cGFzcw==", "Bearer", "Bearer ", "Bearer a b", "Token abc", "bearer",
    "Bearer not.a.jwt", "Bearer ééé",
])
async def test_a_malformed_authorization_header_is_401(api: Api, header: str) -> None:
    await refused(api, {"Authorization": header})


async def test_a_token_signed_with_another_secret_is_401(api: Api) -> None:
    token = issue_token("another-secret-0123456789abcdef01234567", "alice", now=NOW)
    assert "signature" in await refused(api, bearer(token))


async def test_an_expired_token_is_401(api: Api) -> None:
    token = api.token("alice", ttl=60)
    assert isinstance(api.clock, FakeClock)
    api.clock.advance(60 + LEEWAY_SECONDS)
    assert "expired" in await refused(api, bearer(token))


async def test_a_token_is_valid_until_it_expires_by_the_app_clock(api: Api) -> None:
    token = api.token("alice", ttl=60)
    assert isinstance(api.clock, FakeClock)
    api.clock.advance(59)
    status, answer = await api.post(LIST, headers=bearer(token))
    assert status == 200 and "result" in answer


@pytest.mark.parametrize(("token", "reason"), [
    (jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), "exp"),
    (jwt.encode(claims(), key=None, algorithm="none"), ""),
    (jwt.encode(claims(), SECRET, algorithm="HS384"), "HS256"),
    (hand_made({"alg": "RS256", "typ": "JWT"}, claims()), "HS256"),
    (jwt.encode(claims(role="superuser"), SECRET, algorithm="HS256"), "role"),
    (jwt.encode(claims(sub=""), SECRET, algorithm="HS256"), "sub"),
], ids=["missing-exp", "alg-none", "HS384", "RS256", "wrong-role", "empty-sub"])
async def test_a_bad_token_is_401_with_a_short_reason(api: Api, token: str,
                                                       reason: str) -> None:
    assert reason in await refused(api, bearer(token))


async def test_an_unauthenticated_batch_is_one_401_error(api: Api) -> None:
    batch = [{**LIST, "id": 1}, {**LIST, "id": 2}]
    await refused(api, {}, body=batch)


async def test_an_unauthenticated_notification_is_still_401(api: Api) -> None:
    await refused(api, {}, body={"jsonrpc": "2.0", "method": "tasks.list"})


async def test_the_admin_auth_token_makes_an_admin_named_by_scheduler_user_id(
        make_api: ApiFactory) -> None:
    api = await make_api(admin_auth_token="the-admin-token-0123456789",
                         scheduler=SchedulerConfig(user_id="ops"))
    await api.create("alice's", user="alice")
    headers = {"Authorization": "Bearer the-admin-token-0123456789"}
    status, answer = await api.post(
        {"jsonrpc": "2.0", "method": "tasks.create", "id": 1, "params": {"name": "mine"}},
        headers=headers)
    assert status == 200 and answer["result"]["user_id"] == "ops"
    status, answer = await api.post(LIST, headers=headers)
    assert {t["name"] for t in answer["result"]["tasks"]} == {"alice's", "mine"}


async def test_a_wrong_admin_auth_token_is_401(make_api: ApiFactory) -> None:
    api = await make_api(admin_auth_token="the-admin-token-0123456789")
    await refused(api, bearer("the-admin-token-012345678"))
    await refused(api, bearer("the-admin-token-0123456789x"))


async def test_without_admin_auth_token_configured_no_fixed_token_works(api: Api) -> None:
    await refused(api, bearer("None"))
    await refused(api, bearer("admin"))
