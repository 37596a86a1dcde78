"""Snapshot files that cannot be split where they lie (several files merged, or one file not laid out a row per
line) are, past a part's size, merged, set aside and judged a part at a time (scan.snapshot_source), with the
findings, coverage and recorded sources of the same files held whole."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from backup_preflight import cli, demo, scan
from backup_preflight.results import Gate
from scan_helpers import policies

VMS = 60
#: Tables moved into a second file, as the guest probe's output and the metrics arrive beside an estate.
APART = ("guestfacts", "metrics", "instanceviews")


def _files(tmp_path: Path, layout: str) -> list[Path]:
    doc = demo.generate(VMS, seed=5, subscriptions=3)
    if layout == "pretty":  # one file, indented: not a row per line, so not split where it lies
        path = tmp_path / "pretty.json"
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return [path]
    second = {**doc, "tables": {name: doc["tables"].pop(name) for name in APART}, "errors": []}
    paths = [tmp_path / "estate.json", tmp_path / "guest.json"]
    for path, part in zip(paths, (doc, second), strict=True):
        path.write_text(json.dumps(part), encoding="utf-8")
    return paths


@pytest.mark.parametrize("layout", ["two files", "pretty"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_findings_in_parts_equal_those_held_whole(tmp_path: Path, layout: str, jobs: int) -> None:
    paths = _files(tmp_path, layout)
    held = scan.snapshot_source(paths, 0)
    assert held.split is None
    source = scan.snapshot_source(paths, 7, jobs)
    source.jobs = jobs  # parts judged in child processes, as `scan --jobs` sets it
    assert source.split is not None and sum(source.split.vms.values()) == VMS
    assert source.describe() == held.describe() and source.snapshot.sources == held.snapshot.sources
    assert [f["path"] for f in source.files] == [str(p) for p in paths]
    whole = scan.run_scan(held, policies(), Gate())
    parts = scan.run_scan(source, policies(), Gate())
    assert whole.findings and parts.findings == whole.findings
    assert parts.coverage == whole.coverage and parts.exit_code == whole.exit_code
    assert parts.run["source"] == whole.run["source"]
    if layout == "two files":  # the second file's facts are judged: the guest's DHCP is read, not unknown
        dhcp = [f for f in parts.findings if f.policy_id == "VMBK-DHCP-001"]
        assert dhcp and any(f.status != "unknown" for f in dhcp)


def test_no_more_vms_than_a_part_is_held_whole(tmp_path: Path) -> None:
    paths = _files(tmp_path, "two files")
    assert scan.snapshot_source(paths, VMS).split is None
    source = scan.snapshot_source(paths, VMS - 1)
    assert source.split is not None
    source.split.close()


def test_a_temporary_folder_that_cannot_take_the_merged_rows_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _files(tmp_path, "two files")
    out = tmp_path / "out"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    flags = [arg for path in paths for arg in ("--snapshot", str(path))]
    assert cli.main(["--quiet", "scan", *flags, "--part-size", "7", "--output-dir", str(out)]) == 2
    message = capsys.readouterr().err
    assert "the snapshots" in message and "temporary folder" in message and "--part-size 0" in message
    assert "Traceback" not in message and not out.exists()
    assert cli.main(["--quiet", "scan", *flags, "--part-size", "0", "--output-dir", str(out)]) == 1
