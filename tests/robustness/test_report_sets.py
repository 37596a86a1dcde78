"""Report sets are all or nothing: faults mid-write (rename failure, SIGTERM, SIGKILL, a full disk)
and a second scan into the same folder never leave a mixed set or staging litter behind."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_preflight import cli
from backup_preflight.report import outputs, publish

from cli_helpers import SCRIPT, run

REPORTS = tuple(outputs.WRITERS)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file in the folder with the SHA-256 of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def litter(folder: Path) -> list[str]:
    """Anything a scan leaves beside or inside the output folder besides the reports themselves."""
    beside = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    inside = [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []
    return beside + inside


@pytest.fixture(scope="module")
def big_estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Big enough that writing the reports takes a while (about a second) to interrupt it."""
    path = tmp_path_factory.mktemp("estate") / "estate.json.gz"
    assert run("demo-estate", "--vms", "3000", "--output", path).returncode == 0
    return path


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """An output folder holding a complete set from an earlier scan, and a README of the user's."""
    out = tmp_path / "reports"
    assert run("scan", "--demo", "--output-dir", out).returncode == 1
    (out / "README.md").write_text("ours\n")
    return out


def test_a_scan_replaces_the_set_and_keeps_other_files(previous: Path) -> None:
    readme = (previous / "README.md").stat().st_ino
    (previous / ".results.json.abc123.tmp").write_bytes(b"x" * 100)  # left by an older version when killed
    proc = run("scan", "--demo", "--fail-on", "never", "--output-dir", previous)
    assert proc.returncode == 0
    assert sorted(p.name for p in previous.iterdir()) == sorted([*REPORTS, "README.md"])
    assert (previous / "README.md").stat().st_ino == readme  # carried over by hard link, not copied
    assert '"failOn": "never"' in (previous / "results.json").read_text()
    assert litter(previous) == []


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "two-renames"])
def test_a_failing_swap_leaves_the_previous_set_and_no_litter(
        previous: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fallback: bool) -> None:
    before = fingerprint(previous)
    if fallback:  # no renameat2: the second of the two renames fails, the first is rolled back
        monkeypatch.setattr(publish, "_renameat2", None)
        real_rename = os.rename

        def rename(src: str | Path, dst: str | Path) -> None:
            if Path(src).name.endswith(f".staging-{os.getpid()}"):
                raise OSError(errno.EIO, "Input/output error", str(src))
            real_rename(src, dst)

        monkeypatch.setattr(publish.os, "rename", rename)
    else:
        def exchange(new: Path, old: Path) -> None:
            raise OSError(errno.EIO, "Input/output error", str(old))

        monkeypatch.setattr(publish, "exchange", exchange)
    code = cli.main(["--quiet", "scan", "--demo", "--fail-on", "never", "--output-dir", str(previous)])
    err = capsys.readouterr().err
    assert code == 4
    assert err.startswith("backup-preflight: internal error: Input/output error") and err.count("\n") == 1
    assert "report/publish.py" in err and "--debug" in err
    assert fingerprint(previous) == before
    assert litter(previous) == []


def test_debug_prints_the_traceback(previous: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(outputs.WRITERS, "summary.md", broken)
    code = cli.main(["--quiet", "scan", "--demo", "--output-dir", str(previous), "--debug"])
    err = capsys.readouterr().err
    assert code == 4 and "Traceback (most recent call last)" in err
    assert "backup-preflight: internal error: ZeroDivisionError: a bug at report/outputs.py" in err
    assert litter(previous) == []


def _start(big_estate: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(SCRIPT), "scan", "--snapshot", str(big_estate), "--output-dir", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, "the scan ended before the moment the test waits for"
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_write_removes_the_staging_folder(previous: Path, big_estate: Path, signum: int) -> None:
    before = fingerprint(previous)
    proc = _start(big_estate, previous)
    staging = previous.parent / f".reports.staging-{proc.pid}"
    _wait_for(staging / "results.json", proc)  # the set is being written
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    assert f"interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert fingerprint(previous) == before
    assert litter(previous) == []


def test_after_sigkill_mid_write_the_next_run_sweeps_the_litter(previous: Path, big_estate: Path) -> None:
    before = fingerprint(previous)
    proc = _start(big_estate, previous)
    staging = previous.parent / f".reports.staging-{proc.pid}"
    _wait_for(staging / "junit.xml", proc)
    proc.kill()
    proc.wait(timeout=60)
    assert staging.exists()  # SIGKILL cannot be handled: the staging folder stays behind...
    assert fingerprint(previous) == before  # ...but the published set is the previous one, whole
    assert run("scan", "--demo", "--output-dir", previous).returncode == 1
    assert litter(previous) == []
    assert sorted(p.name for p in previous.iterdir()) == sorted([*REPORTS, "README.md"])


def test_a_second_scan_into_the_same_folder_refuses_while_the_first_runs(previous: Path, big_estate: Path) -> None:
    first = _start(big_estate, previous)
    _wait_for(previous.parent / f".reports.staging-{first.pid}", first)
    second = run("scan", "--demo", "--output-dir", previous)
    assert second.returncode == 2
    assert f"another backup-preflight run (pid {first.pid}) is writing reports there" in second.stderr
    assert first.wait(timeout=300) == 1
    assert sorted(p.name for p in previous.iterdir()) == sorted([*REPORTS, "README.md"])
    assert "vm-03000" in (previous / "results.json").read_text() or "3000" in (previous / "summary.md").read_text()
    assert litter(previous) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which only root can mount")
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_exit_4_with_one_line_and_the_old_set_intact(small_disk: Path) -> None:
    out = small_disk / "reports"
    out.mkdir()
    for name in REPORTS:
        (out / name).write_text(f"previous {name}\n")
    before = fingerprint(out)
    proc = run("--quiet", "scan", "--demo", "--output-dir", out)  # about 1 MB of reports on a 512 KiB disk
    assert proc.returncode == 4
    assert proc.stderr.startswith("backup-preflight: internal error: No space left on device")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert fingerprint(out) == before
    assert litter(out) == []


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda p: p.write_text("x"), "is a file, not a folder"),
    (lambda p: (p / "archive").mkdir(parents=True), "holds folders (archive)"),
    (lambda p: p.parent.joinpath("blocker").write_text("x"), "cannot create"),
])
def test_output_folders_that_cannot_take_reports_are_refused_before_the_scan(tmp_path: Path, setup, reason) -> None:
    out = tmp_path / "reports"
    setup(out)
    target = tmp_path / "blocker" / "reports" if reason == "cannot create" else out
    proc = run("scan", "--snapshot", tmp_path / "absent.json", "--output-dir", target)
    # Checked first: the missing snapshot is not even read.
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and reason in proc.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_current_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("scan", "--demo", "--output-dir", ".", cwd=tmp_path)
    assert proc.returncode == 2 and "is the current folder" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_broken_pipe_ends_quietly_with_the_verdicts_code(tmp_path: Path) -> None:
    command = f"'{SCRIPT}' --quiet scan --demo --output-dir '{tmp_path / 'r'}' | head -n 1"
    proc = subprocess.run(["bash", "-c", f"{command}; echo \"rc=${{PIPESTATUS[0]}}\""],
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.splitlines()[0].startswith("backup-preflight: 60 VMs")
    assert proc.stdout.splitlines()[-1] == "rc=1" and proc.stderr == ""
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(REPORTS)
    shutil.rmtree(tmp_path / "r")
