"""Reports written several at once (`scan --jobs`): the same files as one at a time, shared out as the
weights say, only as far as memory allows, and every failure of a child raised in the run as it would be
raised there, with nothing published."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import cli
from backup_preflight.demo import demo_document
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import outputs
from backup_preflight.results import Gate, ScanResult
from backup_preflight.scan import demo_source, run_scan
from shard_helpers import masked, write_shards

REPORTS = tuple(outputs.WRITERS)


def scan(out: Path, *flags: str) -> int:
    return cli.main(["--quiet", "scan", "--demo", "--fail-on", "never", "--output-dir", str(out), *flags])


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any scan big enough to share out its reports, and memory for any number of children."""
    monkeypatch.setattr(outputs, "APART_FINDINGS", 0)
    monkeypatch.setattr(outputs, "memory_room", lambda: 1 << 40)


def spy(monkeypatch: pytest.MonkeyPatch, log: Path, then: Callable[[str, Path], None] | None = None) -> None:
    """Note which process writes each report (junit.xml's writer is made per run, so it is left out)."""
    for name, writer in list(outputs.WRITERS.items()):
        def noted(result: Any, path: Path, name: str = name, writer: outputs.Writer = writer) -> None:
            with log.open("a", encoding="utf-8") as out:
                out.write(f"{name} {os.getpid()}\n")
            if then is not None:
                then(name, path)
            writer(result, path)

        monkeypatch.setitem(outputs.WRITERS, name, noted)


def writers(log: Path) -> dict[str, int]:
    return {name: int(pid) for name, pid in (line.split() for line in log.read_text(encoding="utf-8").splitlines())}


@pytest.fixture(scope="module")
def demo() -> ScanResult:
    return run_scan(demo_source(), load_policies([bundled_policy_dir()]), Gate())


def write_set(result: ScanResult, out: Path, jobs: int) -> None:
    with outputs.claim(out) as staged:
        outputs.write_set(result, staged, jobs=jobs)


@pytest.mark.parametrize(("jobs", "lanes"), [
    (2, [{"report.html", "summary.md"}, {"findings.csv", "results.json"}]),
    (3, [{"report.html"}, {"results.json", "summary.md"}, {"findings.csv"}]),
])
def test_reports_written_apart_are_the_reports_written_one_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apart: None, demo: ScanResult, jobs: int,
        lanes: list[set[str]]) -> None:
    write_set(demo, tmp_path / "one", 1)
    log = tmp_path / "writers.log"
    spy(monkeypatch, log)
    write_set(demo, tmp_path / "apart", jobs)
    assert files(tmp_path / "apart") == files(tmp_path / "one")
    assert sorted(files(tmp_path / "apart")) == sorted(REPORTS)
    by = writers(log)
    assert {name for name, pid in by.items() if pid == os.getpid()} == lanes[0]  # this process writes too
    children = [{name for name, pid in by.items() if pid == child} for child in set(by.values()) - {os.getpid()}]
    assert sorted(children, key=sorted) == sorted(lanes[1:], key=sorted)


def test_merge_writes_its_reports_apart_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apart: None) -> None:
    results = []
    for path in write_shards(demo_document(), 2, tmp_path):
        out = tmp_path / f"out-{path.stem}"
        assert cli.main(["--quiet", "scan", "--snapshot", str(path), "--shard-name", path.stem, "--output-dir",
                         str(out), "--fail-on", "never", "--jobs", "1"]) == 0
        results.append(str(out / "results.json"))
    assert cli.main(["--quiet", "merge", *results, "--output-dir", str(tmp_path / "one"), "--jobs", "1"]) == 1
    log = tmp_path / "writers.log"
    spy(monkeypatch, log)
    assert cli.main(["--quiet", "merge", *results, "--output-dir", str(tmp_path / "apart"), "--jobs", "2"]) == 1
    for name in REPORTS:
        assert masked(tmp_path / "apart", name) == masked(tmp_path / "one", name), name
    by = writers(log)
    assert {name for name, pid in by.items() if pid != os.getpid()} == {"findings.csv", "results.json"}


def test_one_job_or_a_small_scan_writes_every_report_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "memory_room", lambda: 1 << 40)
    log = tmp_path / "writers.log"
    spy(monkeypatch, log)
    assert scan(tmp_path / "small", "--jobs", "4") == 0  # the demo's 1,020 findings: below APART_FINDINGS
    monkeypatch.setattr(outputs, "APART_FINDINGS", 0)
    assert scan(tmp_path / "one", "--jobs", "1") == 0
    assert set(writers(log).values()) == {os.getpid()}
    assert len(log.read_text(encoding="utf-8").splitlines()) == 2 * (len(REPORTS) - 1)


@pytest.mark.parametrize(("jobs", "findings", "room", "held", "helpers"), [
    (1, 10 ** 6, 10 ** 12, 10 ** 9, 0),         # one job: no helper, whatever the memory
    (2, 99_999, 10 ** 12, 10 ** 9, 0),          # too few findings to be worth a fork
    (2, 100_000, 10 ** 12, 10 ** 9, 1),
    (4, 100_000, 10 ** 12, 10 ** 9, 3),
    (8, 100_000, 10 ** 12, 10 ** 9, 4),         # never more processes than reports
    # as many children as the room holds once this process has grown by half: 1.25 times it each
    (4, 100_000, 3 * 10 ** 9, 10 ** 9, 2),
    (4, 100_000, 3 * 10 ** 9 - 1, 10 ** 9, 1),
    (4, 100_000, 175 * 10 ** 7, 10 ** 9, 1),
    (4, 100_000, 175 * 10 ** 7 - 1, 10 ** 9, 0),
    (4, 100_000, 35 * 10 ** 8, 32 * 10 ** 8, 0),  # a 1,000,000-VM scan on a 7 GB runner (killed with a child)
    (4, 100_000, 10 ** 8, 10 ** 9, 0),            # less room than this process will grow by
    (4, 100_000, None, 10 ** 9, 0),             # the memory left is unknown (not Linux)
    (4, 100_000, 10 ** 12, None, 0),            # what this process holds is unknown
    (4, 100_000, 10 ** 12, 0, 0),
])
def test_helpers_follow_the_jobs_the_findings_and_the_memory_left(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, jobs: int, findings: int,
        room: int | None, held: int | None, helpers: int) -> None:
    caplog.set_level("DEBUG", logger="backup_preflight.report")
    monkeypatch.setattr(outputs, "memory_room", lambda: room)
    monkeypatch.setattr(outputs, "resident", lambda: held)
    assert outputs.helpers(jobs, findings) == helpers
    if jobs > 1 and findings >= outputs.APART_FINDINGS:  # -v says why the reports are written as they are
        assert caplog.messages == (
            [f"the reports are written by {1 + helpers} process(es): {room / 1e9:.1f} GB left, this process "
             f"holds {held / 1e9:.1f} GB"] if room is not None and held else
            ["the reports are written one at a time: the memory left is not known here"])
    else:
        assert caplog.messages == []


def test_lanes_share_every_report_once_largest_first_to_the_least_loaded() -> None:
    names = tuple(outputs.WRITERS)
    assert outputs.lanes(names, 1) == [("report.html", "results.json", "findings.csv", "junit.xml", "summary.md")]
    assert outputs.lanes(names, 2) == [("report.html", "junit.xml", "summary.md"), ("results.json", "findings.csv")]
    assert outputs.lanes(names, 9) == [(name,) for name in outputs.lanes(names, 1)[0]]
    assert outputs.lanes(names, 0) == outputs.lanes(names, 1)
    assert outputs.lanes(("a.txt", "report.html", "b.txt"), 2) == [("report.html",), ("a.txt", "b.txt")]


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    out = tmp_path / "reports"
    assert scan(out, "--jobs", "1") == 0
    return out


def _litter(folder: Path) -> list[str]:
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


@pytest.mark.parametrize(("fault", "says"), [
    ("full", "backup-preflight: internal error: No space left on device: "),
    ("bug", "backup-preflight: internal error: RuntimeError: the process writing reports failed: "
            "ZeroDivisionError: a bug at workers.py"),
    ("killed", "backup-preflight: internal error: RuntimeError: the process writing reports was killed (SIGKILL; "
               "most often the kernel out of memory): fewer --jobs need less at workers.py"),
])
def test_a_child_s_failure_fails_the_run_and_publishes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], apart: None,
        previous: Path, fault: str, says: str) -> None:
    before = files(previous)
    here = os.getpid()

    def fail(name: str, path: Path) -> None:
        if name != "findings.csv" or os.getpid() == here:  # in the child's lane, and in the child
            return
        if fault == "full":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        if fault == "bug":
            raise ZeroDivisionError("a bug")
        os.kill(os.getpid(), signal.SIGKILL)

    spy(monkeypatch, tmp_path / "writers.log", fail)
    assert scan(previous, "--jobs", "2") == 4
    err = capsys.readouterr().err
    assert err.startswith(says) and err.count("\n") == 1, err
    if fault == "full":  # the child's OSError itself, raised in the run: its errno, its file
        assert "findings.csv" in err and "report/outputs.py" in err
    assert writers(tmp_path / "writers.log")["findings.csv"] != here
    assert files(previous) == before
    assert _litter(previous) == []


def test_a_signal_while_children_write_stops_them_and_publishes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], apart: None,
        previous: Path) -> None:
    before = files(previous)
    here = os.getpid()

    def signal_the_run(name: str, path: Path) -> None:
        if name == "findings.csv" and os.getpid() != here:  # a child, mid-write: as a CI runner cancelling
            os.kill(here, signal.SIGTERM)
            time.sleep(60)

    spy(monkeypatch, tmp_path / "writers.log", signal_the_run)
    assert scan(previous, "--jobs", "2") == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM; no new reports were published" in capsys.readouterr().err
    child = writers(tmp_path / "writers.log")["findings.csv"]
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left sleeping
        os.kill(child, 0)
    assert files(previous) == before
    assert _litter(previous) == []
