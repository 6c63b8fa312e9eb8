"""The remote backend's credentials: admin_auth_token if configured, else an admin JWT from
jwt_secret made once and reused for the session (renewed only near its expiry)."""

from __future__ import annotations

from dataclasses import replace

import jwt
import pytest

from apflow.api import auth
from apflow.cli.remote import TOKEN_TTL_SECONDS, AdminToken, error_from_response
from apflow.config import Config, SchedulerConfig
from apflow.domain.errors import ApflowError, Forbidden, InvalidParams, NotFound

SECRET = "s3cret-s3cret-s3cret-s3cret"


class Ticks:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_generated_token_is_an_admin_jwt_for_the_scheduler_user() -> None:
    config = Config(jwt_secret=SECRET, scheduler=SchedulerConfig(user_id="ops"))
    token = AdminToken(config)
    claims = jwt.decode(token.value(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("ops", "admin")
    assert token.source == "jwt_secret"


def test_the_generated_token_is_cached_and_renewed_near_expiry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    issued: list[str] = []

    def counting_issue(secret: str, user: str, role: str, ttl: int) -> str:
        issued.append(f"token-{len(issued)}")
        return issued[-1]

    monkeypatch.setattr(auth, "issue_token", counting_issue)
    ticks = Ticks()
    token = AdminToken(Config(jwt_secret=SECRET), now=ticks)
    assert [token.value(), token.value()] == ["token-0", "token-0"]
    ticks.now += TOKEN_TTL_SECONDS - 30  # inside the renewal margin
    assert token.value() == "token-1"


def test_a_configured_admin_auth_token_wins() -> None:
    token = AdminToken(replace(Config(jwt_secret=SECRET), admin_auth_token="given"))
    assert (token.value(), token.source) == ("given", "admin_auth_token")


def test_json_rpc_error_codes_become_domain_errors() -> None:
    assert isinstance(error_from_response({"code": -32004, "message": "m"}), NotFound)
    assert isinstance(error_from_response({"code": -32602, "message": "m"}), InvalidParams)
    assert isinstance(error_from_response({"code": -32003, "message": "m"}), Forbidden)
    unknown = error_from_response({"code": -32601, "message": "Method not found"})
    assert type(unknown) is ApflowError and "Method not found" in unknown.message
