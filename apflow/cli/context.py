"""What one invocation knows: global options, the config (read once), and how to call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from apflow.cli.backend import Backend, connect
from apflow.cli.logsetup import configure_logging
from apflow.config import Config, load_config

T = TypeVar("T")
FORMATS = ("table", "json")


@dataclass
class CliState:
    """Global options of this invocation and the config they lead to."""

    config_path: Path | None = None
    api_url: str | None = None
    format: str = "table"
    verbose: bool = False
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The config file (written with defaults on first use) plus APFLOW_* overrides."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def remote_url(self) -> str | None:
        """The API to talk to, or None to work on the database directly."""
        return self.api_url or self.config().api_url


def state(ctx: click.Context) -> CliState:
    """This invocation's state, created on first use."""
    return ctx.ensure_object(CliState)


def call(ctx: click.Context, method: str, params: Mapping[str, Any] | None = None) -> Any:
    """Send one JSON-RPC method through the backend and return its result."""
    async def one(backend: Backend) -> Any:
        return await backend.call(method, dict(params or {}))
    return session(ctx, one)


def session(ctx: click.Context, work: Callable[[Backend], Awaitable[T]], *,
            engine: bool = False) -> T:
    """Run `work` with one backend open for its duration (`engine`: run runs here too)."""
    st = state(ctx)
    config = st.config()
    remote = st.remote_url()

    async def run() -> T:
        async with connect(config, remote, engine=engine) as backend:
            return await work(backend)
    return asyncio.run(run())


def set_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Callback of -f/--format, accepted before or after the command name."""
    if value is not None:
        state(ctx).format = value


def set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """Callback of -v/--verbose, accepted before or after the command name."""
    if value:
        state(ctx).verbose = True
        configure_logging(logging.DEBUG)


format_option = click.option(
    "-f", "--format", type=click.Choice(FORMATS), default=None, expose_value=False,
    is_eager=True, callback=set_format, help="Output: table (default) or json.")
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, default=False, expose_value=False, is_eager=True,
    callback=set_verbose, help="Debug logging; tracebacks for unexpected errors.")


def log_level(ctx: click.Context, quiet: int = logging.WARNING) -> int:
    """DEBUG under -v, else `quiet`."""
    return logging.DEBUG if state(ctx).verbose else quiet
