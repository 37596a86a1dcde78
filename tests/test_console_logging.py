"""Console: plain log lines off a terminal, a rich status on one, NO_COLOR, --quiet, --verbose."""

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_preflight import logs

from cli_helpers import run

PLAIN = re.compile(r"^\d\d:\d\d:\d\d scan: ")
COLOR = re.compile(r"\x1b\[(3\d|9\d|38;)")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_loggers() -> Iterator[None]:
    logger = logging.getLogger("backup_preflight")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    logs.setup(quiet=True, stream=io.StringIO())  # forget the terminal
    handlers, level, propagate = saved
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_off_a_terminal_the_phases_are_plain_log_lines(tmp_path: Path) -> None:
    proc = run("scan", "--demo", "--output-dir", tmp_path)
    lines = proc.stderr.splitlines()
    assert [re.sub(r" \(\d+\.\d s\)$", "", PLAIN.sub("", line)) for line in lines] == [
        "generating the demo estate", "building the estate and evaluating 17 policies",
        f"writing the reports to {tmp_path}"]
    assert all(PLAIN.match(line) for line in lines) and "\x1b" not in proc.stderr


def test_quiet_and_verbose(tmp_path: Path) -> None:
    for where in (["-q", "scan"], ["scan", "--quiet"]):
        proc = run(*where, "--demo", "--output-dir", tmp_path)
        assert proc.returncode == 1 and proc.stderr == ""
        assert "Gate: fail on high" in proc.stdout  # the result itself is not a log line
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    proc = run("scan", "--snapshot", bad, "--output-dir", tmp_path / "out")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1  # a failed phase: only the error


def test_verbose_logs_what_the_collector_does_at_debug_level(tmp_path: Path) -> None:
    logger = logging.getLogger("backup_preflight.collect")
    for flag, shown in (("--verbose", True), (None, False)):
        stream = io.StringIO()
        logs.setup(verbose=flag is not None, stream=stream)
        logger.debug("quota spent, waiting 1.00 s for the window to reset")
        logger.info("querying Resource Graph")
        assert ("quota spent" in stream.getvalue()) is shown
        assert "collect: querying Resource Graph" in stream.getvalue()


def test_on_a_terminal_a_phase_is_a_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "60")
    term = Terminal()
    logs.setup(stream=term)
    assert logs.is_live()
    with logs.phase(logging.getLogger("backup_preflight.scan"), "evaluating 17 policies"):
        pass
    out = term.getvalue()
    assert "evaluating 17 policies" in out and COLOR.search(out)  # rich, coloured


def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    term = Terminal()
    logs.setup(stream=term)
    log = logging.getLogger("backup_preflight.scan")
    with logs.phase(log, "evaluating 17 policies"):
        log.warning("something to say")
    out = term.getvalue()
    assert "evaluating 17 policies" in out and "something to say" in out
    assert not COLOR.search(out)


def test_quiet_on_a_terminal_shows_no_progress() -> None:
    term = Terminal()
    logs.setup(quiet=True, stream=term)
    assert not logs.is_live()
    with logs.phase(logging.getLogger("backup_preflight.scan"), "evaluating 17 policies"):
        pass
    assert term.getvalue() == ""
