"""Configuration: `config.cli.yaml` plus `APFLOW_*` environment overrides.

Every key has a default; the file only needs what differs. An unknown key, a wrong type or
a value out of range is a ConfigError naming the key, so a typo never passes silently.
Environment variables win over the file: `APFLOW_<SECTION>_<KEY>` (e.g.
`APFLOW_WEBHOOK_SECRET`) or `APFLOW_<KEY>` for top-level keys (`APFLOW_DATABASE_URL`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from apflow.domain.errors import ConfigError

CONFIG_FILE_NAME = "config.cli.yaml"
LOG_FULL_POLICIES = ("drop_old", "drop_new", "kill_task")


def default_home() -> Path:
    """Directory holding the generated config and the SQLite database."""
    return Path(os.environ.get("APFLOW_HOME") or Path.home() / ".apflow")


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class SchedulerConfig:
    poll_interval: float = 60.0
    max_concurrent: int = 10
    timeout: float = 3600.0
    user_id: str | None = None
    node_id: str | None = None
    lease_seconds: float = 30.0


@dataclass(frozen=True)
class WebhookConfig:
    secret: str | None = None
    allowed_ips: tuple[str, ...] = ()
    rate_limit: int = 0  # requests per minute per client; 0 = unlimited
    timestamp_tolerance: int = 300
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogsConfig:
    dir: str | None = None
    max_size: int = 10 * 1024 * 1024
    on_full: str = "drop_old"


@dataclass(frozen=True)
class RetentionConfig:
    keep_runs: int | None = None
    keep_for: int | None = None  # seconds


@dataclass(frozen=True)
class CalendarsConfig:
    """Where exclusion calendars may be read from; empty lists allow none."""

    allowed_urls: tuple[str, ...] = ()  # http(s) URL prefixes
    allowed_dirs: tuple[str, ...] = ()  # directories (absolute paths)
    refresh_seconds: int = 3600

    @property
    def enabled(self) -> bool:
        """True if any source is allowed."""
        return bool(self.allowed_urls or self.allowed_dirs)


@dataclass(frozen=True)
class NotifiersConfig:
    """Where run notifications go (tasks opt in with notify_on_failure / notify_on_success).
    The URLs are secrets of their own (a Slack incoming webhook is a credential)."""

    webhook_urls: tuple[str, ...] = ()  # POSTed the JSON payload
    slack_urls: tuple[str, ...] = ()  # Slack-compatible incoming webhooks ({"text": ...})
    retries: int = 3  # further attempts after a failed delivery
    timeout: float = 5.0  # seconds per attempt

    @property
    def enabled(self) -> bool:
        """True if any destination is configured."""
        return bool(self.webhook_urls or self.slack_urls)


@dataclass(frozen=True)
class Config:
    database_url: str = ""
    api_url: str | None = None
    jwt_secret: str = ""
    admin_auth_token: str | None = None
    api: ApiConfig = field(default_factory=ApiConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    calendars: CalendarsConfig = field(default_factory=CalendarsConfig)
    notifiers: NotifiersConfig = field(default_factory=NotifiersConfig)
    path: Path | None = None  # where it was read from; not a key


SECTIONS: dict[str, type[Any]] = {
    "api": ApiConfig,
    "scheduler": SchedulerConfig,
    "webhook": WebhookConfig,
    "logs": LogsConfig,
    "retention": RetentionConfig,
    "calendars": CalendarsConfig,
    "notifiers": NotifiersConfig,
}
TOP_LEVEL_KEYS = ("database_url", "api_url", "jwt_secret", "admin_auth_token")


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None,
                *, create: bool = True) -> Config:
    """Read the config file (writing a fresh one when absent), then apply the environment."""
    env = os.environ if environ is None else environ
    path = path or Path(env.get("APFLOW_CONFIG") or default_home() / CONFIG_FILE_NAME)
    if not path.exists() and create:
        write_default_config(path)
    raw = read_yaml(path) if path.exists() else {}
    config = merge(Config(path=path), raw, source=str(path))
    config = merge(config, environment_overrides(env), source="environment")
    return finalise(config, path)


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse the file; a syntax error names the line."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({exc.problem})") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    return data


def write_default_config(path: Path) -> None:
    """Write a config with safe defaults and a fresh random jwt_secret, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    database = path.parent / "apflow.db"
    text = (
        "# apflow configuration, written on first start. Every key and its default is\n"
        "# documented in the config.cli.yaml of the apflow repository.\n"
        f"database_url: sqlite:///{database}\n"
        f"jwt_secret: {secrets.token_urlsafe(48)}\n"
        "api:\n  host: 127.0.0.1\n  port: 8000\n"
    )
    # Written whole under a temporary name, then linked into place: a process starting at
    # the same moment (two nodes, one home) either wins or reads the winner's complete file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process wrote it first; theirs is the config
    finally:
        temporary.unlink(missing_ok=True)


def environment_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Collect APFLOW_* variables into the same nested shape as the file."""
    out: dict[str, Any] = {}
    for key in TOP_LEVEL_KEYS:
        value = env.get(f"APFLOW_{key.upper()}")
        if value is not None:
            out[key] = value
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            value = env.get(f"APFLOW_{section.upper()}_{f.name.upper()}")
            if value is not None:
                out.setdefault(section, {})[f.name] = value
    return out


def merge(config: Config, raw: Mapping[str, Any], *, source: str) -> Config:
    """Apply `raw` (file or environment) on top of `config`, checking every key."""
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TOP_LEVEL_KEYS:
            changes[key] = coerce(key, value, str | None, source)
        elif key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {key}: must be a mapping")
            changes[key] = merge_section(getattr(config, key), key, value, source)
        else:
            raise ConfigError(f"{source}: unknown key '{key}'")
    return replace(config, **changes)


def merge_section(current: Any, section: str, raw: Mapping[str, Any], source: str) -> Any:
    """Apply one section's keys, coercing each to its declared type."""
    known = {f.name: f for f in fields(current)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{section}.{key}'")
        changes[key] = coerce(f"{section}.{key}", value, known[key].type, source)
    return replace(current, **changes)


def coerce(key: str, value: Any, declared: Any, source: str) -> Any:
    """Turn a YAML or environment value into the declared type, or raise ConfigError."""
    kind = str(declared)
    try:
        return COERCERS[kind](value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from exc


def _optional(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("", "null", "none")):
            return None
        return inner(value)
    return convert


def _as_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def _as_str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple):
        return tuple(_as_str(item) for item in value)
    raise TypeError(f"expected a list or a comma-separated string, got {type(value).__name__}")


COERCERS: dict[str, Callable[[Any], Any]] = {
    "str": _as_str,
    "str | None": _optional(_as_str),
    "int": _as_int,
    "int | None": _optional(_as_int),
    "float": _as_float,
    "tuple[str, ...]": _as_str_tuple,
}


def finalise(config: Config, path: Path) -> Config:
    """Fill derived defaults and check values that must hold together."""
    if not config.database_url:
        config = replace(config, database_url=f"sqlite:///{path.parent / 'apflow.db'}")
    if not config.jwt_secret or len(config.jwt_secret) < 16:
        raise ConfigError(f"{path}: jwt_secret: must be set and at least 16 characters")
    check_ranges(config)
    return config


def check_ranges(config: Config) -> None:
    """Reject values no deployment could mean."""
    checks: list[tuple[bool, str]] = [
        (1 <= config.api.port <= 65535, "api.port: must be 1-65535"),
        (config.api.max_body_bytes >= 1024, "api.max_body_bytes: must be at least 1024"),
        (config.scheduler.poll_interval > 0, "scheduler.poll_interval: must be positive"),
        (config.scheduler.max_concurrent >= 1, "scheduler.max_concurrent: must be at least 1"),
        (config.scheduler.timeout > 0, "scheduler.timeout: must be positive"),
        (config.scheduler.lease_seconds >= 1, "scheduler.lease_seconds: must be at least 1"),
        (config.webhook.rate_limit >= 0, "webhook.rate_limit: must be 0 or more"),
        (config.webhook.timestamp_tolerance >= 1,
         "webhook.timestamp_tolerance: must be at least 1"),
        (config.logs.max_size >= 1024, "logs.max_size: must be at least 1024"),
        (config.logs.on_full in LOG_FULL_POLICIES,
         f"logs.on_full: must be one of {', '.join(LOG_FULL_POLICIES)}"),
        (config.retention.keep_runs is None or config.retention.keep_runs >= 1,
         "retention.keep_runs: must be at least 1"),
        (config.retention.keep_for is None or config.retention.keep_for >= 1,
         "retention.keep_for: must be at least 1 second"),
        (config.calendars.refresh_seconds >= 1,
         "calendars.refresh_seconds: must be at least 1"),
        (all(url.lower().startswith(("http://", "https://"))
             for url in config.calendars.allowed_urls),
         "calendars.allowed_urls: each must start with http:// or https://"),
        (all(os.path.isabs(d) for d in config.calendars.allowed_dirs),
         "calendars.allowed_dirs: each must be an absolute path"),
        (all(url.lower().startswith(("http://", "https://"))
             for url in (*config.notifiers.webhook_urls, *config.notifiers.slack_urls)),
         "notifiers: each URL must start with http:// or https://"),
        (0 <= config.notifiers.retries <= 10, "notifiers.retries: must be 0 to 10"),
        (0 < config.notifiers.timeout <= 60, "notifiers.timeout: must be in (0, 60] seconds"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{config.path}: {message}")
