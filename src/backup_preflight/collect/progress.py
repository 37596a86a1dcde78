"""What a long collection is doing: one live status line on a terminal, log lines elsewhere.

A 100,000-VM estate takes minutes of quota-paced queries; a person at a terminal wants to see it
move, a CI log wants a few greppable lines rather than thousands of carriage returns. The live
line is a rich status, cut to the terminal's width, sharing its console with the log records.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

from rich.status import Status
from rich.text import Text

from backup_preflight import logs

LOGGER = logging.getLogger("backup_preflight.collect")


class Progress:
    """Thread-safe counters rendered as a live line (`live=True`) or as log records."""

    #: Seconds between repaints of the live line / between heartbeat log lines.
    REPAINT = 0.2
    HEARTBEAT = 15.0

    def __init__(self, live: bool | None = None, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.live = self._stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._last_paint = 0.0
        self._status: Status | None = None
        self.queries_total = 0
        self.queries_done = 0
        self.pages = 0
        self.rows = 0
        self.retries = 0
        self.waits = 0
        self.waited = 0.0
        self.views_total = 0
        self.views_done = 0
        self.metrics_total = 0
        self.metrics_done_count = 0
        self.errors = 0

    def start_queries(self, total: int, scopes: int) -> None:
        with self._lock:
            self.queries_total += total
        LOGGER.info("querying Resource Graph: %d queries over %d scope batches", total, scopes)
        self._update(force=True)

    def more_queries(self, count: int) -> None:
        """Chains added on the way (a forbidden batch split in two)."""
        with self._lock:
            self.queries_total += count

    def page(self, rows: int) -> None:
        with self._lock:
            self.pages += 1
            self.rows += rows
        self._update()

    def query_done(self, label: str, pages: int, rows: int) -> None:
        with self._lock:
            self.queries_done += 1
        if not self.live:
            LOGGER.info("%s: %d rows in %d pages", label, rows, pages)
        self._update()

    def retry(self, label: str, reason: str, delay: float) -> None:
        with self._lock:
            self.retries += 1
        LOGGER.debug("%s: %s, retrying in %.1f s", label, reason, delay)
        self._update()

    def throttle_wait(self, seconds: float) -> None:
        with self._lock:
            self.waits += 1
            self.waited += max(seconds, 0.0)
        LOGGER.debug("quota spent, waiting %.2f s for the window to reset", seconds)
        self._update()

    def error(self, entry: dict[str, object]) -> None:
        with self._lock:
            self.errors += 1
        if not self.live:
            LOGGER.warning("%s, %s: %s (status %s)", entry["scope"], entry["table"], entry["message"],
                           entry["status"])
        self._update()

    def start_views(self, total: int) -> None:
        with self._lock:
            self.views_total += total
        LOGGER.info("reading the instance view of %d running VMs", total)
        self._update(force=True)

    def view_done(self) -> None:
        with self._lock:
            self.views_done += 1
        self._update()

    def start_metrics(self, batches: int, vms: int) -> None:
        with self._lock:
            self.metrics_total += batches
        LOGGER.info("reading Azure Monitor metrics of %d running VMs in %d batches", vms, batches)
        self._update(force=True)

    def metrics_done(self) -> None:
        with self._lock:
            self.metrics_done_count += 1
        self._update()

    def finish(self) -> None:
        """End the live line and log the totals once."""
        with self._lock:
            line = self._line()
            status, self._status = self._status, None
        if status is not None:
            status.stop()
            out = logs.console(self._stream)
            out.print(_fitted("collect: " + line, out.width))
        LOGGER.info("collection finished: %s", line)

    def _line(self) -> str:
        parts = [f"queries {self.queries_done}/{self.queries_total}", f"{self.pages:,} pages",
                 f"{self.rows:,} rows"]
        if self.waits:
            parts.append(f"{self.waits} quota waits ({self.waited:.1f} s)")
        if self.retries:
            parts.append(f"{self.retries} retries")
        if self.views_total:
            parts.append(f"instance views {self.views_done:,}/{self.views_total:,}")
        if self.metrics_total:
            parts.append(f"metrics batches {self.metrics_done_count:,}/{self.metrics_total:,}")
        if self.errors:
            parts.append(f"{self.errors} errors")
        return " · ".join(parts)

    def _update(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            interval = self.REPAINT if self.live else self.HEARTBEAT
            if not force and now - self._last_paint < interval:
                return
            self._last_paint = now
            line = self._line()
            if self.live:
                self._paint("collect: " + line)
        if not self.live and not force:
            LOGGER.info("progress: %s", line)

    def _paint(self, line: str) -> None:
        out = logs.console(self._stream)
        text = _fitted(line, out.width - 2)  # the spinner and a space take two columns
        if self._status is None:
            self._status = out.status(text)
            self._status.start()
        else:
            self._status.update(text)


def _fitted(line: str, width: int) -> Text:
    """One line, cut with an ellipsis at the terminal's width instead of wrapping."""
    text = Text(line)
    text.truncate(max(width, 1), overflow="ellipsis")
    return text
