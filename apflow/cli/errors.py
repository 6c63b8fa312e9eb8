"""How the command line fails: one line on stderr, an exit code that says what kind."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from apflow.domain.errors import (
    ApflowError,
    ConfigError,
    Forbidden,
    InvalidParams,
    NotFound,
    Unauthenticated,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_DENIED = 3
EXIT_NOT_FOUND = 4
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """A failure the user reads as one line: `error: <message>`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # per instance, not per class

    def show(self, file: Any = None) -> None:
        """Print the one line."""
        say_error(self.format_message())


def say_error(message: str) -> None:
    """Write `error: <message>` (first line only) on stderr."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    click.echo(f"error: {first}", err=True)


def exit_code_for(error: ApflowError) -> int:
    """Bad input 2, denied 3, not found 4, anything else 1."""
    if isinstance(error, InvalidParams | ConfigError):
        return EXIT_BAD_INPUT
    if isinstance(error, Unauthenticated | Forbidden):
        return EXIT_DENIED
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    return EXIT_FAILURE


def as_cli_error(error: BaseException, *, verbose: bool) -> CliError:
    """The one-line form of an error that escaped a command."""
    if isinstance(error, ApflowError):
        return CliError(error.message, exit_code_for(error))
    if verbose:
        traceback.print_exception(error, file=sys.stderr)
    return CliError(f"unexpected {type(error).__name__}: {error}", EXIT_FAILURE)


def silence_stdout() -> None:
    """Point stdout at /dev/null so flushing at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class ApflowGroup(click.Group):
    """The root group: every error, usage mistakes included, ends as one line and a code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, translating any non-click error."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise CliError("interrupted", EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            silence_stdout()  # the reader left (`apflow tasks list | head`): not an error
            raise click.exceptions.Exit(EXIT_OK) from None
        except Exception as exc:
            verbose = bool(getattr(ctx.obj, "verbose", False))
            raise as_cli_error(exc, verbose=verbose) from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Parse and run; print errors as one line; exit unless standalone_mode is False."""
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            say_error(exc.format_message())
            code = exc.exit_code
        except click.Abort:
            say_error("aborted")
            code = EXIT_FAILURE
        code = code if isinstance(code, int) else EXIT_OK
        if not standalone_mode:
            return code
        sys.exit(code)
