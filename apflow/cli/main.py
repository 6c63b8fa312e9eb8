"""The `apflow` command line: global options, `serve`, `token`, and the command groups."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from apflow.cli.apply import apply
from apflow.cli.context import (
    format_option,
    log_level,
    state,
    verbose_option,
)
from apflow.cli.errors import ApflowGroup
from apflow.cli.logsetup import configure_logging
from apflow.cli.runs import runs
from apflow.cli.scheduler import scheduler
from apflow.cli.tasks import tasks
from apflow.runtime import run as run_node_loop

TOKEN_MAX_TTL = 10 * 365 * 86400


@click.group(cls=ApflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Config file (default: $APFLOW_CONFIG, else $APFLOW_HOME/config.cli.yaml).")
@click.option("--api-url", default=None, metavar="URL",
              help="Talk to a running `apflow serve` instead of the database.")
@format_option
@verbose_option
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, api_url: str | None) -> None:
    """apflow: a scheduler where every slot fires exactly once and on time."""
    st = state(ctx)
    st.config_path = config_path
    st.api_url = api_url
    configure_logging(log_level(ctx))


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Config file (same as the global --config).")
@click.option("--host", default=None, help="Bind address (default: api.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: api.port, 8000; 0 picks a free one).")
@verbose_option
@click.pass_context
def serve(ctx: click.Context, config_path: Path | None, host: str | None,
          port: int | None) -> None:
    """Run the HTTP API and the engine until SIGINT or SIGTERM (then drain, exit 0)."""
    from apflow.app import serve as run_server

    st = state(ctx)
    if config_path is not None:
        st.config_path = config_path
    config = st.config()
    configure_logging(log_level(ctx, logging.INFO))

    def ready(bound_host: str, bound_port: int) -> None:
        click.echo(f"apflow serving on http://{bound_host}:{bound_port}", err=True)

    run_node_loop(run_server(config, host, port, on_ready=ready))


@cli.command()
@click.option("--user", "user_id", required=True, help="The token's subject (user id).")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--ttl", type=click.IntRange(1, TOKEN_MAX_TTL), default=86400,
              show_default=True, help="Lifetime in seconds.")
@click.pass_context
def token(ctx: click.Context, user_id: str, role: str, ttl: int) -> None:
    """Print a JWT (HS256, signed with jwt_secret) for the API."""
    from apflow.api.auth import issue_token

    click.echo(issue_token(state(ctx).config().jwt_secret, user_id, role, ttl))


cli.add_command(tasks)
cli.add_command(apply)
cli.add_command(runs)
cli.add_command(scheduler)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; every error is one line on stderr and a non-zero exit."""
    cli.main(args=argv, prog_name="apflow")


if __name__ == "__main__":
    main()
