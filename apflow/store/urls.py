"""`database_url` values: which backend, which file or server, and how to print them safely."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from apflow.domain.errors import ConfigError

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
EXPECTED = "expected sqlite:///<path>, sqlite:///:memory: or postgresql://user@host/db"
PASSWORD_PARAM = re.compile(r"(?i)(password=)[^&]*")


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database_url: `sqlite` with a file path, or `postgresql` with a DSN."""

    dialect: str
    location: str


def mask_password(url: str) -> str:
    """`url` with its password (user:pass@ or ?password=) replaced by ****."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:****@{host}"
    query = PASSWORD_PARAM.sub(r"\1****", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"{why} in {mask_password(url)!r}; {EXPECTED}", field="database_url")


def parse_database_url(url: str) -> DatabaseTarget:
    """The backend and location named by `url`; ConfigError naming database_url if invalid."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"is empty; {EXPECTED}", field="database_url")
    if url.startswith(SQLITE_PREFIX):
        return _sqlite_target(url)
    if url.startswith("sqlite:"):
        raise _bad(url, "a SQLite URL starts with sqlite:/// (three slashes)")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return _postgres_target(url)
    raise _bad(url, f"unsupported scheme {scheme or '(none)'!r}")


def _sqlite_target(url: str) -> DatabaseTarget:
    path = url[len(SQLITE_PREFIX):]
    if not path or path.endswith("/"):
        raise _bad(url, "no database file")
    if "?" in path or "#" in path:
        raise _bad(url, "options are not supported for SQLite")
    return DatabaseTarget("sqlite", path)


def _postgres_target(url: str) -> DatabaseTarget:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise _bad(url, f"malformed URL ({exc})") from None
    if not parts.hostname and "host=" not in parts.query:
        raise _bad(url, "no host")
    return DatabaseTarget("postgresql", url)
