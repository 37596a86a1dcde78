"""Where progress and diagnostics go: rich on a terminal, plain timestamped lines elsewhere.

stdout carries what a run produced (the summary, the report paths); everything here goes to
stderr. On a terminal, progress is one width-aware status line (rich) and log records are
rendered by rich; in a CI log they are greppable lines. rich honours NO_COLOR and TERM=dumb.
`--quiet` leaves warnings and errors, `--verbose` adds retries and quota waits,
`--debug` adds azure-core's HTTP log (request and response lines, with Authorization and other
secret headers redacted by azure-core's HttpLoggingPolicy; the unredacted network trace,
`logging_enable`, is never switched on).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.logging import RichHandler

LOGGER = logging.getLogger("backup_preflight")
#: azure-core's HTTP logging policy logs here (at INFO), azure-identity too.
AZURE_LOGGER = logging.getLogger("azure")

_consoles: dict[int, Console] = {}
#: The terminal progress is shown on (None: not a terminal, or --quiet).
_live: TextIO | None = None


def console(stream: TextIO) -> Console:
    """One rich console per stream, so a live status line and log records never overwrite each other."""
    found = _consoles.get(id(stream))
    if found is None or found.file is not stream:
        found = _consoles[id(stream)] = Console(file=stream, force_terminal=True)
    return found


def is_live() -> bool:
    """Is progress shown as a live line (a terminal, and not --quiet)?"""
    return _live is not None


class _Stage(logging.Formatter):
    """`12:03:04 collect: message` — the stage is the logger's name below backup_preflight."""

    def format(self, record: logging.LogRecord) -> str:
        record.stage = record.name.removeprefix("backup_preflight.")
        return super().format(record)


def setup(quiet: bool = False, verbose: bool = False, debug: bool = False, stream: TextIO | None = None) -> None:
    """Route our loggers (and azure's, with --debug) to stderr at the level the flags ask for."""
    global _live
    stream = stream or sys.stderr
    terminal = stream.isatty()
    _live = stream if terminal and not quiet else None
    handler: logging.Handler
    if terminal:
        handler = RichHandler(console=console(stream), show_path=False, markup=False, rich_tracebacks=False,
                              log_time_format="%H:%M:%S")
        handler.setFormatter(_Stage("%(stage)s: %(message)s"))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_Stage("%(asctime)s %(stage)s: %(message)s", "%H:%M:%S"))
    handler.set_name("backup-preflight")
    level = logging.WARNING if quiet else logging.DEBUG if verbose or debug else logging.INFO
    _install(LOGGER, handler, level)
    if debug:
        _install(AZURE_LOGGER, handler, logging.DEBUG)


def _install(logger: logging.Logger, handler: logging.Handler, level: int) -> None:
    for old in [h for h in logger.handlers if h.get_name() == "backup-preflight"]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


@contextmanager
def phase(logger: logging.Logger, message: str) -> Iterator[None]:
    """A step of a run: a spinner while it lasts on a terminal, then one line with its time.

    The line comes when the step is done, so a step that fails on bad input leaves only the error.
    """
    started = time.monotonic()
    if _live is not None:
        with console(_live).status(message):
            yield
    else:
        yield
    logger.info("%s (%.1f s)", message, time.monotonic() - started)
