"""Configuration: file, defaults, environment overrides and bad input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from apflow.config import load_config
from apflow.domain.errors import ConfigError

SECRET = {"APFLOW_JWT_SECRET": "s" * 32}
REPO_EXAMPLE = Path(__file__).resolve().parents[1] / "config.cli.yaml"


def test_first_start_writes_a_private_config_with_a_random_secret(tmp_path: Path) -> None:
    path = tmp_path / "home" / "config.cli.yaml"
    config = load_config(path, {})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(config.jwt_secret) >= 32
    assert config.database_url == f"sqlite:///{tmp_path / 'home' / 'apflow.db'}"
    assert (config.api.host, config.api.port) == ("127.0.0.1", 8000)


def test_two_first_starts_get_different_secrets(tmp_path: Path) -> None:
    first = load_config(tmp_path / "a" / "c.yaml", {})
    second = load_config(tmp_path / "b" / "c.yaml", {})
    assert first.jwt_secret != second.jwt_secret


def test_the_documented_example_lists_every_default(tmp_path: Path) -> None:
    example = load_config(REPO_EXAMPLE, SECRET, create=False)
    defaults = load_config(tmp_path / "c.yaml", SECRET)
    assert example.api == defaults.api
    assert example.scheduler == defaults.scheduler
    assert example.webhook == defaults.webhook
    assert example.logs == defaults.logs
    assert example.retention == defaults.retention
    assert example.calendars == defaults.calendars


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("jwt_secret: aaaaaaaaaaaaaaaaaaaa\nwebhook:\n  rate_limit: 5\n")
    env = {
        "APFLOW_WEBHOOK_RATE_LIMIT": "60",
        "APFLOW_WEBHOOK_ALLOWED_IPS": "10.0.0.0/8, 127.0.0.1",
        "APFLOW_DATABASE_URL": "postgresql://db.example/apflow",
        "APFLOW_WEBHOOK_SECRET": "hook",
    }
    config = load_config(path, env)
    assert config.webhook.rate_limit == 60
    assert config.webhook.allowed_ips == ("10.0.0.0/8", "127.0.0.1")
    assert config.webhook.secret == "hook"
    assert config.database_url == "postgresql://db.example/apflow"


def test_exclusion_calendars_are_off_by_default_and_set_by_environment(
        tmp_path: Path) -> None:
    assert load_config(tmp_path / "a.yaml", SECRET).calendars.allowed_dirs == ()
    env = {**SECRET, "APFLOW_CALENDARS_ALLOWED_DIRS": "/srv/holidays,/etc/apflow",
           "APFLOW_CALENDARS_ALLOWED_URLS": "https://cal.example.com/holidays/",
           "APFLOW_CALENDARS_REFRESH_SECONDS": "600"}
    calendars = load_config(tmp_path / "b.yaml", env).calendars
    assert calendars.allowed_dirs == ("/srv/holidays", "/etc/apflow")
    assert calendars.allowed_urls == ("https://cal.example.com/holidays/",)
    assert calendars.refresh_seconds == 600


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("api:\n  port: 8000\n  host: [oops\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path, SECRET)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("apii:\n  port: 1\n", "apii"),
        ("api:\n  prot: 1\n", "api.prot"),
        ("api:\n  port: eighty\n", "api.port"),
        ("api:\n  port: 70000\n", "api.port"),
        ("logs:\n  on_full: explode\n", "logs.on_full"),
        ("scheduler:\n  max_concurrent: 0\n", "scheduler.max_concurrent"),
        ("scheduler: 5\n", "scheduler"),
        ("calendars:\n  allowed_dirs: [relative/dir]\n", "calendars.allowed_dirs"),
        ("calendars:\n  allowed_urls: [ftp://cal.example/]\n", "calendars.allowed_urls"),
        ("calendars:\n  refresh_seconds: 0\n", "calendars.refresh_seconds"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load_config(path, SECRET)


def test_bad_environment_value_names_the_variable_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scheduler\.poll_interval"):
        load_config(tmp_path / "c.yaml", {"APFLOW_SCHEDULER_POLL_INTERVAL": "soon"})


def test_a_short_jwt_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("jwt_secret: short\n")
    with pytest.raises(ConfigError, match="jwt_secret"):
        load_config(path, {})


def test_a_bad_config_file_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("api: [\n")
    with pytest.raises(ConfigError):
        load_config(path, {})
    assert path.read_text() == "api: [\n"


def test_processes_starting_together_share_one_generated_config(tmp_path: Path) -> None:
    import concurrent.futures

    path = tmp_path / "home" / "config.cli.yaml"
    with concurrent.futures.ProcessPoolExecutor(max_workers=4) as pool:
        secrets_seen = list(pool.map(_jwt_secret_of_fresh_config, [path] * 8))
    assert len(set(secrets_seen)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["config.cli.yaml"]


def _jwt_secret_of_fresh_config(path: Path) -> str:
    return load_config(path, environ={}).jwt_secret
