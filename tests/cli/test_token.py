"""`apflow token`: an HS256 JWT signed with the config's jwt_secret."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from tests.cli.helpers import Cli, jwt_secret_of


def test_token_verifies_with_the_configured_secret(apflow: Cli, home: Path) -> None:
    token = apflow.ok("token", "--user", "alice", "--role", "admin", "--ttl", "120").strip()
    claims = jwt.decode(token, jwt_secret_of(home), algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("alice", "admin")
    assert 0 < claims["exp"] - time.time() <= 121


def test_token_role_defaults_to_user(apflow: Cli, home: Path) -> None:
    token = apflow.ok("token", "--user", "bob").strip()
    assert jwt.decode(token, jwt_secret_of(home), algorithms=["HS256"])["role"] == "user"


@pytest.mark.parametrize("args", [["--role", "root"], ["--ttl", "0"], []])
def test_token_refuses_bad_or_missing_options(apflow: Cli, args: list[str]) -> None:
    user = ["--user", "bob"] if args else []
    result = apflow("token", *user, *args)
    assert result.exit_code == 2
