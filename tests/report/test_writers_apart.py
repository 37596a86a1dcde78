"""Reports written several at once (`scan --jobs`): the same files as one at a time, shared out as the
weights say, only as far as memory allows, and every failure of a child raised in the run as it would be
raised there, with nothing published."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import cli
from backup_preflight.report import outputs
from backup_preflight.workers import memory_room, resident

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


@pytest.mark.parametrize(("jobs", "lanes"), [
    ("2", [{"report.html", "summary.md"}, {"findings.csv", "results.json"}]),
    ("3", [{"report.html"}, {"findings.csv", "summary.md"}, {"results.json"}]),
])
def test_reports_written_apart_are_the_reports_written_one_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apart: None, jobs: str, lanes: list[set[str]]) -> None:
    assert scan(tmp_path / "one", "--jobs", "1") == 0
    log = tmp_path / "writers.log"
    spy(monkeypatch, log)
    assert scan(tmp_path / "apart", "--jobs", jobs) == 0
    one, several = files(tmp_path / "one"), files(tmp_path / "apart")
    assert sorted(several) == sorted(REPORTS)
    for name in REPORTS:  # the demo's clock is fixed: only the run's times differ between two scans
        assert _timeless(several[name]) == _timeless(one[name]), name
    by = writers(log)
    assert {name for name, pid in by.items() if pid == os.getpid()} == lanes[0]  # this process writes too
    children = [{name for name, pid in by.items() if pid == child} for child in set(by.values()) - {os.getpid()}]
    assert sorted(children, key=sorted) == sorted(lanes[1:], key=sorted)


def _timeless(data: bytes) -> bytes:
    import re

    return re.sub(rb'("(startedAt|finishedAt|durationSeconds)": ?)"?[^",]*"?|(time|timestamp)="[^"]*"', b"", data)


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
    (4, 100_000, 2 * 10 ** 9 + 1, 10 ** 9, 2),  # as many copies of this process as the room holds
    (4, 100_000, 10 ** 9 - 1, 10 ** 9, 0),      # not one: a 1,000,000-VM scan on a 7 GB runner
    (4, 100_000, None, 10 ** 9, 0),             # the memory left is unknown (not Linux)
    (4, 100_000, 10 ** 12, None, 0),            # what this process holds is unknown
    (4, 100_000, 10 ** 12, 0, 0),
])
def test_helpers_follow_the_jobs_the_findings_and_the_memory_left(
        monkeypatch: pytest.MonkeyPatch, jobs: int, findings: int, room: int | None, held: int | None,
        helpers: int) -> None:
    monkeypatch.setattr(outputs, "memory_room", lambda: room)
    monkeypatch.setattr(outputs, "resident", lambda: held)
    assert outputs.helpers(jobs, findings) == helpers


def test_lanes_share_every_report_once_largest_first_to_the_least_loaded() -> None:
    names = tuple(outputs.WRITERS)
    assert outputs.lanes(names, 1) == [("report.html", "findings.csv", "results.json", "junit.xml", "summary.md")]
    assert outputs.lanes(names, 2) == [("report.html", "junit.xml", "summary.md"), ("findings.csv", "results.json")]
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


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GIB = 1 << 30
MEMINFO = "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20971520 kB\n"  # 20 GiB


@pytest.mark.parametrize(("lines", "files_", "room"), [
    ("0::/\n", {}, 20 * GIB),  # no cgroup file: the system's available memory
    ("0::/ci/job\n", {"ci/job/memory.max": f"{7 * GIB}\n", "ci/job/memory.current": f"{3 * GIB}\n",
                      "ci/job/memory.stat": f"anon 1\ninactive_file {GIB}\nactive_file 5\n"}, 5 * GIB),
    ("0::/ci/job\n", {"ci/job/memory.max": "max\n", "ci/job/memory.current": f"{3 * GIB}\n",
                      "ci/job/memory.stat": "inactive_file 0\n",
                      "ci/memory.max": f"{4 * GIB}\n", "ci/memory.current": f"{3 * GIB}\n",
                      "ci/memory.stat": "inactive_file 0\n"}, GIB),  # the parent's limit
    ("0::/\n", {"memory.max": f"{2 * GIB}\n", "memory.current": f"{GIB}\n",
                "memory.stat": f"inactive_file {3 * GIB}\n"}, 2 * GIB),  # more cache than use: the limit
    ("0::/\n", {"memory.max": f"{GIB}\n", "memory.current": f"{2 * GIB}\n", "memory.stat": "inactive_file 0\n"}, 0),
    ("0::/\n", {"memory.max": f"{GIB}\n", "memory.current": "lots\n", "memory.stat": ""}, 20 * GIB),
    ("4:memory:/docker/abc\n", {"memory/docker/abc/memory.limit_in_bytes": f"{7 * GIB}\n",
                                "memory/docker/abc/memory.usage_in_bytes": f"{6 * GIB}\n",
                                "memory/docker/abc/memory.stat": f"cache 9\ntotal_inactive_file {2 * GIB}\n"},
     3 * GIB),
    ("4:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
                      "memory/memory.usage_in_bytes": f"{6 * GIB}\n", "memory/memory.stat": ""}, 20 * GIB),
    ("4:cpu:/\n", {"cpu/memory.limit_in_bytes": f"{GIB}\n", "cpu/memory.usage_in_bytes": "0\n",
                   "cpu/memory.stat": ""}, 20 * GIB),  # not the memory controller
])
def test_memory_room_is_the_least_left_by_the_system_and_each_cgroup(
        tmp_path: Path, lines: str, files_: dict[str, str], room: int) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files_.items():
        write(root / name, text)
    own = write(tmp_path / "self-cgroup", lines)
    assert memory_room(root, own, write(tmp_path / "meminfo", MEMINFO)) == room


def test_memory_room_is_unknown_when_nothing_says(tmp_path: Path) -> None:
    assert memory_room(tmp_path / "none", tmp_path / "no-cgroup", tmp_path / "no-meminfo") is None
    unlimited = tmp_path / "cgroup" / "memory"
    write(unlimited / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit" is no room figure
    write(unlimited / "memory.usage_in_bytes", "0\n")
    write(unlimited / "memory.stat", "total_inactive_file 0\n")
    assert memory_room(tmp_path / "cgroup", write(tmp_path / "own", "4:memory:/\n"), tmp_path / "no-meminfo") is None
    assert memory_room(tmp_path / "none", tmp_path / "no-cgroup", write(tmp_path / "m", "MemAvailable: x kB\n")) is None
    assert memory_room(tmp_path / "none", tmp_path / "no-cgroup", write(tmp_path / "n", "MemFree: 5 kB\n")) is None


def test_resident_is_the_second_field_of_statm_in_pages(tmp_path: Path) -> None:
    assert resident(write(tmp_path / "statm", "900 25 7 1 0 50 0\n")) == 25 * os.sysconf("SC_PAGE_SIZE")
    assert resident(write(tmp_path / "bad", "900\n")) is None
    assert resident(tmp_path / "absent") is None
    if Path("/proc/self/statm").exists():
        assert 10 * 2 ** 20 < (resident() or 0) < 64 * GIB  # this test process, as it is now
