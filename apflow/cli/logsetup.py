"""Logging of CLI processes: one line per record on stderr, structured extras appended."""

from __future__ import annotations

import logging
import sys

STANDARD_RECORD_KEYS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class ExtrasFormatter(logging.Formatter):
    """The message followed by the record's structured extras as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        """One line per record."""
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items()
                  if k not in STANDARD_RECORD_KEYS}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


_handler: logging.Handler | None = None


def configure_logging(level: int) -> None:
    """Log to the current stderr at `level`, replacing what an earlier call set up."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(ExtrasFormatter(FORMAT))
    root.addHandler(_handler)
    root.setLevel(level)
