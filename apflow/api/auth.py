"""Bearer-token auth for the API: HS256 JWTs signed with `jwt_secret`, or `admin_auth_token`.

Only HS256 is accepted: the algorithm list is fixed here, never read from the token, so a
token claiming `alg: none`, HS384 or RS256 is refused. Expiry is checked against the app's
injected clock (PyJWT would read the wall clock), with a small fixed leeway for clock skew.
Every refusal is `Unauthenticated` with a short reason that never repeats the token.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web

from apflow.domain.errors import InvalidParams, Unauthenticated
from apflow.service.principal import ROLES, Principal

ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
MAX_SUBJECT_LENGTH = 256
TOKEN_CACHE_SIZE = 4096
BEARER = "bearer"
# PyJWT checks signature, algorithm and presence; the claims' values are ours (VerifiedToken,
# principal_of), so their reasons are ours too.
_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": ["exp", "sub", "role"],
}


def issue_token(secret: str, subject: str, role: str = "user", ttl_seconds: int = 3600,
                *, now: float | None = None) -> str:
    """A signed HS256 JWT with claims sub, role, iat and exp."""
    if not subject:
        raise InvalidParams("must be a non-empty user id", field="sub")
    if role not in ROLES:
        raise InvalidParams(f"must be one of {', '.join(ROLES)}", field="role")
    if ttl_seconds < 1:
        raise InvalidParams("must be at least 1 second", field="ttl")
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "role": role, "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, *, now: datetime) -> Principal:
    """The principal a valid token names; `Unauthenticated` for anything else."""
    verified = decode_token(secret, token)
    verified.check_times(now.timestamp())
    return verified.principal


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature, algorithm and claims passed; its time claims still to check."""

    principal: Principal
    exp: float
    nbf: float | None
    iat: float | None

    def check_times(self, now: float) -> None:
        """exp, nbf and iat against `now`, with the leeway."""
        if now >= self.exp + LEEWAY_SECONDS:
            raise Unauthenticated("token expired")
        if self.nbf is not None and now < self.nbf - LEEWAY_SECONDS:
            raise Unauthenticated("token not valid yet")
        if self.iat is not None and now < self.iat - LEEWAY_SECONDS:
            raise Unauthenticated("token issued in the future")


@functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)
def decode_token(secret: str, token: str) -> VerifiedToken:
    """Check a token's signature, algorithm and claims.

    Cached (refusals are not): a client sends the same token with every request, and what
    its signature vouches for cannot change. Time is checked on every use, never cached.
    """
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidAlgorithmError:
        raise Unauthenticated("token algorithm not allowed (HS256 only)") from None
    except jwt.InvalidSignatureError:
        raise Unauthenticated("token signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"token lacks the '{exc.claim}' claim") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("malformed token") from None
    exp = _numeric_claim(claims, "exp")
    if exp is None:
        raise Unauthenticated("token lacks the 'exp' claim")
    return VerifiedToken(principal_of(claims), exp, _numeric_claim(claims, "nbf"),
                         _numeric_claim(claims, "iat"))


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"token '{name}' claim is not a number")
    return float(value)


def principal_of(claims: Mapping[str, Any]) -> Principal:
    """sub (a non-empty string) and role (admin or user) as a Principal."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise Unauthenticated("token 'sub' claim is not a valid user id")
    role = claims.get("role")
    if role not in ROLES:
        raise Unauthenticated("token 'role' claim must be admin or user")
    return Principal(user_id=subject, role=str(role))


def bearer_token(request: web.BaseRequest) -> str:
    """The token of `Authorization: Bearer <token>`."""
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthenticated("missing Authorization: Bearer token")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != BEARER or not token or " " in token or not token.isascii():
        raise Unauthenticated("malformed Authorization header (expected: Bearer <token>)")
    return token


def principal_from_request(request: web.BaseRequest, secret: str,
                           admin_auth_token: str | None, now: datetime,
                           *, admin_user_id: str | None = None) -> Principal:
    """Who sent `request`: the configured admin token's admin, or a verified JWT's subject."""
    token = bearer_token(request)
    if admin_auth_token and hmac.compare_digest(
            token.encode(), admin_auth_token.encode("utf-8", "surrogatepass")):
        return Principal(user_id=admin_user_id or "admin", role="admin")
    return verify_token(secret, token, now=now)
