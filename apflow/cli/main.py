"""The `apflow` command line: errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
import jwt

from apflow.config import Config, load_config
from apflow.domain.errors import ApflowError, ConfigError, InvalidParams, NotFound

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 4


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one line on stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def exit_code_for(error: ApflowError) -> int:
    """Bad input 2, not found 4, anything else 1."""
    if isinstance(error, InvalidParams | ConfigError):
        return EXIT_BAD_INPUT
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    return EXIT_FAILURE


def read_config(ctx: click.Context) -> Config:
    """The config named by --config (or the default one), read once per invocation."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "config" not in obj:
        path = obj.get("config_path")
        obj["config"] = load_config(Path(path) if path else None)
    config: Config = obj["config"]
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: $APFLOW_CONFIG or ~/.apflow/config.cli.yaml).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """apflow: a scheduler where every slot fires exactly once and on time."""
    ctx.ensure_object(dict)["config_path"] = config_path
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (same as the global --config).")
@click.option("--host", default=None, help="Bind address (default: api.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: api.port, 8000).")
@click.pass_context
def serve(ctx: click.Context, config_path: str | None, host: str | None,
          port: int | None) -> None:
    """Run the HTTP API on this machine until SIGINT or SIGTERM."""
    from apflow.app import serve as run_server

    if config_path:
        ctx.ensure_object(dict)["config_path"] = config_path
    config = read_config(ctx)

    def ready(bound_host: str, bound_port: int) -> None:
        click.echo(f"apflow serving on http://{bound_host}:{bound_port}", err=True)

    asyncio.run(run_server(config, host, port, on_ready=ready))


@cli.command()
@click.option("--user", "user_id", required=True, help="The token's subject (user id).")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--ttl", type=click.IntRange(1, 10 * 365 * 86400), default=86400,
              show_default=True, help="Lifetime in seconds.")
@click.pass_context
def token(ctx: click.Context, user_id: str, role: str, ttl: int) -> None:
    """Print a JWT (HS256, signed with jwt_secret) for the API."""
    config = read_config(ctx)
    now = datetime.now(UTC)
    claims = {"sub": user_id, "role": role, "iat": now, "exp": now + timedelta(seconds=ttl)}
    click.echo(jwt.encode(claims, config.jwt_secret, algorithm="HS256"))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into one line on stderr."""
    try:
        cli.main(args=argv, prog_name="apflow", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", EXIT_FAILURE)
    except click.ClickException as exc:
        fail(exc.format_message(), EXIT_BAD_INPUT)
    except ApflowError as exc:
        fail(exc.message, exit_code_for(exc))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_FAILURE)
    except OSError as exc:
        fail(str(exc), EXIT_FAILURE)


if __name__ == "__main__":
    main()
